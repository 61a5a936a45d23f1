"""Image corruptions for denoising autoencoders and denoising evaluation.

Every function is stateless: the same ``draws`` (``distribute.Draws``: a seed, and this
replica's rows of the global batch) give the same corruption, so training takes fresh draws per
step and evaluation uses fixed seeds (``Draws(seed)``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.core.config import ConfigError, in_range, one_of

KINDS = ("gaussian", "salt_pepper", "mask_pixels", "mask_patches")
# The level each kind is evaluated at (σ for gaussian, a rate for the others).
EVALUATION_LEVELS = {"gaussian": 0.3, "salt_pepper": 0.2, "mask_pixels": 0.3, "mask_patches": 0.25}

KIND = one_of(*KINDS)
GAUSSIAN_SIGMA = in_range(0, 10)  # σ of gaussian noise
RATE = in_range(0, 1)  # the share of pixels the other kinds corrupt


def check(kind, level, field="noise_level"):
    """A level that suits the kind: σ in [0, 10] for gaussian, a rate in [0, 1] otherwise."""
    KIND("noise", kind)
    (GAUSSIAN_SIGMA if kind == "gaussian" else RATE)(field, level)


def corrupt(images, kind, level, draws, patch_size=4):
    """``images`` float NHWC in [0, 1] → corrupted copy in [0, 1]; ``draws``: a
    ``distribute.Draws``."""
    shape = tf.shape(images)
    if kind == "gaussian":
        return tf.clip_by_value(images + level * draws.normal(shape), 0.0, 1.0)
    if kind == "salt_pepper":
        hit = draws.uniform(shape) < level
        salt = draws.uniform(shape, stream=1) < 0.5
        return tf.where(hit, tf.cast(salt, images.dtype), images)
    if kind == "mask_pixels":
        keep = draws.uniform(shape) >= level
        return images * tf.cast(keep, images.dtype)
    if kind == "mask_patches":
        rows = (shape[1] + patch_size - 1) // patch_size
        cols = (shape[2] + patch_size - 1) // patch_size
        keep = draws.uniform(tf.stack([shape[0], rows, cols, 1])) >= level
        keep = tf.repeat(tf.repeat(keep, patch_size, axis=1), patch_size, axis=2)[:, :shape[1], :shape[2]]
        return images * tf.cast(keep, images.dtype)
    raise ConfigError("noise", kind, KIND.requirement)


def psnr(clean, other):
    """Peak signal-to-noise ratio in dB per image, for pixels in [0, 1]."""
    mse = tf.reduce_mean(tf.square(tf.cast(clean, tf.float64) - tf.cast(other, tf.float64)), axis=[1, 2, 3])
    return 10.0 * tf.math.log(1.0 / tf.maximum(mse, 1e-12)) / tf.math.log(tf.constant(10.0, tf.float64))


# Inpainting masks: 1 = keep the pixel, 0 = fill it in --------------------------------------------
MASKS = ("lower_half", "centre_square", "strokes")


def inpainting_mask(kind, count, image_shape, seed=0):
    """``count`` masks [N, H, W, C] of one kind: the lower half hidden; a centre square of half
    the side hidden; or three random brush strokes (random walks, 3 pixels wide) hidden."""
    h, w, c = image_shape
    masks = np.ones((count, h, w, c), np.float32)
    if kind == "lower_half":
        masks[:, h // 2:] = 0
    elif kind == "centre_square":
        masks[:, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0
    elif kind == "strokes":
        rng = np.random.default_rng(seed)
        for m in masks:
            for _ in range(3):
                y, x = rng.integers(h // 6, h - h // 6), rng.integers(w // 6, w - w // 6)
                angle = rng.uniform(0, 2 * np.pi)
                for _ in range(h):
                    angle += rng.normal(0, 0.4)
                    y = int(np.clip(y + 1.5 * np.sin(angle), 1, h - 2))
                    x = int(np.clip(x + 1.5 * np.cos(angle), 1, w - 2))
                    m[y - 1:y + 2, x - 1:x + 2] = 0
    else:
        raise ConfigError("mask", kind, "must be one of " + ", ".join(MASKS))
    return masks
