"""samples.png: drawn from the samples the evaluation measured, a row per class, and drawn anew
only where the measurement had too few."""

import numpy as np
import pytest

from zoo.core import data
from zoo.core.images import grid
from zoo.evaluation import measure, pictures, settings
from zoo.models.capabilities import ConditionalGenerator, Generator


def test_a_row_of_the_first_samples_of_each_class():
    labels = np.arange(100)[::-1] % 10  # not in class order
    samples = (labels + np.arange(100) / 1000)[:, None, None, None] * np.ones((1, 28, 28, 1), np.float32)
    picture = pictures.samples_grid(samples, labels, 10)
    first = [np.flatnonzero(labels == c)[:8] for c in range(10)]
    np.testing.assert_array_equal(picture, grid(samples[np.concatenate(first)], rows=10))
    assert picture[2 + 3 * 30 + 5, 2 + 5, 0] == pytest.approx(3 + first[3][0] / 1000)  # row 3: class 3
    assert pictures.samples_grid(samples[:75], labels[:75], 10) is None  # class 4 has 7
    assert pictures.samples_grid(samples[:63]) is None and pictures.samples_grid(samples).shape == (242, 242, 1)


class Counting(ConditionalGenerator):
    """A conditional generator that draws each image as its label plus its draw's index/1000."""

    class config:
        num_classes = 10

    def __init__(self):
        self.drawn = 0

    def sample_numpy(self, labels, seed=0):
        labels = np.asarray(labels)
        self.drawn += len(labels)
        return (labels + (seed + np.arange(len(labels))) / 1000)[:, None, None, None].astype(np.float32) * np.ones(
            (1, 28, 28, 1), np.float32)

    def measure(self, test, train):
        return {}

    def extra_pictures(self, images, labels):
        return {}


class Unconditional(Generator):
    def sample_numpy(self, num, seed=0):
        return np.full((num, 28, 28, 1), 0.5, np.float32)

    def measure(self, test, train):
        return {}

    def extra_pictures(self, images, labels):
        return {}


def test_samples_png_is_drawn_from_the_samples_measured(monkeypatch):
    monkeypatch.setattr(measure, "_score", lambda *args: measure.Measured())
    monkeypatch.setattr(measure, "_cas", lambda *args: measure.Measured())
    x = np.zeros((200, 28, 28, 1), np.float32)
    splits = data.Splits((x, np.arange(200) % 10), (x, np.arange(200) % 10))
    model = Counting()
    measured = measure.evaluate_model(model, splits, settings.EvaluationSettings(samples=100))
    assert model.drawn == 100
    picture = measured.pictures["samples.png"]
    assert picture[2 + 4 * 30 + 5, 2 + 5, 0] == pytest.approx(4, abs=0.1)  # row 4: class 4's samples
    assert "samples.png" not in pictures.export_pictures(model, splits, measured.pictures) and model.drawn == 100
    # too few measured (5 per class): the export draws 8 of each class itself
    few = measure.evaluate_model(model, splits, settings.EvaluationSettings(samples=50))
    assert "samples.png" not in few.pictures
    assert pictures.export_pictures(model, splits, few.pictures)["samples.png"].shape == (302, 242, 1)
    assert model.drawn == 100 + 50 + 80
    assert measure.evaluate_model(Unconditional(), splits, settings.EvaluationSettings(samples=64)).pictures[
        "samples.png"].shape == (242, 242, 1)
