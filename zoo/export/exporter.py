"""The exporter: writes ``out/<model>/`` (docs/design.md, "Exported artifacts") from what a
model declares (``zoo.signature.Signature``s), as a short pipeline of steps over one
``ExportContext`` — what is written so far and the card being built:

    trace_for_tflite     the TFLite graphs first: their conversions run in child processes
    write_saved_model    the serving signatures, checked in-graph, and the weights, once
    check_float32_tflite the float32 file must compute what the SavedModel computes
    convert_variants     each quantized variant and its difference to float32
    measure_latency      batch-1 latency of each file, with no conversion running
    choose_variants      the smallest variant within the quality tolerances, and a larger one only
                         if it is faster than every smaller one
    write_web_files      fixed-batch copies of the variant the browser page runs
    write_pictures       the evaluation's pictures

Everything is written into a temporary folder and moved into place at the end (the card
last), so an interrupted export leaves nothing half-written. Whatever precision trained the
model, the files are float32 (``model.float32_copy()``).

The weights are stored once, in float32, in the SavedModel: the networks its signatures run
and what fine-tuning needs besides (``ZooModel.stored_weights``); ``zoo.pretrained`` rebuilds
the Keras model from the card's config and them. (A ``.keras`` file beside them held the same
weights a second time, and the training networks of weight averages a third: 7.4 of the AE's
58 MB, 16 of diffusion's 60.)
"""

from __future__ import annotations

import dataclasses
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

from zoo.core import images as zoo_images
from zoo.core.errors import ZooError, error_line
from zoo.core.progress import recorded, stage
from zoo.core.version import VERSION
from zoo.export import tflite
from zoo.export.saved_model import (
    checked,
    compare_saved_models,
    compare_tflite,
    describe_signatures,
    next_version,
    reference_outputs,
    unchecked,
    write_saved_model_of,
)
from zoo.export.web_files import slowest_ms, write_web_files

FORMAT_VERSION = 2  # 2: no .keras file; the SavedModel stores the weights the Keras model is rebuilt from
WEIGHTS_INDEX = "weights.json"  # in the version's assets.extra/: which of the model's weights are stored
# A larger quantized variant is shipped only when it is this much faster than every smaller one.
FASTER_BY = 0.9


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


