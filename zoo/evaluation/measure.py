"""Evaluation: the metrics and pictures a model gets, chosen from its capabilities.

| capability | measured | pictures |
|---|---|---|
| Generator | feature metrics of ``sample_numpy`` (± se), class balance | samples.png (the first measured) |
| ConditionalGenerator | conditional feature metrics (± se), CAS | samples.png (a row per class, as above) |
| Reconstructor | reconstruction error, denoising PSNR, linear probe on the codes | reconstructions.png |
| Denoiser | — | denoising.png |
| AnomalyScorer (trained without a class) | ROC-AUC, AP, rates at a 5% FPR threshold | — |
| Inpainter | classifier accuracy of fills (± se), PSNR of the filled pixels | inpainting.png (the fills measured) |

plus the model's own ``measure`` and ``extra_pictures``. Every number that has a real-data
floor is reported beside it (``reference``): the same metrics of real held-out images at the
same sample count, computed once per dataset and extractor and cached (``ZOO_CACHE``, default
~/.cache/zoo), so "FID 176" is read against "real: 141".

The card's ``metrics`` hold measurements only; how they were made goes to ``evaluation``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError
from zoo.core.progress import Stage, recorded, stage
from zoo.evaluation import choices, pictures
from zoo.evaluation.image_tasks import anomaly_metrics, inpainting, reconstruction
from zoo.evaluation.references import cached, data_key, matching_indices, real_reference, stratified
from zoo.evaluation.settings import EvaluationSettings, Measured, digit_classifier, resolve_extractor
from zoo.metrics import cas, extractors, feature_metrics
from zoo.models.capabilities import AnomalyScorer, ConditionalGenerator, Generator, Inpainter, Reconstructor

# CAS trains on the feature metrics' samples, as many steps as CAS_EPOCHS over the training split's size
# (mnist5k: 1,000 samples, 40 epochs): 4,000 samples cost the diffusion run 80 s more and gave CAS 0.011–0.014
# more, its classifier-seed sd 0.005–0.011 there, 0.002 here (bench/results/cas_samples*.json).
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


def evaluate_model(model, splits, settings=None):
    """Everything the model's capabilities call for, measured (``Measured``). It changes nothing
    in the model: a measurement of several samplers puts the one in use back."""
    settings = settings or EvaluationSettings()
    out = Measured()
    extractor, skipped = resolve_extractor(settings, splits)
    if isinstance(model, (Generator, ConditionalGenerator)):
        out.info["feature_extractor"] = extractor
        accuracy = getattr(extractors.get(extractor), "accuracy", None) if extractor else None
        if accuracy is not None:  # a user's domain classifier: how far its features can be trusted
            out.info["feature_extractor_test_accuracy"] = accuracy
        if skipped:
            print(f"zoo: skipping the feature metrics: {skipped}")
            out.info["feature_metrics_skipped"] = skipped
    if isinstance(model, ConditionalGenerator):
        out.add(_conditional(model, splits, settings, extractor))
    elif isinstance(model, Generator):
        out.add(_unconditional(model, splits, settings, extractor))
    if isinstance(model, Reconstructor):
        out.add(reconstruction(model, splits))
    if isinstance(model, AnomalyScorer) and model.held_out_class() is not None:
        out.add(anomaly_metrics(model, splits))
    if isinstance(model, Inpainter):
        out.add(inpainting(model, splits, settings))
    # --eval-samples N also bounds the test images a model's own measurements use (the
    # VAE's IWAE bound: 100 decoder passes per image)
    test = splits.test if not settings.samples else tuple(a[:settings.samples] for a in splits.test)
    with stage(f"{type(model).__name__} measurements"):
        own = model.measure(test, splits.train)
    out.info.update(own.pop("settings", {}))
    out.metrics.update(own)
    return out


def evaluate_for_export(model, splits, settings):
    """What a recipe makes of a trained model, each stage timed: (the choices made before
    measuring, ``Measured``, the export's pictures — those of the measurements included —, and
    [title, seconds] of every stage)."""
    with recorded() as stages:
        chosen = choices.make(model, splits, settings)
        measured = evaluate_model(model, splits, settings)
        grids = {**pictures.export_pictures(model, splits, measured.pictures), **measured.pictures}
    return chosen, measured, grids, stages


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
        return lambda num, seed: (model.sample_numpy(np.arange(num) % model.config.num_classes, seed),
                                  np.arange(num) % model.config.num_classes)
    if isinstance(model, Generator):
        return lambda num, seed: (model.sample_numpy(num, seed), None)
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


def _samples_picture(picture):
    return {} if picture is None else {"samples.png": picture}


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
                                   lambda start, count: model.sample_numpy(count, settings.seed + start), 250)
        if not prefix:
            out.pictures.update(_samples_picture(pictures.samples_grid(fake)))
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
    (labels of the test split) are CAS's training set too. Its other samplers (a diffusion
    model's students) get the feature metrics."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    n = min(settings.samples or len(test_y), len(test_y))
    labels = test_y[stratified(test_y, n, settings.seed)].astype(np.int32)
    out = Measured()
    for name, prefix in _samplers_in_turn(model):
        with model.sampling_with(name):
            fake = _draw_in_stages(f"sampling {n} images ({name}; for the feature metrics"
                                   f"{' and CAS' if with_cas and not prefix else ''})", n,
                                   lambda start, count: model.sample_numpy(
                                       labels[start:start + count], settings.seed + start), 250)
        if not prefix:  # samples.png: the first samples measured of each class (3 s of drawing spared)
            out.pictures.update(_samples_picture(pictures.samples_grid(fake, labels, model.config.num_classes)))
        if extractor:
            measured = _score(fake, labels, splits, settings, extractor, True)
            out.metrics.update({prefix + k: v for k, v in measured.metrics.items()
                                if not prefix or k in SAMPLER_METRICS})
            out.reference.update(measured.reference)
            out.info.update(measured.info)
        if with_cas and not prefix:  # --eval-samples N: a quick CAS, CAS_EPOCHS over the N samples
            epochs = CAS_EPOCHS if settings.samples else max(CAS_EPOCHS, round(CAS_EPOCHS * len(train_y) / n))
            out.add(_cas(model, splits, settings, fake, labels, epochs))
    return out


def _cas(model, splits, settings, fake, labels, epochs):
    """Classification accuracy score: a classifier trained on the samples for ``epochs``, tested
    on real data, beside the same classifier trained on as many real images (its reference)."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    with stage(f"CAS: a classifier trained on {len(fake)} generated images ({epochs} epochs)"):
        measured = cas.train_and_test(fake, labels, test_x, test_y, model.config.num_classes, epochs,
                                      seed=settings.seed)
    key = data_key(splits, epochs=epochs, seed=settings.seed, n=len(fake), loop=cas.LOOP)

    def real_cas():
        index = matching_indices(train_y, labels, settings.seed)
        with stage(f"CAS reference: the same classifier trained on {len(index)} real images"):
            return cas.train_and_test(train_x[index], train_y[index], test_x, test_y, model.config.num_classes,
                                      epochs, seed=settings.seed)

    # Its standard error is the test images' binomial one (0.008 at 0.93 on 1,000): a classifier
    # of another seed moved it by less, 0.002 (bench/results/cas_samples.json)
    return Measured({"cas": measured, "cas_se": float(np.sqrt(measured * (1 - measured) / len(test_y)))},
                    {"cas": cached("cas-reference", key, real_cas)},
                    {"cas": {"samples": len(fake), "epochs": epochs,
                             "standard_error": f"binomial over the {len(test_y)} test images"}})
