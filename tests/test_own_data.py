"""A user's own images (zoo/core/own_data.py): folders and .npz files read by Keras'
conventions, each problem one line before anything trains, and a recipe run on them end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from zoo import ZooError
from zoo.core import data, own_data
from zoo.core.own_data import DataError


def write_images(folder, count, size=(8, 8), rgb=False, ext="png", seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (*size, 3) if rgb else size, dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.{ext}"))


def test_class_folders_are_labels_in_sorted_order_and_a_fraction_of_each_is_held_out(tmp_path):
    write_images(tmp_path / "dog", 10, ext="jpg")
    write_images(tmp_path / "cat", 5, ext="bmp", seed=1)
    own = own_data.read(str(tmp_path), test_fraction=0.2, seed=3)
    assert own.class_names == ("cat", "dog") and own.image_shape == (8, 8, 1) and own.num_classes == 2
    assert own.train[0].dtype == np.uint8 and sorted(np.bincount(own.test[1])) == [1, 2]
    assert len(own.train[1]) + len(own.test[1]) == 15
    again = own_data.read(str(tmp_path), test_fraction=0.2, seed=3)
    assert np.array_equal(again.test[0], own.test[0])  # the held-out images are the seed's
    assert own_data.read(str(tmp_path), color_mode="rgb").image_shape == (8, 8, 3)
    assert own_data.read(str(tmp_path), image_size=(4, 6)).image_shape == (4, 6, 1)


def test_unlabelled_folders_train_and_test_folders_and_npz_files(tmp_path):
    write_images(tmp_path / "plain", 6, rgb=True, ext="gif")
    own = own_data.read(str(tmp_path / "plain"))
    assert own.class_names == () and own.num_classes == 1 and own.image_shape == (8, 8, 3)
    for split, n in (("train", 4), ("test", 2)):
        write_images(tmp_path / "split" / split / "a", n)
        write_images(tmp_path / "split" / split / "b", n, seed=1)
    own = own_data.read(str(tmp_path / "split"))
    assert len(own.train[1]) == 8 and len(own.test[1]) == 4 and own.split_by == "folders train/ and test/"
    floats = np.random.default_rng(0).uniform(0, 1, (10, 5, 5, 1)).astype(np.float32)
    np.savez(tmp_path / "f.npz", images=floats, labels=np.arange(10) % 2)
    own = own_data.read(str(tmp_path / "f.npz"))
    assert own.class_names == ("0", "1") and own.train[0].dtype == np.uint8
    recovered = np.concatenate([own.train[0], own.test[0]]).astype(np.float32) / 255
    assert np.abs(np.sort(recovered.ravel()) - np.sort(floats.ravel())).max() <= 0.5 / 255 + 1e-6
    # through zoo.core.data, as a recipe reads it
    info = data.info(str(tmp_path / "f.npz"), read_as={"seed": 0})
    assert info.num_classes == 2 and info.as_dict("train")["class_names"] == ["0", "1"]
    x, y = data.arrays(str(tmp_path / "f.npz"), "test", read_as={"seed": 0})
    assert x.dtype == np.float32 and x.max() <= 1 and len(x) == len(y)


@pytest.mark.parametrize("make, words", [
    (lambda p: os.makedirs(p), "no images (PNG, JPEG, BMP, GIF) and no class folders"),
    (lambda p: (write_images(p / "a", 3), (p / "a" / "bad.png").write_bytes(b"not an image")), "bad.png is not an image"),
    (lambda p: (write_images(p / "a", 3), write_images(p / "b", 3, size=(9, 9))), "the images have 2 sizes"),
    (lambda p: (write_images(p / "a", 3), write_images(p / "b", 1)), "class folder 'b' holds 1 image(s)"),
    (lambda p: np.savez(str(p) + ".npz", x=np.zeros(3)), "it needs an array named images"),
    (lambda p: np.savez(str(p) + ".npz", images=np.zeros((4, 8, 8, 1), np.uint8), labels=np.zeros(3, int)),
     "labels must be 4 class ids"),
    (lambda p: np.savez(str(p) + ".npz", images=np.full((4, 8, 8, 1), 3.0)), "float images must be in [0, 1]"),
    (lambda p: np.savez(str(p) + ".npz", images=np.full((4, 8, 8, 1), 300)), "integer images must be in [0, 255]"),
    (lambda p: np.savez(str(p) + ".npz", images=np.zeros((4, 8, 8, 2), np.uint8)), "images must be [N, H, W, 1 or 3]"),
])
def test_each_bad_input_is_one_line(tmp_path, make, words):
    target = tmp_path / "data"
    make(target)
    path = str(target) + ".npz" if os.path.exists(str(target) + ".npz") else str(target)
    with pytest.raises(DataError) as e:
        own_data.read(path)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_tensorflow_datasets_name_is_not_taken_for_a_path():
    assert not own_data.is_own("cifar10_corrupted/brightness_1") and not own_data.is_own("mnist")
    assert own_data.is_own("./my_pngs") and own_data.is_own("faces.npz")


@pytest.mark.slow
def test_recipes_train_on_a_folder_with_its_own_classifier_and_refuse_a_bad_one_in_one_line(tmp_path):
    """As a user runs it: a domain classifier on the folder (`recipes/classifier.py --data DIR`),
    then the cGAN on the same folder measured in that classifier's features (the card names it
    and its test accuracy) and sampled by class name; a folder with a broken file stops before
    training, exit 2."""
    from zoo.apps import cli, pretrained
    from zoo.core import data as zoo_data

    x, y = zoo_data.mnist5k("train")
    for c in (0, 1):
        os.makedirs(tmp_path / "digits" / f"digit{c}")
        for i in np.flatnonzero(y == c)[:40]:
            Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8)).save(tmp_path / "digits" / f"digit{c}" /
                                                                               f"{i}.png")

    def recipe(name, *args, runs="runs"):
        return subprocess.run([sys.executable, os.path.join(REPO, "recipes", f"{name}.py"), "--preset", "tiny",
                               "--data", str(tmp_path / "digits"), "--runs-dir", str(tmp_path / runs), *args],
                              capture_output=True, text=True, timeout=600)

    out = recipe("classifier", "--out", str(tmp_path / "domain"), "--steps-per-epoch", "10")
    assert out.returncode == 0, out.stderr[-3000:]
    out = recipe("cgan", "--out", str(tmp_path / "out"), "--eval-extractor", str(tmp_path / "domain" / "classifier"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "64 training and 16 test images of 28×28×1, 2 classes (digit0, digit1)" in out.stdout
    card = json.loads((tmp_path / "out" / "cgan" / "model_card.json").read_text())
    assert card["data"]["class_names"] == ["digit0", "digit1"] and card["data"]["read_as"]["test_fraction"] == 0.2
    assert card["feature_extractor"] == str(tmp_path / "domain" / "classifier") and "fid" in card["metrics"]
    assert 0 <= card["evaluation"]["feature_extractor_test_accuracy"] <= 1
    cgan = pretrained.load(str(tmp_path / "out" / "cgan"))
    assert cgan.sample(labels=["digit1", "digit0"]).shape == (2, 28, 28, 1)
    with pytest.raises(ZooError, match="cgan has no class 'cat'; its class names are digit0, digit1"):
        cgan.sample(labels=["cat"])
    cli.main(["sample", str(tmp_path / "out" / "cgan"), "--labels", "digit1,digit0", "-o", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").is_file()
    (tmp_path / "digits" / "digit1" / "broken.png").write_bytes(b"\x89PNG\r\n")
    out = recipe("vae", runs="runs2")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"vae.py: error: --data: {tmp_path / 'digits' / 'digit1' / 'broken.png'} is not an image zoo can read "
        "(corrupt or truncated, or not PNG, JPEG, BMP, GIF): remove or replace it"]
    assert not (tmp_path / "runs2" / "vae").exists()  # refused before training: no run folder
