"""The few-step students against their goals (JSON): quality from the export's card (the same
evaluation as the teacher's: 1,000 samples against the 1,000 test digits), batch-1 latency of
each TFLite generate measured here in rotation (median), optionally per digit in headless
Chromium through the browser page (LiteRT.js), and the distillation's training time beside the
teacher's.

Goals: 4 steps — accuracy ≥ 0.97, FID within 15% of the teacher's 20-step FID, TFLite batch-1
latency ≤ 1/8 of the teacher's generate, ≤ 25 ms per digit in the browser; 2 steps — accuracy
≥ 0.95, FID within 50%; distillation training time ≤ the teacher's.

    python bench/distill.py [--export exported/diffusion] [--repeats 20] [--browser]
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from common import in_rotation, report

from zoo.core.signature import Input
from zoo.export import tflite
from zoo.export.folder import ExportFolder

GOALS = {4: {"accuracy": 0.97, "fid_ratio": 1.15, "latency_ratio": 1 / 8, "browser_ms_per_digit": 25.0},
         2: {"accuracy": 0.95, "fid_ratio": 1.50}}


def inputs_for(folder, signature, batch, seed=0):
    rng = np.random.default_rng(seed)
    described = folder.card["tflite"][tflite.file_name("diffusion")]["signatures"][signature]["inputs"]
    return {name: (np.arange(batch) % 10).astype(np.int32) if d["role"] == "labels"
            else rng.standard_normal((batch, *Input.from_description(name, d).shape)).astype(np.float32)
            for name, d in described.items()}


def tflite_latency(folder, signatures, repeats):
    """Median batch-1 ms of each signature, called in rotation (drift hits all alike)."""
    lite = tflite.File(os.path.join(folder.folder, tflite.file_name("diffusion")))
    inputs = {s: inputs_for(folder, s, 1) for s in signatures}
    for s in signatures:
        lite(s, **inputs[s])  # allocation and warm-up

    def timed(s):
        start = time.perf_counter()
        lite(s, **inputs[s])
        return 1e3 * (time.perf_counter() - start)

    runs = in_rotation({s: (lambda s=s: timed(s)) for s in signatures}, repeats)
    return {s: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v)} for s, v in runs.items()}


def browser_latency(folder, signatures, repeats):
    """Per-digit ms of each signature in the page (batch 1 and 10, the page's variant), median."""
    from zoo.apps import web

    server, url = web.serve_in_background(os.path.dirname(folder.folder))
    browser = web.headless_page(url, tempfile.mkdtemp(prefix="zoo-chromium-"))
    try:
        variant = browser.execute_script("return window.zoo.catalog().diffusion.default_variant")
        out = {"variant": variant}
        for batch in (1, 10):
            def call(s, batch=batch):
                result = web.run_in_page(browser, "diffusion", variant, batch, s, inputs_for(folder, s, batch))
                if "error" in result:
                    raise RuntimeError(result["error"])
                return result["ms"] / batch

            for s in signatures:
                call(s)  # compile and warm up
            runs = in_rotation({s: (lambda s=s: call(s)) for s in signatures}, repeats)
            out[f"batch_{batch}"] = {s: {"median_ms_per_digit": statistics.median(v)} for s, v in runs.items()}
        return out
    finally:
        browser.quit()
        server.shutdown()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", default="exported/diffusion")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--browser", action="store_true", help="also per digit in headless Chromium (LiteRT.js)")
    args = p.parse_args()
    folder = ExportFolder(args.export)
    c = folder.card
    m, students = c["metrics"], c["config"]["students"]
    signatures = ["generate", *(f"generate_{n}_steps" for n in students)]
    latency = tflite_latency(folder, signatures, args.repeats)
    browser = browser_latency(folder, signatures, max(3, args.repeats // 4)) if args.browser else None
    samplers = {"teacher_20_steps": ""} | {f"teacher_{c['config']['teacher_steps']}_steps":
                                          f"guided_ddim_{c['config']['teacher_steps']}_steps_"}
    samplers |= {f"student_{n}_steps": f"student_{n}_steps_" for n in students}
    quality = {name: {k: m[prefix + k] for k in ("classifier_accuracy", "fid", "fid_se", "fid_infinity", "precision",
                                                   "recall")} for name, prefix in samplers.items()}
    goals = {}
    for n in students:
        goal, q = GOALS.get(n, {}), quality[f"student_{n}_steps"]
        checks = {"accuracy": (q["classifier_accuracy"], goal.get("accuracy")),
                  "fid_ratio": (q["fid"] / m["fid"], goal.get("fid_ratio")),
                  "latency_ratio": (latency[f"generate_{n}_steps"]["median_ms"] / latency["generate"]["median_ms"],
                                    goal.get("latency_ratio"))}
        if browser:
            checks["browser_ms_per_digit"] = (browser["batch_1"][f"generate_{n}_steps"]["median_ms_per_digit"],
                                              goal.get("browser_ms_per_digit"))
        goals[n] = {k: {"value": v, "goal": g, "met": None if g is None else (v >= g if k == "accuracy" else v <= g)}
                    for k, (v, g) in checks.items()}
    started = c["training"].get("started_from", {})
    report("distill", {
        "export": args.export, "quality": quality, "tflite_batch1_latency": latency, "browser": browser,
        "goals_by_student_steps": goals,
        "training_seconds": {"students": c["training"]["seconds"], "teacher": started.get("training_seconds"),
                             "ratio": c["training"]["seconds"] / started["training_seconds"]
                             if started.get("training_seconds") else None},
        "machine": c["provenance"]["machine"]})


if __name__ == "__main__":
    main()
