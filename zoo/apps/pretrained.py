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

from zoo.apps import remote
from zoo.core.errors import ZooError
from zoo.core.signature import Input
from zoo.export.folder import ExportFolder, check_batches, samplers_of

RUNTIMES = ("savedmodel", "tflite", "keras")  # and "rest", for a URL
MAX_BATCH = 4096  # the ``num`` bound of the sample signatures; a call with more labels is refused too
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the shipped models are: in an installed wheel, zoo/shipped/ (setup.py copies exported/
# there); in a checkout (an editable install), exported/ beside the package.
SHIPPED_PLACES = (os.path.join(_PACKAGE, "shipped"), os.path.join(os.path.dirname(_PACKAGE), "exported"))


def _exports_in(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, "model_card.json")))


def shipped_folder():
    """The folder of the shipped models in this install (None: none found)."""
    return next((place for place in SHIPPED_PLACES if _exports_in(place)), None)


def shipped_models():
    """The names of the shipped models."""
    folder = shipped_folder()
    return _exports_in(folder) if folder else []


def find(name_or_path):
    """The export folder a name or path means: a folder, else a shipped model's name."""
    if os.path.isdir(name_or_path):
        return ExportFolder(name_or_path)
    if os.sep in name_or_path or (os.altsep and os.altsep in name_or_path):
        raise ZooError(f"{name_or_path} is not a folder; give an export folder such as exported/vae, or a shipped "
                       f"model's name ({', '.join(shipped_models()) or 'none here'})")
    folder = shipped_folder()
    if name_or_path in shipped_models():
        return ExportFolder(os.path.join(folder, name_or_path))
    if folder is None:
        raise ZooError(f"{name_or_path!r} is neither a shipped model (none found: looked in "
                       f"{' and '.join(SHIPPED_PLACES)}) nor an export folder")
    raise ZooError(f"{name_or_path!r} is neither a shipped model ({', '.join(shipped_models())}) nor an export folder "
                   f"(the shipped models are in {folder})")


def load(name_or_path, runtime="savedmodel", variant=None, version=None):
    """The model of a shipped name (``"cgan"``), an export folder or a TF Serving endpoint's URL
    (``http://127.0.0.1:8080/v1/models/cgan``: ``zoo serve``, TF Serving, KServe), as a
    ``Pretrained``. ``variant``: a TFLite file (``float16`` or its file's ``fp16``), with
    ``runtime="tflite"``; ``version``: a SavedModel version (the TFLite files are the latest's)."""
    if runtime not in RUNTIMES:
        raise ZooError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if variant is not None and runtime != "tflite":
        raise ZooError(f"variant={variant!r} chooses a TFLite file: pass runtime='tflite' too (the {runtime} runtime "
                       "computes in float32)")
    if version is not None and runtime == "tflite":
        raise ZooError("version= chooses a SavedModel version; the TFLite files are the latest version's")
    if remote.is_url(name_or_path):
        if runtime != "savedmodel":
            raise ZooError(f"a URL is served by its SavedModel: drop runtime={runtime!r}")
        return Pretrained(None, "rest", "float32", version, url=name_or_path)
    return Pretrained(find(name_or_path), runtime, variant or "float32", version)


