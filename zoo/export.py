"""SavedModel / TFLite / model card writer, generic over models.

A model declares its inference methods as ``zoo.signature.Signature``s (name, function,
typed inputs, whether it goes to TFLite); the exporter reads only those declarations. It
exports ``model.float32_copy()``: whatever precision trained the model, the files are
float32. It

1. writes every signature into a SavedModel with ``keras.export.ExportArchive``; each
   serving input is checked in-graph (rank, shape, bounds, finite: ``Input.check``) so a bad
   request gets a clear InvalidArgument error instead of a crash deep inside the network;
2. converts the TFLite signatures (those whose randomness is an input) from a SavedModel
   of the unchecked functions with ``TFLiteConverter.from_saved_model`` — Assert ops are
   not TFLite built-ins;
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
import time
import uuid

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo import ZooError, images as zoo_images
from zoo.progress import stage

def _checked(sig):
    def serve(*args):
        checked = {i.name: i.check(sig.name, x) for i, x in zip(sig.inputs, args)}
        return sig.fn(**checked)

    return tf.function(serve, input_signature=[i.spec(relaxed=True) for i in sig.inputs])


def _unchecked(sig):
    def serve(*args):
        return sig.fn(**{i.name: x for i, x in zip(sig.inputs, args)})

    return tf.function(serve, input_signature=[i.spec() for i in sig.inputs])


def _write_saved_model(model, signatures, path, make_fn):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for sig in signatures:  # the first one becomes serving_default
        archive.add_endpoint(sig.name, make_fn(sig))
    archive.write_out(path, verbose=False)


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


def _convert_to_tflite(saved_model_dir, signature_names, path):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=signature_names)
    with open(path, "wb") as f:
        f.write(converter.convert())


def _tflite_outputs(path, signature, inputs):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner(signature)
    return runner(**inputs)  # resizes the inputs to the batch given


def compare_tflite(tflite_path, serving, signatures, batch=4, seed=0):
    """Max abs difference between TFLite and SavedModel outputs on one fixed input."""
    rng = np.random.default_rng(seed)
    result = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, batch) for i in sig.inputs}
        reference = serving.signatures[sig.name](**{k: tf.constant(v) for k, v in inputs.items()})
        lite = _tflite_outputs(tflite_path, sig.name, inputs)
        result[sig.name] = max(
            float(np.max(np.abs(np.asarray(lite[k]) - reference[k].numpy()))) for k in reference
        )
    return result


def tflite_latency_ms(tflite_path, signatures, repeats=5, seed=0):
    """Median milliseconds of one batch-1 call of each TFLite signature on this machine."""
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(seed)
    result = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, 1) for i in sig.inputs}
        runner = Interpreter(model_path=tflite_path).get_signature_runner(sig.name)
        runner(**inputs)  # allocation and warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            runner(**inputs)
            times.append(time.perf_counter() - start)
        result[sig.name] = round(1e3 * float(np.median(times)), 3)
    return result


def describe_signatures(serving, signatures):
    out = {}
    for sig in signatures:
        outputs = serving.signatures[sig.name].structured_outputs
        out[sig.name] = {
            "inputs": {i.name: i.describe() for i in sig.inputs},
            "outputs": {k: {"dtype": v.dtype.name, "shape": ["N" if d is None else d for d in v.shape]}
                        for k, v in outputs.items()},
            "tflite": sig.tflite,
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


def export(model, out, *, card, pictures=None, tolerance=None):
    """Write ``out/<model>/`` (docs/design.md, "Exported artifacts"); return the written
    paths and card. ``tolerance``: the largest SavedModel↔TFLite difference accepted; by
    default the model's ``tflite_tolerance``."""
    name = model.zoo_name or model.name
    tolerance = tolerance or model.tflite_tolerance
    model = model.float32_copy()
    signatures = model.signatures()
    target = os.path.join(out, name)
    serving_dir = os.path.join(target, "serving")
    os.makedirs(serving_dir, exist_ok=True)
    tmp = os.path.join(target, f".tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        saved = os.path.join(tmp, "saved_model")
        with stage(f"writing the SavedModel ({len(signatures)} signatures)"):
            _write_saved_model(model, signatures, saved, _checked)
            serving = tf.saved_model.load(saved)

        lite_sigs = [s for s in signatures if s.tflite]
        files = {}
        tflite = {}
        if lite_sigs:
            source = os.path.join(tmp, "tflite_source")
            lite_path = os.path.join(tmp, f"{name}.tflite")
            with stage(f"converting {', '.join(s.name for s in lite_sigs)} to TFLite"):
                _write_saved_model(model, lite_sigs, source, _unchecked)
                _convert_to_tflite(source, [s.name for s in lite_sigs], lite_path)
                shutil.rmtree(source)
            with stage("TFLite ↔ SavedModel parity and batch-1 latency"):
                diffs = compare_tflite(lite_path, serving, lite_sigs)
                latency = tflite_latency_ms(lite_path, lite_sigs)
            worst = max(diffs.values())
            if not worst <= tolerance:
                raise ZooError(
                    f"the TFLite file disagrees with the SavedModel by {worst:.3g} (> {tolerance}) "
                    f"per signature {diffs}; not exporting a file that samples differently"
                )
            tflite[f"{name}.tflite"] = {"bytes": os.path.getsize(lite_path), "max_abs_difference": diffs,
                                        "batch1_latency_ms": latency}
            files[f"{name}.tflite"] = lite_path

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
            "signatures": describe_signatures(serving, signatures),
            "tflite": tflite,
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
        for fname in sorted(files, key=lambda f: f == "model_card.json"):
            os.replace(files[fname], os.path.join(target, fname))
            written[fname] = os.path.join(target, fname)
        return written, card
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
