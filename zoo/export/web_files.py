"""The browser page's files: fixed-batch copies (LiteRT.js needs static shapes) of the TFLite
variant the page runs, each checked against the dynamic-batch file it copies."""

from __future__ import annotations

import os

from zoo.core.errors import error_line
from zoo.core.progress import stage
from zoo.export import tflite
from zoo.export.saved_model import unchecked, write_saved_model_of

# The browser page's variant: the smallest kept one whose batch-1 latency is at most this many
# times the float32 file's on the exporting machine (a smaller download that is not slower).
WEB_LATENCY_ALLOWANCE = 1.5


def slowest_ms(entry):
    """A TFLite file's slowest signature at batch 1 (its card entry's latencies), ms."""
    return max(entry["batch1_latency_ms"].values())


def allowed_difference(entry, tolerance, signatures):
    """How far a copy of a TFLite file may compute from it (a web copy from its dynamic-batch
    file, the browser from Python's LiteRT): the parity tolerance for float32 and float16
    weights; for a dynamic-range int8 file, which quantises activations as it runs (per batch, in
    each runtime's own kernels), twice its own distance from float32 as well."""
    to_float32 = entry.get("max_abs_difference_to_float32")
    if entry.get("variant", "float32") in ("float32", "float16") or not to_float32:
        return tolerance
    return max(tolerance, 2 * max(to_float32[n] for n in signatures))


def web_variant(entries):
    """The variant the browser page runs: the smallest kept one whose batch-1 latency is at
    most ``WEB_LATENCY_ALLOWANCE`` times float32's. ``entries``: variant → card entry."""
    base = slowest_ms(entries["float32"])
    fast = [v for v, e in entries.items() if slowest_ms(e) <= WEB_LATENCY_ALLOWANCE * base]
    return min(fast, key=lambda v: entries[v]["bytes"])


def write_web_files(ctx):
    """Fixed-batch copies of the page's variant (LiteRT.js needs static shapes): each batch's
    graph traced here and converted in a child at once (it runs while the next batch is
    traced), then each copy checked against its dynamic-batch file (``allowed_difference``)."""
    ctx.card["web"] = {}
    page = [s for s in ctx.lite_signatures if s.web]
    if not ctx.options.web_batches or not page:
        return
    variant = web_variant({v: ctx.lite_entry(v) for v in ctx.kept})
    names = [s.name for s in page]
    conversions = {}
    try:
        for batch in ctx.options.web_batches:
            fixed = ctx.path(f"tflite_source_b{batch}")
            with stage(f"tracing the batch-{batch} graph for the web files"):
                write_saved_model_of(page, fixed, lambda s, b=batch: unchecked(s, b))
            representative = tflite.representative_dataset(page, ctx.options.calibration_images, batch=batch)
            conversions[batch] = tflite.Conversion(fixed, names, ctx.path(tflite.file_name(ctx.name, variant, batch)),
                                                   variant, representative)
        tolerance = ctx.options.tolerance or ctx.model.tflite_tolerance
        allowed = allowed_difference(ctx.lite_entry(variant), tolerance, names)
        for batch, conversion in conversions.items():
            path = ctx.path(tflite.file_name(ctx.name, variant, batch))
            entry = {"variant": variant, "batch": batch, "signatures": names}
            with stage(f"web file {os.path.basename(path)} (batch {batch}) and its parity"):
                try:
                    conversion.wait()
                except RuntimeError as e:  # recorded in the card, the other files stand
                    ctx.card["web"][os.path.basename(path)] = {
                        **entry, "kept": False, "reason": "conversion failed: " + error_line(e, last=True)}
                    continue
                difference = tflite.compare_files(path, ctx.path(tflite.file_name(ctx.name, variant)), page,
                                                  batch=batch)
            if not max(difference.values()) <= allowed:
                os.remove(path)
                ctx.card["web"][os.path.basename(path)] = {
                    **entry, "kept": False, "reason": f"differs from the dynamic-batch file by {difference}"}
                continue
            ctx.card["web"][os.path.basename(path)] = {**entry, "kept": True, "bytes": os.path.getsize(path),
                                                        "max_abs_difference": difference}
            ctx.files[os.path.join("web", os.path.basename(path))] = path
    finally:
        for conversion in conversions.values():
            conversion.cancel()
