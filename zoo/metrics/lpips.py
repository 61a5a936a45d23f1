"""LPIPS (Zhang et al. 2018): a learned perceptual distance between image pairs.

For each backbone layer l: unit-normalise the activations over channels at every pixel,
square the difference, weight each channel by w_l (non-negative), average over pixels and
sum over channels; then sum over layers.

- ``LPIPS.vgg16(...)``: the standard variant, VGG16 conv1_2…conv5_3 with the published
  linear weights, loaded from local files. The published weights were calibrated on
  torchvision's VGG16; Keras' VGG16 (converted from the original Caffe model) is a different
  set of ImageNet weights, so values are close to, not identical with, the lpips package.
- ``LPIPS.zoo_classifier()``: offline, on the zoo MNIST classifier's convolutions with unit
  weights (the paper's uncalibrated "baseline" form). Comparable only with itself.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError
from zoo.metrics.extractors import check_images

VGG_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
VGG_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


class LPIPS:
    def __init__(self, feature_maps, weights=None, name="lpips", preprocess=None):
        """``feature_maps``: images → list of [N, H, W, C] activations; ``weights``: one
        non-negative vector per layer (None: all ones)."""
        self.feature_maps = feature_maps
        self.weights = None if weights is None else [np.asarray(w, np.float32).reshape(-1) for w in weights]
        if self.weights is not None and any((w < 0).any() for w in self.weights):
            raise ZooError("LPIPS linear weights must be non-negative")
        self.name = name
        self.preprocess = preprocess or (lambda x: x)
        self._pairwise = tf.function(self._distance)

    def _distance(self, a, b):
        maps_a = self.feature_maps(self.preprocess(a))
        maps_b = self.feature_maps(self.preprocess(b))
        total = 0.0
        for i, (fa, fb) in enumerate(zip(maps_a, maps_b)):
            fa = fa / (tf.sqrt(tf.reduce_sum(tf.square(fa), -1, keepdims=True)) + 1e-10)
            fb = fb / (tf.sqrt(tf.reduce_sum(tf.square(fb), -1, keepdims=True)) + 1e-10)
            sq = tf.square(fa - fb)
            if self.weights is not None:
                if self.weights[i].shape[0] != sq.shape[-1]:
                    raise ZooError(f"LPIPS layer {i} has {sq.shape[-1]} channels but {self.weights[i].shape[0]} weights")
                sq = sq * self.weights[i]
            total += tf.reduce_mean(tf.reduce_sum(sq, -1), axis=[1, 2])
        return total

    def __call__(self, images_a, images_b, batch_size=100):
        """Per-pair distances, float64 [N]."""
        a, b = check_images(images_a, "images_a"), check_images(images_b, "images_b")
        if a.shape != b.shape:
            raise ZooError(f"LPIPS compares pairs: images_a {a.shape} and images_b {b.shape} differ in shape")
        return np.concatenate([self._pairwise(tf.constant(a[i:i + batch_size]), tf.constant(b[i:i + batch_size])).numpy()
                               for i in range(0, len(a), batch_size)]).astype(np.float64)

    @classmethod
    def zoo_classifier(cls):
        from zoo.metrics.extractors import zoo_classifier

        maps = zoo_classifier().feature_maps
        return cls(lambda x: maps(x), None, name="lpips_zoo_mnist_classifier")

    @classmethod
    def vgg16(cls, linear_weights, vgg_weights="auto"):
        """``linear_weights``: an .npz with arrays lin0…lin4 (64, 128, 256, 512, 512 values),
        converted from the lpips package's ``weights/v0.1/vgg.pth``:

            w = torch.load("vgg.pth"); np.savez("lpips_vgg.npz", **{f"lin{i}":
                w[f"lin{i}.model.1.weight"].numpy().reshape(-1) for i in range(5)})
        """
        import keras

        if vgg_weights == "auto":
            vgg_weights = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models", VGG_FILE)
        for path, what in ((vgg_weights, "VGG16 ImageNet weights"), (linear_weights, "LPIPS linear weights")):
            if path is not None and not os.path.exists(path):
                raise ZooError(f"{what} not found at {path}; see zoo.metrics.LPIPS.vgg16 for how to get them")
        with np.load(linear_weights) as f:
            missing = [f"lin{i}" for i in range(5) if f"lin{i}" not in f]
            if missing:
                raise ZooError(f"{linear_weights} lacks {missing}; expected arrays lin0 … lin4")
            weights = [f[f"lin{i}"] for i in range(5)]
        vgg = keras.applications.VGG16(include_top=False, weights=vgg_weights)
        maps = keras.Model(vgg.input, [vgg.get_layer(n).output for n in VGG_LAYERS])

        def preprocess(x):
            if x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            # Keras' VGG16 takes Caffe-style inputs (BGR, 0..255, minus the ImageNet mean).
            return keras.applications.vgg16.preprocess_input(x * 255.0)

        return cls(lambda x: maps(x), weights, name="lpips_vgg16", preprocess=preprocess)


def lpips_distance(images_a, images_b, lpips=None):
    """Mean LPIPS over image pairs (default: the offline zoo-classifier variant)."""
    return float(np.mean((lpips or LPIPS.zoo_classifier())(images_a, images_b)))


def lpips_diversity(images, pairs=1000, seed=0, lpips=None):
    """Mean LPIPS between random pairs of distinct samples: higher = more diverse."""
    images = check_images(images)
    if len(images) < 2:
        raise ZooError(f"diversity needs at least 2 images; got {len(images)}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(images), pairs)
    j = (i + rng.integers(1, len(images), pairs)) % len(images)  # never the same image
    return lpips_distance(images[i], images[j], lpips)
