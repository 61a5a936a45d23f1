"""A small CNN classifier: the zoo's offline feature extractor for MNIST-like data.

Its logits give class probabilities (Inception Score, classifier accuracy); its pooled
convolutional features (4×4×64 = 1,024 values, the analogue of Inception's pool3) are the
features for FID, KID, precision/recall and density/coverage, and its convolutions feed
LPIPS-style distances. (The 128-unit dense layer after them is a poor metric space: it maps
pure noise next to thin digits, so noise would score high precision there.)
Trained by ``recipes/classifier.py``; the weights ship in ``zoo/weights``.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo import distribute
from zoo.export import Input, Signature
from zoo.models.base import ZooModel, check_positive


@dataclasses.dataclass
class ClassifierConfig:
    image_shape: tuple = (28, 28, 1)
    num_classes: int = 10
    filters: tuple = (32, 64)
    hidden: int = 128
    dropout: float = 0.3
    augment: bool = True
    seed: int = 0

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)
        self.filters = tuple(self.filters)
        check_positive("num_classes", self.num_classes)


class Classifier(ZooModel):
    Config = ClassifierConfig
    tracked = ("loss", "accuracy")

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        inputs = keras.Input(c.image_shape, name="images")
        x = inputs
        for f in c.filters:
            x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
            x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.MaxPooling2D(padding="same")(x)  # 7×7 → 4×4 keeps the shipped weights small
        x = layers.Flatten()(x)
        hidden = layers.Dense(c.hidden, activation="relu", name="hidden")(x)
        self.backbone = keras.Model(inputs, hidden, name="backbone")
        self.pooled = keras.Model(inputs, x, name="pooled_features")  # shares the conv layers
        self.dropout = layers.Dropout(c.dropout, seed=c.seed)
        self.head = layers.Dense(c.num_classes, dtype="float32", name="logits")
        self.head.build((None, c.hidden))
        self.augmentation = keras.Sequential([
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=c.seed),
            layers.RandomRotation(0.04, fill_mode="constant", seed=c.seed + 1),
            layers.RandomZoom(0.1, fill_mode="constant", seed=c.seed + 2),
        ], name="augmentation")
        self.built = True

    def call(self, images, training=False):
        return self.head(self.dropout(self.backbone(images, training=training), training=training))

    def features(self, images):
        return self.pooled(images, training=False)

    def probabilities(self, images):
        return tf.nn.softmax(self.call(images))

    def _step(self, data, training):
        images, labels = data
        if training and self.config.augment:
            images = self.augmentation(images, training=True)
        logits = tf.cast(self(images, training=training), tf.float32)
        per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        return per_image, correct

    def train_step(self, data):
        with tf.GradientTape() as tape:
            per_image, correct = self._step(data, training=True)
            scaled = self.optimizer.scale_loss(distribute.average_loss(per_image))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self.update_trackers(loss=per_image, accuracy=correct)

    def test_step(self, data):
        per_image, correct = self._step(data, training=False)
        return self.update_trackers(loss=per_image, accuracy=correct)

    def signatures(self):
        images = Input("images", "images", self.config.image_shape)
        return [Signature("classify", lambda images: {
            "probabilities": self.probabilities(images), "features": self.features(images)}, (images,))]

    def evaluate_arrays(self, images, labels, train=None):
        predictions = np.concatenate([
            np.argmax(self(tf.constant(images[i:i + 500])).numpy(), -1) for i in range(0, len(images), 500)])
        return {"accuracy": float(np.mean(predictions == labels))}
