"""What the models with a latent code (AE, DAE, VAE) share, as parts they compose and
functions of the ``LatentCode`` contract (``zoo.models.base``):

- ``CodeParts``: the sampler (``latent.MixtureSampler``, what ``sample`` draws from), the
  class-by-class density (``latent.LatentMixture``, the anomaly score's ``latent`` part) and
  the anomaly score (``latent.ScoreCombination``: the parts' weights, centres and scales), all
  weights, so the SavedModel and TFLite use what was fitted;
- which training images a model trains on and which it holds out (``normal_validation``);
- ``fit``: after training, the densities and the corrections fitted on codes and images;
- ``choose_anomaly_score``: the combination of parts chosen without the anomaly class.

A model with a code is a ``CodeModel`` (a ``ZooModel``, not a mixin): it builds its networks,
calls ``build_code_parts()``, and implements ``encode_numpy``, ``decode`` and
``anomaly_parts(images, portable)``; its config declares ``anomaly_class`` and
``max_components`` with the settings below. Every hook the recipe calls is one line into this
module.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import latent
from zoo.core.config import ConfigError, any_int, positive_int, setting
from zoo.models.base import ZooModel, batched
from zoo.models.capabilities import AnomalyScorer, Generator, Reconstructor

VALIDATION_EVERY = 10  # every 10th normal training image is held out: mixture size, score choice, threshold
# Components per known class of the density that scores anomalies: the count whose class mixture
# gives the held-out normal codes the highest log-likelihood; a fixed count did not suit every
# model (docs/models/autoencoders.md, "Anomaly detection"; bench/results/anomaly_raw_error.json).
CLASS_COMPONENTS = (1, 2, 3, 4)
PARTS = ("reconstruction_excess", "likelihood", "latent", "complexity")


# The config fields every model with a code has, declared here once (each config lists them
# where its flags should appear: ``anomaly_class: int | None = anomaly_class_setting()``).
def anomaly_class_setting():
    return setting(None, "leave this class out of training and report how well it is detected", any_int, type=int)


def max_components_setting():
    return setting(20, "most Gaussian components of the mixture over the codes (the number is chosen on held-out "
                   "codes)", positive_int)


def check_anomaly_class(config):
    """The rule that spans two fields, for the configs' ``validate``."""
    k = config.anomaly_class
    if k is not None and not 0 <= k < config.num_classes:
        raise ConfigError("anomaly_class", k, f"must be in 0..{config.num_classes - 1} (the dataset's classes)")


@keras.saving.register_keras_serializable("zoo")
class CodeParts(keras.layers.Layer):
    """The fitted parts over a model's codes, as weights."""

    def __init__(self, latent_dim, num_classes, max_components=20, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.num_classes, self.max_components = latent_dim, num_classes, max_components
        self.sampler = latent.MixtureSampler(latent_dim, max_components, name="sampling_mixture")
        self.class_density = latent.LatentMixture(latent_dim, max(CLASS_COMPONENTS) * num_classes,
                                                  name="class_density")
        self.score = latent.ScoreCombination(PARTS, name="score_combination")

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "num_classes": self.num_classes,
                "max_components": self.max_components}

    def surprise(self, codes):
        """−log density of codes under the class-by-class mixture of the normal classes, [N]."""
        return -self.class_density.log_density(codes)

    def complexity_corrected(self, likelihood_bits, images, portable=False):
        """Serrà et al.: −log p(x) − L(x), both in bits."""
        return likelihood_bits - self.score.complexity_bits(images, portable)


