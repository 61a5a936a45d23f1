"""Feature extractors for the feature-based metrics. Numbers from different extractors are
never comparable, so every result carries the extractor's ``name``.

- ``zoo_mnist_classifier``: the CNN trained by ``recipes/classifier.py``; its weights ship in
  the package, so MNIST-like metrics work offline and are the same everywhere.
- ``inception_v3``: Keras' ImageNet InceptionV3 (2048-d pool features, 1000-way softmax),
  the usual choice for natural images. Its numbers are *not* comparable with published FIDs,
  which use the TF1 2015 Inception graph.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from zoo.core import distribute
from zoo.core.errors import ZooError

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# The shipped digit classifiers: the one behind every feature metric, and a second one built
# differently (three levels of 16/32/64 filters against two of 32/64, its own seed), trained apart,
# whose features tell when a ranking of models belongs to one feature space.
CLASSIFIERS = {"zoo_mnist_classifier": "mnist_classifier", "second_mnist_classifier": "second_mnist_classifier"}
CLASSIFIER_WEIGHTS = os.path.join(WEIGHTS_DIR, "mnist_classifier.weights.h5")
CLASSIFIER_CARD = os.path.join(WEIGHTS_DIR, "mnist_classifier.json")
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"


def check_images(images, what="images"):
    images = np.asarray(images)
    if images.ndim != 4:
        raise ZooError(f"{what} must be NHWC, rank 4; got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ZooError(f"{what} must be float in [0, 1]; got dtype {images.dtype} (divide uint8 pixels by 255)")
    if not np.all(np.isfinite(images)):
        raise ZooError(f"{what} contain NaN or Inf")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise ZooError(f"{what} must be in [0, 1]; got values in [{low:.3g}, {high:.3g}]")
    return images.astype(np.float32, copy=False)


class Extractor:
    """Maps images (float32 NHWC in [0, 1]) to features and class probabilities, in batches."""

    name = "extractor"
    batch_size = 500

    def _features(self, images):
        raise NotImplementedError

    def _probabilities(self, images):
        raise NotImplementedError

    def _batched(self, fn, images):
        images = check_images(images)
        return np.concatenate([np.asarray(fn(tf.constant(images[i:i + self.batch_size])))
                               for i in range(0, len(images), self.batch_size)]).astype(np.float64)

    def features(self, images):
        return self._batched(self._features, images)

    def probabilities(self, images):
        return self._batched(self._probabilities, images)


class ClassifierExtractor(Extractor):
    """A ``nets.classifier`` network: its pooled convolutional features, softmax probabilities."""

    def __init__(self, network, name="zoo_mnist_classifier", accuracy=None):
        self.network = network
        self.name, self.accuracy = name, accuracy  # its test accuracy: how far its features can be trusted
        self._features = tf.function(lambda x: network(x, training=False)["features"])
        self._probabilities = tf.function(lambda x: tf.nn.softmax(network(x, training=False)["logits"]))
        self._maps = None

    def feature_maps(self, images):
        """Activations of every convolution (for LPIPS-style distances)."""
        if self._maps is None:
            import keras

            convs = [layer.output for layer in self.network.layers if isinstance(layer, keras.layers.Conv2D)]
            self._maps = keras.Model(self.network.input, convs)
        return self._maps(images)


def _paths(name):
    stem = os.path.join(WEIGHTS_DIR, CLASSIFIERS[name])
    return stem + ".weights.h5", stem + ".json"


def shipped_weights(name):
    """Where a shipped classifier's weights are (they may be absent: see recipes/classifier.py)."""
    return _paths(name)[0]


def ship_classifier(network, config, card, name="zoo_mnist_classifier"):
    """Write a trained ``nets.classifier`` network's weights and a small card into the package."""
    weights, card_path = _paths(name)
    os.makedirs(WEIGHTS_DIR, exist_ok=True)
    tmp = weights + ".tmp.weights.h5"
    network.save_weights(tmp)
    os.replace(tmp, weights)
    shipped = {"config": config, "data": card.get("data"), "metrics": card.get("metrics"),
               "training": {k: card["training"][k] for k in ("epochs", "steps", "seconds")},
               "versions": card.get("versions")}
    with open(card_path + ".tmp", "w") as f:
        json.dump(shipped, f, indent=2)
    os.replace(card_path + ".tmp", card_path)
    return weights


_CLASSIFIER_EXTRACTORS = {}


