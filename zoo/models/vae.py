"""Variational autoencoder (Kingma & Welling 2014) with Bernoulli pixel likelihood.

encoder(x) → (mean, log_var) of q(z|x); z = mean + σ·ε; decoder(z) → Bernoulli logits.
Objective: ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)); training minimises
reconstruction + β·KL. All numbers are nats per image.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo import distribute, nets
from zoo.export import Input, Signature
from zoo.images import grid
from zoo.models.base import ZooModel, check_positive

LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass
class VAEConfig:
    image_shape: tuple = (28, 28, 1)
    latent_dim: int = 16
    beta: float = 1.0
    filters: tuple = (32, 64)
    hidden: int = 256
    seed: int = 0

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)
        self.filters = tuple(self.filters)
        check_positive("latent_dim", self.latent_dim)
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")


def bernoulli_log_likelihood(images, logits):
    """log p(x|z) summed over pixels, per image: −BCE(x, sigmoid(logits))."""
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    return -tf.reduce_sum(bce, axis=[1, 2, 3])


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) per example."""
    return 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)


def slerp(a, b, t):
    """Spherical interpolation between rows of a and b at fractions t."""
    a_n = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b_n = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(a_n * b_n, -1, keepdims=True), -1, 1))[:, None]
    t = np.asarray(t)[None, :, None]
    so = np.sin(omega)
    safe = np.where(so < 1e-6, 1.0, so)
    mixed = (np.sin((1 - t) * omega) * a[:, None] + np.sin(t * omega) * b[:, None]) / safe
    linear = (1 - t) * a[:, None] + t * b[:, None]
    return np.where(so < 1e-6, linear, mixed)


