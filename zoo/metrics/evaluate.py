"""Evaluate generated images against real ones with every feature metric at once: the
entry point recipes call after training, and the work behind the training callback."""

from __future__ import annotations

import numpy as np

from zoo import ZooError
from zoo.metrics import core, extractors

UNCONDITIONAL = ("fid", "kid", "inception_score", "precision", "recall", "density", "coverage")
CONDITIONAL = UNCONDITIONAL + ("intra_fid", "classifier_accuracy")


def evaluate_samples(fake_images, real_images, *, extractor=None, metrics=UNCONDITIONAL,
                     fake_labels=None, real_labels=None, kid_subsets=100, kid_subset_size=1000):
    """Feature metrics of ``fake_images`` against ``real_images`` (float32 NHWC in [0, 1]).

    Returns a flat dict of floats (``fid``, ``kid``, ``kid_std``, ``inception_score``,
    ``inception_score_std``, ``precision``, ``recall``, ``density``, ``coverage``, and for
    conditional models ``intra_fid``, ``intra_fid_per_class``, ``classifier_accuracy``),
    plus ``feature_extractor``: the name of the network behind every number.
    """
    unknown = set(metrics) - set(CONDITIONAL)
    if unknown:
        raise ZooError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(CONDITIONAL)}")
    extractor = extractors.get(extractor)
    fake_images = extractors.check_images(fake_images, "generated images")
    real_images = extractors.check_images(real_images, "real images")
    if fake_images.shape[1:] != real_images.shape[1:]:
        raise ZooError(f"generated images {fake_images.shape[1:]} and real images {real_images.shape[1:]} differ in shape")
    fake, real = extractor.features(fake_images), extractor.features(real_images)
    out = {}
    if "fid" in metrics:
        out["fid"] = core.frechet_distance(real, fake)
    if "kid" in metrics:
        size = core.kid_subset_size(len(real), len(fake), kid_subset_size)
        out["kid"], out["kid_std"] = core.kernel_distance(real, fake, kid_subsets, size)
        out["kid_subset_size"] = size
    if {"inception_score", "classifier_accuracy"} & set(metrics):
        probabilities = extractor.probabilities(fake_images)
        if "inception_score" in metrics:
            # IS splits assume i.i.d. samples; class-ordered samples (conditional models
            # generate class by class) would give one class per split and a score near 1.
            shuffled = probabilities[np.random.default_rng(0).permutation(len(probabilities))]
            out["inception_score"], out["inception_score_std"] = core.inception_score(
                shuffled, splits=min(10, len(shuffled)))
    if {"precision", "recall", "density", "coverage"} & set(metrics):
        nn = core.neighbourhood_metrics(real, fake)
        out.update({k: v for k, v in nn.items() if k in metrics})
    if {"intra_fid", "classifier_accuracy"} & set(metrics):
        if fake_labels is None or real_labels is None:
            raise ZooError("intra_fid and classifier_accuracy need the labels of real and generated images")
        num_classes = int(max(np.max(real_labels), np.max(fake_labels))) + 1
        if "intra_fid" in metrics:
            intra = core.intra_frechet_distance(real, real_labels, fake, fake_labels, num_classes)
            out["intra_fid"], out["intra_fid_per_class"] = intra["mean"], intra["per_class"]
        if "classifier_accuracy" in metrics:
            out["classifier_accuracy"] = core.classifier_accuracy(probabilities, fake_labels)
    out["feature_extractor"] = extractor.name
    return out


def default_extractor(image_shape):
    """The zoo classifier for 28×28×1 images; InceptionV3 for anything else."""
    return "zoo_mnist_classifier" if tuple(image_shape) == (28, 28, 1) else "inception_v3"


def evaluate_model(model, real_images, real_labels, *, extractor=None, num_samples=None, seed=0):
    """Generate as many samples as there are real images (per class for conditional models)
    with ``model.evaluation_samples`` and score them with ``evaluate_samples``."""
    n = num_samples or len(real_images)
    conditional = getattr(model, "conditional", False)
    labels = np.asarray(real_labels[:n]) if conditional else None
    fake = np.asarray(model.evaluation_samples(n, labels, seed))
    return evaluate_samples(
        fake, real_images, extractor=extractor or default_extractor(real_images.shape[1:]),
        metrics=CONDITIONAL if conditional else UNCONDITIONAL, fake_labels=labels, real_labels=real_labels)
