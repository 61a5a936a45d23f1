"""Variational autoencoder (Kingma & Welling 2014) with Bernoulli pixel likelihood.

encoder(x) → (mean, log_var) of q(z|x); z = mean + σ·ε; decoder(z) → Bernoulli logits.
Objective: ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)); training minimises
reconstruction + β·KL. All numbers are nats per image.

Samplers: the N(0, I) prior, and a Gaussian mixture fitted over the codes of the training
images after training (``zoo.models.codes``), as fitted or with its components widened
(``MIXTURE_SPREADS``); the recipe uses the best (``zoo.choices.choose_sampler``) and
evaluation measures each.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import latent, nets
from zoo.core import distribute
from zoo.core import signature as sig
from zoo.core.config import Config, each, non_negative, positive_int, setting
from zoo.core.images import grid
from zoo.models import codes
from zoo.models.base import TINY_RUN, batched
from zoo.models.codes import anomaly_class_setting, check_anomaly_class, max_components_setting

LOG_2PI = math.log(2 * math.pi)
IW_SAMPLES = 100  # K of the importance-weighted bound reported as nll_iw
# The mixture's samplers: each component's standard deviation times the spread. A mixture
# fitted on the mean codes is narrower than the codes the decoder saw in training; the card
# measures each (docs/models/vae.md, "Samplers").
MIXTURE_SPREADS = {"mixture": 1.0, "mixture_wide": 1.25, "mixture_wider": 1.5}
# The KL weight of a VAE trained to detect a class it never sees (--anomaly-class): a weaker pull
# towards N(0, I) keeps the normal classes' codes apart, which the score's latent density reads
# (digit 9's chosen score 0.735 at β = 1, 0.760 at 0.5: docs/models/autoencoders.md). The
# default VAE keeps β = 1: its loss is the ELBO it reports.
ANOMALY_BETA = 0.5


@dataclasses.dataclass
class VAEConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    latent_dim: int = setting(16, "size of the latent space", positive_int)
    beta: float | None = setting(None, "weight of the KL term; unset: 1 (the true ELBO), or "
                                 f"{ANOMALY_BETA} with --anomaly-class", non_negative, type=float)
    filters: tuple = setting((32, 64), "filters of the encoder's stride-2 convolutions (the decoder mirrors them)",
                             each(positive_int))
    hidden: int = setting(256, "units of the dense layer next to the latent space", positive_int)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    anomaly_class: int | None = anomaly_class_setting()
    max_components: int = max_components_setting()
    seed: int = setting(0, "seed of the model's noise", flag=False)

    def validate(self):
        check_anomaly_class(self)
        if self.beta is None:
            self.beta = 1.0 if self.anomaly_class is None else ANOMALY_BETA


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


@keras.saving.register_keras_serializable("zoo")
class VAE(codes.CodeModel):
    Config = VAEConfig
    zoo_name = "vae"
    headline = ("fid", "test_elbo", "nll_iw", "anomaly_auc")
    tracked = ("loss", "reconstruction", "kl", "elbo")
    run_defaults = {"epochs": 30, "batch_size": 64, "learning_rate": 1e-3}
    presets = {"default": {}, "tiny": {"latent_dim": 4, "filters": (4, 8), "hidden": 16, "max_components": 2,
                                       **TINY_RUN}}
    xla_by_default = True  # measured: the XLA step trains ~1,760 images/s on a 2-core CPU

    def __init__(self, config=None, encoder=None, decoder=None, **kwargs):
        """``encoder`` (images → 2·latent_dim: mean, log_var) and ``decoder`` (latent →
        logits) replace the default conv networks when given."""
        super().__init__(config, **kwargs)
        c = self.config
        self.encoder = encoder or nets.conv_encoder(c.image_shape, c.filters, c.hidden, 2 * c.latent_dim)
        self.decoder = decoder or nets.conv_decoder(c.image_shape, c.latent_dim, tuple(reversed(c.filters)), c.hidden)
        self.build_code_parts()
        self.sampler_index = self.add_weight(name="sampler_index", shape=(), initializer="zeros", trainable=False)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.built = True  # the sub-networks are functional models, built on construction

    def call(self, images, training=False):
        mean, _ = self.encode_stats(images, training=training)
        return self.decoder(mean, training=training)

    def encode_stats(self, images, training=False):
        stats = tf.cast(self.encoder(images, training=training), tf.float32)
        mean, log_var = tf.split(stats, 2, axis=-1)
        return mean, log_var

    def draw_noise(self, shape):
        return distribute.Draws.for_replica(self.seed_generator).normal(shape)

    def objective(self, images, training=False):
        """Per-image loss (reconstruction + β·KL) and its parts, with one z per image."""
        mean, log_var = self.encode_stats(images, training=training)
        z = mean + tf.exp(0.5 * log_var) * self.draw_noise(tf.shape(mean))
        logits = tf.cast(self.decoder(z, training=training), tf.float32)
        reconstruction = -bernoulli_log_likelihood(images, logits)
        kl = gaussian_kl(mean, log_var)
        return {"loss": reconstruction + self.config.beta * kl, "reconstruction": reconstruction, "kl": kl,
                "elbo": -(reconstruction + kl)}

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self.update_trackers(**self.minimize(lambda: self.objective(images, training=True)))

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self.update_trackers(**self.objective(images))

    # Inference ------------------------------------------------------------------------
    def decode(self, latent):
        return tf.sigmoid(tf.cast(self.decoder(latent), tf.float32))

    def latent_from(self, choice, noise):
        """A code from uniform ``choice`` and normal ``noise``: the prior's (the noise itself)
        or the mixture's at the spread in use, whichever sampler is in use."""
        return tf.where(self.sampler_index > 0.5, self.codes.sampler.codes(choice, noise), noise)

    def sample(self, num, seed):
        return self.decode(self.latent_from(*latent.random_inputs(num, seed, self.config.latent_dim)))

    def anomaly_parts(self, images, portable=False):
        """Reconstruction MSE of the mean code beyond what normal images of the same ink,
        edges and lit pixels have (``ScoreCombination.reconstruction_excess``); the negative ELBO at the posterior mean
        (−log p(x|μ) + KL, bits: deterministic, no random op); −log density of the mean code
        under the normal classes' mixture; that likelihood minus the image's complexity."""
        mean, log_var = self.encode_stats(images)
        logits = tf.cast(self.decoder(mean), tf.float32)
        likelihood = (-bernoulli_log_likelihood(images, logits) + gaussian_kl(mean, log_var)) / math.log(2.0)
        errors = tf.reduce_mean(tf.square(tf.sigmoid(logits) - images), axis=[1, 2, 3])
        return {"reconstruction_excess": self.codes.score.reconstruction_excess(errors, images),
                "likelihood": likelihood, "latent": self.codes.surprise(mean),
                "complexity": self.codes.complexity_corrected(likelihood, images, portable)}

    @tf.function
    def log_likelihood_iw(self, images, k=IW_SAMPLES, seed=0):
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
        images = sig.images(c.image_shape)

        def encode(images):
            mean, log_var = self.encode_stats(images)
            return {"mean": mean, "log_var": log_var}

        return [
            # the browser page draws samples (generate); its copies hold nothing else
            sig.Signature("decode", lambda latent: {"images": self.decode(latent)},
                          (sig.noise("latent", (c.latent_dim,)),), tflite=True, web=False),
            sig.Signature("encode", encode, (images,)),
            sig.Signature("reconstruct", lambda images: {"images": self.decode(self.encode_stats(images)[0])},
                          (images,)),
            sig.Signature("sample", lambda num, seed: {"images": self.sample(num, seed)},
                          (sig.count(4096), sig.seed())),
            sig.Signature("elbo", lambda images: {"elbo": self.elbo_per_image(images)}, (images,)),
            sig.Signature("anomaly_score", lambda images: {"score": self.anomaly_score(images)}, (images,),
                          tflite=True, lite_fn=lambda images: {"score": self.anomaly_score(images, portable=True)},
                          web=False),
            sig.Signature("generate", lambda choice, noise: {"images": self.decode(self.latent_from(choice, noise))},
                          (sig.uniform_noise("choice", ()), sig.noise("noise", (c.latent_dim,))), tflite=True),
        ]

    # Capabilities -----------------------------------------------------------------------
    def samplers(self):
        return ("prior", *MIXTURE_SPREADS)

    def use_sampler(self, name):
        self.sampler_index.assign(float(name != "prior"))
        self.codes.sampler.spread.assign(MIXTURE_SPREADS.get(name, 1.0))

    def sampler_in_use(self):
        if self.sampler_index.numpy() < 0.5:
            return "prior"
        spread = float(self.codes.sampler.spread.numpy())
        return min(MIXTURE_SPREADS, key=lambda name: abs(MIXTURE_SPREADS[name] - spread))

    def encode_numpy(self, images):
        return batched(lambda x: self.encode_stats(x)[0], images)

    def decode_numpy(self, codes):
        return batched(self.decode, codes.astype(np.float32))

    # Evaluation and pictures ---------------------------------------------------------
    def measure(self, test, train, batch=50):
        images = test[0]
        elbo, nll_iw = [], []
        bounds = self.graph("bounds", lambda x: (self.elbo_per_image(x, samples=IW_SAMPLES), -self.log_likelihood_iw(x)))
        for start in range(0, len(images), batch):
            chunk_elbo, chunk_nll = bounds(tf.constant(images[start:start + batch]))
            elbo.append(chunk_elbo.numpy())
            nll_iw.append(chunk_nll.numpy())
        return {"elbo": float(np.concatenate(elbo).mean()), "nll_iw": float(np.concatenate(nll_iw).mean()),
                "settings": {**getattr(self, "fitted", {}), "iw_samples": IW_SAMPLES, "elbo_samples": IW_SAMPLES}}

    def extra_pictures(self, images, labels):
        pairs = min(8, len(images) // 2)  # a row per pair of test images: 8, fewer in a small split
        mean = self.encode_numpy(images[np.random.default_rng(0).permutation(len(images))[:2 * pairs]])
        path = slerp(mean[0::2], mean[1::2], np.linspace(0, 1, 10)).reshape(-1, self.config.latent_dim)
        return {"interpolation.png": grid(self.decode_numpy(path.astype(np.float32)), rows=pairs)}
