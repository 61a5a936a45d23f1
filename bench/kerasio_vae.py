"""The classic keras-io VAE (keras.io/examples/generative/vae) as a zoo VAE.

Same networks as the example — Conv2D 32 → Conv2D 64 (stride 2) → Dense 16 → latent 2;
Dense 7·7·64 → Conv2DTranspose 64 → 32 → 1 — and the same objective (summed pixel BCE +
KL). The decoder's last layer returns logits (the example applies a sigmoid and then BCE:
the same likelihood, computed more stably). Trained by the same loop as zoo's VAE.
"""

import keras
from keras import layers

from zoo.models.vae import VAE, VAEConfig


def kerasio_vae(seed=0):
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    encoder = keras.Model(inputs, layers.Dense(4)(x), name="encoder")  # mean, log_var
    latent = keras.Input((2,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder = keras.Model(latent, layers.Conv2DTranspose(1, 3, padding="same")(x), name="decoder")
    return VAE(VAEConfig(latent_dim=2, seed=seed), encoder=encoder, decoder=decoder, name="kerasio_vae")
