"""The model card (``model_card.json``): what was trained, how, how well, and where it came
from — its sections built from a run, and the one way they are shown to a person.

Contract: the top-level keys (``KEYS``, docs/design.md "The model card"). The recipe writes
the run's sections; the exporter adds the files' (``zoo.exporter``).
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys

KEYS = ("model", "version", "created", "versions", "provenance", "data", "config", "training", "metrics",
        "reference", "evaluation", "feature_extractor", "signatures", "tflite", "web")
# The run settings the card's config holds beside the model's fields.
RUN_FIELDS = ("learning_rate", "lr_schedule", "warmup_steps", "batch_size", "seed")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_section(model_config, run, global_batch):
    return {**model_config.to_dict(), "learning_rate": run.learning_rate, "lr_schedule": run.lr_schedule,
            "warmup_steps": run.warmup_steps, "batch_size": global_batch, "seed": run.seed}


def training_section(run, model, trainer, strategy_name, replicas, policy, jit, resumed, run_dir, final_losses):
    return {
        "epochs": run.epochs,
        "steps": int(model.optimizers[0].iterations.numpy()),
        "seconds": round(trainer.total_seconds, 2),
        "images_per_second": round(trainer.total_images / trainer.total_seconds, 1) if trainer.total_seconds else None,
        "strategy": strategy_name,
        "replicas": replicas,
        "mixed_precision": policy,
        "jit_compile": jit,
        "steps_per_execution": run.steps_per_execution,
        "resumed": resumed,
        "run_dir": run_dir,
        "final_losses": final_losses,
    }


# Provenance ----------------------------------------------------------------------------------
def commit():
    """The zoo commit the code came from ("…-dirty" when the checkout had changes), or None."""
    def git(*args):
        return subprocess.run(["git", "-C", REPOSITORY, *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "recipes").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16")  # what decides zoo's speed and precision


def machine():
    """The CPU (model, the flags that decide zoo's speed and precision, cores) and any GPU."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]
    return {"cpu": model, "cpu_flags": [f for f in CPU_FLAGS if f in flags], "cores": os.cpu_count(), "gpus": gpus}


def command_line(argv):
    """The command that ran: the recipe script and its flags."""
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else None
    if script is None or os.path.basename(os.path.dirname(os.path.abspath(script))) != "recipes":
        return None
    return " ".join(["python", os.path.relpath(os.path.abspath(script), REPOSITORY), *argv])


def provenance(argv, run, policy, seconds):
    """Where a model came from: the zoo commit, the command line, seed, precision, the machine,
    the wall time of each stage so far (the exporter adds its own) and the date."""
    return {"commit": commit(), "command": command_line(argv), "seed": run.seed, "precision": policy,
            "machine": machine(), "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat()}


# Shown to a person -----------------------------------------------------------------------------
def number(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def metric_rows(card):
    """(name, "value ± se   (real: reference)") for every scalar metric of a card."""
    metrics, reference = card.get("metrics", {}), card.get("reference", {})
    rows = []
    for k, v in metrics.items():
        if isinstance(v, (dict, list)) or k.endswith("_se"):
            continue
        text = number(v)
        if f"{k}_se" in metrics:
            text += f" ± {metrics[f'{k}_se']:.2g}"
        if k in reference:
            text += f"   (real: {number(reference[k])})"
        rows.append((k, text))
    return rows
