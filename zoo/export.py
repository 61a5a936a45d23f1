"""SavedModel / TFLite / model card writer, generic over models.

A model declares its inference methods as ``zoo.signature.Signature``s (name, function,
typed inputs, whether it goes to TFLite); the exporter reads only those declarations. It
exports ``model.float32_copy()``: whatever precision trained the model, the files are
float32. It

1. converts the TFLite signatures (those whose randomness is an input) from a SavedModel
   of the unchecked functions with ``TFLiteConverter.from_saved_model`` — Assert ops are
   not TFLite built-ins — in child processes, which run while this one goes on;
2. writes every signature into a SavedModel (one trace each, ``_write_saved_model``); each
   serving input is checked in-graph (rank, shape, bounds, finite: ``Input.check``) so a bad
   request gets a clear InvalidArgument error instead of a crash deep inside the network;
3. runs both on one fixed input and records the max abs difference;
4. writes ``<model>.keras`` (config and weights, the averaged ones included: what
   ``keras.saving.load_model`` reloads after ``import zoo``, and what ``--init-from`` starts from);
5. writes the card and pictures, all inside a temporary folder that is moved into place
   at the end, so an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile
import uuid

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo import ZooError, tflite
from zoo import images as zoo_images
from zoo.progress import stage


def _checked(sig):
    def serve(*args):
        checked = {i.name: i.check(sig.name, x) for i, x in zip(sig.inputs, args)}
        return sig.fn(**checked)

    return tf.function(serve, input_signature=[i.spec(relaxed=True) for i in sig.inputs])


def _unchecked(sig, batch=None):
    """What goes to TFLite: no Assert ops (not TFLite built-ins), ``lite_fn`` where the
    signature has one; ``batch``: a fixed batch size (LiteRT.js needs static shapes)."""
    fn = sig.lite_fn or sig.fn

    def serve(*args):
        return fn(**{i.name: x for i, x in zip(sig.inputs, args)})

    return tf.function(serve, input_signature=[i.spec(batch=batch) for i in sig.inputs])


def _write_saved_model(signatures, path, make_fn):
    """The endpoints and the variables they use, nothing else. Tracking the whole Keras model
    as well (``archive.track``) made the saver trace its layers' functions and their
    gradients: measured on the browser test's two-level diffusion model, 289 traces and 56 s
    per write, 15 traces and 27 s without, and loading 15 → 7 s. Custom gradients are only
    needed to differentiate the loaded functions, which serving and conversion never do.

    Each endpoint is traced once, here, and saved as that trace. Handed a ``tf.function``
    (as ``keras.export.ExportArchive`` hands it), ``tf.saved_model.save`` traces it a second
    time, inside its save context, whose variable policy is part of the trace cache key:
    measured on the tiny-flag diffusion export, 9.6 s of the SavedModel's 33 s and 3.2 s of
    the TFLite source's. The endpoints are attributes too, called with positional inputs
    (``loaded.decode(latent)``), as ``ExportArchive`` made them; the first one is also
    ``serving_default``."""
    traces = {sig.name: make_fn(sig).get_concrete_function() for sig in signatures}
    root = tf.Module()
    for name, trace in traces.items():
        setattr(root, name, trace)
    used = {}
    for trace in traces.values():
        used.update({id(v): v for v in trace.variables})
    root.endpoint_variables = list(used.values())
    tf.saved_model.save(root, path, signatures={**traces, "serving_default": traces[signatures[0].name]},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def next_version(serving_dir):
    versions = [int(v) for v in os.listdir(serving_dir) if v.isdigit()] if os.path.isdir(serving_dir) else []
    return max(versions, default=0) + 1


def prepare_output_dir(out, flag="--out", what="the exported models"):
    """Fail before training when ``out`` cannot be written (a file, unwritable)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ZooError(f"{flag} {out!r} is a file; give a folder for {what}")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ZooError(f"{flag} {out!r} is not a writable folder ({e.strerror}); choose another") from None
    return out


def on_cpu():
    """Where the SavedModel side of a parity check runs: the CPU, in exact float32 like the
    TFLite interpreter. On a GPU, TensorFlow computes float32 matrix products and convolutions
    in TensorFloat-32 (10-bit mantissa) by default: on an H100 every recipe's export failed
    its parity check by 4e-4 to 8e-3 against tolerances of 1e-4 (measured; README, GPU)."""
    return tf.device("/CPU:0")


