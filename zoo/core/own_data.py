"""A user's own images as a dataset: a folder (``--data DIR``) or a NumPy file
(``--data FILE.npz``), by Keras' conventions (``keras.utils.image_dataset_from_directory``).

    DIR/cat/*.png, DIR/dog/*.jpg       labelled: classes 0..N−1 in sorted order of the folder names
    DIR/*.png                          unlabelled (one class)
    DIR/train/…, DIR/test/…            the splits, when both are there; otherwise a held-out
                                       fraction (``test_fraction``) chosen by the seed
    FILE.npz                           ``images`` [N, H, W, C] (uint8, or floats in [0, 1]),
                                       optional ``labels`` [N] and ``class_names``

Images are PNG, JPEG, BMP or GIF (the first frame), decoded by tf.data in parallel and kept as
uint8. Their size is their own when all agree (else ``image_size`` must say it); their colour
is grayscale when every image is, else RGB (``color_mode`` overrides). Every problem — an empty
folder, a file that is no image (named), mixed sizes, a one-image class, labels that do not
match — is one ``DataError`` line, before anything trains.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from zoo.core.errors import ZooError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLOR_MODES = ("grayscale", "rgb")


class DataError(ZooError):
    pass


def is_own(name):
    """Whether ``--data`` names a folder or a NumPy file rather than a dataset (a
    tensorflow-datasets name may hold a "/": ``cifar10_corrupted/brightness_1``)."""
    return name.endswith(".npz") or os.path.exists(name) or name.startswith((".", "/", "~"))


@dataclasses.dataclass(frozen=True)
class OwnData:
    train: tuple  # (uint8 images [N, H, W, C], int32 labels)
    test: tuple
    class_names: tuple  # () when unlabelled
    split_by: str  # "folders", or how the test split was held out

    @property
    def image_shape(self):
        return tuple(self.train[0].shape[1:])

    @property
    def num_classes(self):
        return max(1, len(self.class_names))


def _images_in(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, f)))


def _listing(folder):
    """(files, labels, class names) of a folder: its class subfolders, or its own images."""
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
                     and not d.startswith("."))
    if not classes:
        files = _images_in(folder)
        if not files:
            raise DataError(f"--data {folder}: no images (PNG, JPEG, BMP, GIF) and no class folders in it")
        return files, np.zeros(len(files), np.int32), ()
    files, labels = [], []
    for label, name in enumerate(classes):
        found = _images_in(os.path.join(folder, name))
        if len(found) < 2:
            raise DataError(f"--data {folder}: class folder {name!r} holds {len(found)} image(s); a class needs at "
                            "least 2 (one to train on, one to test)")
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, np.int32), tuple(classes)


def _decoded(files, image_size, channels):
    """uint8 [N, H, W, C] of ``files``, decoded in parallel by tf.data straight into one array
    (no list of images beside it: 100,000 of 64×64×3 are 1.2 GB; bench/results/own_data.json);
    the first frame of a GIF. A file that cannot be decoded is named."""
    import tensorflow as tf

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        if image_size is not None:
            image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, image_size, antialias=True)), 0, 255),
                            tf.uint8)
        return image

    ds = tf.data.Dataset.from_tensor_slices(files).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    images, done = None, 0
    try:
        for image in ds.as_numpy_iterator():
            if images is None:
                images = np.empty((len(files), *image.shape), np.uint8)
            elif image.shape != images.shape[1:]:
                (h, w), (h2, w2) = images.shape[1:3], image.shape[:2]
                raise DataError(f"--data: the images have more than one size ({h}×{w} in {files[0]}, {h2}×{w2} in "
                                f"{files[done]}): pass --image-size H W to resize them all")
            images[done] = image
            done += 1
    except tf.errors.InvalidArgumentError:
        # the map keeps the files' order
        raise DataError(f"--data: {files[done]} is not an image zoo can read (corrupt or truncated, or not PNG, JPEG, "
                        "BMP, GIF): remove or replace it") from None
    return images


def _color(images, color_mode, chunk=4096):
    """The images in the colour mode asked for, or their own (grayscale if every image is);
    chunk by chunk, so that no float or boolean copy of them all is made."""
    parts = range(0, len(images), chunk)
    gray = images.shape[-1] == 1 or all(np.all(images[i:i + chunk, ..., :1] == images[i:i + chunk]) for i in parts)
    mode = color_mode or ("grayscale" if gray else "rgb")
    if mode == "grayscale" and images.shape[-1] == 3:
        import tensorflow as tf

        out = np.empty((*images.shape[:-1], 1), np.uint8)
        for i in parts:
            out[i:i + chunk] = tf.image.rgb_to_grayscale(images[i:i + chunk])
        return out
    if mode == "rgb" and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    return images


def _held_out(labels, fraction, seed):
    """(train indices, test indices, how) with ``fraction`` of each class held out, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test[rng.choice(members, max(1, round(fraction * len(members))), replace=False)] = True
    return np.flatnonzero(~test), np.flatnonzero(test), f"{fraction:g} of each class held out (seed {seed})"


