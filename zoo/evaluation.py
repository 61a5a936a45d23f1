"""Evaluation: the metrics and pictures a model gets, chosen from its capabilities.

| capability | measured | pictures |
|---|---|---|
| Generator | feature metrics of ``generate_images`` (± se), class balance | samples.png |
| ConditionalGenerator | conditional feature metrics (± se), CAS | samples.png (a row per class) |
| Reconstructor | reconstruction error, denoising PSNR, linear probe on the codes | reconstructions.png |
| Denoiser | — | denoising.png |
| AnomalyScorer (trained without a class) | ROC-AUC, AP, rates at a 5% FPR threshold | — |
| Inpainter | classifier accuracy of fills | inpainting.png |

plus the model's own ``measure`` and ``extra_pictures``. Every number that has a real-data
floor is reported beside it (``reference``): the same metrics of real held-out images at the
same sample count, computed once per dataset and extractor and cached (``ZOO_CACHE``, default
~/.cache/zoo), so "FID 176" is read against "real: 141".

The card's ``metrics`` hold measurements only; how they were made goes to ``evaluation``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from zoo import ZooError, corruption, distribute
from zoo.images import grid
from zoo.metrics import anomaly, cas, core, extractors, feature_metrics
from zoo.models.base import (
    AnomalyScorer,
    ConditionalGenerator,
    Denoiser,
    Generator,
    Inpainter,
    Reconstructor,
)
from zoo.progress import Stage, stage

CAS_EPOCHS = 10
# what the card shows of a sampler that is not in use
SAMPLER_METRICS = ("fid", "fid_se", "fid_infinity", "kid", "precision", "precision_se", "recall", "recall_se",
                   "density", "coverage", "inception_score", "class_balance", "classifier_accuracy",
                   "classifier_accuracy_se", "intra_fid", "independent_fid", "independent_fid_se", "independent_precision",
                   "independent_recall")
# Digits are also scored in a second classifier's features (built and trained apart:
# extractors.CLASSIFIERS), so a card shows when a ranking of models belongs to one feature space.
SECOND_EXTRACTOR = "second_mnist_classifier"
INDEPENDENT = ("fid", "precision", "recall")


@dataclasses.dataclass
class Splits:
    """What evaluation sees: the test split, the whole training split (probes, CAS,
    detection thresholds, the real-data reference) and the dataset's name."""

    test: tuple  # (images, labels) NumPy
    train: tuple
    data_name: str = "mnist5k"

    @property
    def image_shape(self):
        return tuple(self.test[0].shape[1:])


@dataclasses.dataclass
class EvaluationSettings:
    extractor: str = "auto"  # auto | zoo_mnist_classifier | inception_v3 | none
    samples: int | None = None  # generated samples for the feature metrics (default: the test split's size)
    bootstrap: int = feature_metrics.BOOTSTRAP
    seed: int = 0


def resolve_extractor(settings, splits):
    """The extractor name, or None with the reason the feature metrics are skipped."""
    if settings.extractor == "none":
        return None, "--eval-extractor none"
    name = feature_metrics.default_extractor(splits.image_shape, splits.data_name) if settings.extractor == "auto" \
        else settings.extractor
    try:
        extractors.get(name)
    except ZooError as e:
        return None, str(e)
    return name, None


def digit_classifier(splits):
    """The zoo classifier when the data is MNIST digits (for accuracy-type numbers), else None."""
    if feature_metrics.default_extractor(splits.image_shape, splits.data_name) == "zoo_mnist_classifier":
        return extractors.zoo_classifier()
    return None


