"""The zoo MNIST classifier as a trainable model: ``nets.classifier`` plus light
augmentation. Its trained network is the offline feature extractor behind the metrics
(``zoo.metrics.extractors``); ``recipes/classifier.py --ship`` writes it into the package.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo import nets
from zoo import signature as sig
from zoo.config import Config, each, in_range, positive_int, setting
from zoo.models.base import ZooModel, batched


@dataclasses.dataclass
class ClassifierConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    filters: tuple = setting((32, 64), "filters of each pair of 3×3 convolutions", each(positive_int))
    hidden: int = setting(128, "units of the dense layer before the logits", positive_int)
    dropout: float = setting(0.3, "dropout before the logits", in_range(0, 1, high_open=True))
    augment: bool = setting(True, "random shifts, rotations and zooms while training")
    seed: int = setting(0, "seed of the model's randomness", flag=False)


@keras.saving.register_keras_serializable("zoo")
class Classifier(ZooModel):
    Config = ClassifierConfig
    zoo_name = "classifier"
    tracked = ("loss", "accuracy")
    run_defaults = {"epochs": 40, "batch_size": 64, "learning_rate": 1e-3}
    jit_compile = False  # XLA cannot compile the image-augmentation transforms

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.network = nets.classifier(c.image_shape, c.num_classes, c.filters, c.hidden, c.dropout, c.seed)
        self.augmentation = keras.Sequential([
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=c.seed),
            layers.RandomRotation(0.04, fill_mode="constant", seed=c.seed + 1),
            layers.RandomZoom(0.1, fill_mode="constant", seed=c.seed + 2),
        ], name="augmentation")
        self.built = True

    def call(self, images, training=False):
        return self.network(images, training=training)["logits"]

    def objective(self, data, training):
        images, labels = data
        if training and self.config.augment:
            images = self.augmentation(images, training=True)
        logits = tf.cast(self(images, training=training), tf.float32)
        per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        return {"loss": per_image, "accuracy": correct}

    def train_step(self, data):
        return self.update_trackers(**self.minimize(lambda: self.objective(data, training=True)))

    def test_step(self, data):
        return self.update_trackers(**self.objective(data, training=False))

    def signatures(self):
        def classify(images):
            out = self.network(images)
            return {"probabilities": tf.nn.softmax(out["logits"]), "features": out["features"]}

        return [sig.Signature("classify", classify, (sig.images(self.config.image_shape),))]

    def measure(self, test, train):
        images, labels = test
        predictions = batched(lambda x: tf.argmax(self(x), -1), images)
        return {"accuracy": float(np.mean(predictions == labels))}
