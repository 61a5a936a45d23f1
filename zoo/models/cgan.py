"""Class-conditional GAN, p(x | y).

Generator: DCGAN-style transposed convolutions with class-conditional GroupNorm.
Discriminator: spectrally normalised convolutions with a projection head. Hinge loss (or the
non-saturating loss), Adam with β₁ = 0, and an exponential moving average of the generator
weights (kept by the generator's optimizer) that evaluation and export use.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo import ZooError, distribute, nets
from zoo.export import Input, Signature
from zoo.images import grid
from zoo.models.base import EMAWarmupAdam, ZooModel, check_positive, copy_ema_weights

LOSSES = ("hinge", "nonsaturating")


@dataclasses.dataclass
class CGANConfig:
    image_shape: tuple = (28, 28, 1)
    num_classes: int = 10
    noise_dim: int = 64
    g_filters: tuple = (128, 64, 32)
    d_filters: tuple = (64, 128, 128)
    loss: str = "hinge"
    ema_decay: float = 0.999
    d_learning_rate: float = 2e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    seed: int = 0

    def __post_init__(self):
        self.image_shape, self.g_filters, self.d_filters = (
            tuple(self.image_shape), tuple(self.g_filters), tuple(self.d_filters))
        check_positive("num_classes", self.num_classes)
        check_positive("noise_dim", self.noise_dim)
        if self.loss not in LOSSES:
            raise ZooError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0 <= self.ema_decay < 1:
            raise ZooError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


def discriminator_loss(kind, real_logits, fake_logits):
    """Per-example discriminator loss."""
    if kind == "hinge":
        return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
    return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


def generator_loss(kind, fake_logits):
    """Per-example generator loss."""
    return -fake_logits if kind == "hinge" else tf.nn.softplus(-fake_logits)


class CGAN(ZooModel):
    Config = CGANConfig
    tracked = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")
    conditional = True

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.generator = nets.conditional_generator(c.image_shape, c.noise_dim, c.num_classes, c.g_filters)
        self.discriminator = nets.projection_discriminator(c.image_shape, c.num_classes, c.d_filters)
        self.generator_ema = nets.conditional_generator(c.image_shape, c.noise_dim, c.num_classes, c.g_filters,
                                                        name="generator_ema")
        self.generator_ema.trainable = False
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True  # the sub-networks are functional models, built on construction

    # Optimizers ------------------------------------------------------------------------
    def compile_default(self, learning_rate):
        c = self.config
        g = EMAWarmupAdam(learning_rate, c.ema_decay, beta_1=c.beta_1, beta_2=c.beta_2)
        d = keras.optimizers.Adam(c.d_learning_rate, beta_1=c.beta_1, beta_2=c.beta_2)
        self.compile(optimizer=g)  # wraps g in LossScaleOptimizer under mixed_float16
        if self.dtype_policy.name == "mixed_float16":
            d = keras.optimizers.LossScaleOptimizer(d)
        self.d_optimizer = d

    @property
    def all_optimizers(self):
        return [self.optimizer, self.d_optimizer]

    def build_optimizers(self):
        if not self.optimizer.built:
            self.optimizer.build(self.generator.trainable_variables)
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.discriminator.trainable_variables)

    # Training --------------------------------------------------------------------------
    def _one_hot(self, labels):
        return tf.one_hot(tf.cast(labels, tf.int32), self.config.num_classes)

    def draw_noise(self, images, stream):
        """Noise for a batch; ``stream`` tells the discriminator's step (0) from the
        generator's (1). Fresh per call and per replica."""
        return tf.random.stateless_normal([tf.shape(images)[0], self.config.noise_dim],
                                          seed=distribute.replica_seed(self.seed_generator))

    def _test_logits(self, images, labels, training):
        y = self._one_hot(labels)
        fake = self.generator([self.draw_noise(images, 0), y], training=training)
        real_logits = tf.cast(self.discriminator([images * 2.0 - 1.0, y], training=training), tf.float32)
        fake_logits = tf.cast(self.discriminator([fake, y], training=training), tf.float32)
        return real_logits, fake_logits

    def train_step(self, data):
        images, labels = data
        kind = self.config.loss
        y = self._one_hot(labels)
        # Discriminator step.
        with tf.GradientTape() as tape:
            fake = self.generator([self.draw_noise(images, 0), y], training=True)
            real_logits = tf.cast(self.discriminator([images * 2.0 - 1.0, y], training=True), tf.float32)
            fake_logits = tf.cast(self.discriminator([fake, y], training=True), tf.float32)
            d_per_example = discriminator_loss(kind, real_logits, fake_logits)
            d_scaled = self.d_optimizer.scale_loss(distribute.average_loss(d_per_example))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(d_scaled, d_vars), d_vars)
        # Generator step, with fresh noise.
        with tf.GradientTape() as tape:
            fake = self.generator([self.draw_noise(images, 1), y], training=True)
            g_logits = tf.cast(self.discriminator([fake, y], training=True), tf.float32)
            g_per_example = generator_loss(kind, g_logits)
            g_scaled = self.optimizer.scale_loss(distribute.average_loss(g_per_example))
        g_vars = self.generator.trainable_variables
        self.optimizer.apply(tape.gradient(g_scaled, g_vars), g_vars)
        return self.update_trackers(
            d_loss=d_per_example, g_loss=g_per_example,
            d_real_accuracy=tf.cast(real_logits > 0, tf.float32), d_fake_accuracy=tf.cast(fake_logits < 0, tf.float32))

    def test_step(self, data):
        images, labels = data
        real_logits, fake_logits = self._test_logits(images, labels, training=False)
        return self.update_trackers(
            d_loss=discriminator_loss(self.config.loss, real_logits, fake_logits),
            g_loss=generator_loss(self.config.loss, fake_logits),
            d_real_accuracy=tf.cast(real_logits > 0, tf.float32), d_fake_accuracy=tf.cast(fake_logits < 0, tf.float32))

    def callbacks(self):
        return [DiscriminatorWatch()]

    # EMA and inference -----------------------------------------------------------------
    def sync_ema(self):
        """Copy the optimizer's moving averages of the generator weights into generator_ema."""
        copy_ema_weights(self.optimizer, self.generator, self.generator_ema)

    def generate(self, noise, labels):
        """Images in [0, 1] from the EMA generator."""
        return (tf.cast(self.generator_ema([noise, self._one_hot(labels)]), tf.float32) + 1.0) / 2.0

    def sample(self, labels, seed):
        n = tf.shape(labels)[0]
        noise = tf.random.stateless_normal(tf.stack([n, self.config.noise_dim]),
                                           seed=tf.stack([tf.cast(seed, tf.int32), 0]))
        return self.generate(noise, labels)

    def signatures(self):
        self.sync_ema()
        c = self.config
        noise = Input("noise", "noise", (c.noise_dim,))
        labels = Input("labels", "labels", (), high=c.num_classes)
        return [
            Signature("generate", lambda noise, labels: {"images": self.generate(noise, labels)},
                      (noise, labels), tflite=True),
            Signature("sample", lambda labels, seed: {"images": self.sample(labels, seed)},
                      (labels, Input("seed", "seed"))),
        ]

    def evaluation_samples(self, num, labels=None, seed=0, batch=500):
        self.sync_ema()
        return self.conditional_samples(self.sample, num, labels, seed, batch)

    def evaluate_arrays(self, images, labels, train=None, cas_epochs=10):
        from zoo.metrics.cas import generated_cas

        return generated_cas(self, images, labels, train, cas_epochs)

    def preview(self):
        self.sync_ema()
        c = self.config
        labels = np.repeat(np.arange(c.num_classes), 8)
        return grid(self.sample(tf.constant(labels, tf.int32), tf.constant(0)).numpy(), rows=c.num_classes)

    def pictures(self, images, labels):
        self.sync_ema()
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
        return {"samples.png": self.preview(),
                "class_interpolation.png": grid(np.concatenate(rows), rows=c.num_classes)}


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
                  "(try --loss hinge, a lower discriminator learning rate, or an earlier checkpoint)")
