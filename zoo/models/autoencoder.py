"""Autoencoder (AE) and denoising autoencoder (DAE).

Conv encoder → low-dimensional code → conv decoder, trained to reconstruct its input (MSE by
default, or Bernoulli cross-entropy). The DAE corrupts its inputs on the fly in
``train_step`` (fresh per step, reproducible from the seed), the targets stay clean, and
inference never corrupts. With ``anomaly_class`` a model trains without that class (and
without a held-out tenth of the others, the normal data its detection threshold is set on).

After training (``zoo.models.codes``) a Gaussian mixture is fitted over the codes, so the
autoencoders generate (decode samples of the mixture), and the anomaly score is chosen from
reconstruction error, likelihood, latent density and the complexity-corrected likelihood.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import corruption, nets
from zoo.core import distribute
from zoo.core import signature as sig
from zoo.core.config import Config, each, one_of, positive_int, setting
from zoo.models import codes
from zoo.models.base import TINY_RUN, batched
from zoo.models.capabilities import Denoiser
from zoo.models.codes import anomaly_class_setting, check_anomaly_class, max_components_setting


@dataclasses.dataclass
class AutoencoderConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    latent_dim: int = setting(32, "size of the code", positive_int)
    filters: tuple = setting((32, 64), "filters of the encoder's stride-2 convolutions (the decoder mirrors them)",
                             each(positive_int))
    hidden: int = setting(256, "units of the dense layer next to the code", positive_int)
    loss: str = setting("mse", "reconstruction loss", one_of("mse", "bce"))
    anomaly_class: int | None = anomaly_class_setting()
    max_components: int = max_components_setting()
    seed: int = setting(0, "seed of the model's noise", flag=False)

    def validate(self):
        check_anomaly_class(self)


@dataclasses.dataclass
class DenoisingConfig(AutoencoderConfig):
    noise: str = setting("gaussian", "corruption applied to the inputs in training", corruption.KIND)
    noise_level: float = setting(0.3, "σ for gaussian (0..10); the rate (0..1) for salt_pepper, mask_pixels, "
                                 "mask_patches", type=float)
    patch_size: int = setting(4, "patch side for mask_patches", positive_int)

    def validate(self):
        super().validate()
        corruption.check(self.noise, self.noise_level)


@keras.saving.register_keras_serializable("zoo")
class Autoencoder(codes.CodeModel):
    Config = AutoencoderConfig
    zoo_name = "ae"
    headline = ("fid", "reconstruction_mse", "psnr_denoised_gaussian", "anomaly_auc")
    tracked = ("loss", "mse")
    run_defaults = {"epochs": 20, "batch_size": 64, "learning_rate": 1e-3}
    presets = {"default": {}, "tiny": {"latent_dim": 4, "filters": (4, 8), "hidden": 16, "max_components": 2,
                                       **TINY_RUN}}
    xla_by_default = True

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.encoder = nets.conv_encoder(c.image_shape, c.filters, c.hidden, c.latent_dim)
        self.decoder = nets.conv_decoder(c.image_shape, c.latent_dim, tuple(reversed(c.filters)), c.hidden)
        self.build_code_parts()
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

    def anomaly_parts(self, images, portable=False):
        """The per-image parts an anomaly score is chosen from: reconstruction MSE beyond what
        normal images of the same ink, edges and lit pixels have; the Bernoulli negative
        log-likelihood of the image under its reconstruction (bits); −log density of its code
        under the normal classes' mixture; that likelihood minus the image's complexity
        (``portable``: its TFLite proxy)."""
        code = self.encode(images)
        logits = self.decode_logits(code)
        bce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits), axis=[1, 2, 3])
        likelihood = bce / math.log(2.0)
        errors = tf.reduce_mean(tf.square(tf.sigmoid(logits) - images), axis=[1, 2, 3])
        return {"reconstruction_excess": self.codes.score.reconstruction_excess(errors, images),
                "likelihood": likelihood, "latent": self.codes.surprise(code),
                "complexity": self.codes.complexity_corrected(likelihood, images, portable)}

    # Training --------------------------------------------------------------------------
    def corrupt_for_training(self, images):
        """The training input made from clean images (the plain AE: the images themselves)."""
        return images

    def objective(self, clean, inputs, training=False):
        logits = self(inputs, training=training)
        mse = tf.reduce_mean(tf.square(tf.sigmoid(logits) - clean), axis=[1, 2, 3])
        if self.config.loss == "mse":
            return {"loss": mse, "mse": mse}
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=clean, logits=logits), axis=[1, 2, 3])
        return {"loss": bce, "mse": mse}

    def train_step(self, data):
        clean = data[0] if isinstance(data, (tuple, list)) else data
        return self.update_trackers(**self.minimize(
            lambda: self.objective(clean, self.corrupt_for_training(clean), training=True)))

    def test_step(self, data):
        clean = data[0] if isinstance(data, (tuple, list)) else data
        return self.update_trackers(**self.objective(clean, clean))

    # Export ----------------------------------------------------------------------------
    def signatures(self):
        c = self.config
        images = sig.images(c.image_shape)
        # the browser page draws samples from every autoencoder and denoises with the DAE
        return [
            sig.Signature("reconstruct", lambda images: {"images": self.reconstruct(images)}, (images,), tflite=True,
                          web=isinstance(self, Denoiser)),
            sig.Signature("encode", lambda images: {"latent": self.encode(images)}, (images,)),
            sig.Signature("decode", lambda latent: {"images": self.decode(latent)},
                          (sig.noise("latent", (c.latent_dim,)),)),
            sig.Signature("anomaly_score", lambda images: {"score": self.anomaly_score(images)}, (images,),
                          tflite=True, lite_fn=lambda images: {"score": self.anomaly_score(images, portable=True)},
                          web=False),
            sig.Signature("sample", lambda num, seed: {"images": self.sample(num, seed)},
                          (sig.count(4096), sig.seed())),
            sig.Signature("generate", lambda choice, noise: {"images": self.decode(self.codes.sampler.codes(choice, noise))},
                          (sig.uniform_noise("choice", ()), sig.noise("noise", (c.latent_dim,))), tflite=True),
        ]

    # Capabilities ----------------------------------------------------------------------
    def encode_numpy(self, images):
        return batched(self.encode, images)

    def decode_numpy(self, codes):
        return batched(self.decode, codes.astype(np.float32))

    def sample(self, num, seed):
        """Decoded codes of the mixture, deterministic for a seed."""
        return self.decode(self.codes.sampler.draw(num, seed))

    def samplers(self):
        return ("mixture",)


@keras.saving.register_keras_serializable("zoo")
class DenoisingAutoencoder(Autoencoder, Denoiser):
    """The autoencoder trained on corrupted inputs with clean targets."""

    Config = DenoisingConfig
    zoo_name = "dae"

    def corrupt_for_training(self, images):
        c = self.config
        return corruption.corrupt(images, c.noise, c.noise_level, distribute.Draws.for_replica(self.seed_generator),
                                  c.patch_size)

    def training_corruption(self):
        return self.config.noise, corruption.EVALUATION_LEVELS[self.config.noise]