def versions():
    return {
        "zoo": VERSION,
        "export_format": FORMAT_VERSION,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def write_json(path, obj):
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


# The context the steps share -------------------------------------------------------------------
@dataclasses.dataclass
class ExportOptions:
    """How to export. ``tolerance``: the largest SavedModel↔TFLite difference accepted
    (default: the model's ``tflite_tolerance``); ``variants``: TFLite variants to try besides
    float32; ``quality``: judges them (``quality.TFLiteQuality``: ``measure(path)``,
    ``judge(reference, figures)``; without it a variant is kept unmeasured);
    ``calibration_images``: for the full-integer variant; ``web_batches``: fixed batch sizes
    of the copies for the browser (LiteRT.js needs static shapes)."""

    tolerance: float | None = None
    variants: tuple = tuple(tflite.VARIANTS)
    quality: object = None
    calibration_images: object = None
    web_batches: tuple = (1, 10)


@dataclasses.dataclass
class ExportContext:
    model: object  # the float32 copy
    name: str
    target: str  # out/<model>
    tmp: str  # where everything is written first
    options: ExportOptions
    card: dict  # grows step by step
    pictures: dict
    saved_signatures: list  # the SavedModel's
    lite_signatures: list  # the TFLite file's
    files: dict = dataclasses.field(default_factory=dict)  # name relative to the target → its temporary path
    conversions: dict = dataclasses.field(default_factory=dict)  # running tflite.Conversions
    serving: object = None  # the SavedModel, loaded
    lite_source: str = ""  # the SavedModel the TFLite files convert from
    kept: list = dataclasses.field(default_factory=lambda: ["float32"])  # kept TFLite variants, float32 first
    stages: list = dataclasses.field(default_factory=list)  # [title, seconds] of each finished stage

    def path(self, name):
        return os.path.join(self.tmp, name)

    def lite_entry(self, variant):
        return self.card["tflite"][tflite.file_name(self.name, variant)]


# The steps -------------------------------------------------------------------------------------
def trace_for_tflite(ctx):
    """The TFLite graphs first, converted in child processes while this one writes the
    SavedModel (the tiny-flag diffusion export: SavedModel 18 s beside a 22-s conversion)."""
    sigs = ctx.lite_signatures
    ctx.lite_source = ctx.path("tflite_source")
    with stage(f"tracing {', '.join(s.name for s in sigs)} for TFLite"):
        write_saved_model_of(sigs, ctx.lite_source, unchecked)
    others = [v for v in ctx.options.variants if v != "float32"]
    representative = tflite.representative_dataset(sigs, ctx.options.calibration_images) if others else None
    ctx.conversions = {v: tflite.Conversion(ctx.lite_source, [s.name for s in sigs],
                                            ctx.path(tflite.file_name(ctx.name, v)), v, representative)
                       for v in ("float32", *others)}


def write_saved_model(ctx):
    """The serving signatures, each input checked in-graph (a bad request gets an
    InvalidArgument error naming the signature and input), and the stored weights with their
    index, so that a Keras model can be rebuilt from this folder alone."""
    saved = ctx.path("saved_model")
    with stage(f"writing the SavedModel ({len(ctx.saved_signatures)} signatures)"):
        stored = ctx.model.stored_weights()
        write_saved_model_of(ctx.saved_signatures, saved, checked, [w for _, w in stored])
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra)
        write_json(os.path.join(extra, WEIGHTS_INDEX), [{"index": i, "path": w.path, "shape": list(w.shape)}
                                                       for i, w in stored])
        ctx.serving = tf.saved_model.load(saved)


def check_float32_tflite(ctx):
    """The float32 file against the functions it was converted from (the SavedModel's, unless a
    signature has a TFLite form of its own: then also how far that one is from the SavedModel's);
    refused beyond the tolerance. Its quality figures are the variants' reference."""
    sigs, name, options = ctx.lite_signatures, ctx.name, ctx.options
    with stage("the SavedModel side of the TFLite parity (while the conversion runs)"):
        references = reference_outputs(tf.saved_model.load(ctx.lite_source), sigs)
        own_forms = [s for s in sigs if s.lite_fn is not None and s.saved_model]
        own = compare_saved_models(ctx.serving, {s.name: references[s.name] for s in own_forms})
    with stage(f"converting {', '.join(s.name for s in sigs)} to TFLite"):
        try:
            ctx.conversions.pop("float32").wait()
        except RuntimeError as e:
            raise ZooError(f"converting {', '.join(s.name for s in sigs)} to TFLite failed: {e}") from None
    path = ctx.path(tflite.file_name(name))
    with stage("TFLite ↔ SavedModel parity"):
        diffs, scaled = compare_tflite(path, references)
    tolerance = options.tolerance or ctx.model.tflite_tolerance
    if not max(scaled.values()) <= tolerance:
        raise ZooError(
            f"the TFLite file disagrees with the SavedModel by {max(scaled.values()):.3g} (> {tolerance}, relative to "
            f"outputs above 1) per signature {diffs}; not exporting a file that computes differently")
    entry = {"variant": "float32", "bytes": os.path.getsize(path), "kept": True, "max_abs_difference": diffs,
             "signatures": {s.name: {"inputs": {i.name: i.describe() for i in s.inputs}} for s in sigs}}
    if own:
        entry["differs_by_design_from_the_saved_model"] = own
    if options.quality is not None:
        with stage(f"quality of {os.path.basename(path)}"):
            entry["quality"] = options.quality.measure(path)
        entry["quality_settings"] = options.quality.settings_for_card()
    ctx.card["tflite"] = {os.path.basename(path): entry}
    ctx.files[os.path.basename(path)] = path