class VAE(ZooModel):
    Config = VAEConfig
    tracked = ("loss", "reconstruction", "kl", "elbo")

    def __init__(self, config=None, encoder=None, decoder=None, **kwargs):
        """``encoder`` (images → 2·latent_dim: mean, log_var) and ``decoder`` (latent →
        logits) replace the default conv networks when given."""
        super().__init__(config, **kwargs)
        c = self.config
        self.encoder = encoder or nets.conv_encoder(c.image_shape, c.filters, c.hidden, 2 * c.latent_dim)
        self.decoder = decoder or nets.conv_decoder(c.image_shape, c.latent_dim, tuple(reversed(c.filters)), c.hidden)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True  # the sub-networks are functional models, built on construction

    def call(self, images, training=False):
        mean, log_var = self.encode_stats(images, training=training)
        return self.decoder(mean, training=training)

    def encode_stats(self, images, training=False):
        stats = tf.cast(self.encoder(images, training=training), tf.float32)
        mean, log_var = tf.split(stats, 2, axis=-1)
        return mean, log_var

    def draw_noise(self, shape):
        return tf.random.stateless_normal(shape, seed=distribute.replica_seed(self.seed_generator))

    def losses_per_image(self, images, training=False):
        mean, log_var = self.encode_stats(images, training=training)
        z = mean + tf.exp(0.5 * log_var) * self.draw_noise(tf.shape(mean))
        logits = tf.cast(self.decoder(z, training=training), tf.float32)
        reconstruction = -bernoulli_log_likelihood(images, logits)
        kl = gaussian_kl(mean, log_var)
        return reconstruction, kl

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            reconstruction, kl = self.losses_per_image(images, training=True)
            per_image = reconstruction + self.config.beta * kl
            loss = distribute.average_loss(per_image)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self.update_trackers(loss=per_image, reconstruction=reconstruction, kl=kl,
                                    elbo=-(reconstruction + kl))

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        reconstruction, kl = self.losses_per_image(images)
        return self.update_trackers(loss=reconstruction + self.config.beta * kl,
                                    reconstruction=reconstruction, kl=kl, elbo=-(reconstruction + kl))

    # Inference ------------------------------------------------------------------------
    def decode(self, latent):
        return tf.sigmoid(tf.cast(self.decoder(latent), tf.float32))

    def sample(self, num, seed):
        noise = tf.random.stateless_normal(
            tf.stack([num, self.config.latent_dim]), seed=tf.stack([tf.cast(seed, tf.int32), 0]))
        return self.decode(noise)

    @tf.function
    def log_likelihood_iw(self, images, k=100, seed=0):
        """Importance-weighted bound (Burda et al. 2016) on log p(x), per image, K samples."""
        mean, log_var = self.encode_stats(images)
        n, d = tf.shape(mean)[0], self.config.latent_dim
        eps = tf.random.stateless_normal([k, n, d], seed=[seed, 1])
        std = tf.exp(0.5 * log_var)
        z = mean[None] + std[None] * eps
        logits = tf.cast(self.decoder(tf.reshape(z, [k * n, d])), tf.float32)
        tiled = tf.tile(images[None], [k, 1, 1, 1, 1])
        log_px_z = tf.reshape(bernoulli_log_likelihood(tf.reshape(tiled, tf.shape(logits)), logits), [k, n])
        log_pz = -0.5 * tf.reduce_sum(tf.square(z) + LOG_2PI, axis=-1)
        log_qz = -0.5 * tf.reduce_sum(tf.square(eps) + LOG_2PI + log_var[None], axis=-1)
        return tf.reduce_logsumexp(log_px_z + log_pz - log_qz, axis=0) - tf.math.log(tf.cast(k, tf.float32))

    def elbo_per_image(self, images, samples=8):
        """Monte-Carlo ELBO with a fixed seed, so serving answers the same for the same image."""
        mean, log_var = self.encode_stats(images)
        eps = tf.random.stateless_normal(tf.concat([[samples], tf.shape(mean)], 0), seed=[0, 2])
        z = mean[None] + tf.exp(0.5 * log_var)[None] * eps
        logits = tf.cast(self.decoder(tf.reshape(z, [-1, self.config.latent_dim])), tf.float32)
        tiled = tf.reshape(tf.tile(images[None], [samples, 1, 1, 1, 1]), tf.shape(logits))
        log_px_z = tf.reshape(bernoulli_log_likelihood(tiled, logits), [samples, -1])
        return tf.reduce_mean(log_px_z, axis=0) - gaussian_kl(mean, log_var)

    def signatures(self):
        c = self.config
        images = Input("images", "images", c.image_shape)
        latent = Input("latent", "noise", (c.latent_dim,))

        def encode(images):
            mean, log_var = self.encode_stats(images)
            return {"mean": mean, "log_var": log_var}

        return [
            Signature("decode", lambda latent: {"images": self.decode(latent)}, (latent,), tflite=True),
            Signature("encode", encode, (images,)),
            Signature("reconstruct", lambda images: {"images": self.decode(self.encode_stats(images)[0])},
                      (images,)),
            Signature("sample", lambda num, seed: {"images": self.sample(num, seed)},
                      (Input("num", "count", high=4096), Input("seed", "seed"))),
            Signature("elbo", lambda images: {"elbo": self.elbo_per_image(images)}, (images,)),
        ]

    # Evaluation and pictures ---------------------------------------------------------
    def evaluate_arrays(self, images, labels, train=None, k=100, batch=50):
        elbo, nll_iw = [], []
        for start in range(0, len(images), batch):
            chunk = tf.constant(images[start:start + batch])
            elbo.append(self.elbo_per_image(chunk, samples=k).numpy())
            nll_iw.append(-self.log_likelihood_iw(chunk, k=k).numpy())
        elbo, nll_iw = np.concatenate(elbo), np.concatenate(nll_iw)
        recon = self.decode(self.encode_stats(tf.constant(images[:1000]))[0]).numpy()
        return {
            "elbo": float(elbo.mean()),
            "nll_iw": float(nll_iw.mean()),
            "iw_samples": k,
            "reconstruction_mse": float(np.mean((recon - images[:1000]) ** 2)),
        }

    def evaluation_samples(self, num, labels=None, seed=0, batch=500):
        return np.concatenate([self.sample(tf.constant(min(batch, num - i)), tf.constant(seed + i)).numpy()
                               for i in range(0, num, batch)])

    def preview(self):
        return grid(self.sample(64, 0).numpy(), rows=8)

    def pictures(self, images, labels):
        images = images[np.random.default_rng(0).permutation(len(images))]  # mix the classes
        originals = images[:64]
        recon = self.decode(self.encode_stats(tf.constant(originals))[0]).numpy()
        pairs = np.concatenate([np.stack([originals[i:i + 16], recon[i:i + 16]]) for i in range(0, 64, 16)])
        mean, _ = self.encode_stats(tf.constant(images[:16]))
        a, b = mean.numpy()[0::2], mean.numpy()[1::2]
        path = slerp(a, b, np.linspace(0, 1, 10)).reshape(-1, self.config.latent_dim)
        return {
            "samples.png": self.preview(),
            "reconstructions.png": grid(pairs.reshape(-1, *images.shape[1:]), rows=8),
            "interpolation.png": grid(self.decode(tf.constant(path, tf.float32)).numpy(), rows=8),
        }
