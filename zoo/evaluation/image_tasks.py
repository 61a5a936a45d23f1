"""The measurements of the image tasks a model can do besides generating: reconstruction
(errors, denoising PSNR, a linear probe on the codes), anomaly detection and inpainting."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.blocks import corruption
from zoo.core import distribute
from zoo.core.images import grid
from zoo.core.progress import stage
from zoo.evaluation.references import cached, data_key, stratified
from zoo.evaluation.settings import Measured, digit_classifier
from zoo.metrics import anomaly, core
from zoo.models.capabilities import AnomalyScorer


def _normal_test(model, splits):
    images, labels = splits.test
    k = model.held_out_class() if isinstance(model, AnomalyScorer) else None
    keep = np.ones(len(labels), bool) if k is None else labels != k
    return images[keep], labels[keep]


def reconstruction(model, splits):
    images, _ = _normal_test(model, splits)
    out = Measured()
    with stage(f"reconstructions of {len(images)} test images and {len(corruption.KINDS)} corruptions"):
        errors = core.reconstruction_errors(images, model.reconstruct_numpy(images))
        out.metrics["reconstruction_mse"], out.metrics["reconstruction_mae"] = errors["mse"], errors["mae"]
        for i, (kind, level) in enumerate(corruption.EVALUATION_LEVELS.items()):
            noisy = corruption.corrupt(tf.constant(images), kind, level, distribute.Draws([0, i]), 4).numpy()
            out.metrics[f"psnr_denoised_{kind}"] = float(np.mean(corruption.psnr(images,
                                                                                 model.reconstruct_numpy(noisy))))
            out.reference[f"psnr_denoised_{kind}"] = float(np.mean(corruption.psnr(images, noisy)))  # doing nothing
    train_x, train_y = splits.train
    test_x, test_y = splits.test
    if len(np.unique(train_y)) < 2:  # a user's unlabelled images: no classes to probe for
        return out
    with stage("linear probe on the codes"):
        out.metrics.update(anomaly.linear_probe(model.encode_numpy(train_x), train_y, model.encode_numpy(test_x),
                                                test_y, prefix="latent"))
    out.reference.update(cached("pixel-probe", data_key(splits), lambda: anomaly.linear_probe(
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
        metrics = anomaly.anomaly_detection(model.anomaly_score_numpy(test_x), is_anomaly, model.anomaly_score_numpy(validation))
        metrics["anomaly_auc_tflite"] = float(roc_auc_score(is_anomaly, model.anomaly_score_numpy(test_x, portable=True)))
        parts = model.anomaly_parts_numpy(test_x)
        metrics["anomaly_auc_by_part"] = {name: float(roc_auc_score(is_anomaly, v)) for name, v in parts.items()}
    info = {"anomaly": {"class": k, "threshold_from": f"{len(validation)} held-out normal training images",
                        "target_false_positive_rate": metrics.pop("anomaly_target_fpr")}}
    return Measured(metrics, {}, info)


# Test digits per mask and condition in a recipe run: 50, each accuracy with its binomial
# standard error (0.057 at 0.8). 100 took 165 s of the default diffusion run's 418-s evaluation
# (bench/results/evaluation_stages_diffusion.json); bench/inpainting.py measures all 1,000.
INPAINT_DIGITS = 50
PICTURE_DIGITS = 10  # the first measured digits drawn in inpainting.png


def inpainting_metrics(model, splits, digits=INPAINT_DIGITS, seed=0, masks=corruption.MASKS):
    """For each mask, fills of ``digits`` test digits without and with their label: the zoo
    classifier's accuracy against the original digit (``inpainting_accuracy_<mask>``,
    ``…_labelled``, each with ``_se``, its binomial standard error) and the PSNR of the filled
    pixels only; as the reference, the classifier on the masked input itself — what the kept
    pixels alone say; and inpainting.png: for each mask, the first digits' masked input,
    label-free fill and original (``Measured``)."""
    test_x, test_y = splits.test
    index = stratified(test_y, min(digits, len(test_y)), seed)
    images, labels = test_x[index], test_y[index]
    classifier = digit_classifier(splits)
    out = Measured(info={"inpainting": {"digits": len(images), "seed": seed, "masks": list(masks)}})
    rows = []
    for kind in masks:
        mask = corruption.inpainting_mask(kind, len(images), images.shape[1:], seed)
        hidden = (1 - mask).sum(axis=(1, 2, 3))
        with stage(f"inpainting {len(images)} test images, {kind.replace('_', ' ')} hidden, without and with the label"):
            fills = model.inpaint_with_and_without_label_numpy(images, mask, labels, seed)
        for filled, suffix in zip(fills, ("", "_labelled")):
            error = ((filled - images) ** 2 * (1 - mask)).sum(axis=(1, 2, 3)) / np.maximum(hidden, 1)
            out.metrics[f"inpainting_psnr_{kind}{suffix}"] = float(np.mean(10 * np.log10(1 / np.maximum(error,
                                                                                                         1e-10))))
            if classifier is not None:
                right = classifier.probabilities(filled).argmax(1) == labels
                out.metrics[f"inpainting_accuracy_{kind}{suffix}"] = float(np.mean(right))
                out.metrics[f"inpainting_accuracy_{kind}{suffix}_se"] = float(np.std(right) / np.sqrt(len(right)))
        if classifier is not None:
            baseline = float(np.mean(classifier.probabilities(images * mask).argmax(1) == labels))
            out.reference[f"inpainting_accuracy_{kind}"] = baseline
            out.reference[f"inpainting_accuracy_{kind}_labelled"] = baseline
        k = min(PICTURE_DIGITS, len(images))
        rows += [images[:k] * mask[:k] + 0.5 * (1 - mask[:k]), fills[0][:k], images[:k]]
    out.pictures["inpainting.png"] = grid(np.concatenate(rows), rows=len(rows))
    return out


def inpainting(model, splits, settings):
    # a run that evaluates fewer samples (--eval-samples) fills fewer digits too
    return inpainting_metrics(model, splits, min(INPAINT_DIGITS, settings.samples or INPAINT_DIGITS),
                              seed=settings.seed)
