"""Density in a model's latent space, and the complexity of an image: the pieces behind
sampling from autoencoders and scoring anomalies.

- ``LatentMixture``: a Gaussian mixture over the codes of the training images (Ghosh et al.,
  ICLR 2020: "ex-post density estimation"), fitted by scikit-learn after training — either
  unlabelled, the number of components chosen by the log-likelihood of held-out codes (what
  the autoencoders sample from), or class by class (``fit_by_class``: what scores anomalies)
  — and kept in variables so that the SavedModel and the TFLite file can sample it (the
  component is chosen from uniform noise, not a random op) and evaluate its density.
- ``png_bits``: the length of an image's PNG encoding in bits (Serrà et al., ICLR 2020, the
  "input complexity" L(x)); ``complexity_proxy``: a linear fit of it on image statistics
  that TFLite can compute (TFLite has no PNG encoder).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from zoo.core.config import ConfigError
from zoo.core.errors import ZooError

LOG_2PI = math.log(2 * math.pi)
UNUSED = -1e30  # log-weight of an unused component: finite, so TFLite's logsumexp stays finite


def full_covariance_mixture(components, seed=0):
    """The scikit-learn estimator every mixture over codes is fitted with (unfitted)."""
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=seed, max_iter=200)


@keras.saving.register_keras_serializable("zoo")
class LatentMixture(keras.layers.Layer):
    """A Gaussian mixture with at most ``max_components`` full-covariance components over
    ``dim``-dimensional codes; unfitted it is N(0, I)."""

    def __init__(self, dim, max_components=20, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_components = dim, max_components
        k, d = max_components, dim
        eye = np.tile(np.eye(d, dtype=np.float32), (k, 1, 1))
        log_norm = np.full(k, UNUSED, np.float32)
        log_norm[0] = -0.5 * d * LOG_2PI
        weights = np.zeros(k, np.float32)
        weights[0] = 1.0

        def variable(name, value):
            return self.add_weight(name=name, shape=value.shape, initializer=keras.initializers.Constant(value),
                                   trainable=False, dtype="float32")

        self.cumulative = variable("cumulative_weights", np.cumsum(weights))  # component c: u < cumulative[c]
        self.means = variable("means", np.zeros((k, d), np.float32))
        self.cholesky = variable("cholesky", eye)  # Σ_c = L_c L_cᵀ, for sampling
        self.precision_cholesky = variable("precision_cholesky", eye)  # Σ_c⁻¹ = P_c P_cᵀ, for densities
        self.log_norm = variable("log_norm", log_norm)  # log w_c + log det P_c − d/2 log 2π
        self.components = variable("components", np.ones((), np.float32))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_components": self.max_components}

    def fit(self, codes, held_out, candidates=(1, 2, 4, 8, 12, 20), seed=0):
        """Fit on ``codes``; the component count is the candidate whose mixture, fitted on
        ``codes``, gives ``held_out`` the highest mean log-likelihood. Returns what was chosen."""
        codes, held_out = np.asarray(codes, np.float64), np.asarray(held_out, np.float64)
        usable = [k for k in candidates if k <= min(self.max_components, len(codes) // (2 * self.dim) or 1)]
        if not usable:
            raise ConfigError("mixture components", candidates[0], f"must be at most the {len(codes)} codes allow")
        scores = {}
        for k in usable:
            gmm = full_covariance_mixture(k, seed)
            scores[k] = float(gmm.fit(codes).score(held_out))
        best = max(scores, key=scores.get)
        gmm = full_covariance_mixture(best, seed)
        gmm.fit(np.concatenate([codes, held_out]))
        self.set_parameters(gmm.weights_, gmm.means_, gmm.covariances_)
        return {"components": best, "held_out_log_likelihood": scores, "codes": len(codes) + len(held_out)}

    def fit_by_class(self, codes, labels, per_class, held_out=None, seed=0):
        """A mixture of up to ``per_class`` full-covariance components per class (fewer where a
        class has too few codes), each class weighted by its share of the codes: the density of
        the codes the known classes make. ``per_class`` may be several counts: then the one whose
        mixture gives the ``held_out`` codes the highest mean log-likelihood is kept. Returns
        (what was fitted, the per-class components)."""
        counts = (per_class,) if np.isscalar(per_class) else tuple(per_class)
        if len(counts) > 1 and held_out is None:
            raise ZooError("choosing the components per class needs held-out codes")
        scores, fits = {}, {}
        for k in counts:
            fits[k] = class_components(codes, labels, k, self.dim, seed)
            if len(counts) > 1:
                self.set_parameters(*mixture_of_classes(fits[k]))
                scores[k] = float(np.mean(self.log_density(tf.constant(held_out, tf.float32)).numpy()))
        best = max(scores, key=scores.get) if scores else counts[0]
        components = fits[best]
        self.set_parameters(*mixture_of_classes(components))
        fitted = {"per_class": best, "components_per_class": {c: len(parts[1]) for c, parts in components.items()},
                  "codes": len(codes)}
        if scores:
            fitted["held_out_log_likelihood"] = scores
        return fitted, components

    def set_parameters(self, weights, means, covariances):
        k, d = len(weights), self.dim
        if k > self.max_components:
            raise ZooError(f"a mixture of {k} components does not fit in {self.max_components}")
        chol = np.linalg.cholesky(covariances)
        precision_chol = np.linalg.inv(chol).transpose(0, 2, 1)  # P = L⁻ᵀ: Σ⁻¹ = P Pᵀ
        pad = self.max_components - k
        eye = np.tile(np.eye(d), (pad, 1, 1))
        log_det = np.log(np.abs(np.diagonal(precision_chol, axis1=1, axis2=2))).sum(1)
        log_norm = np.log(weights) + log_det - 0.5 * d * LOG_2PI
        cumulative = np.cumsum(weights) / np.sum(weights)
        self.cumulative.assign(np.concatenate([cumulative, np.full(pad, 2.0)]).astype(np.float32))
        self.means.assign(np.concatenate([means, np.zeros((pad, d))]).astype(np.float32))
        self.cholesky.assign(np.concatenate([chol, eye]).astype(np.float32))
        self.precision_cholesky.assign(np.concatenate([precision_chol, eye]).astype(np.float32))
        self.log_norm.assign(np.concatenate([log_norm, np.full(pad, UNUSED)]).astype(np.float32))
        self.components.assign(float(k))

    def log_density(self, codes):
        """log p(code) under the mixture, [N] (nats)."""
        diff = tf.cast(codes, tf.float32)[:, None, :] - self.means[None]  # [N, K, d]
        projected = tf.einsum("nkd,kde->nke", diff, self.precision_cholesky)
        return tf.reduce_logsumexp(self.log_norm[None] - 0.5 * tf.reduce_sum(tf.square(projected), -1), axis=1)

    def sample(self, choice, noise):
        """Codes from uniform ``choice`` [N] in [0, 1] (picks the component) and standard normal
        ``noise`` [N, d]: no random op, so TFLite can run it."""
        component = tf.reduce_sum(tf.cast(choice[:, None] >= self.cumulative[None, :], tf.int32), axis=1)
        component = tf.minimum(component, tf.cast(self.components, tf.int32) - 1)  # u = 1 exactly
        chol = tf.gather(self.cholesky, component)
        return tf.gather(self.means, component) + tf.einsum("nde,ne->nd", chol, noise)


def random_inputs(num, seed, dim):
    """The randomness of ``num`` draws from a seed, as a sampler without random ops takes it:
    uniform choices [num] and standard-normal noise [num, dim] (the same for every model)."""
    seed = tf.cast(seed, tf.int32)
    choice = tf.random.stateless_uniform(tf.stack([num]), seed=tf.stack([seed, 1]))
    noise = tf.random.stateless_normal(tf.stack([num, dim]), seed=tf.stack([seed, 0]))
    return choice, noise


@keras.saving.register_keras_serializable("zoo")
class MixtureSampler(keras.layers.Layer):
    """Draws codes from a Gaussian mixture fitted on the codes of the training images, as
    pythae's GaussianMixtureSampler does (``fit``, then draw), but in the graph and with its
    randomness as inputs, so the SavedModel and TFLite sample it: ``codes(choice, noise)``
    (what TFLite's ``generate`` takes) or ``draw(num, seed)`` (the SavedModel's ``sample``).
    ``spread`` multiplies every component's standard deviation (the VAE's wider mixtures)."""

    def __init__(self, dim, max_components=20, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_components = dim, max_components
        self.mixture = LatentMixture(dim, max_components, name="mixture")
        self.spread = self.add_weight(name="spread", shape=(), initializer="ones", trainable=False, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_components": self.max_components}

    def fit(self, codes, held_out, seed=0):
        """Fit on ``codes``, the component count chosen on ``held_out`` (``LatentMixture.fit``)."""
        return self.mixture.fit(codes, held_out, seed=seed)

    def codes(self, choice, noise):
        return self.mixture.sample(choice, noise * self.spread)

    def draw(self, num, seed):
        return self.codes(*random_inputs(num, seed, self.dim))


def class_components(codes, labels, per_class, dim, seed=0):
    """Class → (its share of the codes, and the weights, means and covariances of up to
    ``per_class`` full-covariance Gaussians fitted on its codes; fewer where it has fewer than
    2·dim codes per component, and the pooled covariance around its code if it has one)."""
    codes, labels = np.asarray(codes, np.float64), np.asarray(labels)
    pooled = np.cov(codes.T, bias=True).reshape(dim, dim) + 1e-4 * np.eye(dim)
    out = {}
    for c in np.unique(labels):
        own = codes[labels == c]
        share = len(own) / len(codes)
        if len(own) < 2:
            out[int(c)] = (share, np.ones(1), own, pooled[None])
            continue
        gmm = full_covariance_mixture(min(per_class, max(1, len(own) // (2 * dim))), seed).fit(own)
        out[int(c)] = (share, gmm.weights_, gmm.means_, gmm.covariances_)
    return out


def mixture_of_classes(components, leave_out=None):
    """(weights, means, covariances) of the mixture of every class's components but
    ``leave_out``'s, each class weighted by its share (renormalised over the classes kept)."""
    kept = [parts for c, parts in components.items() if c != leave_out]
    total = sum(share for share, *_ in kept)
    return (np.concatenate([share / total * weights for share, weights, _, _ in kept]),
            np.concatenate([means for _, _, means, _ in kept]),
            np.concatenate([covariances for *_, covariances in kept]))


