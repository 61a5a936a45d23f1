"""``zoo.load``: a trained model in one line, its capabilities as plain methods on NumPy arrays.

    import zoo
    cgan = zoo.load("cgan")                        # a shipped model, by name (exported/cgan)
    digits = cgan.sample(labels=[3, 1, 4], seed=0)  # [3, 28, 28, 1] float32 in [0, 1]
    vae = zoo.load("path/to/exported/vae", runtime="tflite")
    model = zoo.load("vae", runtime="keras").model  # the keras.Model, to fine-tune

Backed by the export's SavedModel (default), its TFLite file (``runtime="tflite"``, any kept
``variant``), or the Keras model rebuilt from the card's config and the weights the
SavedModel stores (``runtime="keras"``). Every input is checked against the card's
description of it before a call: a wrong value is one line (``ZooError``), whatever runtime
computes the answer.
"""

from __future__ import annotations

import os

import numpy as np

from zoo.core.errors import ZooError
from zoo.core.signature import Input
from zoo.export.folder import ExportFolder

# The folder of the models shipped with the zoo: exported/ beside the package, in a checkout.
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "exported")
RUNTIMES = ("savedmodel", "tflite", "keras")


def shipped_models():
    """The names of the shipped models (their folders under ``SHIPPED``)."""
    if not os.path.isdir(SHIPPED):
        return []
    return sorted(d for d in os.listdir(SHIPPED) if os.path.isfile(os.path.join(SHIPPED, d, "model_card.json")))


def find(name_or_path):
    """The export folder a name or path means: a folder, else a shipped model's name."""
    if os.path.isdir(name_or_path):
        return ExportFolder(name_or_path)
    if os.sep not in name_or_path and name_or_path in shipped_models():
        return ExportFolder(os.path.join(SHIPPED, name_or_path))
    shipped = ", ".join(shipped_models()) or f"none: {SHIPPED} holds no export"
    raise ZooError(f"{name_or_path!r} is neither a shipped model ({shipped}) nor an export folder")


def load(name_or_path, runtime="savedmodel", variant="float32", version=None):
    """The model of a shipped name (``"cgan"``) or an export folder, as a ``Pretrained``."""
    if runtime not in RUNTIMES:
        raise ZooError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    return Pretrained(find(name_or_path), runtime, variant, version)


def keras_model(folder, version=None):
    """The Keras model of an export: built from its card's config, in float32, with the
    weights its SavedModel stores; the networks trained for a weight average start from it."""
    from zoo.core.distribute import float32_policy
    from zoo.models.base import model_class

    folder = folder if isinstance(folder, ExportFolder) else ExportFolder(folder)
    card = folder.version_card(version)
    cls = model_class(card["model"])
    fields = cls.Config.defaults()
    with float32_policy():
        model = cls(cls.Config.from_dict({k: v for k, v in card["config"].items() if k in fields}))
    index = folder.stored_weights(version)
    stored = folder.saved_model(version).model_weights  # the SavedModel root's list, in the index's order
    weights = model.weights
    for entry, value in zip(index, stored):
        if entry["index"] >= len(weights) or list(weights[entry["index"]].shape) != list(value.shape):
            raise ZooError(f"{folder.folder} stores weight {entry['path']} {entry['shape']} that a {cls.__name__} "
                           "built from its card does not have: export it again with this version of zoo")
        weights[entry["index"]].assign(value)
    model.start_from_averages()
    return model