def reference_outputs(reference, signatures, batch=4, seed=0):
    """One fixed input per signature and what a loaded SavedModel (``reference``) computes
    from it: {signature: (inputs, outputs)}, NumPy — one side of a parity check."""
    rng = np.random.default_rng(seed)
    out = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, batch) for i in sig.inputs}
        with on_cpu():
            expected = reference.signatures[sig.name](**{k: tf.constant(v) for k, v in inputs.items()})
        out[sig.name] = (inputs, {k: v.numpy() for k, v in expected.items()})
    return out


def compare_tflite(tflite_path, references):
    """Max differences between a TFLite file's outputs and ``references``
    (``reference_outputs``), from one run of each: (absolute, relative) dicts, relative over
    max(1, the largest |output|), so a score in the hundreds is held to the same relative
    precision as an image in [0, 1]."""
    lite = tflite.File(tflite_path)
    absolute, relative = {}, {}
    for name, (inputs, expected) in references.items():
        got = lite(name, **inputs)
        absolute[name] = tflite.largest_difference(got, expected)
        relative[name] = tflite.largest_difference(got, expected, relative=True)
    return absolute, relative


def compare_saved_models(saved, references):
    """Max abs difference between a loaded SavedModel's signatures and ``references``
    (``reference_outputs`` of another), on the references' inputs."""
    result = {}
    for name, (inputs, expected) in references.items():
        with on_cpu():
            outputs = saved.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        result[name] = tflite.largest_difference({k: v.numpy() for k, v in outputs.items()}, expected)
    return result


def describe_signatures(serving, signatures, lite_names=()):
    out = {}
    for sig in signatures:
        outputs = serving.signatures[sig.name].structured_outputs
        out[sig.name] = {
            "inputs": {i.name: i.describe() for i in sig.inputs},
            "outputs": {k: {"dtype": v.dtype.name, "shape": ["N" if d is None else d for d in v.shape]}
                        for k, v in outputs.items()},
            "tflite": sig.name in lite_names,
        }
    return out


def versions():
    return {
        "zoo": zoo.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=_jsonable)
        f.write("\n")


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"cannot write {type(x).__name__} into the model card")