def surprise_without_own_class(components, codes, labels):
    """−log density of each code under the class-by-class mixture without its own class's
    components: how the density scores a code of a class it has never seen — the anomaly the
    leave-one-class-out protocol makes — from codes of known classes only, [N] (NumPy)."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    codes, labels = np.asarray(codes, np.float64), np.asarray(labels)
    out = np.empty(len(codes))
    for c in np.unique(labels):
        own = labels == c
        weights, means, covariances = mixture_of_classes(components, leave_out=int(c))
        log_p = [np.log(w) + np.atleast_1d(multivariate_normal(m, cov).logpdf(codes[own]))
                 for w, m, cov in zip(weights, means, covariances)]
        out[own] = -logsumexp(np.stack(log_p), axis=0)
    return out


# Input complexity -------------------------------------------------------------------------
@tf.function(reduce_retracing=True)
def png_bits(images):
    """Length of each image's PNG encoding (8-bit, compression level 9) in bits, [N]: the
    input complexity L(x) of Serrà et al. (in-graph; not a TFLite op). A tf.function because
    eagerly ``map_fn`` runs one Python call per image (10× slower for 4,500 digits: 5.3 vs 0.5 s)."""
    pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
    lengths = tf.map_fn(lambda x: tf.strings.length(tf.io.encode_png(x, compression=9)), pixels,
                        fn_output_signature=tf.int32)
    return 8.0 * tf.cast(lengths, tf.float32)


def complexity_features(images):
    """Image statistics TFLite can compute that predict the PNG length: ink, edges and the
    number of lit pixels, [N, 3]."""
    ink = tf.reduce_sum(images, axis=[1, 2, 3])
    edges = (tf.reduce_sum(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
             + tf.reduce_sum(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3]))
    lit = tf.reduce_sum(tf.cast(images > 0.1, tf.float32), axis=[1, 2, 3])
    return tf.stack([ink, edges, lit], axis=1)


def fit_on_image_statistics(images, target):
    """Least-squares coefficients (the 3 ``complexity_features`` + intercept) predicting a
    per-image ``target`` [N], and R² on the images."""
    x = tf.concat([complexity_features(images), tf.ones([len(images), 1])], 1).numpy().astype(np.float64)
    y = np.asarray(target, np.float64)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    spread = np.sum((y - y.mean()) ** 2)  # 0 when every image compresses alike (mock data)
    r2 = 1 - np.sum((x @ coef - y) ** 2) / spread if spread > 0 else 0.0
    return coef.astype(np.float32), float(r2)


def fit_complexity_proxy(images):
    """Coefficients predicting ``png_bits`` from ``complexity_features``, and R² on the images."""
    return fit_on_image_statistics(images, png_bits(tf.constant(images)))


def statistics_prediction(images, coef):
    """``complexity_features`` · coef[:3] + coef[3], [N]: what a ``fit_on_image_statistics``
    fit predicts for the images."""
    return tf.reduce_sum(complexity_features(images) * coef[:3], axis=1) + coef[3]


# Anomaly scores from parts ---------------------------------------------------------------
@keras.saving.register_keras_serializable("zoo")
class ScoreCombination(keras.layers.Layer):
    """An anomaly score made of per-image parts (reconstruction error, likelihood, latent
    density, complexity-corrected likelihood, ...): Σ_i w_i (part_i − centre_i) / scale_i,
    with centres and scales from held-out normal images and weights chosen without the
    anomaly class (``choose_combination``). Also keeps the TFLite proxy of the PNG length and
    the normal images' reconstruction error as a function of ink, edges and lit pixels."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = tuple(parts)
        n = len(self.parts)
        first = np.eye(n, dtype=np.float32)[0]  # unfitted: the first part alone

        def variable(name, value):
            return self.add_weight(name=name, shape=value.shape, initializer=keras.initializers.Constant(value),
                                   trainable=False, dtype="float32")

        self.centre = variable("centre", np.zeros(n, np.float32))
        self.scale = variable("scale", np.ones(n, np.float32))
        self.weights_ = variable("weights", first)
        self.complexity_coef = variable("complexity_coef", np.zeros(4, np.float32))
        self.reconstruction_coef = variable("reconstruction_coef", np.zeros(4, np.float32))

    def get_config(self):
        return {**super().get_config(), "parts": list(self.parts)}

    def combine(self, parts):
        """The score of per-image ``parts`` (name → [N] tensors) under the fitted weights."""
        by_name = {name: i for i, name in enumerate(self.parts)}
        return standardised_sum(parts, {name: self.weights_[i] for name, i in by_name.items()},
                                {name: self.centre[i] for name, i in by_name.items()},
                                {name: self.scale[i] for name, i in by_name.items()})

    def fitted_as(self, name, weights, centre, scale):
        """Keep a choice (``choose_combination``'s weights, centres and scales by part)."""
        self.centre.assign(np.array([centre[p] for p in self.parts], np.float32))
        self.scale.assign(np.array([scale[p] for p in self.parts], np.float32))
        self.weights_.assign(np.array([weights.get(p, 0.0) for p in self.parts], np.float32))

    def standardisation(self):
        """(centre, scale) by part name, NumPy."""
        return (dict(zip(self.parts, self.centre.numpy())), dict(zip(self.parts, self.scale.numpy())))

    def complexity_bits(self, images, portable=False):
        """L(x): the PNG length, or (``portable``) its linear proxy TFLite can compute."""
        return statistics_prediction(images, self.complexity_coef) if portable else png_bits(images)

    def reconstruction_excess(self, errors, images):
        """Reconstruction errors minus what held-out normal images with the same ink, edges and
        lit pixels have (``reconstruction_coef``; zero until fitted: the errors themselves)."""
        return errors - statistics_prediction(images, self.reconstruction_coef)

    def weights_by_name(self):
        return {name: float(w) for name, w in zip(self.parts, self.weights_.numpy()) if w}