def shipped_classifier(name="zoo_mnist_classifier"):
    """A shipped digit classifier as an extractor (loaded once)."""
    if name not in _CLASSIFIER_EXTRACTORS:
        from zoo.blocks import nets

        weights, card_path = _paths(name)
        if not os.path.exists(weights):
            raise ZooError(f"the {name} weights are missing ({weights}); run `python recipes/classifier.py --ship` "
                           "to make them")
        with open(card_path) as f:
            shipped = json.load(f)
        c = shipped["config"]
        with distribute.float32_policy():  # a measuring instrument: float32 even inside a bfloat16 run
            network = nets.classifier(tuple(c["image_shape"]), c["num_classes"], tuple(c["filters"]), c["hidden"],
                                      name=name)
        network.load_weights(weights)
        _CLASSIFIER_EXTRACTORS[name] = ClassifierExtractor(network, name, (shipped.get("metrics") or {}).get("accuracy"))
    return _CLASSIFIER_EXTRACTORS[name]


def zoo_classifier():
    """The classifier behind zoo's feature metrics."""
    return shipped_classifier("zoo_mnist_classifier")


class InceptionV3Extractor(Extractor):
    """ImageNet InceptionV3 from keras.applications: images resized to 299×299, grayscale
    repeated to RGB, scaled to [-1, 1]; features = 2048-d average pool; probabilities = the
    1000-way softmax."""

    name = "inception_v3"
    batch_size = 50

    def __init__(self, weights="auto"):
        import keras

        if weights == "auto":
            weights = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models",
                                   INCEPTION_FILE)
        if weights is not None and not os.path.exists(weights):
            raise ZooError(
                f"InceptionV3 ImageNet weights not found at {weights}; download {INCEPTION_FILE} "
                "(keras.applications.InceptionV3(weights='imagenet') does it on a machine with "
                "network) and put it there or pass its path"
            )
        with distribute.float32_policy():
            net = keras.applications.InceptionV3(include_top=True, weights=weights)
        self.net = keras.Model(net.input, [net.get_layer("avg_pool").output, net.output])

        @tf.function
        def run(images):
            if images.shape[-1] == 1:
                images = tf.image.grayscale_to_rgb(images)
            images = tf.image.resize(images, (299, 299), method="bilinear")
            return self.net(images * 2.0 - 1.0, training=False)

        self._run = run
        self._features = lambda x: run(x)[0]
        self._probabilities = lambda x: run(x)[1]


class ExportedClassifierExtractor(Extractor):
    """A classifier export (``python recipes/classifier.py --data DIR``: a folder with its card and
    SavedModel) as the extractor of a user's domain: its ``classify`` signature's pooled features
    and probabilities, what the zoo's own digit classifier gives for MNIST."""

    def __init__(self, folder):
        with open(os.path.join(folder, "model_card.json")) as f:
            card = json.load(f)
        if card.get("model") != "classifier" or "classify" not in card.get("signatures", {}):
            raise ZooError(f"--eval-extractor {folder} is a {card.get('model')} export, not a classifier's: make one "
                           "with python recipes/classifier.py --data DIR")
        serving = os.path.join(folder, "serving")
        version = max((v for v in os.listdir(serving) if v.isdigit()), key=int)
        self.classify = tf.saved_model.load(os.path.join(serving, version)).signatures["classify"]
        self.name, self.accuracy = os.path.abspath(folder), card.get("metrics", {}).get("accuracy")
        self.image_shape = tuple(card["data"]["image_shape"])
        self._features = lambda x: self.classify(images=x)["features"]
        self._probabilities = lambda x: self.classify(images=x)["probabilities"]


def get(name_or_extractor):
    if isinstance(name_or_extractor, Extractor):
        return name_or_extractor
    if isinstance(name_or_extractor, str) and os.path.isfile(os.path.join(name_or_extractor, "model_card.json")):
        return ExportedClassifierExtractor(name_or_extractor)
    if name_or_extractor in ("zoo_mnist_classifier", "classifier", None):
        return zoo_classifier()
    if name_or_extractor in CLASSIFIERS:
        return shipped_classifier(name_or_extractor)
    if name_or_extractor == "inception_v3":
        return InceptionV3Extractor()
    raise ZooError(f"unknown feature extractor {name_or_extractor!r}; use zoo_mnist_classifier, "
                   "second_mnist_classifier, inception_v3 or a classifier export folder")
