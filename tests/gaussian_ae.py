"""A model zoo does not ship, on the declared contract only: codes pulled towards N(0, I), so decoding
noise generates; ``compose`` paints a 7×7 int32 grid of grey levels where a mask is 0."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets
from zoo.core import signature as sig
from zoo.core.config import Config, each, non_negative, positive_int, setting
from zoo.models.base import ZooModel, batched
from zoo.models.capabilities import Generator, Reconstructor

LEVELS = 4  # grey levels of the composed codes: 0 … 3


@dataclasses.dataclass
class GaussianAEConfig(Config):
    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    latent_dim: int = setting(8, "size of the code", positive_int)
    filters: tuple = setting((8, 16), "encoder filters", each(positive_int))
    penalty: float = setting(1.0, "weight of the pull of the codes towards N(0, I)", non_negative)
    seed: int = setting(0, "seed", flag=False)


@keras.saving.register_keras_serializable("zoo_tests")
class GaussianAE(ZooModel, Generator, Reconstructor):
    Config = GaussianAEConfig
    zoo_name = "gaussian_ae"
    tracked = ("loss", "mse")
    run_defaults = {"epochs": 1, "batch_size": 32, "learning_rate": 3e-3}

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.encoder = nets.conv_encoder(c.image_shape, c.filters, 32, c.latent_dim)
        self.decoder = nets.conv_decoder(c.image_shape, c.latent_dim, tuple(reversed(c.filters)), 32)
        self.built = True

    def decode(self, z):
        return tf.sigmoid(tf.cast(self.decoder(z), tf.float32))

    def objective(self, images, training=False):
        z = tf.cast(self.encoder(images, training=training), tf.float32)
        mse = tf.reduce_mean(tf.square(self.decode(z) - images), axis=[1, 2, 3])
        pull = tf.reduce_mean(tf.square(z), axis=1) - 1.0  # per code: its second moment, towards 1
        return {"loss": mse + self.config.penalty * tf.square(pull), "mse": mse}

    def train_step(self, data):
        return self.update_trackers(**self.minimize(lambda: self.objective(data[0], training=True)))

    def test_step(self, data):
        return self.update_trackers(**self.objective(data[0]))

    def compose(self, codes, mask, latent):
        painted = tf.image.resize(tf.cast(codes, tf.float32)[..., None] / (LEVELS - 1), self.config.image_shape[:2],
                                  method="nearest")
        return mask * self.decode(latent) + (1.0 - mask) * painted

    def signatures(self):
        c = self.config
        codes = sig.Input("codes", "int32", (7, 7), minimum=0, maximum=LEVELS - 1, role="codes")
        latent = sig.noise("latent", (c.latent_dim,))
        return [
            sig.Signature("decode", lambda latent: {"images": self.decode(latent)}, (latent,), tflite=True),
            sig.Signature("encode", lambda images: {"latent": self.encoder(images)}, (sig.images(c.image_shape),)),
            sig.Signature("compose", lambda codes, mask, latent: {"images": self.compose(codes, mask, latent)},
                          (codes, sig.mask(c.image_shape), latent), tflite=True),
        ]

    def sample_numpy(self, num, seed=0):
        return self.decode(tf.random.stateless_normal([num, self.config.latent_dim], [seed, 0])).numpy()

    def encode_numpy(self, images):
        return batched(lambda x: self.encoder(x), images)

    def decode_numpy(self, codes):
        return batched(self.decode, np.asarray(codes, np.float32))
