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
    (lambda p: (write_images(p / "a", 3), write_images(p / "b", 3, size=(9, 9))), "the images have more than one size"),
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


def store_as_tfds(data_dir, name, images, labels=None, splits=("train",)):
    """A dataset as a user makes one with tfds.dataset_builders.store_as_tfds_dataset (no
    supervised_keys; a train split alone, usually)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = {"image": tfds.features.Image(shape=images.shape[1:])}
    examples = {"image": images}
    if labels is not None:
        features["label"] = tfds.features.ClassLabel(names=[f"c{i}" for i in range(labels.max() + 1)])
        examples["label"] = labels
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version="1.0.0", features=tfds.features.FeaturesDict(features), data_dir=str(data_dir),
        split_datasets={s: tf.data.Dataset.from_tensor_slices(examples) for s in splits})


def test_tensorflow_datasets_made_by_store_as_tfds_dataset_labelled_or_not(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8), np.arange(30) % 3
    store_as_tfds(tmp_path, "mine", images, labels)
    info = data.info("mine", str(tmp_path), {"test_fraction": 0.2, "seed": 1})
    assert (info.num_classes, info.class_names, info.num_examples) == (3, ("c0", "c1", "c2"), {"train": 24, "test": 6})
    assert info.read_as["split_by"] == "0.2 of each class held out (seed 1)"
    splits = data.splits("mine", str(tmp_path), {"test_fraction": 0.2, "seed": 1})
    x, y = splits.stored_test
    assert x.dtype == np.uint8 and sorted(y.tolist()) == [0, 0, 1, 1, 2, 2]
    assert all(any(np.array_equal(a, b) for b in images[labels == c]) for a, c in zip(x, y))  # the pixels as stored
    store_as_tfds(tmp_path, "mine_unlabelled", images, splits=("train", "test"))
    info = data.info("mine_unlabelled", str(tmp_path))
    assert (info.num_classes, info.num_examples, info.read_as) == (1, {"train": 30, "test": 30}, None)
    assert set(data.splits("mine_unlabelled", str(tmp_path)).train[1]) == {0}


def test_evaluation_reads_a_fixed_subset_of_a_large_split_and_training_the_uint8_images(tmp_path):
    """100,000 images are held as uint8 for training; evaluation reads 10,000 of them as floats."""
    index = np.arange(12_000)
    images = np.stack([index // 256, index % 256, index % 256, index % 256], -1).astype(np.uint8).reshape(-1, 2, 2, 1)
    splits = data.Splits((images[:50], np.zeros(50, np.int32)), (images, (index % 7).astype(np.int32)))
    x, y = splits.train
    read = (np.round(x[:, 0, 0, 0] * 255) * 256 + np.round(x[:, 0, 1, 0] * 255)).astype(int)
    assert x.dtype == np.float32 and len(read) == data.EVALUATION_LIMIT == 10_000
    assert np.all(np.diff(read) > 0) and np.array_equal(y, read % 7)  # distinct examples, in order, labels kept
    assert np.array_equal(splits.train[0], x) and len(splits.test[1]) == 50
    batch = next(iter(data.training_batches(images, np.zeros(12_000, np.int32), 4, seed=0, first_epoch=0, epochs=1)))
    assert batch[0].dtype == "float32" and float(batch[0].numpy().max()) <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("recipe, shape, classes, message", [
    ("cgan", (8, 8), 101, "--data {npz} has 101 classes and the cgan draws at most 100 (each class needs samples of "
                          "its own to be measured): merge classes into at most that many folders, or train the vae, "
                          "ae or dae"),
    ("vae", (30, 30), 2, "images of 30×30 cannot be used: the conv encoder halves them 2 times, so height and width "
                         "must be multiples of 4 (e.g. 24×24, 28×28, 32×32, 36×36): resize your images with "
                         "--image-size H W, or pick another dataset"),
])
def test_data_a_model_cannot_take_is_refused_in_one_line_before_training(tmp_path, recipe, shape, classes, message):
    np.savez(tmp_path / "mine.npz", images=np.zeros((4 * classes, *shape, 1), np.uint8),
             labels=np.arange(4 * classes) % classes)
    out = subprocess.run([sys.executable, os.path.join(REPO, "recipes", f"{recipe}.py"), "--preset", "tiny",
                          "--data", str(tmp_path / "mine.npz"), "--runs-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"{recipe}.py: error: " + message.format(npz=tmp_path / "mine.npz")]
    assert not (tmp_path / "runs" / recipe).exists()


@pytest.fixture(scope="module")
def tinted(tmp_path_factory):
    """Digits 0-2 tinted by class on 32×32×3, in class folders (40 each) and, unlabelled, in one folder."""
    root = tmp_path_factory.mktemp("tinted")
    x, y = data.mnist5k("train")
    tints = np.array([[1, 0.2, 0.2], [0.2, 1, 0.2], [0.2, 0.2, 1]], np.float32)
    for c in range(3):
        for i in np.flatnonzero(y == c)[:40]:
            image = Image.fromarray((np.pad(x[i], ((2, 2), (2, 2), (0, 0))) * tints[c] * 255).round().astype(np.uint8))
            for folder in (root / "labelled" / f"tint{c}", root / "unlabelled"):
                os.makedirs(folder, exist_ok=True)
                image.save(folder / f"{i}.png")
    return root


def tiny_run(recipe, data_path, out, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "recipes", f"{recipe}.py"), "--preset", "tiny",
                           "--data", str(data_path), "--out", str(out), "--runs-dir", str(out / "runs"), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("recipe, folder", [("dae", "unlabelled"), ("cgan", "labelled"), ("diffusion", "unlabelled")])
def test_recipes_train_on_a_folder_of_colour_images(tinted, tmp_path, recipe, folder):
    """Tiny presets from a folder of 32×32×3 images (every recipe meets 32×32×3 in
    test_datasets.py, and the VAE a folder below): the generators' exports draw colour images,
    and unlabelled images make a one-class export that says what that means."""
    from zoo.apps import pretrained

    out = tiny_run(recipe, tinted / folder, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    name = recipe
    card = json.loads((tmp_path / name / "model_card.json").read_text())
    assert card["data"]["image_shape"] == [32, 32, 3]
    assert card["data"]["num_classes"] == (3 if folder == "labelled" else 1)
    loaded = pretrained.load(str(tmp_path / name))
    if recipe == "cgan":
        assert card["data"]["class_names"] == ["tint0", "tint1", "tint2"]
        assert loaded.sample(labels=["tint2", "tint0"]).shape == (2, 32, 32, 3)
    if recipe == "diffusion":
        assert "96 training and 24 test images of 32×32×3, unlabelled: one class, so the diffusion draws without a " \
               "class of its own; its guidance is autoguidance (a guide network), which needs no labels" in out.stdout
        assert card["data"]["classes"].startswith("unlabelled: one class")
        assert loaded.sample(num=2).shape == (2, 32, 32, 3)
    if recipe == "dae":
        assert loaded.reconstruct(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 32, 32, 3)


@pytest.mark.slow
def test_a_dataset_stored_with_tensorflow_datasets_trains_a_recipe(tmp_path):
    x, y = data.mnist5k("train")
    keep = np.concatenate([np.flatnonzero(y == c)[:50] for c in range(3)])
    store_as_tfds(tmp_path / "tfds", "my_digits", (x[keep] * 255).round().astype(np.uint8), y[keep])
    # with a variant the float32 file's quality is measured too, on a test split of 15 images
    out = tiny_run("vae", "my_digits", tmp_path, "--data-dir", str(tmp_path / "tfds"), "--test-fraction", "0.1",
                   "--tflite-variants", "float16")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "zoo: my_digits: 135 training and 15 test images of 28×28×1, 3 classes (c0, c1, c2); test split: 0.1 of " \
           "each class held out (seed 0)" in out.stdout
    card = json.loads((tmp_path / "vae" / "model_card.json").read_text())
    assert card["data"]["read_as"] == {"test_fraction": 0.1, "seed": 0, "split_by": "0.1 of each class held out "
                                                                                    "(seed 0)"}
    assert card["data"]["size"] == 135 and card["data"]["evaluated_on"]["size"] == 15
    assert 0 <= card["tflite"]["vae.tflite"]["quality"]["anomaly_auc_proxy"] <= 1


@pytest.mark.slow
def test_the_mnist5k_digits_through_a_folder_train_the_same_model_as_through_mnist5k(tmp_path):
    """The same data through two doors: the 5,000 digits written as PNGs into train/ and test/
    class folders (in mnist5k's order) train the VAE to the same card as --data mnist5k, same
    seed: PNG keeps the uint8 pixels and uint8 / 255 is mnist5k's float32, bit for bit."""
    for split in ("train", "test"):
        x, y = data.mnist5k(split)
        for c in range(10):
            os.makedirs(tmp_path / "digits" / split / str(c))
        for i, (image, label) in enumerate(zip(x, y)):
            Image.fromarray((image[:, :, 0] * 255).round().astype(np.uint8)).save(
                tmp_path / "digits" / split / str(label) / f"{i:04d}.png")
    cards = {}
    for door in ("mnist5k", str(tmp_path / "digits")):
        out = tiny_run("vae", door, tmp_path / door.replace("/", "_"), "--eval-extractor", "zoo_mnist_classifier")
        assert out.returncode == 0, out.stderr[-3000:]
        cards[door] = json.loads((tmp_path / door.replace("/", "_") / "vae" / "model_card.json").read_text())
    folder, builtin = cards[str(tmp_path / "digits")], cards["mnist5k"]
    assert folder["data"]["read_as"]["split_by"] == "folders train/ and test/" and folder["data"]["size"] == 4000
    # class balance is read by the digit classifier, which zoo applies to mnist5k and mnist alone
    assert all("class_" in k for k in builtin["metrics"] if k not in folder["metrics"])
    assert "fid" in folder["metrics"] and set(folder["metrics"]) < set(builtin["metrics"])
    for name, value in folder["metrics"].items():
        assert value == pytest.approx(builtin["metrics"][name], rel=1e-6, abs=1e-9), name
