"""The quality of TFLite files: the figures a model's files are measured and judged by
(which quantized variants ship)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from zoo.blocks import corruption, latent
from zoo.core import distribute
from zoo.core.errors import ZooError
from zoo.evaluation.references import stratified
from zoo.evaluation.settings import EvaluationSettings, digit_classifier, resolve_extractor
from zoo.export import tflite
from zoo.metrics import core, extractors
from zoo.models.capabilities import AnomalyScorer, ConditionalGenerator, Denoiser, Generator, Reconstructor


def _finite(outputs, signature):
    """``outputs``, or a ZooError when a TFLite file returned NaN or Inf (seen: a float16
    diffusion file): figures of NaN images mean nothing."""
    bad = int(np.sum(~np.isfinite(outputs).reshape(len(outputs), -1).all(axis=1)))
    if bad:
        raise ZooError(f"its {signature} returned NaN or Inf for {bad} of {len(outputs)} inputs")
    return outputs


# A generator's file is run two images per call: a dynamic-batch file's first call at a larger
# batch is slow (every loop tensor kept, tflite.interpreter), and diffusion's quality stage took
# 114 s at batch 100; the images are the same at every batch (bench/results/tflite_batch.json).
GENERATE_BATCH = 2
# Every core: the diffusion file's generate 86 → 59 ms per image on 2 cores (int8_dynamic 47 → 41),
# the images equal to the bit (bench/results/tflite_threads.json)
THREADS = os.cpu_count()


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
        model, splits, lite, out = self.model, self.splits, tflite.File(path, THREADS), {}
        test_x, test_y = splits.test
        generators = [name for name in self.signatures if name.startswith("generate")]  # a diffusion model's students too
        for name in generators if isinstance(model, (Generator, ConditionalGenerator)) else []:
            conditional = isinstance(model, ConditionalGenerator)
            prefix = "" if name == "generate" else f"{name}_"
            n = self.samples
            labels = test_y[stratified(test_y, n, 0)] if conditional else None
            fake = _finite(lite.batched(name, "images", self._inputs(name, n, labels), batch=GENERATE_BATCH), name)
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

            k = model.held_out_class()
            if k is not None:
                images, is_anomaly = test_x, test_y == k
            else:
                normal = test_x[:500]  # fewer in a small test split (a user's folder of 240 images)
                proxies = np.concatenate(list(latent.proxy_anomalies(test_x[:100]).values()))
                images = np.concatenate([normal, proxies])
                is_anomaly = np.r_[np.zeros(len(normal), bool), np.ones(len(proxies), bool)]
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