PROXY_KINDS = ("quarter_turn", "upside_down", "overlay", "glued_halves", "half_erased")


def proxy_anomalies(images, seed=0):
    """Images unlike the normal ones, made from held-out normal images only, by kind: rotated
    a quarter turn, flipped upside down, two overlaid, the top half of one glued to the
    bottom half of another (all as complex as a normal image or more) and one half erased
    (simpler) — to choose a score without ever seeing the anomaly class. kind → images."""
    rng = np.random.default_rng(seed)
    x = np.asarray(images, np.float32)
    other = x[rng.permutation(len(x))]
    half = x.shape[1] // 2
    erased = x.copy()
    top = rng.random(len(x)) < 0.5
    erased[top, half:] = 0.0  # keep the top half
    erased[~top, :, :x.shape[2] // 2] = 0.0  # keep the right half
    return {"quarter_turn": np.rot90(x, 1, axes=(1, 2)).copy(), "upside_down": x[:, ::-1].copy(),
            "overlay": np.maximum(x, other), "glued_halves": np.concatenate([x[:, :half], other[:, half:]], axis=1),
            "half_erased": erased}


def standardised_sum(parts, weights, centre, scale):
    """Σ_i w_i (part_i − centre_i) / scale_i over the parts a candidate weights: the anomaly
    score of every candidate, in NumPy (choosing) and in the graph (``ScoreCombination``)."""
    return sum(w * (parts[p] - centre[p]) / scale[p] for p, w in weights.items())


def candidate_combinations(parts):
    """Each part alone, and the sum of the latent density with each of the others and with all
    (each sum once: "all" only where it differs from every pair)."""
    out = {name: {name: 1.0} for name in parts}
    if "latent" in parts:
        others = [p for p in parts if p != "latent"]
        for p in others:
            out[f"latent+{p}"] = {"latent": 1.0, p: 1.0}
        if len(others) > 1:
            out["all"] = {p: 1.0 for p in parts}
    return out


# A part that hardly varies over normal images carries no signal float32 can keep: an untrained
# VAE's likelihood, 784.05 ± 0.13 bits, standardised turned float32 rounding of its 784-pixel sum
# (~1e-4) into 1e-3 of the score, and TFLite and TensorFlow round differently (parity 1.4e-4 > 1e-4).
STEADY = 1e-3


def choose_combination(normal_parts, proxy_parts):
    """The candidate with the best worst case: for each candidate, its standardised score's
    ROC-AUC between the held-out normal images and each kind of proxy anomaly; the candidate
    whose lowest AUC over the kinds is highest wins (ties: the highest mean). The anomaly's
    kind is unknown, so no kind may be given up. A part whose spread over the normal images is
    under ``STEADY`` of its size takes no part. Returns (name, weights, centre, scale,
    {candidate: {kind: AUC}})."""
    from sklearn.metrics import roc_auc_score

    names = list(normal_parts)
    centre = {n: float(np.median(normal_parts[n])) for n in names}
    scale = {n: float(np.std(normal_parts[n])) or 1.0 for n in names}
    varying = [n for n in names if scale[n] >= STEADY * abs(centre[n])]
    candidates = candidate_combinations(varying or names)

    aucs = {}
    for name, weights in candidates.items():
        normal = standardised_sum(normal_parts, weights, centre, scale)
        aucs[name] = {}
        for kind, parts in proxy_parts.items():
            proxy = standardised_sum(parts, weights, centre, scale)
            labels = np.r_[np.zeros(len(normal)), np.ones(len(proxy))]
            aucs[name][kind] = float(roc_auc_score(labels, np.r_[normal, proxy]))
    best = max(aucs, key=lambda c: (min(aucs[c].values()), np.mean(list(aucs[c].values()))))
    return best, candidates[best], centre, scale, aucs
