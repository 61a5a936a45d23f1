"""How an evaluation is made (its settings, the feature extractor they resolve to) and what
every evaluation returns (``Measured``: the card's metrics, their real-data floors, how they were made)."""

from __future__ import annotations

import dataclasses

from zoo.core.errors import ZooError
from zoo.metrics import extractors, feature_metrics


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
        if settings.extractor != "auto":
            return None, str(e)
        return None, f"{e}; or, offline, measure in a classifier of your own labelled images: python " \
            "recipes/classifier.py --data DIR --out X, then --eval-extractor X/classifier (docs/own-data.md)"
    return name, None


def digit_classifier(splits):
    """The zoo classifier when the data is MNIST digits (for accuracy-type numbers), else None."""
    if feature_metrics.default_extractor(splits.image_shape, splits.data_name) == "zoo_mnist_classifier":
        return extractors.zoo_classifier()
    return None


@dataclasses.dataclass
class Measured:
    """What an evaluation returns: the card's ``metrics``, their real-data floors
    (``reference``), how they were made (``info``, the card's ``evaluation``) and the pictures
    of what was measured (``pictures``: name → grid, for the export folder)."""

    metrics: dict = dataclasses.field(default_factory=dict)
    reference: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)
    pictures: dict = dataclasses.field(default_factory=dict)

    def add(self, other):
        self.metrics.update(other.metrics)
        self.reference.update(other.reference)
        self.info.update(other.info)
        self.pictures.update(other.pictures)
        return self
