"""Autoencoder (AE) and denoising autoencoder (DAE).

One model: conv encoder → low-dimensional latent → conv decoder, trained to reconstruct
its input (MSE by default, or Bernoulli cross-entropy). With ``noise`` set it is a DAE:
inputs are corrupted on the fly in ``train_step`` (fresh per step and per replica,
reproducible from the seed), the targets stay clean, and inference never corrupts.

Uses measured in ``evaluate_arrays``: reconstruction error, denoising PSNR, anomaly
detection by reconstruction error (``anomaly_class``: trained without that digit), and the
latent code as features (linear-probe accuracy against raw pixels).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo import ZooError, corruption, distribute, nets
from zoo.export import Input, Signature
from zoo.images import grid
from zoo.models.base import ZooModel, check_positive

VALIDATION_EVERY = 10  # with anomaly_class: every 10th normal training image is held out


@dataclasses.dataclass
class AutoencoderConfig:
    image_shape: tuple = (28, 28, 1)
    latent_dim: int = 32
    filters: tuple = (32, 64)
    hidden: int = 256
    loss: str = "mse"  # or "bce"
    noise: str | None = None  # None: plain AE; else one of corruption.KINDS
    noise_level: float = 0.3
    patch_size: int = 4
    anomaly_class: int | None = None
    num_classes: int = 10
    seed: int = 0

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)
        self.filters = tuple(self.filters)
        check_positive("latent_dim", self.latent_dim)
        if self.loss not in ("mse", "bce"):
            raise ZooError(f"loss must be 'mse' or 'bce', got {self.loss!r}")
        if self.noise is not None:
            corruption.check(self.noise, self.noise_level, self.patch_size)
        if self.anomaly_class is not None and not 0 <= self.anomaly_class < self.num_classes:
            raise ZooError(f"--anomaly-class must be in 0..{self.num_classes - 1}, got {self.anomaly_class}")


class Autoencoder(ZooModel):
    Config = AutoencoderConfig
    tracked = ("loss", "mse")

    def __init__(self, config=None, **kwargs):
        config = config if not isinstance(config, dict) else AutoencoderConfig(**config)
        kwargs.setdefault("name", "ae" if (config is None or config.noise is None) else "dae")
        super().__init__(config, **kwargs)
        c = self.config
        self.encoder = nets.conv_encoder(c.image_shape, c.filters, c.hidden, c.latent_dim)
        self.decoder = nets.conv_decoder(c.image_shape, c.latent_dim, tuple(reversed(c.filters)), c.hidden)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True  # the sub-networks are functional models, built on construction

    # Networks --------------------------------------------------------------------------
    def encode(self, images, training=False):
        return tf.cast(self.encoder(images, training=training), tf.float32)

    def decode_logits(self, latent, training=False):
        return tf.cast(self.decoder(latent, training=training), tf.float32)

    def decode(self, latent):
        return tf.sigmoid(self.decode_logits(latent))

    def reconstruct(self, images):
        return self.decode(self.encode(images))

    def call(self, images, training=False):
        return self.decode_logits(self.encode(images, training=training), training=training)

    def anomaly_score(self, images):
        """Per-image reconstruction MSE."""
        return tf.reduce_mean(tf.square(self.reconstruct(images) - images), axis=[1, 2, 3])

    # Training --------------------------------------------------------------------------
    def corrupt_for_training(self, images):
        c = self.config
        if c.noise is None:
            return images
        return corruption.corrupt(images, c.noise, c.noise_level, distribute.replica_seed(self.seed_generator),
                                  c.patch_size)

    def _objective(self, clean, inputs, training):
        logits = self(inputs, training=training)
        mse = tf.reduce_mean(tf.square(tf.sigmoid(logits) - clean), axis=[1, 2, 3])
        if self.config.loss == "mse":
            return mse, mse
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=clean, logits=logits), axis=[1, 2, 3])
        return bce, mse

    def train_step(self, data):
        clean = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            per_image, mse = self._objective(clean, self.corrupt_for_training(clean), training=True)
            scaled = self.optimizer.scale_loss(distribute.average_loss(per_image))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self.update_trackers(loss=per_image, mse=mse)

    def test_step(self, data):
        clean = data[0] if isinstance(data, (tuple, list)) else data
        per_image, mse = self._objective(clean, clean, training=False)
        return self.update_trackers(loss=per_image, mse=mse)

    def training_selection(self):
        """With ``anomaly_class``: train on the other digits, minus a held-out tenth of them
        (the normal validation data the detection threshold is chosen on)."""
        k = self.config.anomaly_class
        if k is None:
            return None
        return lambda index, label: tf.logical_and(tf.not_equal(label, k), tf.not_equal(index % VALIDATION_EVERY, 0))

    # Export ----------------------------------------------------------------------------
    def signatures(self):
        c = self.config
        images = Input("images", "images", c.image_shape)
        latent = Input("latent", "noise", (c.latent_dim,))
        return [
            Signature("reconstruct", lambda images: {"images": self.reconstruct(images)}, (images,), tflite=True),
            Signature("encode", lambda images: {"latent": self.encode(images)}, (images,)),
            Signature("decode", lambda latent: {"images": self.decode(latent)}, (latent,)),
            Signature("anomaly_score", lambda images: {"score": self.anomaly_score(images)}, (images,), tflite=True),
        ]

    # Evaluation ------------------------------------------------------------------------
    def _batched(self, fn, images, batch=500):
        return np.concatenate([fn(tf.constant(images[i:i + batch])).numpy() for i in range(0, len(images), batch)])

    def denoising(self, images, seed=0):
        """PSNR (dB) of corrupted inputs and of their reconstructions, per noise kind."""
        out = {}
        for i, (kind, level) in enumerate(corruption.EVALUATION_LEVELS.items()):
            noisy = corruption.corrupt(tf.constant(images), kind, level, tf.constant([seed, i]),
                                       self.config.patch_size).numpy()
            denoised = self._batched(self.reconstruct, noisy)
            out[f"psnr_noisy_{kind}"] = float(np.mean(corruption.psnr(images, noisy)))
            out[f"psnr_denoised_{kind}"] = float(np.mean(corruption.psnr(images, denoised)))
        return out

    def evaluate_arrays(self, images, labels, train=None):
        from zoo.metrics import core
        from zoo.metrics.anomaly import anomaly_detection, linear_probe

        k = self.config.anomaly_class
        normal = np.ones(len(labels), bool) if k is None else labels != k
        recon = self._batched(self.reconstruct, images[normal])
        errors = core.reconstruction_errors(images[normal], recon)
        out = {"reconstruction_mse": errors["mse"], "reconstruction_mae": errors["mae"]}
        out.update(self.denoising(images))
        if train is not None:
            train_x, train_y = train
            out.update(linear_probe(self._batched(self.encode, train_x), train_y,
                                    self._batched(self.encode, images), labels, prefix="latent"))
            out.update(linear_probe(train_x.reshape(len(train_x), -1), train_y,
                                    images.reshape(len(images), -1), labels, prefix="pixels"))
            if k is not None:
                held_out = (np.arange(len(train_y)) % VALIDATION_EVERY == 0) & (train_y != k)
                out.update(anomaly_detection(self._batched(self.anomaly_score, images), labels == k,
                                             self._batched(self.anomaly_score, train_x[held_out])))
                out["anomaly_class"] = k
        return out

    def pictures(self, images, labels):
        rng = np.random.default_rng(0)
        images = images[rng.permutation(len(images))[:32]]
        recon = self.reconstruct(tf.constant(images)).numpy()
        pairs = np.concatenate([np.stack([images[i:i + 16], recon[i:i + 16]]) for i in (0, 16)])
        pictures = {"reconstructions.png": grid(pairs.reshape(-1, *images.shape[1:]), rows=4)}
        if self.config.noise is not None:
            kind = self.config.noise
            level = corruption.EVALUATION_LEVELS[kind]
            noisy = corruption.corrupt(tf.constant(images[:16]), kind, level, tf.constant([0, 0]),
                                       self.config.patch_size).numpy()
            rows = np.concatenate([noisy, self.reconstruct(tf.constant(noisy)).numpy(), images[:16]])
            pictures["denoising.png"] = grid(rows, rows=3)
        return pictures

    def preview(self):
        return None