def _check_counts(path, labels):
    counts = np.bincount(labels)
    if counts.min(initial=len(labels)) < 2 or len(labels) < 2:
        raise DataError(f"--data {path}: every class needs at least 2 images (one to train on, one to test); "
                        f"class {int(np.argmin(counts))} has {counts.min()}")


def with_test_held_out(path, images, labels, names, fraction, seed):
    """The ``OwnData`` of images that come without a test split (an .npz, a tensorflow-datasets
    train split alone): ``fraction`` of each class held out by ``seed``."""
    _check_counts(path, labels)
    train, test, how = _held_out(labels, fraction, seed)
    return OwnData((images[train], labels[train]), (images[test], labels[test]), names, how)


def _from_folder(folder, image_size, color_mode):
    """(images, labels, class names) of one folder of images."""
    files, labels, names = _listing(folder)
    return _color(_decoded(files, image_size, 3), color_mode), labels, names


def _split_folder(path, image_size, color_mode, test_fraction, seed):
    """A folder without train/ and test/: the held-out files are chosen from the listing and
    decoded after the training files, so that both splits are views of one array."""
    files, labels, names = _listing(path)
    _check_counts(path, labels)
    train, test, how = _held_out(labels, test_fraction, seed)
    order = np.concatenate([train, test])
    images = _color(_decoded([files[i] for i in order], image_size, 3), color_mode)
    n = len(train)
    return OwnData((images[:n], labels[train]), (images[n:], labels[test]), names, how)


def _as_uint8(images, where):
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"--data {where}: images must be numbers, got {images.dtype}")
    if np.issubdtype(images.dtype, np.integer):
        if images.min() < 0 or images.max() > 255:
            raise DataError(f"--data {where}: integer images must be in [0, 255], got [{images.min()}, {images.max()}]")
        return images.astype(np.uint8)
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise DataError(f"--data {where}: float images must be in [0, 1] (uint8 for [0, 255]), got "
                        f"[{np.nanmin(images):g}, {np.nanmax(images):g}]")
    return np.round(images * 255).astype(np.uint8)


def _from_npz(path, image_size, color_mode):
    try:
        found = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"--data {path} is not a readable .npz file ({e})") from None
    if "images" not in found:
        raise DataError(f"--data {path} holds {', '.join(found.files) or 'nothing'}; it needs an array named images "
                        "([N, H, W, C]) and may have labels ([N])")
    images = found["images"]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise DataError(f"--data {path}: images must be [N, H, W, 1 or 3] with N ≥ 1, got {list(images.shape)}")
    images = _as_uint8(images, path)
    labels = np.zeros(len(images), np.int32) if "labels" not in found else found["labels"]
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(f"--data {path}: labels must be {len(images)} class ids ≥ 0 (one per image), got "
                        f"{labels.dtype} {list(labels.shape)}")
    names = tuple(str(n) for n in found["class_names"]) if "class_names" in found else (
        tuple(str(c) for c in range(int(labels.max()) + 1)) if "labels" in found else ())
    if names and labels.max() >= len(names):
        raise DataError(f"--data {path}: label {labels.max()} has no class name ({len(names)} class_names)")
    if image_size is not None:
        import tensorflow as tf

        images = np.asarray(tf.cast(tf.clip_by_value(tf.round(tf.image.resize(images, image_size, antialias=True)),
                                                     0, 255), tf.uint8))
    return _color(images, color_mode), labels.astype(np.int32), names


def read(path, image_size=None, color_mode=None, test_fraction=0.2, seed=0):
    """The ``OwnData`` of a folder or an .npz file."""
    if not os.path.exists(path):
        raise DataError(f"--data {path}: no such folder or file (a folder of images, an .npz file, mnist5k or a "
                        "tensorflow-datasets name)")
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise DataError(f"--color-mode must be one of {', '.join(COLOR_MODES)}, got {color_mode!r}")
    if os.path.isfile(path):
        if not path.endswith(".npz"):
            raise DataError(f"--data {path} is a file but not an .npz file: give a folder of images or an .npz")
        return with_test_held_out(path, *_from_npz(path, image_size, color_mode), test_fraction, seed)
    if all(os.path.isdir(os.path.join(path, s)) for s in ("train", "test")):
        train, test = (_from_folder(os.path.join(path, s), image_size, color_mode) for s in ("train", "test"))
        if train[2] != test[2] or train[0].shape[1:] != test[0].shape[1:]:
            raise DataError(f"--data {path}: train/ and test/ must hold the same class folders and image sizes, got "
                            f"{list(train[2])} {list(train[0].shape[1:])} and {list(test[2])} {list(test[0].shape[1:])}")
        return OwnData(train[:2], test[:2], train[2], "folders train/ and test/")
    return _split_folder(path, image_size, color_mode, test_fraction, seed)
