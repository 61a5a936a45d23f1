"""Metric math over feature arrays and class probabilities.

Inputs are NumPy arrays or tensors; outputs are Python floats. Statistics that need
precision (means, covariances, matrix square roots) are float64; nearest-neighbour work
runs in TensorFlow in row blocks so memory stays bounded at 50k samples.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError


# Input checks ----------------------------------------------------------------------------
def as_features(x, name="features", dtype=np.float64):
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    if x.ndim != 2:
        raise ZooError(f"{name} must be a 2-D array [samples, features]; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ZooError(f"{name} must be numeric; got dtype {x.dtype}")
    x = x.astype(dtype, copy=False)
    if not np.all(np.isfinite(x)):
        raise ZooError(f"{name} contain NaN or Inf ({int(np.sum(~np.isfinite(x)))} values)")
    return x


def same_width(a, b, names=("features_a", "features_b")):
    if a.shape[1] != b.shape[1]:
        raise ZooError(f"{names[0]} and {names[1]} have different widths: {a.shape[1]} vs {b.shape[1]}")


def need_samples(x, needed, name, why):
    if len(x) < needed:
        raise ZooError(f"{name} has {len(x)} samples; {why} needs at least {needed}")


def check_labels(labels, num_classes, name="labels"):
    labels = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ZooError(f"{name} must be a 1-D integer array; got shape {labels.shape}, dtype {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ZooError(f"{name} must be in [0, {num_classes}); got values in [{labels.min()}, {labels.max()}]")
    return labels


# Fréchet distance ----------------------------------------------------------------------
class GaussianStats:
    """Streaming float64 sums for the mean and covariance of features (no features stored)."""

    def __init__(self, dim=None):
        self.n = 0
        self.total = None if dim is None else np.zeros(dim)
        self.outer = None if dim is None else np.zeros((dim, dim))

    def update(self, features):
        x = as_features(features)
        if self.total is None:
            self.total, self.outer = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
        if x.shape[1] != len(self.total):
            raise ZooError(f"features have width {x.shape[1]}, earlier batches had {len(self.total)}")
        self.n += len(x)
        self.total += x.sum(axis=0)
        self.outer += x.T @ x
        return self

    def mean_cov(self):
        if self.n < 2:
            raise ZooError(f"a covariance needs at least 2 samples; got {self.n}")
        mean = self.total / self.n
        cov = (self.outer - self.n * np.outer(mean, mean)) / (self.n - 1)
        return mean, (cov + cov.T) / 2


def trace_sqrt_product(sigma1, sigma2):
    """tr √(Σ₁ Σ₂) exactly, for symmetric PSD Σ₁, Σ₂ of any rank.

    With any factor Σ₁ = F Fᵀ, Σ₁Σ₂ has the eigenvalues of the symmetric PSD matrix
    Fᵀ Σ₂ F, so the trace of the square root is the sum of the square roots of its
    eigenvalues: a Cholesky factor and one symmetric eigenvalue solve instead of a general
    matrix square root. A singular Σ₁ (fewer samples than dimensions) has no Cholesky
    factor; then F = V √Λ from its eigendecomposition. Eigenvalues that round to slightly
    negative are clipped to 0.
    """
    try:
        factor = np.linalg.cholesky(sigma1)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(sigma1)
        factor = v * np.sqrt(np.clip(w, 0, None))
    middle = factor.T @ sigma2 @ factor
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eig, 0, None))))


def frechet_distance_from_stats(mean1, cov1, mean2, cov2):
    diff = np.asarray(mean1) - np.asarray(mean2)
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt_product(cov1, cov2)
    return float(max(value, 0.0))


def frechet_distance_from_samples(a, b):
    """FID from the samples themselves, for n < d (per-class intra-FID, bootstrap replicates).

    With centred samples X (n × d), Σ = XᵀX/(n−1), and the non-zero eigenvalues of ΣaΣb
    are those of M Mᵀ/((na−1)(nb−1)) with M = Xa Xbᵀ (na × nb): an na × na symmetric
    eigenvalue problem instead of two d × d ones, O(n²d) instead of O(d³).
    """
    xa, xb = a - a.mean(axis=0), b - b.mean(axis=0)
    na, nb = len(a) - 1, len(b) - 1
    m = xa @ xb.T
    eig = np.linalg.eigvalsh(m @ m.T / (na * nb))
    diff = a.mean(axis=0) - b.mean(axis=0)
    value = diff @ diff + np.sum(xa * xa) / na + np.sum(xb * xb) / nb - 2 * np.sum(np.sqrt(np.clip(eig, 0, None)))
    return float(max(value, 0.0))


def frechet_distance(features_a, features_b):
    """FID: ‖μa − μb‖² + tr(Σa + Σb − 2 √(Σa Σb)) between Gaussians fitted to the features."""
    a, b = as_features(features_a, "features_a"), as_features(features_b, "features_b")
    same_width(a, b)
    need_samples(a, 2, "features_a", "a covariance")
    need_samples(b, 2, "features_b", "a covariance")
    if min(len(a), len(b)) < a.shape[1]:
        return frechet_distance_from_samples(a, b) if len(a) <= len(b) else frechet_distance_from_samples(b, a)
    return frechet_distance_from_stats(*GaussianStats().update(a).mean_cov(), *GaussianStats().update(b).mean_cov())


def intra_frechet_distance(real_features, real_labels, fake_features, fake_labels, num_classes):
    """Intra-FID: FID within each class (real class c vs samples conditioned on c)."""
    real, fake = as_features(real_features, "real_features"), as_features(fake_features, "fake_features")
    same_width(real, fake, ("real_features", "fake_features"))
    real_labels = check_labels(real_labels, num_classes, "real_labels")
    fake_labels = check_labels(fake_labels, num_classes, "fake_labels")
    per_class = {}
    for c in range(num_classes):
        r, f = real[real_labels == c], fake[fake_labels == c]
        need_samples(r, 2, f"real class {c}", "a covariance")
        need_samples(f, 2, f"generated class {c}", "a covariance")
        per_class[c] = frechet_distance(r, f)
    return {"per_class": per_class, "mean": float(np.mean(list(per_class.values())))}


# Inception Score -----------------------------------------------------------------------
def as_probabilities(p, name="probabilities"):
    p = as_features(p, name)
    if p.min() < 0 or np.max(np.abs(p.sum(axis=1) - 1)) > 1e-3:
        raise ZooError(f"{name} must be non-negative rows that sum to 1 (apply softmax to logits)")
    return p


def inception_score(probabilities, splits=10):
    """exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean over each split; (mean, std) over splits."""
    p = as_probabilities(probabilities)
    need_samples(p, splits, "probabilities", f"{splits} splits")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# Kernel Inception Distance -------------------------------------------------------------
def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1) ** 3


def _mmd2(kxx, kyy, kxy):
    """Unbiased MMD² from the kernel matrices of one subset of each set."""
    m = len(kxx)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


# Up to this many samples a set, KID's kernels are made once for all pairs and each subset takes
# its blocks (3 × 2,048² float64, 100 MB): 100 subsets of 500 in 1,000 × 1,024 features 1.25 →
# 0.29 s, the same values (bench/results/evaluation_speed.json).
KERNELS_ONCE = 2048


def kid_subset_size(n_a, n_b, preferred=1000):
    """``preferred``, or half of the smaller set when there are fewer than two subsets'
    worth of samples (subsets as large as the whole set would all be equal: std 0)."""
    return min(preferred, max(2, min(n_a, n_b) // 2))


def kernel_distance(features_a, features_b, subsets=100, subset_size=1000, seed=0):
    """KID: unbiased MMD² with kernel (x·y/d + 1)³ over random subsets; (mean, std)."""
    a, b = as_features(features_a, "features_a"), as_features(features_b, "features_b")
    same_width(a, b)
    for x, name in ((a, "features_a"), (b, "features_b")):
        need_samples(x, subset_size, name, f"KID with subset_size={subset_size} (pass a smaller subset_size)")
    if subset_size < 2:
        raise ZooError(f"subset_size must be at least 2; got {subset_size}")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(a), subset_size, replace=False), rng.choice(len(b), subset_size, replace=False))
             for _ in range(subsets)]
    if max(len(a), len(b)) <= KERNELS_ONCE:
        kxx, kyy, kxy = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
        values = [_mmd2(kxx[np.ix_(i, i)], kyy[np.ix_(j, j)], kxy[np.ix_(i, j)]) for i, j in draws]
    else:
        values = [_mmd2(_polynomial_kernel(a[i], a[i]), _polynomial_kernel(b[j], b[j]), _polynomial_kernel(a[i], b[j]))
                  for i, j in draws]
    return float(np.mean(values)), float(np.std(values))


# Nearest-neighbour metrics -------------------------------------------------------------
BLOCK = 1024


def squared_distances(x_block, y, y_sq):
    x_sq = tf.reduce_sum(tf.square(x_block), axis=1, keepdims=True)
    d = x_sq + y_sq[None, :] - 2.0 * tf.matmul(x_block, y, transpose_b=True)
    return tf.maximum(d, 0.0)


@tf.function(reduce_retracing=True)
def _nearest_block(x_block, y, y_sq, k):
    """The k smallest squared distances from each row of x_block to y, ascending (the row
    itself, at distance 0, is the first)."""
    d = squared_distances(x_block, y, y_sq)
    return -tf.math.top_k(-d, k=k).values


def knn_radii(x, *ks):
    """Squared distance of every sample of x to its k-th nearest neighbour in x, itself
    excluded, for each k: one pass over the distances however many k (the real features' k = 3
    and k = 5 took two passes: 10,000 × 2,048 features 6.2-6.7 → 5.1-5.3 s,
    bench/results/metrics_radii_one_pass.json)."""
    xt = tf.constant(x)
    sq = tf.reduce_sum(tf.square(xt), axis=1)
    nearest = np.concatenate([_nearest_block(xt[i:i + BLOCK], xt, sq, tf.constant(max(ks) + 1)).numpy()
                              for i in range(0, len(x), BLOCK)])
    radii = tuple(nearest[:, k] for k in ks)
    return radii[0] if len(ks) == 1 else radii


@tf.function(reduce_retracing=True)
def balls_block(fake_block, real, real_sq, real_r3, real_r5, fake_r3_block):
    """Where a block of generated points lies among the real points' balls: whether each lies in
    some real k_pr ball (precision), in how many real k_dc balls (density), and [block, n_real]
    which real points lie in its own k_pr ball (recall) and in which real k_dc balls it lies (coverage)."""
    d = squared_distances(fake_block, real, real_sq)  # [block, n_real]
    in_real_r5 = d <= real_r5[None, :]
    return (tf.reduce_any(d <= real_r3[None, :], axis=1), tf.reduce_sum(tf.cast(in_real_r5, tf.int32), axis=1),
            d <= fake_r3_block[:, None], in_real_r5)


@tf.function(reduce_retracing=True)
def _cross_block(fake_block, real, real_sq, real_r3, real_r5, fake_r3_block):
    inside, counts, in_fake_ball, in_real_r5 = balls_block(fake_block, real, real_sq, real_r3, real_r5, fake_r3_block)
    return inside, tf.reduce_any(in_fake_ball, axis=0), counts, tf.reduce_any(in_real_r5, axis=0)


def neighbourhood_metrics(real_features, fake_features, k_pr=3, k_dc=5, radii=None):
    """Improved precision/recall (k_pr) and density/coverage (k_dc) from one pass over the
    real×fake distances, in row blocks (float32 distances; memory O(block × n)).

    ``radii``: precomputed (real k_pr, real k_dc, fake k_pr) squared radii — the bootstrap
    passes them so a resampled point keeps its ball (a duplicate would otherwise be its own
    nearest neighbour at distance 0)."""
    real = as_features(real_features, "real_features", np.float32)
    fake = as_features(fake_features, "fake_features", np.float32)
    same_width(real, fake, ("real_features", "fake_features"))
    k_max = max(k_pr, k_dc)
    need_samples(real, k_max + 1, "real_features", f"k={k_max} nearest neighbours")
    need_samples(fake, k_pr + 1, "fake_features", f"k={k_pr} nearest neighbours")
    real_r3, real_r5, fake_r3 = radii or (*knn_radii(real, k_pr, k_dc), knn_radii(fake, k_pr))
    rt = tf.constant(real)
    real_sq = tf.reduce_sum(tf.square(rt), axis=1)
    precision, density = [], []
    recall = np.zeros(len(real), bool)
    covered = np.zeros(len(real), bool)
    for i in range(0, len(fake), BLOCK):
        p, r, dens, cov = _cross_block(tf.constant(fake[i:i + BLOCK]), rt, real_sq,
                                       tf.constant(real_r3), tf.constant(real_r5), tf.constant(fake_r3[i:i + BLOCK]))
        precision.append(p.numpy())
        density.append(dens.numpy())
        recall |= r.numpy()
        covered |= cov.numpy()
    return {
        "precision": float(np.mean(np.concatenate(precision))),
        "recall": float(np.mean(recall)),
        "density": float(np.sum(np.concatenate(density)) / (k_dc * len(fake))),
        "coverage": float(np.mean(covered)),
    }


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (Kynkäänniemi et al. 2019)."""
    m = neighbourhood_metrics(real_features, fake_features, k_pr=k, k_dc=k)
    return {"precision": m["precision"], "recall": m["recall"]}


