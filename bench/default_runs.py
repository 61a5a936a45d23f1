"""The five default recipe runs end to end, as a user starts them (``python recipes/<model>.py``,
default flags, the built-in data), each against its time budget on a 2-core CPU: the seconds
of every stage from its card (start-up, training, evaluation, export, and the steps inside the
evaluation and the export), the wall time of the whole command and the headline figures. JSON.

    python bench/default_runs.py [--models vae ae dae cgan diffusion] [--fresh-cache]

Each run goes to a temporary runs folder (nothing under runs/ or exported/ is touched).
``--fresh-cache`` measures as a first run on a machine does: an empty ZOO_CACHE, so the real-data
references are computed, not read. Run it on an idle machine: the five take about 50 minutes.
With ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` set, an AMX machine computes as one with AVX512_BF16
alone (the report says so).
"""

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from common import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# seconds a default run may take on a 2-core CPU, end to end
BUDGET_SECONDS = {"vae": 240, "ae": 180, "dae": 180, "cgan": 600, "diffusion": 1800}
# the largest share of a run its evaluation may take
EVALUATION_SHARE = 0.2


def run_default(model, env):
    """(wall seconds of the command, its card) of ``python recipes/<model>.py`` in a fresh runs folder."""
    runs = tempfile.mkdtemp(prefix=f"zoo-default-{model}-")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.join("recipes", f"{model}.py"), "--runs-dir", runs], cwd=ROOT,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"python recipes/{model}.py failed (exit {done.returncode}): {done.stderr[-2000:]}")
    finished = glob.glob(os.path.join(runs, model, "*", "finished.json"))
    with open(finished[0]) as f:
        return wall, json.load(f)["card"]


def headline(card):
    """The card's headline figures with their standard errors, where the card has them."""
    metrics = card["metrics"]
    names = ("fid", "classifier_accuracy", "cas", "precision", "recall", "inpainting_accuracy_lower_half",
             "reconstruction_mse", "psnr_denoised_gaussian", "anomaly_auc", "test_loss")
    return {k: metrics[k] if f"{k}_se" not in metrics else [metrics[k], metrics[f"{k}_se"]]
            for k in names if isinstance(metrics.get(k), (int, float))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=list(BUDGET_SECONDS), default=list(BUDGET_SECONDS))
    p.add_argument("--fresh-cache", action="store_true")
    args = p.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if args.fresh_cache:
        env["ZOO_CACHE"] = tempfile.mkdtemp(prefix="zoo-cache-")
    from zoo.export.card import machine

    runs = {}
    for model in args.models:
        wall, card = run_default(model, env)
        seconds = card["provenance"]["seconds"]
        runs[model] = {
            "wall_seconds": round(wall, 1), "budget_seconds": BUDGET_SECONDS[model],
            "within_budget": wall <= BUDGET_SECONDS[model],
            "evaluation_share": round(seconds["evaluation"] / seconds["total"], 3),
            "seconds": seconds, "images_per_second": card["training"]["images_per_second"],
            "evaluation_stages": card["provenance"].get("evaluation_stages", []),
            "export_stages": card["provenance"].get("export_stages", []),
            "headline": headline(card)}
        print(f"{model}: {wall:.0f} s (budget {BUDGET_SECONDS[model]} s), evaluation {seconds['evaluation']:.0f} s",
              file=sys.stderr, flush=True)
    # ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 holds oneDNN off AMX: a CPU with AVX512_BF16 and no AMX, on this one
    held = {"onednn_max_cpu_isa": os.environ["ONEDNN_MAX_CPU_ISA"]} if "ONEDNN_MAX_CPU_ISA" in os.environ else {}
    report("default_runs", {"cpu": machine(), **held, "platform": platform.platform(),
                            "fresh_cache": args.fresh_cache, "evaluation_share_limit": EVALUATION_SHARE, "runs": runs})


if __name__ == "__main__":
    main()
