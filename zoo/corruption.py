"""Image corruptions for denoising autoencoders and denoising evaluation.

Every function is stateless: the same ``seed`` (a shape-[2] int32 tensor) gives the same
corruption, so training draws a fresh seed per step and per replica
(``distribute.replica_seed``) and evaluation uses fixed seeds.
"""

from __future__ import annotations

import tensorflow as tf

from zoo import ZooError

KINDS = ("gaussian", "salt_pepper", "mask_pixels", "mask_patches")
# The level each kind is evaluated at (σ for gaussian, a rate for the others).
EVALUATION_LEVELS = {"gaussian": 0.3, "salt_pepper": 0.2, "mask_pixels": 0.3, "mask_patches": 0.25}


def check(kind, level, patch_size=4):
    if kind not in KINDS:
        raise ZooError(f"unknown noise {kind!r}; choose from {', '.join(KINDS)}")
    if kind == "gaussian":
        if not 0 <= level <= 10:
            raise ZooError(f"gaussian noise σ must be in [0, 10], got {level}")
    elif not 0 <= level <= 1:
        raise ZooError(f"{kind} noise rate must be in [0, 1], got {level}")
    if kind == "mask_patches" and patch_size < 1:
        raise ZooError(f"patch size must be a positive integer, got {patch_size}")


def corrupt(images, kind, level, seed, patch_size=4):
    """``images`` float NHWC in [0, 1] → corrupted copy in [0, 1]."""
    shape = tf.shape(images)
    if kind == "gaussian":
        return tf.clip_by_value(images + level * tf.random.stateless_normal(shape, seed), 0.0, 1.0)
    if kind == "salt_pepper":
        hit = tf.random.stateless_uniform(shape, seed) < level
        salt = tf.random.stateless_uniform(shape, tf.random.experimental.stateless_fold_in(seed, 1)) < 0.5
        return tf.where(hit, tf.cast(salt, images.dtype), images)
    if kind == "mask_pixels":
        keep = tf.random.stateless_uniform(shape, seed) >= level
        return images * tf.cast(keep, images.dtype)
    if kind == "mask_patches":
        rows = (shape[1] + patch_size - 1) // patch_size
        cols = (shape[2] + patch_size - 1) // patch_size
        keep = tf.random.stateless_uniform(tf.stack([shape[0], rows, cols, 1]), seed) >= level
        keep = tf.repeat(tf.repeat(keep, patch_size, axis=1), patch_size, axis=2)[:, :shape[1], :shape[2]]
        return images * tf.cast(keep, images.dtype)
    raise ZooError(f"unknown noise {kind!r}; choose from {', '.join(KINDS)}")


def psnr(clean, other):
    """Peak signal-to-noise ratio in dB per image, for pixels in [0, 1]."""
    mse = tf.reduce_mean(tf.square(tf.cast(clean, tf.float64) - tf.cast(other, tf.float64)), axis=[1, 2, 3])
    return 10.0 * tf.math.log(1.0 / tf.maximum(mse, 1e-12)) / tf.math.log(tf.constant(10.0, tf.float64))
