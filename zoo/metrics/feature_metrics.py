"""Score generated images against real ones with every feature metric at once, each with its
standard error: the work behind the recipes' evaluation and the training callback.

Standard errors come from a bootstrap over the generated samples (the real images are held
fixed, as in every evaluation): the metrics are recomputed on ``bootstrap`` resamples of the
generated features (one feature pass; resampled points keep their k-NN balls; samples drawn
for chosen labels are resampled within their class), and the standard deviation of the
replicates is the standard error. FID's small-sample bias
(d = 1,024 features, n = 1,000) is reported alongside as FID∞ (Chong & Forsyth 2020):
FID on subsets of several sizes N, fitted as FID∞ + a/N and extrapolated to N → ∞.
"""

from __future__ import annotations

import numpy as np

from zoo.core.errors import ZooError
from zoo.metrics import core, extractors, resampling

UNCONDITIONAL = ("fid", "kid", "inception_score", "precision", "recall", "density", "coverage")
CONDITIONAL = UNCONDITIONAL + ("intra_fid", "classifier_accuracy")
BOOTSTRAP = 30  # replicates: ~1 s in all at 1,000 × 1,024 features; se known to ~±13%
FID_INFINITY_SIZES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # subset sizes, as shares of n
FID_INFINITY_REPEATS = 3  # subsets per size


def _point_metrics(real, fake, probabilities, fake_labels, real_labels, num_classes, metrics, radii, known=None):
    """The metrics (all but KID) of one set of generated features (``known``: those already found)."""
    out = dict(known or {})
    metrics = [m for m in metrics if m not in out]
    if "fid" in metrics:
        out["fid"] = core.frechet_distance(real, fake)
    if "inception_score" in metrics:
        # IS splits assume i.i.d. samples; class-ordered samples (conditional models generate
        # class by class) would give one class per split and a score near 1.
        shuffled = probabilities[np.random.default_rng(0).permutation(len(probabilities))]
        out["inception_score"], out["inception_score_std"] = core.inception_score(
            shuffled, splits=min(10, len(shuffled)))
    if {"precision", "recall", "density", "coverage"} & set(metrics):
        nn = core.neighbourhood_metrics(real, fake, radii=radii)
        out.update({k: v for k, v in nn.items() if k in metrics})
    if "intra_fid" in metrics:
        intra = core.intra_frechet_distance(real, real_labels, fake, fake_labels, num_classes)
        out["intra_fid"], out["intra_fid_per_class"] = intra["mean"], intra["per_class"]
    if "classifier_accuracy" in metrics:
        out["classifier_accuracy"] = core.classifier_accuracy(probabilities, fake_labels)
    return out


def _replicates(real, fake, probabilities, fake_labels, real_labels, num_classes, metrics, radii, resampled, count,
                seed):
    """``count`` bootstrap replicates of the metrics. A resample's FID, intra-FID and neighbourhood
    metrics are read from what was found once for all resamples (``resampled``: its FIDs;
    ``resampling.ResampledNeighbourhoods``; a ``resampled_fid`` per class); the rest is computed
    on the resampled rows."""
    rng = np.random.default_rng(seed)
    # Conditional samples were drawn for chosen labels: resample within each class, so the
    # class counts stay what they were (and intra-FID keeps its samples per class).
    by_class = [np.flatnonzero(fake_labels == c) for c in np.unique(fake_labels)] if num_classes else None
    neighbourhoods = (resampling.ResampledNeighbourhoods(real, fake, radii) if radii is not None
                      and len(real) * len(fake) <= resampling.ResampledNeighbourhoods.LOOKUP_LIMIT else None)
    per_class = [resampled_fid(real[real_labels == c], fake[members]) for c, members in
                 zip(np.unique(fake_labels), by_class)] if "intra_fid" in metrics else None
    out = []
    for _ in range(count):
        draws = ([rng.choice(members, len(members)) for members in by_class] if by_class
                 else [rng.integers(0, len(fake), len(fake))])
        i = np.concatenate(draws)
        known = {} if resampled is None else {"fid": resampled(i)}
        if neighbourhoods is not None:
            known.update({k: v for k, v in neighbourhoods(i).items() if k in metrics})
        if per_class is not None:
            known["intra_fid"] = float(np.mean([fid(np.searchsorted(members, drawn))
                                                for fid, members, drawn in zip(per_class, by_class, draws)]))
        out.append(_point_metrics(
            real, fake[i], None if probabilities is None else probabilities[i],
            None if fake_labels is None else fake_labels[i], real_labels, num_classes, metrics,
            None if radii is None else (radii[0], radii[1], radii[2][i]), known))
    return out


def resampled_fid(real, fake):
    """index → FID of ``real`` against ``fake[index]``: ``resampling.ResampledFrechet`` where the
    samples are fewer than the features' width (its n × n matrix stays small), else FID itself."""
    if len(fake) < np.shape(fake)[1]:
        return resampling.ResampledFrechet(real, fake)
    return lambda index: core.frechet_distance(real, fake[index])


