"""An export folder as a client sees it (``exported/<model>/``): its card, its SavedModel
versions, its TFLite files and their input descriptions. What the ``zoo`` command line,
``zoo.load`` and the web page work from — the model's code is not needed."""

from __future__ import annotations

import json
import os
import re

from zoo.core.errors import ZooError
from zoo.core.signature import Input
from zoo.export import tflite


def check_batches(signature, values, inputs):
    """Every batched input of one call holds the same number of examples (a signature would
    quietly use the shortest or fail deep in a graph)."""
    sizes = {i.name: len(values[i.name]) for i in inputs if i.batched and i.name in values}
    if len(set(sizes.values())) > 1:
        said = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise ZooError(f"{signature}: its inputs must hold one entry per example, got {said}")


def samplers_of(card, signatures, base="sample"):
    """Step count → the signature among ``signatures`` that draws with that many network steps:
    ``base`` itself (``sample``, or TFLite's ``generate``: the config's ``sample_steps``),
    ``<base>_dpm_solver`` (``dpm_solver_steps``), each distilled student's ``<base>_<n>_steps``.
    Empty for a model that draws in one call."""
    config, found = card.get("config", {}), {}
    for name in signatures:
        if name == base and config.get("sample_steps"):
            found[config["sample_steps"]] = name
        elif name == f"{base}_dpm_solver" and config.get("dpm_solver_steps"):
            found.setdefault(config["dpm_solver_steps"], name)
        elif re.fullmatch(rf"{base}_\d+_steps", name):
            found.setdefault(int(name.split("_")[-2]), name)
    return dict(sorted(found.items(), reverse=True))


class ExportFolder:
    def __init__(self, folder):
        folder = os.path.abspath(folder)
        if not os.path.isdir(folder):
            raise ZooError(f"{folder} is not a folder; give an export folder such as exported/vae")
        card_path = os.path.join(folder, "model_card.json")
        if not os.path.isfile(card_path) or not os.path.isdir(os.path.join(folder, "serving")):
            found = [d for d in sorted(os.listdir(folder))
                     if os.path.isfile(os.path.join(folder, d, "model_card.json"))]
            hint = f" (it holds the exports {', '.join(found)}: pass one of them)" if found else ""
            raise ZooError(f"{folder} is not a zoo export: it has no model_card.json and serving/{hint}")
        self.folder = folder
        with open(card_path) as f:
            self.card = json.load(f)
        self.name = self.card["model"]

    # SavedModel -------------------------------------------------------------------------
    def versions(self):
        serving = os.path.join(self.folder, "serving")
        return sorted(int(v) for v in os.listdir(serving) if v.isdigit())

    def version_dir(self, version=None):
        versions = self.versions()
        if version is None:
            version = versions[-1]
        if version not in versions:
            raise ZooError(f"{self.name} has versions {versions}, not {version}")
        return os.path.join(self.folder, "serving", str(version))

    def version_card(self, version=None):
        """The card exported with a version (each version folder keeps its own)."""
        with open(os.path.join(self.version_dir(version), "assets.extra", "model_card.json")) as f:
            return json.load(f)

    def saved_model(self, version=None):
        import tensorflow as tf

        return tf.saved_model.load(self.version_dir(version))

    # TFLite -------------------------------------------------------------------------------
    def variants(self):
        """Kept variant → its TFLite file name, float32 first."""
        entries = self.card.get("tflite", {})
        return {e.get("variant", "float32"): f for f, e in entries.items() if e.get("kept", True)}

    def variant_named(self, text):
        """The variant a caller means: its name (``float16``), its file's suffix (``fp16``) or
        its file's name (``vae_fp16.tflite``), as the card's files are named."""
        by_suffix = {suffix.lstrip("_"): variant for variant, suffix in tflite.VARIANTS.items() if suffix}
        for entry_file, entry in self.card.get("tflite", {}).items():
            if text == entry_file:
                return entry.get("variant", "float32")
        return by_suffix.get(text, text)

    def samplers(self, signatures, base="sample"):
        """Step count → signature (``samplers_of`` this export's card)."""
        return samplers_of(self.card, signatures, base)

    def tflite_path(self, variant="float32"):
        variants = self.variants()
        if not variants:
            raise ZooError(f"{self.name} has no TFLite file")
        variant = self.variant_named(variant)
        if variant not in variants:
            dropped = {e["variant"]: e.get("reason", "") for e in self.card.get("tflite", {}).values()
                       if not e.get("kept", True)}
            why = f" ({variant} was dropped: {dropped[variant]})" if variant in dropped else ""
            raise ZooError(f"{self.name} has no {variant!r} TFLite variant{why}; it has {', '.join(variants)}")
        return os.path.join(self.folder, variants[variant])

    def tflite_inputs(self, signature, variant="float32"):
        """The Inputs of a TFLite signature, from the card."""
        variant = self.variant_named(variant)
        entry = self.card["tflite"][self.variants()["float32"]]
        described = entry.get("signatures", {}).get(signature)
        if described is None:
            raise ZooError(f"the {self.name} TFLite file has no {signature!r} signature; it has "
                           f"{', '.join(entry.get('signatures', {}))}")
        return [Input.from_description(name, d) for name, d in described["inputs"].items()]

    def saved_model_inputs(self, signature):
        described = self.card["signatures"].get(signature)
        if described is None:
            raise ZooError(f"{self.name} has no {signature!r} signature; it has {', '.join(self.card['signatures'])}")
        return [Input.from_description(name, d) for name, d in described["inputs"].items()]

    def web_files(self):
        """Kept fixed-batch TFLite files for the browser: file name → {variant, batch, bytes}."""
        return {f: e for f, e in self.card.get("web", {}).items() if e.get("kept")}

    def stored_weights(self, version=None):
        """The index of a version's stored weights: for each, its index among the model's
        weights, its path and shape — in the order of the SavedModel's ``model_weights``, what a
        Keras model is rebuilt from (``zoo.pretrained``)."""
        folder = self.version_dir(version)
        index = os.path.join(folder, "assets.extra", "weights.json")
        if not os.path.isfile(index):
            raise ZooError(f"{self.name} version {os.path.basename(folder)} stores no weights index (an export of an "
                           "earlier format): export it again with its recipe")
        with open(index) as f:
            return json.load(f)

    def run_tflite(self, signature, inputs, variant="float32"):
        """One call of a TFLite signature after every input passed the card's checks (TFLite
        files carry none: a label out of range or NaN noise would be used silently)."""
        checked = {}
        for i in self.tflite_inputs(signature, variant):
            if i.name not in inputs:
                raise ZooError(f"{signature} needs input {i.name}")
            value, problem = i.validate(inputs[i.name], signature)
            if problem:
                raise ZooError(problem)
            checked[i.name] = value
        check_batches(signature, checked, self.tflite_inputs(signature, variant))
        return tflite.File(self.tflite_path(variant))(signature, **checked)