def describe_steps(samplers, base):
    """"20 (guided DDIM, the default), 10 (DPM-Solver++), 4, 2 (distilled students)"."""
    def kind(signature):
        return ("the default" if signature == base else "DPM-Solver++" if signature.endswith("_dpm_solver")
                else "a distilled student")
    return ", ".join(f"{steps} ({kind(signature)})" for steps, signature in samplers.items())


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
    """A loaded model. ``card``: its model card; ``model``: the Keras model (runtime keras),
    compiled with its card's learning rate, so that ``model.fit(images, labels)`` fine-tunes it."""

    def __init__(self, folder, runtime="savedmodel", variant="float32", version=None, url=None):
        self.folder, self.runtime = folder, runtime
        self.model = self._serving = self._lite = self._remote = None
        if runtime == "rest":
            self._remote = remote.RemoteModel(url, version)
            self.variant, self.card, self.name = "float32", self._remote.card, self._remote.card["model"]
            return
        self.variant = folder.variant_named(variant)
        self.name, self.card = folder.name, folder.version_card(version) if runtime != "tflite" else folder.card
        if runtime == "savedmodel":
            self._serving = folder.saved_model(version)
        elif runtime == "tflite":
            from zoo.export import tflite

            self._lite = tflite.File(folder.tflite_path(self.variant))
        else:
            self.model = keras_model(folder, version)
            self.model.configure_optimizers(self.card["config"].get("learning_rate", 1e-3),
                                            epochs=self.card.get("training", {}).get("epochs"))  # its stage plan

    def __repr__(self):
        where = self._remote.url if self._remote else self.folder.folder
        return f"<zoo model {self.name} ({self.runtime}) from {where}>"

    # What it can do ------------------------------------------------------------------------
    def signatures(self):
        """The signatures this runtime can call, name → input descriptions."""
        if self.runtime == "tflite":
            entry = self.card["tflite"][self.folder.variants()["float32"]]
            return {n: s["inputs"] for n, s in entry.get("signatures", {}).items()}
        return {n: s["inputs"] for n, s in self.card["signatures"].items()}

    @property
    def conditional(self):
        """Whether ``sample`` takes labels (one image per label) rather than ``num``."""
        roles = self.signatures().get(_METHODS["sample"](self), {}).values()
        return any(i.get("role") == "labels" for i in roles)

    def steps(self):
        """Step count → the signature ``sample`` calls with ``steps=`` that count (empty for a
        model that draws in one call)."""
        return samplers_of(self.card, self.signatures(), "generate" if self.runtime == "tflite" else "sample")

    def _need(self, signature, method):
        have = self.signatures()
        if signature not in have:
            can = sorted(m for m, calls in _METHODS.items() if calls(self) in have)
            who = f"{self.name}'s TFLite file" if self.runtime == "tflite" else self.name
            raise ZooError(f"{who} cannot {method} (it can: {', '.join(can) or 'nothing'})")
        return [Input.from_description(n, d) for n, d in have[signature].items()]

    def _checked(self, signature, method, values):
        """The values as arrays of the card's dtypes, or one line saying what is wrong."""
        out, specs = {}, self._need(signature, method)
        for spec in specs:
            value, problem = spec.validate(values[spec.name], method)
            if problem:
                raise ZooError(problem)
            out[spec.name] = value
        check_batches(method, out, specs)
        return out

    def _invoke(self, signature, values):
        """One call of a signature on this runtime: output name → array."""
        if self._lite is not None:
            return self._lite(signature, **values)
        if self._remote is not None:
            return self._remote(signature, values)
        import tensorflow as tf

        outputs = self._serving.signatures[signature](**{k: tf.constant(v) for k, v in values.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    def _call(self, signature, values, outputs, batch=500):
        """One signature over ``values`` in pieces of ``batch`` (a server's limit at most): the
        named outputs, each concatenated."""
        batch = min(batch, self._remote.max_batch) if self._remote else batch
        n = len(next(v for v in values.values() if np.ndim(v)))
        parts = [self._invoke(signature, {k: v[i:i + batch] if np.ndim(v) else v for k, v in values.items()})
                 for i in range(0, n, batch)]
        return tuple(np.concatenate([np.asarray(part[o]) for part in parts]) for o in outputs)

    # The capabilities ----------------------------------------------------------------------
    def sample(self, labels=None, num=None, seed=0, steps=None):
        """New images: one per label for a conditional model (``labels``), else ``num``
        (default 16); deterministic for ``seed``. ``steps``: draw with the sampler of that many
        network steps (``steps()`` lists them: diffusion's DDIM, DPM-Solver++, students)."""
        signature = self._sampler(steps)
        inputs = self._need(signature, "sample")
        conditional = any(i.role == "labels" for i in inputs)
        n, labels = self._how_many(conditional, labels, num)
        seed = self._checked_seed(seed)
        if self.model is not None:
            return self._keras_sample(signature, steps, labels, n, seed)
        if self.runtime in ("savedmodel", "rest"):  # the signature draws from the seed
            values = {"seed": seed, **({"labels": labels} if conditional else {"num": np.int32(n)})}
            return self._invoke(signature, self._checked(signature, "sample", values))["images"]
        rng = np.random.default_rng(int(seed) & 0xFFFFFFFF)  # a negative seed too
        values = {i.name: i.draw(rng, n, labels if i.role == "labels" else None) for i in inputs}
        return self._call(signature, self._checked(signature, "sample", values), ["images"])[0]

    def _sampler(self, steps):
        base = "generate" if self.runtime == "tflite" else "sample"
        if steps is None:
            return base
        have = self.steps()
        if not have:
            raise ZooError(f"{self.name} draws in one network call: it has no step counts to choose; drop steps=")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps not in have:
            raise ZooError(f"{self.name} samples with steps {describe_steps(have, base)}; got steps={steps!r}")
        return have[steps]

    def _how_many(self, conditional, labels, num):
        """(the number of images, the labels as an array) of a ``sample`` call."""
        if conditional and labels is None and num is not None and self.card.get("data", {}).get("num_classes") == 1:
            labels = np.zeros(self._count(num), np.int32)  # trained on unlabelled images: its one class
            num = None
        if conditional:
            if labels is None:
                raise ZooError(f"{self.name} draws one image per label: pass labels=[...]")
            if num is not None:
                raise ZooError(f"sample: pass labels= or num=, not both ({self.name} draws one image per label)")
            labels = self.label_ids(np.atleast_1d(np.asarray(labels)))
            if labels.ndim != 1 or not 1 <= len(labels) <= MAX_BATCH:
                raise ZooError(f"sample: labels must be a list of 1 to {MAX_BATCH} class ids, got "
                               f"{len(labels) if labels.ndim == 1 else f'shape {list(labels.shape)}'}")
            return len(labels), labels
        if labels is not None:
            raise ZooError(f"{self.name} draws without labels: drop labels= (num= says how many)")
        return self._count(16 if num is None else num), None

    @staticmethod
    def _count(num):
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or not 1 <= num <= MAX_BATCH:
            raise ZooError(f"sample: num must be an integer in [1, {MAX_BATCH}], got {num!r}")
        return int(num)

    def label_ids(self, labels):
        """Class names (a model trained on your folders: its card's ``class_names``) → ids;
        ids pass through."""
        if labels.dtype.kind not in "UO":
            return labels
        names = self.card.get("data", {}).get("class_names") or []
        unknown = sorted({str(x) for x in labels.ravel()} - set(names))
        if unknown:
            have = ", ".join(names) if names else f"none: its classes are ids 0–{self.card['data']['num_classes'] - 1}"
            raise ZooError(f"{self.name} has no class {', '.join(map(repr, unknown))}; its class names are {have}")
        return np.vectorize(names.index, otypes=[np.int32])(labels)

    @staticmethod
    def _checked_seed(seed):
        value, problem = Input("seed", "int32", batched=False).validate(seed, "sample")
        if problem:
            raise ZooError(problem)
        return value

    def _keras_sample(self, signature, steps, labels, n, seed):
        from zoo.models.capabilities import ConditionalGenerator, Generator

        if signature != "sample":  # the sampler's card name (zoo.models.diffusion.samplers)
            checked = self._checked(signature, "sample", {"labels": labels, "seed": seed})
            kind = "dpm_solver" if signature.endswith("_dpm_solver") else "student"
            with self.model.sampling_with(f"{kind}_{steps}_steps"):
                return self.model.sample_numpy(checked["labels"], int(seed))
        if isinstance(self.model, ConditionalGenerator):
            return self.model.sample_numpy(self._checked("sample", "sample", {
                "labels": labels, "seed": seed})["labels"], int(seed))
        if isinstance(self.model, Generator):
            return self.model.sample_numpy(n, int(seed))
        raise ZooError(f"{self.name} does not generate")

    def reconstruct(self, images):
        """decode(encode(images)): the autoencoders' (and the denoising one's) output."""
        images = self._checked("reconstruct", "reconstruct", {"images": images})["images"]
        return self.model.reconstruct_numpy(images) if self.model is not None else self._call(
            "reconstruct", {"images": images}, ["images"])[0]

    def encode(self, images):
        """The codes of images (the VAE: the mean of q(z|x))."""
        images = self._checked("encode", "encode", {"images": images})["images"]
        if self.model is not None:
            return self.model.encode_numpy(images)
        output = "mean" if "mean" in self.card["signatures"]["encode"]["outputs"] else "latent"
        return self._call("encode", {"images": images}, [output])[0]

    def decode(self, codes):
        codes = self._checked("decode", "decode", {"latent": codes})["latent"]
        return self.model.decode_numpy(codes) if self.model is not None else self._call(
            "decode", {"latent": codes}, ["images"])[0]

    def anomaly_score(self, images):
        """One score per image, higher for images unlike the training data (the card's
        ``evaluation.anomaly_score`` says how it was chosen)."""
        images = self._checked("anomaly_score", "anomaly_score", {"images": images})["images"]
        return self.model.anomaly_score_numpy(images) if self.model is not None else self._call(
            "anomaly_score", {"images": images}, ["score"])[0]

    def elbo(self, images):
        """The VAE's evidence lower bound of each image in nats (higher: more likely), a
        Monte-Carlo estimate with a fixed seed, as its ``elbo`` signature computes it."""
        images = self._checked("elbo", "elbo", {"images": images})["images"]
        if self.model is not None:
            import tensorflow as tf

            return self.model.graph(("elbo",), self.model.elbo_per_image)(tf.constant(images)).numpy()
        return self._call("elbo", {"images": images}, ["elbo"])[0]

    def inpaint(self, images, mask, labels=None, seed=0, return_labels=False):
        """Fill the pixels where ``mask`` is 0 (1: keep). Without ``labels`` the model
        chooses each image's label from the kept pixels first; ``return_labels``: also the
        labels each image was filled with (those given, or those chosen)."""
        specs = self._need("inpaint", "inpaint")
        images = np.asarray(images) if images is not None else None
        if images is None or images.ndim < 1:
            raise ZooError(f"inpaint: images must be an array of shape [N, ...], got {images!r}")
        if labels is not None and np.ndim(labels) == 1 and len(labels) != len(images):
            raise ZooError(f"inpaint: labels has {len(labels)} entries for {len(images)} images: give one label per "
                           "image, or none (the model chooses them)")
        labels = np.full(len(images), self._null_label(), np.int32) if labels is None else labels
        values = {"images": images, "mask": mask, "labels": labels}
        seed = self._checked_seed(seed)
        if self.model is not None:
            checked = self._checked("inpaint", "inpaint", {**values, "noise": np.zeros_like(images, np.float32)})
            filled, chosen = self.model.inpaint_numpy(checked["images"], checked["mask"], checked["labels"],
                                                      int(seed), with_labels=True)
        else:
            rng = np.random.default_rng(int(seed) & 0xFFFFFFFF)
            values.update({i.name: i.draw(rng, len(images)) for i in specs if i.name not in values})
            checked = self._checked("inpaint", "inpaint", values)
            filled, chosen = self._call("inpaint", checked, ["images", "labels"], batch=100)
        return (filled, chosen) if return_labels else filled

    def _null_label(self):
        if "num_classes" not in self.card.get("data", {}):
            raise ZooError(f"{self.name}'s endpoint does not say its classes: pass labels= to inpaint")
        return self.card["data"]["num_classes"]


# method → the signature it calls on a runtime (for the "it can" list)
_METHODS = {
    "sample": lambda p: "generate" if p.runtime == "tflite" else "sample",
    "reconstruct": lambda p: "reconstruct",
    "encode": lambda p: "encode",
    "decode": lambda p: "decode",
    "anomaly_score": lambda p: "anomaly_score",
    "elbo": lambda p: "elbo",
    "inpaint": lambda p: "inpaint",
}