# Cache of real-data references -------------------------------------------------------------
def cache_dir():
    return os.environ.get("ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


def cached(kind, key, compute):
    """``compute()`` once per (kind, key), kept as JSON under the cache folder."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"{kind}-{digest}.json")
    try:
        with open(path) as f:
            return json.load(f)["value"]
    except (OSError, ValueError, KeyError):
        pass
    value = compute()
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"key": key, "value": value}, f, default=str)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: recompute next time
    return value


def _fingerprint(images):
    return hashlib.sha256(np.ascontiguousarray(images[:: max(1, len(images) // 64)]).tobytes()).hexdigest()[:12]


def _data_key(splits, **more):
    """A cache key of the data a reference was computed on, and what else decided it."""
    return {"data": splits.data_name, "train": _fingerprint(splits.train[0]), "test": _fingerprint(splits.test[0]),
            **more, "version": 1}


def stratified(labels, n, seed):
    """``n`` indices whose class counts are proportional to those of ``labels`` (whatever
    their order: the test split may be sorted by class)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    share = np.empty(len(labels))
    for c in np.unique(labels):
        members = order[labels[order] == c]
        share[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.argsort(share, kind="stable")[:n]


def _matching_indices(train_labels, test_labels, seed):
    """Training indices with the same class counts as ``test_labels`` (a random draw)."""
    order = np.random.default_rng(seed).permutation(len(train_labels))
    picked = []
    for c, count in zip(*np.unique(test_labels, return_counts=True)):
        of_class = order[train_labels[order] == c][:count]
        picked.extend(of_class)
    return np.sort(np.asarray(picked, int))


def real_reference(splits, extractor, labels, conditional, settings, metrics=None):
    """The feature metrics of real training images with the class counts of ``labels`` (those
    the generated samples were drawn for) against the test split: the floor a perfect
    generator would reach at this sample count."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    n = len(labels)
    metrics = metrics or (feature_metrics.CONDITIONAL if conditional else feature_metrics.UNCONDITIONAL)

    def compute():
        with stage(f"real-data reference: {n} training images against the test split ({extractor})"):
            index = _matching_indices(train_y, labels, settings.seed)
            labelled = conditional and {"intra_fid", "classifier_accuracy"} & set(metrics)
            result = feature_metrics.evaluate_samples(
                train_x[index], test_x, extractor=extractor, metrics=metrics,
                fake_labels=train_y[index] if labelled else None, real_labels=test_y if labelled else None,
                bootstrap=settings.bootstrap, seed=settings.seed)
        return {k: v for k, v in result.items() if isinstance(v, float)}

    key = _data_key(splits, n=n, counts=np.bincount(labels).tolist(), extractor=extractor, conditional=conditional,
                    seed=settings.seed, bootstrap=settings.bootstrap, metrics=list(metrics))
    return cached("reference", key, compute)


# The evaluation ------------------------------------------------------------------------------
@dataclasses.dataclass
class Measured:
    """What an evaluation returns: the card's ``metrics``, their real-data floors
    (``reference``) and how they were made (``info``, the card's ``evaluation``)."""

    metrics: dict = dataclasses.field(default_factory=dict)
    reference: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def add(self, other):
        self.metrics.update(other.metrics)
        self.reference.update(other.reference)
        self.info.update(other.info)
        return self


def evaluate_model(model, splits, settings=None):
    """Everything the model's capabilities call for, measured (``Measured``). It changes nothing
    in the model: a measurement of several samplers puts the one in use back."""
    settings = settings or EvaluationSettings()
    out = Measured()
    extractor, skipped = resolve_extractor(settings, splits)
    if isinstance(model, (Generator, ConditionalGenerator)):
        out.info["feature_extractor"] = extractor
        if skipped:
            print(f"zoo: skipping the feature metrics: {skipped}")
            out.info["feature_metrics_skipped"] = skipped
    if isinstance(model, ConditionalGenerator):
        out.add(_conditional(model, splits, settings, extractor))
    elif isinstance(model, Generator):
        out.add(_unconditional(model, splits, settings, extractor))
    if isinstance(model, Reconstructor):
        out.add(_reconstruction(model, splits))
    if isinstance(model, AnomalyScorer) and model.held_out_class() is not None:
        out.add(anomaly_metrics(model, splits))
    if isinstance(model, Inpainter):
        out.add(_inpainting(model, splits, settings))
    # --eval-samples N also bounds the test images a model's own measurements use (the
    # VAE's IWAE bound: 100 decoder passes per image)
    test = splits.test if not settings.samples else tuple(a[:settings.samples] for a in splits.test)
    with stage(f"{type(model).__name__} measurements"):
        own = model.measure(test, splits.train)
    out.info.update(own.pop("settings", {}))
    out.metrics.update(own)
    return out


def sample_metrics(model, splits, settings=None):
    """The feature metrics of a generator's samples alone, with their real-data reference
    (no CAS, no other capability): what a sweep over a sampling setting needs."""
    settings = settings or EvaluationSettings()
    extractor, skipped = resolve_extractor(settings, splits)
    if skipped:
        raise ZooError(f"no feature metrics: {skipped}")
    if isinstance(model, ConditionalGenerator):
        return _conditional(model, splits, dataclasses.replace(settings, samples=settings.samples or len(splits.test[1])),
                            extractor, with_cas=False)
    return _unconditional(model, splits, settings, extractor)


def saved_model_metrics(serving, card, splits, settings):
    """The feature metrics of an exported SavedModel's ``sample``, drawn exactly as the
    recipe's evaluation drew from the model (the same labels, chunks of 250 and seeds), so the
    same seed reproduces the card (``Measured``)."""
    sample = serving.signatures["sample"]
    conditional = "labels" in card["signatures"]["sample"]["inputs"]
    test_x, test_y = splits.test
    n = settings.samples or card.get("evaluation", {}).get("samples") or len(test_y)
    labels = test_y[stratified(test_y, n, settings.seed)]
    draw = (lambda start, count: sample(labels=tf.constant(labels[start:start + count]),
                                        seed=tf.constant(settings.seed + start))["images"].numpy()) if conditional \
        else (lambda start, count: sample(num=tf.constant(count), seed=tf.constant(settings.seed + start))[
            "images"].numpy())
    fake = _draw_in_stages(f"sampling {n} images from the SavedModel", n, draw, 250)
    extractor, skipped = resolve_extractor(settings, splits)
    if skipped:
        raise ZooError(f"no feature metrics: {skipped}")
    return _score(fake, labels, splits, settings, extractor, conditional)


def sampler(model):
    """``draw(num, seed) -> (images, labels or None)`` for a generator: conditional models
    draw classes in turn. (What the training callback scores.)"""
    if isinstance(model, ConditionalGenerator):
        return lambda num, seed: (model.generate_images_for(np.arange(num) % model.config.num_classes, seed),
                                  np.arange(num) % model.config.num_classes)
    if isinstance(model, Generator):
        return lambda num, seed: (model.generate_images(num, seed), None)
    return None


def _score(fake, labels, splits, settings, extractor, conditional):
    """Feature metrics of ``fake`` (drawn for ``labels``: the classes, or for an unconditional
    model the test labels whose class counts the real reference copies)."""
    test_x, test_y = splits.test
    with stage(f"feature metrics of {len(fake)} samples ({extractor}; {settings.bootstrap} bootstrap replicates)"):
        result = feature_metrics.evaluate_samples(
            fake, test_x, extractor=extractor,
            metrics=feature_metrics.CONDITIONAL if conditional else feature_metrics.UNCONDITIONAL,
            fake_labels=labels if conditional else None, real_labels=test_y if conditional else None,
            bootstrap=settings.bootstrap, seed=settings.seed)
    info = result.pop("settings")
    result.pop("feature_extractor")
    return Measured(result, real_reference(splits, extractor, labels, conditional, settings), info).add(
        _independent(fake, labels, splits, settings, extractor, conditional))


def _independent(fake, labels, splits, settings, extractor, conditional):
    """FID, precision and recall in the second classifier's features, beside their real-data
    reference: digits only (where zoo's own classifier scores them)."""
    if extractor != "zoo_mnist_classifier" or not os.path.exists(extractors.shipped_weights(SECOND_EXTRACTOR)):
        return Measured()
    with stage(f"the same samples in the features of {SECOND_EXTRACTOR}"):
        result = feature_metrics.evaluate_samples(fake, splits.test[0], extractor=SECOND_EXTRACTOR, metrics=INDEPENDENT,
                                                  bootstrap=settings.bootstrap, seed=settings.seed)
    reference = real_reference(splits, SECOND_EXTRACTOR, labels, conditional, settings, metrics=INDEPENDENT)
    return Measured({f"independent_{k}": v for k, v in result.items() if isinstance(v, float)},
                    {f"independent_{k}": v for k, v in reference.items()},
                    {"independent_feature_extractor": SECOND_EXTRACTOR})


def _draw_in_stages(title, total, draw, batch):
    """``draw(start, count)`` in pieces, with a progress bar."""
    bar = Stage(title, total, unit="image")
    parts = []
    for start in range(0, total, batch):
        parts.append(draw(start, min(batch, total - start)))
        bar.advance(len(parts[-1]))
    bar.finish()
    return np.concatenate(parts)


def class_balance(fake, splits):
    """{class_histogram, class_balance} of generated digits by the zoo classifier (balance:
    exp(entropy)/classes, 1 when every class is drawn equally often); {} for other data."""
    classifier = digit_classifier(splits)
    if classifier is None:
        return {}
    counts = np.bincount(classifier.probabilities(fake).argmax(1), minlength=10)
    share = counts / counts.sum()
    entropy = -np.sum(share[share > 0] * np.log(share[share > 0]))
    return {"class_histogram": counts.tolist(), "class_balance": float(np.exp(entropy) / len(counts))}


def _samplers_in_turn(model):
    """The sampler in use first (its metrics get the plain names), then the others (theirs
    ``<sampler>_<metric>``, ``SAMPLER_METRICS`` only)."""
    in_use = model.sampler_in_use()
    return [(in_use, "")] + [(s, f"{s}_") for s in model.samplers() if s != in_use]


def _unconditional(model, splits, settings, extractor):
    n = settings.samples or len(splits.test[1])
    out = Measured()
    for name, prefix in _samplers_in_turn(model):
        with model.sampling_with(name):
            fake = _draw_in_stages(f"sampling {n} images ({name})", n,
                                   lambda start, count: model.generate_images(count, settings.seed + start), 250)
        measured = Measured(class_balance(fake, splits))
        if extractor:
            counts = splits.test[1][stratified(splits.test[1], n, settings.seed)]
            measured.add(_score(fake, counts, splits, settings, extractor, False))
        out.metrics.update({prefix + k: v for k, v in measured.metrics.items() if not prefix or k in SAMPLER_METRICS})
        out.reference.update(measured.reference)
        out.info.update(measured.info)
    return out


def _conditional(model, splits, settings, extractor, with_cas=True):
    """One draw serves every metric of the sampler in use: the samples for the feature metrics
    (labels of the test split) are the first part of the CAS training set (labels of the
    training split). Its other samplers (a diffusion model's students) get the feature metrics."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    n = min(settings.samples or len(test_y), len(test_y))
    labels = test_y[stratified(test_y, n, settings.seed)]
    rest = []
    if settings.samples is None and with_cas:  # CAS: as many samples as training images, with their class counts
        have = np.bincount(labels, minlength=model.config.num_classes)
        need = np.bincount(train_y, minlength=model.config.num_classes)
        rest = np.repeat(np.arange(len(need)), np.clip(need - have, 0, None))
        rest = rest[np.random.default_rng(settings.seed).permutation(len(rest))]
    out = Measured()
    for name, prefix in _samplers_in_turn(model):
        all_labels = np.concatenate([labels, [] if prefix else rest]).astype(np.int32)
        with model.sampling_with(name):
            fake = _draw_in_stages(f"sampling {len(all_labels)} images ({name}; {n} for the feature metrics"
                                   f"{', all for CAS' if len(all_labels) > n else ''})", len(all_labels),
                                   lambda start, count: model.generate_images_for(
                                       all_labels[start:start + count], settings.seed + start), 250)
        if extractor:
            measured = _score(fake[:n], labels, splits, settings, extractor, True)
            out.metrics.update({prefix + k: v for k, v in measured.metrics.items()
                                if not prefix or k in SAMPLER_METRICS})
            out.reference.update(measured.reference)
            out.info.update(measured.info)
        if with_cas and not prefix:
            out.add(_cas(model, splits, settings, fake, all_labels))
    return out


def _cas(model, splits, settings, fake, labels):
    """Classification accuracy score: a classifier trained on the samples, tested on real data,
    beside the same classifier trained on as many real images (its reference)."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    with stage(f"CAS: a classifier trained on {len(fake)} generated images ({CAS_EPOCHS} epochs)"):
        measured = cas.train_and_test(fake, labels, test_x, test_y, model.config.num_classes, CAS_EPOCHS,
                                      seed=settings.seed)
    key = _data_key(splits, epochs=CAS_EPOCHS, seed=settings.seed, n=len(fake))

    def real_cas():
        index = _matching_indices(train_y, labels, settings.seed)
        with stage(f"CAS reference: the same classifier trained on {len(index)} real images"):
            return cas.train_and_test(train_x[index], train_y[index], test_x, test_y, model.config.num_classes,
                                      CAS_EPOCHS, seed=settings.seed)

    return Measured({"cas": measured}, {"cas": cached("cas-reference", key, real_cas)},
                    {"cas": {"samples": len(fake), "epochs": CAS_EPOCHS}})


def _normal_test(model, splits):
    images, labels = splits.test
    k = model.held_out_class() if isinstance(model, AnomalyScorer) else None
    keep = np.ones(len(labels), bool) if k is None else labels != k
    return images[keep], labels[keep]


def _reconstruction(model, splits):
    images, _ = _normal_test(model, splits)
    out = Measured()
    with stage(f"reconstructions of {len(images)} test images and {len(corruption.KINDS)} corruptions"):
        errors = core.reconstruction_errors(images, model.reconstruct_images(images))
        out.metrics["reconstruction_mse"], out.metrics["reconstruction_mae"] = errors["mse"], errors["mae"]
        for i, (kind, level) in enumerate(corruption.EVALUATION_LEVELS.items()):
            noisy = corruption.corrupt(tf.constant(images), kind, level, distribute.Draws([0, i]), 4).numpy()
            out.metrics[f"psnr_denoised_{kind}"] = float(np.mean(corruption.psnr(images,
                                                                                 model.reconstruct_images(noisy))))
            out.reference[f"psnr_denoised_{kind}"] = float(np.mean(corruption.psnr(images, noisy)))  # doing nothing
    train_x, train_y = splits.train
    test_x, test_y = splits.test
    with stage("linear probe on the codes"):
        out.metrics.update(anomaly.linear_probe(model.encode_images(train_x), train_y, model.encode_images(test_x),
                                                test_y, prefix="latent"))
    out.reference.update(cached("pixel-probe", _data_key(splits), lambda: anomaly.linear_probe(
        train_x.reshape(len(train_x), -1), train_y, test_x.reshape(len(test_x), -1), test_y, prefix="pixels")))
    return out


def anomaly_metrics(model, splits):
    """The detection figures of the model's anomaly score (its SavedModel and its TFLite
    form), and — reported, not used to choose — the ROC-AUC of every part on its own."""
    from sklearn.metrics import roc_auc_score

    test_x, test_y = splits.test
    train_x, train_y = splits.train
    k = model.held_out_class()
    is_anomaly = test_y == k
    with stage(f"anomaly scores of {len(test_x)} test images"):
        validation = train_x[model.normal_validation(train_y)]
        metrics = anomaly.anomaly_detection(model.anomaly_scores(test_x), is_anomaly, model.anomaly_scores(validation))
        metrics["anomaly_auc_tflite"] = float(roc_auc_score(is_anomaly, model.anomaly_scores(test_x, portable=True)))
        parts = model.anomaly_parts_of(test_x)
        metrics["anomaly_auc_by_part"] = {name: float(roc_auc_score(is_anomaly, v)) for name, v in parts.items()}
    info = {"anomaly": {"class": k, "threshold_from": f"{len(validation)} held-out normal training images",
                        "target_false_positive_rate": metrics.pop("anomaly_target_fpr")}}
    return Measured(metrics, {}, info)


INPAINT_DIGITS = 100  # test digits per mask and condition in a recipe run (bench/inpainting.py: all 1,000)


def inpainting_metrics(model, splits, digits=INPAINT_DIGITS, seed=0, masks=corruption.MASKS):
    """For each mask, fills of ``digits`` test digits without and with their label: the zoo
    classifier's accuracy against the original digit (``inpainting_accuracy_<mask>``,
    ``…_labelled``) and the PSNR of the filled pixels only; and, as the reference, the
    classifier on the masked input itself — what the kept pixels alone say (``Measured``)."""
    test_x, test_y = splits.test
    index = stratified(test_y, min(digits, len(test_y)), seed)
    images, labels = test_x[index], test_y[index]
    classifier = digit_classifier(splits)
    out = Measured()
    for kind in masks:
        mask = corruption.inpainting_mask(kind, len(images), images.shape[1:], seed)
        hidden = (1 - mask).sum(axis=(1, 2, 3))
        with stage(f"inpainting {len(images)} test digits, {kind.replace('_', ' ')} hidden, without and with the label"):
            fills = model.inpaint_with_and_without_label(images, mask, labels, seed)
        for filled, suffix in zip(fills, ("", "_labelled")):
            error = ((filled - images) ** 2 * (1 - mask)).sum(axis=(1, 2, 3)) / np.maximum(hidden, 1)
            out.metrics[f"inpainting_psnr_{kind}{suffix}"] = float(np.mean(10 * np.log10(1 / np.maximum(error,
                                                                                                         1e-10))))
            if classifier is not None:
                out.metrics[f"inpainting_accuracy_{kind}{suffix}"] = float(
                    np.mean(classifier.probabilities(filled).argmax(1) == labels))
        if classifier is not None:
            baseline = float(np.mean(classifier.probabilities(images * mask).argmax(1) == labels))
            out.reference[f"inpainting_accuracy_{kind}"] = baseline
            out.reference[f"inpainting_accuracy_{kind}_labelled"] = baseline
    return out


def _inpainting(model, splits, settings):
    # a run that evaluates fewer samples (--eval-samples) fills fewer digits too
    return inpainting_metrics(model, splits, min(INPAINT_DIGITS, settings.samples or INPAINT_DIGITS),
                              seed=settings.seed)


# Pictures ------------------------------------------------------------------------------------
def preview(model, images):
    """A small grid drawn during training: samples of a generator, else reconstructions."""
    if isinstance(model, ConditionalGenerator):
        c = model.config.num_classes
        return grid(model.generate_images_for(np.repeat(np.arange(c), 8), 0), rows=c)
    if isinstance(model, Generator):
        return grid(model.generate_images(64, 0), rows=8)
    if isinstance(model, Reconstructor):
        return grid(np.concatenate([images[:16], model.reconstruct_images(images[:16])]), rows=2)
    return None


def pictures(model, splits):
    """name → image grid for the export folder."""
    images, labels = splits.test
    mixed = images[np.random.default_rng(0).permutation(len(images))]
    out = {}
    if isinstance(model, (Generator, ConditionalGenerator)):
        out["samples.png"] = preview(model, images)
    if isinstance(model, Reconstructor):
        originals = mixed[:32]
        recon = model.reconstruct_images(originals)
        pairs = np.concatenate([np.stack([originals[i:i + 16], recon[i:i + 16]]) for i in (0, 16)])
        out["reconstructions.png"] = grid(pairs.reshape(-1, *images.shape[1:]), rows=4)
    if isinstance(model, Denoiser):
        kind, level = model.training_corruption()
        noisy = corruption.corrupt(tf.constant(mixed[:16]), kind, level, distribute.Draws([0, 0]), 4).numpy()
        out["denoising.png"] = grid(np.concatenate([noisy, model.reconstruct_images(noisy), mixed[:16]]), rows=3)
    if isinstance(model, Inpainter):  # for each mask: masked input, fill without the label, original
        chosen = images[np.random.default_rng(1).permutation(len(labels))[:10]]
        rows = []
        for kind in corruption.MASKS:
            mask = corruption.inpainting_mask(kind, len(chosen), chosen.shape[1:], 1)
            rows += [chosen * mask + 0.5 * (1 - mask), model.inpaint_images(chosen, mask), chosen]
        out["inpainting.png"] = grid(np.concatenate(rows), rows=len(rows))
    out.update(model.extra_pictures(images, labels))
    return out


# Quality of TFLite files -------------------------------------------------------------------
def _finite(outputs, signature):
    """``outputs``, or a ZooError when a TFLite file returned NaN or Inf (seen: a float16
    diffusion file): figures of NaN images mean nothing."""
    bad = int(np.sum(~np.isfinite(outputs).reshape(len(outputs), -1).all(axis=1)))
    if bad:
        raise ZooError(f"its {signature} returned NaN or Inf for {bad} of {len(outputs)} inputs")
    return outputs


class TFLiteQuality:
    """The figures a model's TFLite files are judged by, from its capabilities, measured by
    running the file's signatures (inputs built from their declared roles):

    - generators (``generate``): classifier accuracy against the requested labels
      (conditional models) and FID of ``samples`` images;
    - reconstructors (``reconstruct``): PSNR of reconstructed test images — of denoised ones
      for a denoiser (its training corruption);
    - anomaly scorers (``anomaly_score``): ROC-AUC for the held-out class, or against proxy
      anomalies made from test images when there is none.

    ``judge`` keeps a variant whose figures stay within the model's ``variant_tolerances`` of
    the float32 file's."""

    def __init__(self, model, splits, settings=None, samples=None):
        self.model, self.splits = model, splits
        self.settings = settings or EvaluationSettings()
        samples = samples or model.variant_samples
        self.samples = min(self.settings.samples or samples, samples)
        self.extractor, _ = resolve_extractor(self.settings, splits)
        self.signatures = {s.name: s for s in model.signatures() if s.tflite}

    def _inputs(self, signature, n, labels=None, seed=0):
        rng = np.random.default_rng(seed)
        return {i.name: i.draw(rng, n, np.asarray(labels, np.int32) if i.role == "labels" else None)
                for i in self.signatures[signature].inputs}

    def measure(self, path):
        from zoo import tflite

        model, splits, lite, out = self.model, self.splits, tflite.File(path), {}
        test_x, test_y = splits.test
        generators = [name for name in self.signatures if name.startswith("generate")]  # a diffusion model's students too
        for name in generators if isinstance(model, (Generator, ConditionalGenerator)) else []:
            conditional = isinstance(model, ConditionalGenerator)
            prefix = "" if name == "generate" else f"{name}_"
            n = self.samples
            labels = test_y[stratified(test_y, n, 0)] if conditional else None
            fake = _finite(lite.batched(name, "images", self._inputs(name, n, labels), batch=100), name)
            classifier = digit_classifier(splits)
            if conditional and classifier is not None:
                out[f"{prefix}classifier_accuracy"] = float(np.mean(classifier.probabilities(fake).argmax(1) == labels))
            if self.extractor:
                out[f"{prefix}fid"] = core.frechet_distance(extractors.get(self.extractor).features(test_x),
                                                            extractors.get(self.extractor).features(fake))
        if "reconstruct" in self.signatures and isinstance(model, Reconstructor):
            images = test_x[:500]
            if isinstance(model, Denoiser):
                kind, level = model.training_corruption()
                noisy = corruption.corrupt(tf.constant(images), kind, level, distribute.Draws([0, 0]), 4).numpy()
                out["psnr_denoised"] = float(np.mean(corruption.psnr(
                    images, _finite(lite.batched("reconstruct", "images", {"images": noisy}), "reconstruct"))))
            else:
                out["psnr_reconstructed"] = float(np.mean(corruption.psnr(
                    images, _finite(lite.batched("reconstruct", "images", {"images": images}), "reconstruct"))))
        if "anomaly_score" in self.signatures and isinstance(model, AnomalyScorer):
            from sklearn.metrics import roc_auc_score

            from zoo import latent

            k = model.held_out_class()
            if k is not None:
                images, is_anomaly = test_x, test_y == k
            else:
                proxies = np.concatenate(list(latent.proxy_anomalies(test_x[:100]).values()))
                images = np.concatenate([test_x[:500], proxies])
                is_anomaly = np.r_[np.zeros(500, bool), np.ones(len(proxies), bool)]
            scores = _finite(lite.batched("anomaly_score", "score", {"images": images}), "anomaly_score")
            out["anomaly_auc" if k is not None else "anomaly_auc_proxy"] = float(roc_auc_score(is_anomaly, scores))
        return out

    def settings_for_card(self):
        """How the figures were measured (what `zoo evaluate --tflite` repeats)."""
        return {"samples": self.samples, "seed": self.settings.seed, "extractor": self.extractor}

    def judge(self, reference, figures):
        """(kept, why): every figure within its tolerance of the float32 file's."""
        tolerances = self.model.variant_tolerances
        problems = []
        for key, value in figures.items():
            ref = reference.get(key)
            if ref is None:
                continue
            figure = key.rsplit("_steps_", 1)[-1]  # a student's figures are held to the same tolerances
            if figure == "fid" and value > ref * (1 + tolerances["fid"]):
                problems.append(f"{key} {value:.1f} vs {ref:.1f} (> {tolerances['fid']:.0%} worse)")
            elif figure == "classifier_accuracy" and value < ref - tolerances["classifier_accuracy"]:
                problems.append(f"{key} {value:.3f} vs {ref:.3f}")
            elif key.startswith("psnr") and value < ref - tolerances["psnr"]:
                problems.append(f"{key} {value:.2f} dB vs {ref:.2f} dB")
            elif key.startswith("anomaly_auc") and value < ref - tolerances["auc"]:
                problems.append(f"{key} {value:.3f} vs {ref:.3f}")
        if problems:
            return False, "dropped: " + "; ".join(problems)
        return True, "within the tolerances " + ", ".join(f"{k} {v}" for k, v in tolerances.items())