class CodeModel(ZooModel, Generator, Reconstructor, AnomalyScorer):
    """A zoo model with a latent code (AE, DAE, VAE). What it must implement: ``encode_numpy``
    (the codes, NumPy), ``decode(codes)`` (in the graph) and ``anomaly_parts(images, portable)``
    (the score's parts, in the graph); its config: ``latent_dim``, ``num_classes``,
    ``max_components``, ``anomaly_class``, ``seed``."""

    def build_code_parts(self):
        c = self.config
        self.codes = CodeParts(c.latent_dim, c.num_classes, c.max_components)

    def anomaly_parts(self, images, portable=False):
        raise NotImplementedError

    def anomaly_score(self, images, portable=False):
        """The chosen combination of the parts, [N] (in the graph)."""
        return self.codes.score.combine(self.anomaly_parts(images, portable))

    def sample_numpy(self, num, seed=0):
        return sample_in_batches(self, self.sample, num, seed)

    def select_training_examples(self, labels):
        return training_examples(labels, self.config.anomaly_class)

    def normal_validation(self, labels):
        return normal_validation(labels, self.config.anomaly_class)

    def held_out_class(self):
        return self.config.anomaly_class

    def after_training(self, images, labels):
        self.fitted = fit(self, images, labels)

    def choose_anomaly_score(self, images, labels):
        return choose_anomaly_score(self, images, labels)

    def anomaly_score_numpy(self, images, portable=False):
        return anomaly_score_numpy(self, images, portable)

    def anomaly_parts_numpy(self, images):
        return anomaly_parts_numpy(self, images)

    def measure(self, test, train):
        """What ``after_training`` fitted, for the card's ``evaluation``."""
        return {"settings": dict(getattr(self, "fitted", {}))}


# Which images a model trains on -----------------------------------------------------------------
def normal_validation(labels, anomaly_class):
    """Held-out normal training images (every 10th of those not in the anomaly class): with an
    anomaly class they are left out of training; without, they are every 10th image."""
    normal = np.ones(len(labels), bool) if anomaly_class is None else labels != anomaly_class
    return normal & (np.cumsum(normal) % VALIDATION_EVERY == 1)


def training_examples(labels, anomaly_class):
    """With an anomaly class: the other classes, minus the held-out normal tenth (None: all)."""
    if anomaly_class is None:
        return None
    return (labels != anomaly_class) & ~normal_validation(labels, anomaly_class)


def _split(model, labels):
    """(the images the densities are fitted on, the held-out normal ones): masks."""
    held_out = model.normal_validation(labels)
    trained = model.select_training_examples(labels)
    return (trained if trained is not None else np.ones(len(labels), bool)) & ~held_out, held_out


# After training ----------------------------------------------------------------------------------
def fit(model, images, labels):
    """Fit what gradient steps do not learn, on the training split: the sampling mixture (its
    size chosen on the held-out codes), the class-by-class density (on the training codes with
    their labels, never on the held-out images, which choose the score and set the threshold),
    the TFLite proxy of the PNG length, and the reconstruction excess. Returns what was fitted."""
    parts = model.codes
    fitted_on, held_out = _split(model, labels)
    fit_codes, held_out_codes = model.encode_numpy(images[fitted_on]), model.encode_numpy(images[held_out])
    mixture = parts.sampler.fit(fit_codes, held_out_codes, seed=model.config.seed)
    by_class, components = parts.class_density.fit_by_class(fit_codes, labels[fitted_on], CLASS_COMPONENTS,
                                                            held_out=held_out_codes, seed=model.config.seed)
    coef, r2 = latent.fit_complexity_proxy(images[fitted_on][:2000])
    parts.score.complexity_coef.assign(coef)
    # A reconstruction error says little on its own: it grows with the ink, so a digit of few
    # strokes ("1") reconstructs better than most normal digits whatever it is (Serrà et al.'s
    # point, for likelihoods). The part is the error beyond what held-out normal images with the
    # same ink, edges and lit pixels have: VAE mean / worst AUC 0.897 / 0.751 → 0.918 / 0.792
    # (bench/results/anomaly.json against anomaly_raw_error.json).
    parts.score.reconstruction_coef.assign(np.zeros(4, np.float32))  # the raw errors, to fit on
    raw_errors = anomaly_parts_numpy(model, images[held_out])["reconstruction_excess"]
    error_coef, error_r2 = latent.fit_on_image_statistics(images[held_out], raw_errors)
    parts.score.reconstruction_coef.assign(error_coef)
    model.unseen_class_components = components  # for the unseen-class proxy of the score's choice
    return {
        "latent_mixture": mixture,
        "reconstruction_excess": {
            "what": "the reconstruction MSE minus a linear fit of it on ink, edges and lit pixels over the "
                    f"{int(held_out.sum())} held-out normal images (R² {error_r2:.3f}): the error beyond what "
                    "normal images as complex have",
            "coefficients": [float(c) for c in error_coef]},
        "class_density": {**by_class, "what": "the anomaly score's latent part: −log density of the code under "
                                              f"{by_class['per_class']} full-covariance Gaussians per normal class "
                                              f"(of {', '.join(map(str, CLASS_COMPONENTS))}: the count with the "
                                              "highest log-likelihood of the held-out normal codes), "
                                              "each class weighted by its share of the codes; fitted on "
                                              "the training codes with their (normal) labels, not on the "
                                              "held-out images"},
        "complexity_proxy_r2": r2,
    }