class Pretrained:
    """A loaded model. ``card``: its model card; ``model``: the Keras model (runtime keras)."""

    def __init__(self, folder, runtime="savedmodel", variant="float32", version=None):
        self.folder, self.runtime, self.variant = folder, runtime, variant
        self.name, self.card = folder.name, folder.version_card(version) if runtime != "tflite" else folder.card
        self.model = self._serving = self._lite = None
        if runtime == "savedmodel":
            self._serving = folder.saved_model(version)
        elif runtime == "tflite":
            from zoo.export import tflite

            self._lite = tflite.File(folder.tflite_path(variant))
        else:
            self.model = keras_model(folder, version)

    def __repr__(self):
        return f"<zoo model {self.name} ({self.runtime}) from {self.folder.folder}>"

    # What it can do ------------------------------------------------------------------------
    def signatures(self):
        """The signatures this runtime can call, name → input descriptions."""
        if self.runtime == "tflite":
            entry = self.card["tflite"][self.folder.variants()["float32"]]
            return {n: s["inputs"] for n, s in entry.get("signatures", {}).items()}
        return {n: s["inputs"] for n, s in self.card["signatures"].items()}

    def _need(self, signature, method):
        have = self.signatures()
        if signature not in have:
            can = sorted(m for m, calls in _METHODS.items() if calls(self) in have)
            who = f"{self.name}'s TFLite file" if self.runtime == "tflite" else self.name
            raise ZooError(f"{who} cannot {method} (it can: {', '.join(can) or 'nothing'})")
        return [Input.from_description(n, d) for n, d in have[signature].items()]

    def _checked(self, signature, method, values):
        """The values as arrays of the card's dtypes, or one line saying what is wrong."""
        out = {}
        for spec in self._need(signature, method):
            value, problem = spec.validate(values[spec.name], method)
            if problem:
                raise ZooError(problem)
            out[spec.name] = value
        return out

    def _call(self, signature, values, output, batch=500):
        """One signature over ``values`` in pieces of ``batch``: SavedModel or TFLite."""
        if self._lite is not None:
            return self._lite.batched(signature, output, values, batch)
        import tensorflow as tf

        fn = self._serving.signatures[signature]
        n = len(next(iter(values.values())))
        return np.concatenate([fn(**{k: tf.constant(v[i:i + batch]) for k, v in values.items()})[output].numpy()
                               for i in range(0, n, batch)])

    # The capabilities ----------------------------------------------------------------------
    def sample(self, labels=None, num=None, seed=0, steps=None):
        """New images: one per label for a conditional model (``labels``), else ``num``;
        deterministic for ``seed``. ``steps``: a distilled diffusion student's step count."""
        signature = _step_signature("generate" if self.runtime == "tflite" else "sample", steps)
        inputs = self._need(signature, "sample")
        conditional = any(i.role == "labels" for i in inputs)
        if conditional == (labels is None):
            raise ZooError(f"{self.name} samples {'for labels: pass labels=' if conditional else 'without labels: drop labels='}")
        labels = None if labels is None else np.atleast_1d(np.asarray(labels))
        n = len(labels) if conditional else (16 if num is None else num)
        if not isinstance(n, (int, np.integer)) or not 1 <= n <= 4096:
            raise ZooError(f"sample: num must be an integer in [1, 4096], got {num!r}")
        if self.model is not None:
            return self._keras_sample(labels, int(n), seed, steps)
        if self.runtime == "savedmodel":
            values = {"seed": np.int32(seed), **({"labels": labels} if conditional else {"num": np.int32(n)})}
            checked = self._checked(signature, "sample", values)
            import tensorflow as tf

            out = self._serving.signatures[signature](**{k: tf.constant(v) for k, v in checked.items()})
            return out["images"].numpy()
        rng = np.random.default_rng(seed)
        values = {i.name: i.draw(rng, n, labels if i.role == "labels" else None) for i in inputs}
        return self._call(signature, self._checked(signature, "sample", values), "images")

    def _keras_sample(self, labels, n, seed, steps):
        from zoo.models.capabilities import ConditionalGenerator, Generator

        if steps is not None:
            checked = self._checked(_step_signature("sample", steps), "sample", {"labels": labels, "seed": np.int32(seed)})
            with self.model.sampling_with(f"student_{steps}_steps"):
                return self.model.sample_numpy(checked["labels"], seed)
        if isinstance(self.model, ConditionalGenerator):
            return self.model.sample_numpy(self._checked("sample", "sample", {
                "labels": labels, "seed": np.int32(seed)})["labels"], seed)
        if isinstance(self.model, Generator):
            return self.model.sample_numpy(n, seed)
        raise ZooError(f"{self.name} does not generate")

    def reconstruct(self, images):
        """decode(encode(images)): the autoencoders' (and the denoising one's) output."""
        images = self._checked("reconstruct", "reconstruct", {"images": images})["images"]
        return self.model.reconstruct_numpy(images) if self.model is not None else self._call(
            "reconstruct", {"images": images}, "images")

    def encode(self, images):
        """The codes of images (the VAE: the mean of q(z|x))."""
        images = self._checked("encode", "encode", {"images": images})["images"]
        if self.model is not None:
            return self.model.encode_numpy(images)
        output = "mean" if "mean" in self.card["signatures"]["encode"]["outputs"] else "latent"
        return self._call("encode", {"images": images}, output)

    def decode(self, codes):
        codes = self._checked("decode", "decode", {"latent": codes})["latent"]
        return self.model.decode_numpy(codes) if self.model is not None else self._call(
            "decode", {"latent": codes}, "images")

    def anomaly_score(self, images):
        """One score per image, higher for images unlike the training data (the card's
        ``evaluation.anomaly_score`` says how it was chosen)."""
        images = self._checked("anomaly_score", "anomaly_score", {"images": images})["images"]
        return self.model.anomaly_score_numpy(images) if self.model is not None else self._call(
            "anomaly_score", {"images": images}, "score")

    def inpaint(self, images, mask, labels=None, seed=0):
        """Fill the pixels where ``mask`` is 0 (1: keep). Without ``labels`` the model
        chooses each image's label from the kept pixels first."""
        specs = self._need("inpaint", "inpaint")
        images = np.asarray(images)
        if images.ndim < 1:
            raise ZooError(f"inpaint: images must be an array of shape [N, ...], got {images!r}")
        labels = np.full(len(images), self._null_label(), np.int32) if labels is None else np.asarray(labels)
        values = {"images": images, "mask": mask, "labels": labels}
        if self.model is not None:
            checked = self._checked("inpaint", "inpaint", {**values, "noise": np.zeros_like(images, np.float32)})
            return self.model.inpaint_numpy(checked["images"], checked["mask"], checked["labels"], seed)
        rng = np.random.default_rng(seed)
        values.update({i.name: i.draw(rng, len(images)) for i in specs if i.name not in values})
        return self._call("inpaint", self._checked("inpaint", "inpaint", values), "images", batch=100)

    def _null_label(self):
        return self.card["data"]["num_classes"]


def _step_signature(base, steps):
    return base if steps is None else f"{base}_{steps}_steps"


# method → the signature it calls on a runtime (for the "it can" list)
_METHODS = {
    "sample": lambda p: "generate" if p.runtime == "tflite" else "sample",
    "reconstruct": lambda p: "reconstruct",
    "encode": lambda p: "encode",
    "decode": lambda p: "decode",
    "anomaly_score": lambda p: "anomaly_score",
    "inpaint": lambda p: "inpaint",
}
