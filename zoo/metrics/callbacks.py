"""Keras integration: metrics that accumulate across batches, and a callback that scores
generated samples during training."""

from __future__ import annotations

import keras
import numpy as np

from zoo.metrics import core, extractors, feature_metrics


class FeatureMetric(keras.metrics.Metric):
    """Accumulates extractor outputs of generated images batch by batch (eagerly) and
    computes a metric against fixed real images at ``result()``.

    ``kind``: fid | kid | inception_score | precision | recall | density | coverage |
    classifier_accuracy. FID keeps float64 streaming sums only; the others keep features.
    """

    def __init__(self, kind, real_images, extractor=None, name=None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.extractor = extractors.get(extractor)
        real = self.extractor.features(real_images)
        self.real_features = real
        if kind == "fid":
            self.real_stats = core.GaussianStats().update(real).mean_cov()
        self.reset_state()

    def reset_state(self):
        self._stats = core.GaussianStats()
        self._features, self._probabilities, self._labels = [], [], []

    def update_state(self, images, labels=None, sample_weight=None):
        images = np.asarray(images)
        if self.kind == "fid":
            self._stats.update(self.extractor.features(images))
        elif self.kind in ("inception_score", "classifier_accuracy"):
            self._probabilities.append(self.extractor.probabilities(images))
            if labels is not None:
                self._labels.append(np.asarray(labels))
        else:
            self._features.append(self.extractor.features(images))

    def result(self):
        if self.kind == "fid":
            return core.frechet_distance_from_stats(*self.real_stats, *self._stats.mean_cov())
        if self.kind == "inception_score":
            p = np.concatenate(self._probabilities)
            return core.inception_score(p, splits=min(10, len(p)))[0]
        if self.kind == "classifier_accuracy":
            return core.classifier_accuracy(np.concatenate(self._probabilities), np.concatenate(self._labels))
        fake = np.concatenate(self._features)
        if self.kind == "kid":
            size = core.kid_subset_size(len(fake), len(self.real_features))
            return core.kernel_distance(self.real_features, fake, 100, size)[0]
        return core.neighbourhood_metrics(self.real_features, fake)[self.kind]


class GenerativeMetricsCallback(keras.callbacks.Callback):
    """Every ``every`` epochs: draw samples with ``draw(num, seed) -> (images, labels or
    None)``, score them against the real images, put the numbers into ``logs`` (so History,
    TensorBoard and CSV see them, as ``gen_<metric>``) and print them. Place it before those
    callbacks. (``zoo.evaluation.measure.sampler(model)`` gives a zoo model's ``draw``.)"""

    def __init__(self, draw, real_images, real_labels=None, every=1, num_samples=None, extractor=None, seed=0):
        super().__init__()
        self.draw, self.real_images, self.real_labels = draw, real_images, real_labels
        self.every, self.num_samples, self.seed = every, num_samples or len(real_images), seed
        self.extractor = extractor or feature_metrics.default_extractor(real_images.shape[1:])

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images, labels = self.draw(self.num_samples, self.seed)
        metrics = feature_metrics.CONDITIONAL if labels is not None else feature_metrics.UNCONDITIONAL
        result = feature_metrics.evaluate_samples(images, self.real_images, extractor=self.extractor, metrics=metrics,
                                           fake_labels=labels, real_labels=self.real_labels, bootstrap=0)
        numbers = {f"gen_{k}": v for k, v in result.items() if isinstance(v, float)}
        if logs is not None:
            logs.update(numbers)
        print(f"\nepoch {epoch + 1} ({result['feature_extractor']}): "
              + ", ".join(f"{k[4:]} {v:.4g}" for k, v in numbers.items()))
