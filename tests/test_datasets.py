"""Beyond MNIST: every recipe end to end on fashion_mnist (28×28×1) and cifar10 (32×32×3)
through tensorflow-datasets' mock data (no network), and image sizes an architecture cannot
take refused before training."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import TINY
from test_recipe import RECIPES, fails, load_recipe

from zoo import recipe
from zoo.core import data

# the recipes' tiny presets, batches the mock data has
QUICK = [*TINY, "--batch-size", "16", "--eval-samples", "32"]
DATASETS = {"fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
# Fashion-MNIST through one recipe: its images have MNIST's shape, which every other test
# uses, and its loading is the same for every model (each other model's case took ~22 s of the
# suite, diffusion's 176 s); CIFAR-10's 32×32×3 through every recipe but diffusion, whose
# 32×32×3 run (60 s) test_own_data.py makes from a folder of colour images.
CASES = [pytest.param(name, dataset, shape, id=f"{name}-{dataset}") for name in RECIPES
         for dataset, shape in DATASETS.items() if (dataset == "cifar10" and name != "diffusion") or name == "vae"]


@pytest.mark.slow
@pytest.mark.parametrize("name, dataset, shape", CASES)
def test_every_recipe_runs_on_other_datasets(name, dataset, shape, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "network_available", lambda: True)
    argv = ["--data", dataset, "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs"),
            *QUICK]
    with tfds.testing.mock_data(num_examples=64, data_dir=str(tmp_path / "tfds")):
        result = recipe.main(load_recipe(name).MODEL, argv=argv)
    card = result.card
    assert card["data"]["name"] == dataset and card["data"]["image_shape"] == list(shape)
    assert card["training"]["steps"] == 2
    for lite, entry in card["tflite"].items():
        if entry["variant"] == "float32":
            assert max(entry["max_abs_difference"].values()) <= 1e-3, lite
    assert os.path.isdir(result.written["saved_model"])
    out = capsys.readouterr().out
    if name in ("vae", "cgan", "diffusion"):
        # The zoo classifier knows digits only; InceptionV3's weights are not on this machine.
        assert "zoo: skipping the feature metrics: InceptionV3 ImageNet weights not found" in out
        assert card["feature_extractor"] is None and "fid" not in card["metrics"]


@pytest.mark.parametrize("shape, network", [((30, 30, 1), "the conv encoder"), ((218, 178, 3), "the conv encoder")])
def test_image_sizes_an_architecture_cannot_take_are_refused_before_training(shape, network, monkeypatch, capsys,
                                                                           tmp_path):
    info = data.DataInfo("odd", shape, 10, {"train": 64, "test": 16})
    monkeypatch.setattr(data, "info", lambda name, data_dir=None, read_as=None: info)
    monkeypatch.setattr(data, "stored", lambda name, split, data_dir=None, read_as=None: (
        np.zeros((64 if split == "train" else 16, *shape), np.uint8), np.zeros(64 if split == "train" else 16,
                                                                               np.int32)))
    line = fails(capsys, ["--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs")], "vae")
    assert f"images of {shape[0]}×{shape[1]} cannot be used: {network} halves them 2 times" in line
    assert "multiples of 4 (e.g." in line
    assert not (tmp_path / "runs" / "vae").exists()
