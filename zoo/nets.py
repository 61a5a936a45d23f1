"""Shared network building blocks. Each returns a plain Keras model, so it round-trips
through ``get_config`` and can be reused by any task (VAE, AE, GAN, ...)."""

from __future__ import annotations

import keras
from keras import layers

from zoo import ZooError


def _check_downsampling(image_shape, times):
    height, width, _ = image_shape
    factor = 2**times
    if height % factor or width % factor:
        raise ZooError(
            f"images of shape {tuple(image_shape)} cannot be halved {times} times; the conv "
            f"networks need height and width divisible by {factor}"
        )
    return height // factor, width // factor


def conv_encoder(image_shape, filters=(32, 64), hidden=256, outputs=32, name="encoder"):
    """Strided 3×3 convolutions (each halves the image), a dense layer, then ``outputs`` units."""
    _check_downsampling(image_shape, len(filters))
    inputs = keras.Input(tuple(image_shape), name="images")
    x = inputs
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Dense(outputs, dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def conv_decoder(image_shape, inputs_dim, filters=(64, 32), hidden=256, name="decoder"):
    """Mirror of ``conv_encoder``: dense → transposed convolutions → per-pixel logits."""
    height, width = _check_downsampling(image_shape, len(filters))
    inputs = keras.Input((inputs_dim,), name="latent")
    x = inputs
    if hidden:
        x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Dense(height * width * filters[0], activation="relu")(x)
    x = layers.Reshape((height, width, filters[0]))(x)
    for f in filters:
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    logits = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
