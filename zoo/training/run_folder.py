"""Run folders: runs/<model>/<timestamp>/ with the settings a run was started with (run.json), and
the unfinished run ``--resume`` continues — refused when its settings differ from the ones now."""

from __future__ import annotations

import datetime
import json
import os

from zoo.core.errors import ZooError


def _unfinished_runs(model_dir):
    if not os.path.isdir(model_dir):
        return []
    runs = sorted(d for d in os.listdir(model_dir) if os.path.isdir(os.path.join(model_dir, d)))
    return [os.path.join(model_dir, d) for d in runs
            if not os.path.exists(os.path.join(model_dir, d, "finished.json"))]


def run_directory(runs_dir, model_name, resume, run_settings):
    """runs/<model>/<timestamp>/; with ``resume`` the latest unfinished one of this model."""
    model_dir = os.path.join(runs_dir, model_name)
    if resume:
        unfinished = _unfinished_runs(model_dir)
        if unfinished:
            run_dir = unfinished[-1]
            with open(os.path.join(run_dir, "run.json")) as f:
                before = json.load(f)
            changed = _changed_settings(before, run_settings)
            if changed:
                raise ZooError(
                    f"--resume found {run_dir}, trained with other settings ({'; '.join(changed)}); resume with the "
                    "same flags, or drop --resume to start a new run")
            return run_dir, True
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = os.path.join(model_dir, stamp)
    os.makedirs(run_dir)
    write_json_atomic(os.path.join(run_dir, "run.json"), run_settings)
    return run_dir, False


# Run settings a resumed run must share with the run it continues: they decide which weights
# each step computes (the data order, the learning rate at each step, the phases by epoch).
SAME_ON_RESUME = ("data", "epochs", "batch_size", "learning_rate", "lr_schedule", "warmup_steps", "steps_per_epoch",
                  "seed", "init_from")


def _changed_settings(before, now):
    """The model config and run settings that differ between two runs' run.json, as text."""
    changed = [f"{k} {before['model_config'].get(k)!r} → {v!r}" for k, v in now["model_config"].items()
               if before["model_config"].get(k) != v]
    changed += [f"--{k.replace('_', '-')} {before['run'].get(k)!r} → {now['run'].get(k)!r}" for k in SAME_ON_RESUME
                if before["run"].get(k) != now["run"].get(k)]
    return changed


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)