def convert_variants(ctx):
    """Each quantized variant's file and its difference to float32 (a failed conversion, or
    NaN outputs, is a finding: recorded, the export stands)."""
    float_path = ctx.path(tflite.file_name(ctx.name))
    for variant, conversion in list(ctx.conversions.items()):
        path = ctx.path(tflite.file_name(ctx.name, variant))
        with stage(f"the {variant} variant: conversion and difference to float32"):
            try:
                conversion.wait()
            except RuntimeError as e:
                ctx.card["tflite"][os.path.basename(path)] = {
                    "variant": variant, "kept": False, "reason": "conversion failed: " + error_line(e, last=True)}
                continue
            entry = {"variant": variant, "bytes": os.path.getsize(path)}
            try:
                entry["max_abs_difference_to_float32"] = tflite.compare_files(path, float_path, ctx.lite_signatures)
            except Exception as e:  # noqa: BLE001 - e.g. NaN outputs: dropped, the export stands
                entry["kept"], entry["reason"] = False, "not usable: " + error_line(e, last=True)
                os.remove(path)
        ctx.card["tflite"][os.path.basename(path)] = entry
        if "kept" not in entry:
            ctx.files[os.path.basename(path)] = path
            ctx.kept.append(variant)
    ctx.conversions = {}


def measure_latency(ctx):
    """Batch-1 latency of every file, measured once no conversion runs beside it."""
    with stage("batch-1 latency of each file"):
        for variant in ctx.kept:
            ctx.lite_entry(variant)["batch1_latency_ms"] = tflite.latency_ms(
                ctx.path(tflite.file_name(ctx.name, variant)), ctx.lite_signatures)


def choose_variants(ctx):
    """The quantized variants to ship, from the smallest up: a larger one is worth shipping
    only if it is faster than every smaller one shipped (by ``FASTER_BY``) — a file no larger
    and no slower makes it one no user would choose, so its quality is not even measured — and
    each must keep its quality figures within the model's tolerances of float32's. Float32 is
    always shipped (the file that computes what the SavedModel computes)."""
    quality = ctx.options.quality
    reference = ctx.lite_entry("float32").get("quality")
    shipped = []
    for variant in sorted((v for v in ctx.kept if v != "float32"), key=lambda v: ctx.lite_entry(v)["bytes"]):
        entry, path = ctx.lite_entry(variant), ctx.path(tflite.file_name(ctx.name, variant))
        better = next((s for s in shipped if not slowest_ms(entry) < FASTER_BY * slowest_ms(ctx.lite_entry(s))), None)
        if better is not None:
            entry["kept"], entry["reason"] = False, (
                f"not shipped: {better} is smaller and no slower ({slowest_ms(ctx.lite_entry(better)):.1f} vs "
                f"{slowest_ms(entry):.1f} ms at batch 1)")
        elif quality is None:
            entry["kept"], entry["reason"] = True, "not measured (no quality function given)"
        else:
            with stage(f"quality of {os.path.basename(path)}"):
                try:
                    entry["quality"] = quality.measure(path)
                    entry["kept"], entry["reason"] = quality.judge(reference, entry["quality"])
                except Exception as e:  # noqa: BLE001 - e.g. NaN samples: dropped, the export stands
                    entry["kept"], entry["reason"] = False, "not usable: " + error_line(e, last=True)
        if entry["kept"]:
            shipped.append(variant)
        else:
            os.remove(ctx.files.pop(os.path.basename(path)))
    ctx.kept = ["float32", *shipped]


def write_pictures(ctx):
    for picture, grid in ctx.pictures.items():
        ctx.files[picture] = ctx.path(picture)
        zoo_images.save_png(grid, ctx.files[picture])


TFLITE_STEPS = (trace_for_tflite, write_saved_model, check_float32_tflite, convert_variants, measure_latency,
                choose_variants, write_web_files)
SAVED_MODEL_ONLY = (write_saved_model,)