def export(model, out, *, card, pictures=None, tolerance=None, variants=tuple(tflite.VARIANTS), quality=None,
           calibration_images=None, web_batches=(1, 10)):
    """Write ``out/<model>/`` (docs/design.md, "Exported artifacts"); return the written
    paths and card.

    ``tolerance``: the largest SavedModel↔TFLite difference accepted (default: the model's
    ``tflite_tolerance``). ``variants``: the TFLite variants to try besides float32;
    ``quality``: judges them (``evaluation.TFLiteQuality``: ``measure(path)``,
    ``judge(reference, figures)``) — without it a variant is written unmeasured;
    ``calibration_images``: for the full-integer variant; ``web_batches``: fixed batch sizes
    of the copies for the browser (LiteRT.js needs static shapes)."""
    name = model.zoo_name or model.name
    tolerance = tolerance or model.tflite_tolerance
    model = model.float32_copy()
    everything = model.signatures()
    signatures = [s for s in everything if s.saved_model]
    target = os.path.join(out, name)
    serving_dir = os.path.join(target, "serving")
    os.makedirs(serving_dir, exist_ok=True)
    tmp = os.path.join(target, f".tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    conversions = {}
    try:
        lite_sigs = [s for s in everything if s.tflite]
        if lite_sigs:
            # The TFLite graphs first: their conversions run in child processes while this one
            # writes the SavedModel (the tiny-flag diffusion export: SavedModel 18 s beside a
            # 22-s float32 conversion, which ran after it before).
            source = os.path.join(tmp, "tflite_source")
            with stage(f"tracing {', '.join(s.name for s in lite_sigs)} for TFLite"):
                _write_saved_model(lite_sigs, source, _unchecked)
            conversions = _start_conversions(name, lite_sigs, source, tmp, variants, calibration_images)

        saved = os.path.join(tmp, "saved_model")
        with stage(f"writing the SavedModel ({len(signatures)} signatures)"):
            _write_saved_model(signatures, saved, _checked)
            serving = tf.saved_model.load(saved)

        files = {}
        tflite_card, web_card = {}, {}
        if lite_sigs:
            tflite_card, web_card = _write_tflite(model, name, lite_sigs, serving, source, conversions, tmp, files,
                                                  tolerance, quality, calibration_images, web_batches)

        with stage(f"writing {name}.keras (config and weights, for Keras users and --init-from)"):
            files[f"{name}.keras"] = os.path.join(tmp, f"{name}.keras")
            model.save(files[f"{name}.keras"])

        for picture, grid in (pictures or {}).items():
            files[picture] = os.path.join(tmp, picture)
            zoo_images.save_png(grid, files[picture])

        version = next_version(serving_dir)
        card = {
            "model": name,
            "version": version,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            **card,
            "signatures": describe_signatures(serving, signatures, {s.name for s in lite_sigs}),
            "tflite": tflite_card,
            "web": web_card,
        }
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        _write_json(os.path.join(extra, "model_card.json"), card)
        files["model_card.json"] = os.path.join(tmp, "model_card.json")
        _write_json(files["model_card.json"], card)

        # Move into place: the version folder first, the card last.
        while True:
            version_dir = os.path.join(serving_dir, str(version))
            try:
                os.rename(saved, version_dir)  # fails if another export took this number
                break
            except OSError:
                version += 1  # pragma: no cover - concurrent exports only
        written = {"saved_model": version_dir}
        _remove_stale_tflite(target, name, files)
        for fname in sorted(files, key=lambda f: f == "model_card.json"):
            os.makedirs(os.path.dirname(os.path.join(target, fname)), exist_ok=True)
            os.replace(files[fname], os.path.join(target, fname))
            written[fname] = os.path.join(target, fname)
        return written, card
    finally:
        for conversion in conversions.values():
            conversion.cancel()
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_tflite(target, name, files):
    """TFLite files an earlier export wrote that this one does not (a variant dropped now):
    left in place they would contradict the new card."""
    for folder in (target, os.path.join(target, "web")):
        if os.path.isdir(folder):
            for f in os.listdir(folder):
                relative = os.path.relpath(os.path.join(folder, f), target)
                if f.startswith(name) and f.endswith(".tflite") and relative not in files:
                    os.remove(os.path.join(folder, f))


def _start_conversions(name, lite_sigs, source, tmp, variants, calibration_images):
    """variant → its ``tflite.Conversion`` from ``source``, float32 first, each in a child."""
    names = [s.name for s in lite_sigs]
    others = [v for v in variants if v != "float32"]
    representative = tflite.representative_dataset(lite_sigs, calibration_images) if others else None
    return {v: tflite.Conversion(source, names, os.path.join(tmp, tflite.file_name(name, v)), v, representative)
            for v in ("float32", *others)}


def _write_tflite(model, name, lite_sigs, serving, source, conversions, tmp, files, tolerance, quality,
                  calibration_images, web_batches):
    """The TFLite files: float32 (must match the SavedModel), each variant (kept only if its
    quality stays within the model's tolerances), and fixed-batch copies of the kept ones for
    the web. Returns the card's ``tflite`` and ``web`` sections.

    Every file converts in a child process (``tflite.Conversion``, started by ``export``)
    while this process checks and measures the files already there; the batch-1 latencies are
    measured last, with no conversion running beside them."""
    names = [s.name for s in lite_sigs]
    float_path = os.path.join(tmp, tflite.file_name(name))
    with stage("the SavedModel side of the TFLite parity (while the conversion runs)"):
        # against the functions it was converted from (the SavedModel's, unless a signature
        # has a TFLite form of its own: then also how far that one is from the SavedModel's)
        converted_from = tf.saved_model.load(source)
        references = reference_outputs(converted_from, lite_sigs)
        own_forms = [s for s in lite_sigs if s.lite_fn is not None and s.saved_model]
        own = compare_saved_models(serving, {s.name: references[s.name] for s in own_forms})
    with stage(f"converting {', '.join(names)} to TFLite"):
        try:
            conversions["float32"].wait()
        except RuntimeError as e:
            raise ZooError(f"converting {', '.join(names)} to TFLite failed: {e}") from None
    variants = {v: c for v, c in conversions.items() if v != "float32"}
    card, kept = _check_float32_and_variants(name, lite_sigs, references, own, float_path, variants, files,
                                             tolerance, quality)
    web = _write_web_files(model, name, lite_sigs, tmp, files, card, kept, tolerance, calibration_images,
                           web_batches)
    with stage("batch-1 latency of each kept file"):
        for fname, entry in card.items():
            if entry["kept"]:
                entry["batch1_latency_ms"] = tflite.latency_ms(files[fname], lite_sigs)
    return card, web


def _check_float32_and_variants(name, lite_sigs, references, own, float_path, conversions, files, tolerance,
                                quality):
    with stage("TFLite ↔ SavedModel parity"):
        diffs, scaled = compare_tflite(float_path, references)
    worst = max(scaled.values())
    if not worst <= tolerance:
        raise ZooError(
            f"the TFLite file disagrees with the SavedModel by {worst:.3g} (> {tolerance}, relative to "
            f"outputs above 1) per signature {diffs}; not exporting a file that computes differently")
    card = {}
    entry = {"variant": "float32", "bytes": os.path.getsize(float_path), "kept": True, "max_abs_difference": diffs,
             "signatures": {s.name: {"inputs": {i.name: i.describe() for i in s.inputs}} for s in lite_sigs}}
    if own:
        entry["differs_by_design_from_the_saved_model"] = own
    reference = None
    if quality is not None:
        with stage(f"quality of {os.path.basename(float_path)}"):
            reference = entry["quality"] = quality.measure(float_path)
        entry["quality_settings"] = quality.settings_for_card()
    card[os.path.basename(float_path)] = entry
    files[os.path.basename(float_path)] = float_path
    kept = ["float32"]
    for variant, conversion in conversions.items():
        path = os.path.join(os.path.dirname(float_path), tflite.file_name(name, variant))
        with stage(f"the {variant} variant: conversion, difference to float32, quality"):
            try:
                conversion.wait()
            except RuntimeError as e:  # a failed conversion is a finding, recorded in the card
                card[os.path.basename(path)] = {"variant": variant, "kept": False,
                                                "reason": "conversion failed: " + zoo.error_line(e, last=True)}
                continue
            entry = {"variant": variant, "bytes": os.path.getsize(path)}
            try:
                entry["max_abs_difference_to_float32"] = tflite.compare_files(path, float_path, lite_sigs)
                if quality is not None:
                    entry["quality"] = quality.measure(path)
                    entry["kept"], entry["reason"] = quality.judge(reference, entry["quality"])
                else:
                    entry["kept"], entry["reason"] = True, "not measured (no quality function given)"
            except Exception as e:  # noqa: BLE001 - e.g. NaN outputs: dropped, the export stands
                entry["kept"], entry["reason"] = False, "not usable: " + zoo.error_line(e, last=True)
        card[os.path.basename(path)] = entry
        if entry["kept"]:
            files[os.path.basename(path)] = path
            kept.append(variant)
        else:
            os.remove(path)
    return card, kept


def _write_web_files(model, name, lite_sigs, tmp, files, card, kept, tolerance, calibration_images, web_batches):
    """Fixed-batch copies of the kept files: each batch's graph traced here, its conversions
    started in children at once (they run while the next batch is traced), then each copy
    checked against its dynamic-batch file."""
    names = [s.name for s in lite_sigs]
    conversions = {}
    try:
        for batch in web_batches:
            fixed = os.path.join(tmp, f"tflite_source_b{batch}")
            with stage(f"tracing the batch-{batch} graph for the web files"):
                _write_saved_model(lite_sigs, fixed, lambda s, b=batch: _unchecked(s, b))
            representative = tflite.representative_dataset(lite_sigs, calibration_images, batch=batch)
            for variant in kept:
                conversions[variant, batch] = tflite.Conversion(
                    fixed, names, os.path.join(tmp, tflite.file_name(name, variant, batch)), variant, representative)
        web = {}
        for variant in kept:
            for batch in web_batches:
                path = os.path.join(tmp, tflite.file_name(name, variant, batch))
                with stage(f"web file {os.path.basename(path)} (batch {batch}) and its parity"):
                    try:
                        conversions[variant, batch].wait()
                    except RuntimeError as e:  # recorded in the card, the other files stand
                        web[os.path.basename(path)] = {"variant": variant, "batch": batch, "kept": False,
                                                       "reason": "conversion failed: " + zoo.error_line(e, last=True)}
                        continue
                    difference = tflite.compare_files(path, os.path.join(tmp, tflite.file_name(name, variant)),
                                                      lite_sigs, batch=batch)
                # A quantized copy is held to its variant's own distance from float32: dynamic-range
                # int8 scales activations per batch, so its outputs depend on the batch by design.
                allowed = tolerance if variant == "float32" else max(
                    tolerance, 2 * max(card[tflite.file_name(name, variant)]["max_abs_difference_to_float32"].values()))
                if not max(difference.values()) <= allowed:
                    os.remove(path)
                    web[os.path.basename(path)] = {"variant": variant, "batch": batch, "kept": False,
                                                   "reason": f"differs from the dynamic-batch file by {difference}"}
                    continue
                web[os.path.basename(path)] = {"variant": variant, "batch": batch, "kept": True,
                                               "bytes": os.path.getsize(path), "max_abs_difference": difference}
                files[os.path.join("web", os.path.basename(path))] = path
        return web
    finally:
        for conversion in conversions.values():
            conversion.cancel()