def fid_infinity(real, fake, seed=0, resampled=None):
    """FID∞: FID of random subsets of the generated features at several sizes N, a least-squares
    line in 1/N, its value at 1/N = 0 (``resampled``: ``resampled_fid(real, fake)``, if made)."""
    resampled = resampled or resampled_fid(real, fake)
    rng = np.random.default_rng(seed)
    sizes, values = [], []
    for share in FID_INFINITY_SIZES:
        n = max(int(share * len(fake)), 10)
        for _ in range(FID_INFINITY_REPEATS if n < len(fake) else 1):
            values.append(resampled(rng.choice(len(fake), n, replace=False)))
            sizes.append(n)
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, float), values, 1)
    return float(intercept)


def _checked(extractor, metrics, fake_images, real_images, fake_labels, real_labels):
    """``evaluate_samples``' inputs checked: (the extractor, the images, the labels and the
    number of classes — None unless a conditional metric needs them)."""
    unknown = set(metrics) - set(CONDITIONAL)
    if unknown:
        raise ZooError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(CONDITIONAL)}")
    extractor = extractors.get(extractor)
    fake_images = extractors.check_images(fake_images, "generated images")
    real_images = extractors.check_images(real_images, "real images")
    if fake_images.shape[1:] != real_images.shape[1:]:
        raise ZooError(f"generated images {fake_images.shape[1:]} and real images {real_images.shape[1:]} differ in shape")
    conditional = {"intra_fid", "classifier_accuracy"} & set(metrics)
    num_classes = None
    if conditional:
        if fake_labels is None or real_labels is None:
            raise ZooError("intra_fid and classifier_accuracy need the labels of real and generated images")
        fake_labels, real_labels = np.asarray(fake_labels), np.asarray(real_labels)
        num_classes = int(max(np.max(real_labels), np.max(fake_labels))) + 1
    return extractor, fake_images, real_images, fake_labels, real_labels, num_classes


def evaluate_samples(fake_images, real_images, *, extractor=None, metrics=UNCONDITIONAL,
                     fake_labels=None, real_labels=None, kid_subsets=100, kid_subset_size=1000,
                     bootstrap=BOOTSTRAP, seed=0):
    """Feature metrics of ``fake_images`` against ``real_images`` (float32 NHWC in [0, 1]).

    Returns a flat dict: ``fid``, ``fid_infinity``, ``kid``, ``kid_std`` (over subsets),
    ``inception_score``, ``precision``, ``recall``, ``density``, ``coverage``, and for
    conditional models ``intra_fid``, ``intra_fid_per_class``, ``classifier_accuracy``; each
    (but KID) with ``<name>_se``, its bootstrap standard error (``bootstrap=0``: none);
    ``feature_extractor``: the network behind every number; ``settings``: how they were made.
    """
    extractor, fake_images, real_images, fake_labels, real_labels, num_classes = _checked(
        extractor, metrics, fake_images, real_images, fake_labels, real_labels)
    fake, real = extractor.features(fake_images), extractor.features(real_images)
    probabilities = None
    if {"inception_score", "classifier_accuracy"} & set(metrics):
        probabilities = extractor.probabilities(fake_images)
    radii = None
    if {"precision", "recall", "density", "coverage"} & set(metrics):
        real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
        radii = (*core.knn_radii(real32, 3, 5), core.knn_radii(fake32, 3))

    out = _point_metrics(real, fake, probabilities, fake_labels, real_labels, num_classes, metrics, radii)
    if "kid" in metrics:
        size = core.kid_subset_size(len(real), len(fake), kid_subset_size)
        out["kid"], out["kid_std"] = core.kernel_distance(real, fake, kid_subsets, size)
    resampled = None  # FID of the resamples below
    if "fid" in metrics:
        resampled = resampled_fid(real, fake)
        out["fid_infinity"] = fid_infinity(real, fake, seed, resampled)
    if bootstrap:
        replicates = _replicates(real, fake, probabilities, fake_labels, real_labels, num_classes, metrics, radii,
                                 resampled, bootstrap, seed)
        for key, value in list(out.items()):
            if isinstance(value, float) and key in replicates[0] and not key.endswith("_std"):
                out[f"{key}_se"] = float(np.std([r[key] for r in replicates], ddof=1))
    out["feature_extractor"] = extractor.name
    out["settings"] = {
        "samples": len(fake_images), "real_samples": len(real_images), "bootstrap_replicates": bootstrap,
        "standard_error": "bootstrap over the generated samples" if bootstrap else None,
        "kid_subsets": kid_subsets if "kid" in metrics else None,
        "kid_subset_size": core.kid_subset_size(len(real), len(fake), kid_subset_size) if "kid" in metrics else None,
        "fid_infinity_subset_sizes": [max(int(s * len(fake)), 10) for s in FID_INFINITY_SIZES] if "fid" in metrics else None,
    }
    return out


def default_extractor(image_shape, data_name=None):
    """The zoo classifier for MNIST digits (28×28×1); InceptionV3 for anything else. The
    zoo classifier was trained on digits, so another 28×28×1 dataset (fashion_mnist) gets
    InceptionV3 too: numbers from a digit classifier would not mean anything there."""
    digits = data_name in (None, "mnist5k", "mnist")
    return "zoo_mnist_classifier" if digits and tuple(image_shape) == (28, 28, 1) else "inception_v3"