# The pipeline ----------------------------------------------------------------------------------
def export(model, out, *, card, pictures=None, **options):
    """Write ``out/<model>/``; return (the written paths, the card). ``card``: what the caller
    knows (data, config, training, metrics, ...); the exporter adds the rest. ``options``: the
    fields of ``ExportOptions``."""
    started = time.perf_counter()
    name = model.zoo_name or model.name
    model = model.float32_copy()
    signatures = model.signatures()
    target = os.path.join(out, name)
    os.makedirs(os.path.join(target, "serving"), exist_ok=True)
    ctx = ExportContext(model=model, name=name, target=target, tmp=os.path.join(target, f".tmp-{uuid.uuid4().hex[:8]}"),
                        options=ExportOptions(**options), card=dict(card), pictures=dict(pictures or {}),
                        saved_signatures=[s for s in signatures if s.saved_model],
                        lite_signatures=[s for s in signatures if s.tflite])
    ctx.card.setdefault("tflite", {})
    ctx.card.setdefault("web", {})
    os.makedirs(ctx.tmp)
    try:
        with recorded() as ctx.stages:
            for step in (TFLITE_STEPS if ctx.lite_signatures else SAVED_MODEL_ONLY) + (write_pictures,):
                step(ctx)
        return move_into_place(ctx, time.perf_counter() - started)
    finally:
        for conversion in ctx.conversions.values():
            conversion.cancel()
        shutil.rmtree(ctx.tmp, ignore_errors=True)


def finished_card(ctx, version, seconds):
    """The card in its contract order (docs/design.md, "The model card")."""
    card = ctx.card
    provenance = card.get("provenance")
    if provenance is not None:
        timings = provenance.setdefault("seconds", {})
        timings["export"] = round(seconds, 1)
        timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 1)
        provenance["export_stages"] = ctx.stages  # where the export's time went, as evaluation_stages
    lite_names = {s.name for s in ctx.lite_signatures}
    head = {"model": ctx.name, "version": version,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions()}
    tail = {"signatures": describe_signatures(ctx.serving, ctx.saved_signatures, lite_names),
            "tflite": card.get("tflite", {}), "web": card.get("web", {})}
    return {**head, **{k: v for k, v in card.items() if k not in tail}, **tail}


def move_into_place(ctx, seconds):
    """The version folder first, the other files next, the card last."""
    serving_dir = os.path.join(ctx.target, "serving")
    version = next_version(serving_dir)
    saved = ctx.path("saved_model")
    while True:
        card = finished_card(ctx, version, seconds)
        write_json(os.path.join(saved, "assets.extra", "model_card.json"), card)
        version_dir = os.path.join(serving_dir, str(version))
        try:
            os.rename(saved, version_dir)  # fails if another export took this number
            break
        except OSError:
            version += 1  # pragma: no cover - concurrent exports only
    ctx.files["model_card.json"] = ctx.path("model_card.json")
    write_json(ctx.files["model_card.json"], card)
    written = {"saved_model": version_dir}
    _remove_stale_files(ctx)
    for fname in sorted(ctx.files, key=lambda f: f == "model_card.json"):
        os.makedirs(os.path.dirname(os.path.join(ctx.target, fname)), exist_ok=True)
        os.replace(ctx.files[fname], os.path.join(ctx.target, fname))
        written[fname] = os.path.join(ctx.target, fname)
    return written, card


def _remove_stale_files(ctx):
    """Files an earlier export wrote that this one does not (a variant dropped now, a .keras of
    the earlier format): left in place they would contradict the new card."""
    for folder in (ctx.target, os.path.join(ctx.target, "web")):
        if os.path.isdir(folder):
            for f in os.listdir(folder):
                relative = os.path.relpath(os.path.join(folder, f), ctx.target)
                if f.startswith(ctx.name) and f.endswith((".tflite", ".keras")) and relative not in ctx.files:
                    os.remove(os.path.join(folder, f))