def choose_anomaly_score(model, images, labels):
    """The combination of parts with the best worst-case ROC-AUC between the held-out normal
    images and each kind of proxy anomaly made from them (``latent.choose_combination``); the
    anomaly class is never used. Sets it in the model's score; returns what the card records."""
    parts = model.codes
    _, held_out = _split(model, labels)
    normal = anomaly_parts_numpy(model, images[held_out])
    proxies = {kind: anomaly_parts_numpy(model, made)
               for kind, made in latent.proxy_anomalies(images[held_out], model.config.seed).items()}
    components = getattr(model, "unseen_class_components", {})
    if len(components) > 1:
        # An unseen class, as the leave-one-class-out protocol makes it: each held-out image with
        # its own class taken out of the density. Only the density can be refitted without a
        # class; the networks saw them all, so the other parts are unchanged here.
        unseen = latent.surprise_without_own_class(components, model.encode_numpy(images[held_out]),
                                                   labels[held_out])
        proxies["unseen_class"] = {**normal, "latent": unseen.astype(np.float32)}
    name, weights, centre, scale, aucs = latent.choose_combination(normal, proxies)
    parts.score.fitted_as(name, weights, centre, scale)
    r2 = getattr(model, "fitted", {}).get("complexity_proxy_r2")
    return {"anomaly_score": {
        "chosen": name, "weights": weights,
        "how": f"of {len(aucs)} candidates (each part, and the latent density plus each other part or all), the "
               f"one with the best worst-case ROC-AUC between {int(held_out.sum())} held-out normal training images "
               "and each kind of proxy anomaly made from them (quarter turns, upside-down, overlays, halves of two "
               "images, one half erased, and an unseen class: each image scored with its own class left out of the "
               "class density — only the density can be refitted without a class, the networks saw them all); the "
               "anomaly class is never used",
        "proxy_auc": aucs, "standardised_on": "the held-out normal images (median, std)",
        "tflite": "the PNG length L(x) is not a TFLite op: the TFLite score uses a linear proxy of it (ink, edges, "
                  f"lit pixels; R² {r2:.3f} on training images)" if "complexity" in weights and r2 is not None
                  else "the same score"}}


# Scores ------------------------------------------------------------------------------------------
def anomaly_score_numpy(model, images, portable=False):
    """The chosen combination of the parts (higher: more anomalous), [N] NumPy; ``portable``:
    as TFLite computes it."""
    return batched(lambda x: model.codes.score.combine(model.anomaly_parts(x, portable)), images)


def anomaly_parts_numpy(model, images):
    """Every part on NumPy images, name → [N]."""
    out = {}
    for i in range(0, len(images), 500):
        for name, value in model.anomaly_parts(tf.constant(images[i:i + 500])).items():
            out.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(v) for name, v in out.items()}


# Sampling ----------------------------------------------------------------------------------------
def sample_in_batches(model, sample, num, seed=0, batch=500):
    """``num`` images from a model's in-graph ``sample(num, seed)``, in pieces, NumPy."""
    sample = model.graph("sample", sample)
    return np.concatenate([sample(tf.constant(min(batch, num - i)), tf.constant(seed + i)).numpy()
                           for i in range(0, num, batch)])
