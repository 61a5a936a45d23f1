"""zoo/choices.py: what a recipe chooses after training, before it measures — on training data
only — and that measuring leaves the choice as it found it."""

import numpy as np
import pytest

from zoo.core import data
from zoo.evaluation import choices, measure, settings
from zoo.models.capabilities import Generator


class ThreeSamplers(Generator):
    """A generator whose samplers' FID and recall are set by hand (the extractor is stubbed)."""

    def __init__(self):
        self.in_use = "own"

    def samplers(self):
        return ("own", "sharp", "broad")

    def use_sampler(self, name):
        self.in_use = name

    def sampler_in_use(self):
        return self.in_use

    def sample_numpy(self, num, seed=0):
        return np.full((num, 28, 28, 1), self.samplers().index(self.in_use), np.float32)

    def measure(self, test, train):
        return {}


@pytest.mark.parametrize("measured, chosen", [
    ({"own": (300, 0.40), "sharp": (200, 0.30), "broad": (250, 0.45)}, "broad"),  # sharp covers too little
    ({"own": (300, 0.40), "sharp": (200, 0.40), "broad": (250, 0.45)}, "sharp"),  # equal recall is enough
    ({"own": (300, 0.40), "sharp": (350, 0.50), "broad": (400, 0.45)}, "own"),
])
def test_the_sampler_in_use_has_the_lowest_fid_among_those_covering_as_much_as_the_models_own(
        monkeypatch, measured, chosen):
    def stub(fake, real, **kwargs):
        fid, recall = measured[ThreeSamplers().samplers()[int(fake[0, 0, 0, 0])]]
        return {"fid": fid, "recall": recall}

    monkeypatch.setattr(choices.feature_metrics, "evaluate_samples", stub)
    splits = data.Splits((np.zeros((10, 28, 28, 1), np.float32), np.arange(10)),
                               (np.zeros((40, 28, 28, 1), np.float32), np.arange(40) % 10))
    model = ThreeSamplers()
    choice = choices.choose_sampler(model, splits, settings.EvaluationSettings(samples=10), "zoo_mnist_classifier")
    assert model.sampler_in_use() == chosen == choice["in_use"]
    assert choice["recall_against_training_images"] == {name: r for name, (_, r) in measured.items()}


def test_measuring_every_sampler_leaves_the_one_in_use(monkeypatch):
    """Evaluation is pure: it measures each sampler and puts the chosen one back."""
    seen = []

    def stub(fake, real, **kwargs):
        seen.append(int(fake[0, 0, 0, 0]))
        return {"fid": 1.0, "settings": {}, "feature_extractor": "stub"}

    monkeypatch.setattr(measure.feature_metrics, "evaluate_samples", stub)
    monkeypatch.setattr(measure, "real_reference", lambda *args, **kwargs: {})
    monkeypatch.setattr(measure, "class_balance", lambda *args: {})
    model = ThreeSamplers()
    model.use_sampler("sharp")
    splits = data.Splits((np.zeros((10, 28, 28, 1), np.float32), np.arange(10)),
                               (np.zeros((40, 28, 28, 1), np.float32), np.arange(40) % 10))
    measured = measure.evaluate_model(model, splits, settings.EvaluationSettings(samples=10))
    assert model.sampler_in_use() == "sharp" and sorted(seen) == [0, 0, 1, 1, 2, 2]  # zoo's features, the second's
    assert {"fid", "own_fid", "broad_fid", "independent_fid", "own_independent_fid"} <= set(measured.metrics)
