"""Class-conditional GAN, p(x | y).

Generator: DCGAN-style transposed convolutions with class-conditional GroupNorm.
Discriminator: spectrally normalised convolutions with a projection head. Hinge loss (or the
non-saturating loss), Adam with β₁ = 0, and an exponential moving average of the generator
weights (``generator_ema``, moved by every generator step) that sampling, evaluation and
export use.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets
from zoo.core import distribute
from zoo.core import signature as sig
from zoo.core.config import Config, each, in_range, one_of, positive, positive_int, setting
from zoo.core.images import grid
from zoo.core.optimizers import Adam
from zoo.models.base import TINY_RUN, ZooModel
from zoo.models.capabilities import ConditionalGenerator

LOSSES = ("hinge", "nonsaturating")


@dataclasses.dataclass
class CGANConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    noise_dim: int = setting(64, "size of the generator's noise", positive_int)
    g_filters: tuple = setting((128, 64, 32), "generator filters per resolution (a quarter, half, full size)",
                               each(positive_int))
    d_filters: tuple = setting((64, 128, 128), "discriminator filters per convolution", each(positive_int))
    loss: str = setting("hinge", "adversarial loss", one_of(*LOSSES))
    ema_decay: float = setting(0.999, "decay of the generator weights' moving average used for sampling and export",
                               in_range(0, 1, high_open=True))
    d_learning_rate: float = setting(2e-4, "discriminator Adam learning rate (--learning-rate is the generator's)",
                                     positive)
    beta_1: float = setting(0.0, "Adam β₁ of both optimizers", in_range(0, 1, high_open=True))
    beta_2: float = setting(0.9, "Adam β₂ of both optimizers", in_range(0, 1, high_open=True))
    seed: int = setting(0, "seed of the model's noise", flag=False)


def discriminator_loss(kind, real_logits, fake_logits):
    """Per-example discriminator loss."""
    if kind == "hinge":
        return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
    return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


def generator_loss(kind, fake_logits):
    """Per-example generator loss."""
    return -fake_logits if kind == "hinge" else tf.nn.softplus(-fake_logits)


@keras.saving.register_keras_serializable("zoo")
class CGAN(ZooModel, ConditionalGenerator):
    Config = CGANConfig
    zoo_name = "cgan"
    headline = ("fid", "classifier_accuracy", "intra_fid")
    tracked = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")
    run_defaults = {"epochs": 60, "batch_size": 64, "learning_rate": 2e-4}
    presets = {"default": {}, "tiny": {"noise_dim": 8, "g_filters": (16, 8, 8), "d_filters": (8, 16, 16), **TINY_RUN}}
    xla_by_default = False  # measured on a 2-core CPU: the XLA step was slower (190 vs 144 ms)
    # bfloat16 where the CPU computes it natively: the step 1.34× faster, card metrics equal within
    # their errors (bench/results/train_throughput_bfloat16_cgan_groupnorm.json; docs/history.md)
    bfloat16_on_cpu = True

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.generator = nets.conditional_generator(c.image_shape, c.noise_dim, c.num_classes, c.g_filters)
        self.discriminator = nets.projection_discriminator(c.image_shape, c.num_classes, c.d_filters)
        self.generator_ema = nets.conditional_generator(c.image_shape, c.noise_dim, c.num_classes, c.g_filters,
                                                        name="generator_ema")
        self.keep_average("generator", "generator_ema", c.ema_decay)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True  # the sub-networks are functional models, built on construction

    def optimizers_for(self, learning_rate):
        c = self.config
        return [(Adam(learning_rate, beta_1=c.beta_1, beta_2=c.beta_2), self.generator),
                (Adam(c.d_learning_rate, beta_1=c.beta_1, beta_2=c.beta_2), self.discriminator)]

    # Training --------------------------------------------------------------------------
    def _one_hot(self, labels):
        return tf.one_hot(tf.cast(labels, tf.int32), self.config.num_classes)

    def draw_noise(self, draws, images, stream):
        """Noise for a batch; ``stream`` tells the discriminator's step (0) from the generator's (1)."""
        return draws.normal([tf.shape(images)[0], self.config.noise_dim], stream)

    def _logits(self, images, y, fake, training):
        real_logits = tf.cast(self.discriminator([images * 2.0 - 1.0, y], training=training), tf.float32)
        fake_logits = tf.cast(self.discriminator([fake, y], training=training), tf.float32)
        return real_logits, fake_logits

    def _report(self, real_logits, fake_logits, g_per_example):
        return self.update_trackers(
            d_loss=discriminator_loss(self.config.loss, real_logits, fake_logits), g_loss=g_per_example,
            d_real_accuracy=tf.cast(real_logits > 0, tf.float32), d_fake_accuracy=tf.cast(fake_logits < 0, tf.float32))

    def train_step(self, data):
        images, labels = data
        kind, y = self.config.loss, self._one_hot(labels)
        draws = distribute.Draws.for_replica(self.seed_generator)

        def d_objective():
            fake = self.generator([self.draw_noise(draws, images, 0), y], training=True)
            real_logits, fake_logits = self._logits(images, y, fake, training=True)
            return {"loss": discriminator_loss(kind, real_logits, fake_logits),
                    "real_logits": real_logits, "fake_logits": fake_logits}

        def g_objective():  # fresh noise
            fake = self.generator([self.draw_noise(draws, images, 1), y], training=True)
            return generator_loss(kind, tf.cast(self.discriminator([fake, y], training=True), tf.float32))

        d = self.minimize(d_objective, self.discriminator)
        g_per_example = self.minimize(g_objective, self.generator)
        return self._report(d["real_logits"], d["fake_logits"], g_per_example)

    def test_step(self, data):
        images, labels = data
        y = self._one_hot(labels)
        draws = distribute.Draws.for_replica(self.seed_generator)
        fake = self.generator([self.draw_noise(draws, images, 0), y])
        real_logits, fake_logits = self._logits(images, y, fake, training=False)
        return self._report(real_logits, fake_logits, generator_loss(self.config.loss, fake_logits))

    def training_callbacks(self):
        return [DiscriminatorWatch()]

    # Inference (the averaged generator) -------------------------------------------------
    def generate(self, noise, labels):
        """Images in [0, 1] from the EMA generator (noise and labels: arrays or tensors)."""
        noise = tf.convert_to_tensor(noise, tf.float32)
        return (tf.cast(self.generator_ema([noise, self._one_hot(labels)]), tf.float32) + 1.0) / 2.0

    def sample(self, labels, seed):
        n = tf.shape(labels)[0]
        noise = tf.random.stateless_normal(tf.stack([n, self.config.noise_dim]),
                                           seed=tf.stack([tf.cast(seed, tf.int32), 0]))
        return self.generate(noise, labels)

    def signatures(self):
        c = self.config
        labels = sig.labels(c.num_classes)
        return [
            sig.Signature("generate", lambda noise, labels: {"images": self.generate(noise, labels)},
                          (sig.noise("noise", (c.noise_dim,)), labels), tflite=True),
            sig.Signature("sample", lambda labels, seed: {"images": self.sample(labels, seed)}, (labels, sig.seed())),
        ]

    def sample_numpy(self, labels, seed=0, batch=500):
        sample = self.graph("sample", self.sample)
        labels = np.asarray(labels, np.int32)
        return np.concatenate([sample(tf.constant(labels[i:i + batch]), tf.constant(seed + i)).numpy()
                               for i in range(0, len(labels), batch)])

    def extra_pictures(self, images, labels):
        c = self.config
        steps = 10
        noise = tf.random.stateless_normal([c.num_classes, c.noise_dim], seed=[1, 0])
        rows = []
        for a in range(c.num_classes):  # class a → class a+1, same noise along the row
            b = (a + 1) % c.num_classes
            t = np.linspace(0, 1, steps)[:, None]
            y = (1 - t) * np.eye(c.num_classes)[a] + t * np.eye(c.num_classes)[b]
            z = tf.repeat(noise[a:a + 1], steps, axis=0)
            rows.append((self.generator_ema([z, tf.constant(y, tf.float32)]).numpy() + 1) / 2)
        return {"class_interpolation.png": grid(np.concatenate(rows), rows=c.num_classes)}


class DiscriminatorWatch(keras.callbacks.Callback):
    """Warns when the discriminator wins outright (≥ 99% right on real and fake) for
    ``patience`` epochs in a row: the generator then gets little gradient (collapse)."""

    def __init__(self, patience=3, threshold=0.99):
        super().__init__()
        self.patience, self.threshold, self.streak = patience, threshold, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        wins = (logs.get("d_real_accuracy", 0) >= self.threshold and logs.get("d_fake_accuracy", 0) >= self.threshold)
        self.streak = self.streak + 1 if wins else 0
        if self.streak >= self.patience:
            print(f"\nzoo: warning: the discriminator has been right on ≥{self.threshold:.0%} of real and fake "
                  f"images for {self.streak} epochs; the generator may have collapsed or stopped learning "
                  "(try --loss hinge, a lower --d-learning-rate, or an earlier checkpoint)")
