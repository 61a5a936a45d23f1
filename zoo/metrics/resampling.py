"""What a bootstrap's replicates and FID∞'s subsets share, found once: each resample of the
generated features (rows by index, repeats allowed) is then a small computation instead of a
metric computed from scratch (bench/results/evaluation_speed.json)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError
from zoo.metrics import core


class ResampledFrechet:
    """FID of fixed features ``a`` against resamples of ``b`` (rows picked by index, repeats
    allowed): a bootstrap's replicates and FID∞'s subsets, dozens per evaluation.

    With A = a − ā and B = b − b̄ centred, one n_b × n_b matrix K = B Aᵀ A Bᵀ is made once. A
    resample of u distinct rows, row j taken w_j times (n in all), has Σ_b = X_bᵀ W X_b/(n − 1),
    X_b its rows less their mean; the non-zero eigenvalues of Σa Σb are those of the u × u matrix
    W^½ X_b AᵀA X_bᵀ W^½/((n_a − 1)(n − 1)), and X_b AᵀA X_bᵀ is K's u × u block centred with
    the weights: one small symmetric eigenvalue solve per resample, no product with the features
    (1,000 × 1,024: 30 replicates and 24 subsets 2.5 → 0.8 s, bench/results/evaluation_speed.json).
    Only for n_b < width, where ``core.frechet_distance`` itself works from the samples."""

    def __init__(self, features_a, features_b):
        a, b = core.as_features(features_a, "features_a"), core.as_features(features_b, "features_b")
        core.same_width(a, b)
        core.need_samples(a, 2, "features_a", "a covariance")
        self.mean_a = a.mean(axis=0)
        centred_a = a - self.mean_a
        self.scale_a = len(a) - 1
        self.trace_a = float(np.sum(centred_a * centred_a)) / self.scale_a
        self.shift = b.mean(axis=0)
        self.b0 = b - self.shift  # any shift of b cancels in B; this one keeps K's entries small
        cross = centred_a @ self.b0.T  # [n_a, n_b]
        self.gram = cross.T @ cross
        self.squares = np.einsum("ij,ij->i", self.b0, self.b0)

    def __call__(self, index):
        counts = np.bincount(np.asarray(index), minlength=len(self.b0))
        rows = np.flatnonzero(counts)
        w, n = counts[rows].astype(np.float64), len(index)
        if n < 2:
            raise ZooError(f"a resample of {n} rows has no covariance; it needs at least 2")
        mean_b0 = w @ self.b0[rows] / n
        trace_b = (w @ self.squares[rows] - n * mean_b0 @ mean_b0) / (n - 1)
        block = self.gram[np.ix_(rows, rows)]
        k = block @ w / n
        centred = block - k[:, None] - k[None, :] + (w @ k) / n
        root_w = np.sqrt(w)
        eig = np.linalg.eigvalsh(centred * root_w[:, None] * root_w[None, :] / (self.scale_a * (n - 1)))
        diff = self.mean_a - (self.shift + mean_b0)
        value = diff @ diff + self.trace_a + trace_b - 2 * np.sum(np.sqrt(np.clip(eig, 0, None)))
        return float(max(value, 0.0))


class ResampledNeighbourhoods:
    """``core.neighbourhood_metrics`` of resamples of the generated features (rows by index, repeats
    allowed), the real features and every ball fixed: which generated point lies in which real
    point's balls and which real point in which generated point's ball, found once (two
    n_fake × n_real boolean matrices); a resample is then a few lookups (30 replicates of
    1,000 × 1,024 features 0.34 → 0.04 s, bench/results/evaluation_speed.json). For up to
    ``LOOKUP_LIMIT`` pairs; the bootstrap computes larger ones replicate by replicate."""

    LOOKUP_LIMIT = 4096 ** 2

    def __init__(self, real_features, fake_features, radii, k_dc=5):
        real = core.as_features(real_features, "real_features", np.float32)
        fake = core.as_features(fake_features, "fake_features", np.float32)
        core.same_width(real, fake, ("real_features", "fake_features"))
        real_r3, real_r5, fake_r3 = (tf.constant(np.asarray(r, np.float32)) for r in radii)
        rt = tf.constant(real)
        real_sq = tf.reduce_sum(tf.square(rt), axis=1)
        parts = [[v.numpy() for v in core.balls_block(tf.constant(fake[i:i + core.BLOCK]), rt, real_sq, real_r3,
                                                      real_r5, fake_r3[i:i + core.BLOCK])]
                 for i in range(0, len(fake), core.BLOCK)]
        self.in_real_ball, self.density_counts, self.real_in_ball, self.in_real_r5 = (
            np.concatenate(p) for p in zip(*parts))
        self.k_dc = k_dc

    def __call__(self, index):
        index = np.asarray(index)
        drawn = np.unique(index)
        return {
            "precision": float(np.mean(self.in_real_ball[index])),
            "recall": float(np.mean(self.real_in_ball[drawn].any(axis=0))),
            "density": float(np.sum(self.density_counts[index]) / (self.k_dc * len(index))),
            "coverage": float(np.mean(self.in_real_r5[drawn].any(axis=0))),
        }
