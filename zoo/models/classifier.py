"""The zoo MNIST classifier as a trainable model: ``nets.classifier`` plus light augmentation
(random rotations, zooms and shifts) and dropout, both drawn with ``distribute.Draws`` so that
N replicas train exactly as one device. Its trained network is the offline feature extractor
behind the metrics (``zoo.metrics.extractors``); ``recipes/classifier.py --ship`` writes it into
the package.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets
from zoo.core import distribute
from zoo.core import signature as sig
from zoo.core.config import Config, each, in_range, positive_int, setting
from zoo.models.base import TINY_RUN, ZooModel, batched


@dataclasses.dataclass
class ClassifierConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    filters: tuple = setting((32, 64), "filters of each pair of 3×3 convolutions", each(positive_int))
    hidden: int = setting(128, "units of the dense layer before the logits", positive_int)
    dropout: float = setting(0.3, "dropout before the logits", in_range(0, 1, high_open=True))
    augment: bool = setting(True, "random shifts (±10%), rotations (±14°) and zooms (±10%) while training")
    seed: int = setting(0, "seed of the model's randomness", flag=False)


@keras.saving.register_keras_serializable("zoo")
class Classifier(ZooModel):
    Config = ClassifierConfig
    zoo_name = "classifier"
    headline = ("accuracy",)
    tracked = ("loss", "accuracy")
    run_defaults = {"epochs": 40, "batch_size": 64, "learning_rate": 1e-3}
    presets = {"default": {}, "tiny": {"filters": (4, 8), "hidden": 16, **TINY_RUN}}
    xla_by_default = False  # XLA cannot compile the image-augmentation transforms

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.network = nets.classifier(c.image_shape, c.num_classes, c.filters, c.hidden)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True

    def call(self, images, training=False):
        return self.network(images, training=training)["logits"]

    def augment(self, images, draws):
        """A random rotation, zoom and shift per image: one projective transform (output → input
        coordinates about the centre), bilinear, black outside."""
        n = tf.shape(images)[0]
        h, w = self.config.image_shape[:2]
        angle = draws.uniform([n], 1, -0.04 * 2 * math.pi, 0.04 * 2 * math.pi)
        scale = 1.0 + draws.uniform([n], 2, -0.1, 0.1)
        dx, dy = draws.uniform([n], 3, -0.1 * w, 0.1 * w), draws.uniform([n], 4, -0.1 * h, 0.1 * h)
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a0, a1 = scale * tf.cos(angle), -scale * tf.sin(angle)
        b0, b1 = scale * tf.sin(angle), scale * tf.cos(angle)
        zeros = tf.zeros_like(angle)
        transforms = tf.stack([a0, a1, cx - a0 * cx - a1 * cy - dx, b0, b1, cy - b0 * cx - b1 * cy - dy, zeros, zeros],
                              axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.constant([h, w], tf.int32),
            fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")

    def objective(self, data, training):
        images, labels = data
        if training:
            draws = distribute.Draws.for_replica(self.seed_generator)
            if self.config.augment:
                images = self.augment(images, draws)
            hidden = self.network(images, training=True)["hidden"]
            keep = tf.cast(draws.uniform(tf.shape(hidden), 5) >= self.config.dropout, hidden.dtype)
            logits = self.network.get_layer("logits")(hidden * keep / (1.0 - self.config.dropout))
        else:
            logits = self(images)
        logits = tf.cast(logits, tf.float32)
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