def density_coverage(real_features, fake_features, k=5):
    """Density and coverage (Naeem et al. 2020)."""
    m = neighbourhood_metrics(real_features, fake_features, k_pr=k, k_dc=k)
    return {"density": m["density"], "coverage": m["coverage"]}


# Accuracy-type metrics -----------------------------------------------------------------
def classifier_accuracy(probabilities, labels):
    """Share of generated samples that the classifier assigns to the label they were conditioned on."""
    p = as_features(probabilities, "probabilities")
    labels = check_labels(labels, p.shape[1])
    if len(labels) != len(p):
        raise ZooError(f"{len(p)} predictions but {len(labels)} labels")
    return float(np.mean(np.argmax(p, axis=1) == labels))


def _as_images(x, name):
    from zoo.metrics.extractors import check_images

    return check_images(np.asarray(x.numpy() if hasattr(x, "numpy") else x), name).astype(np.float64)


def reconstruction_errors(images, reconstructions):
    """Mean squared and mean absolute error between images and their reconstructions."""
    a, b = _as_images(images, "images"), _as_images(reconstructions, "reconstructions")
    if a.shape != b.shape:
        raise ZooError(f"images {a.shape} and reconstructions {b.shape} differ in shape")
    return {"mse": float(np.mean((a - b) ** 2)), "mae": float(np.mean(np.abs(a - b)))}


def clip_score(image_embeddings, text_embeddings):
    """CLIP score: 100 · mean over pairs of max(cos(image, text), 0)."""
    i, t = as_features(image_embeddings, "image_embeddings"), as_features(text_embeddings, "text_embeddings")
    same_width(i, t, ("image_embeddings", "text_embeddings"))
    if len(i) != len(t):
        raise ZooError(f"{len(i)} image embeddings but {len(t)} text embeddings; CLIP score pairs them")
    cos = np.sum(i * t, axis=1) / (np.linalg.norm(i, axis=1) * np.linalg.norm(t, axis=1) + 1e-12)
    return float(100 * np.mean(np.maximum(cos, 0)))
