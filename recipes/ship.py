"""Rebuild the shipped models in exported/ from the recipes, with their default flags.

    python recipes/ship.py                  # all five: vae ae dae cgan diffusion (about 75 min on 2 cores)
    python recipes/ship.py vae cgan         # some of them
    python recipes/ship.py diffusion --force

Each model is trained, evaluated and exported by its recipe in a fresh process, into a scratch
folder (diffusion: then its few-step students by recipes/distill.py); the export replaces
exported/<model> only if its quality is at least what was shipped, within the cards'
standard errors (``--force`` replaces it whatever). The shipped folder keeps the newest
SavedModel version only. Commit exported/<model> afterwards: its card records the commit,
command line, machine and times that made it.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPOSITORY, "exported")
MODELS = ("vae", "ae", "dae", "cgan", "diffusion")
# what each model is built by: recipes run in turn, each from the export the one before wrote
COMMANDS = {name: [[f"recipes/{name}.py"]] for name in MODELS}
COMMANDS["diffusion"] = [["recipes/diffusion.py"], ["recipes/distill.py", "--init-from", "{out}/diffusion", "--replace"]]
# the quality gate: a figure may not be worse than the shipped one by more than this many
# standard errors of the difference (+1: higher is better)
GATE = {"fid": -1, "classifier_accuracy": +1, "precision": +1, "recall": +1}
TOLERANCE_SE = 2.0


def worse_figures(old, new):
    """The gated figures (the samplers' too) on which ``new`` is worse than ``old`` beyond their
    standard errors, as text."""
    problems = []
    for key, value in new.items():
        base = key.rsplit("_steps_", 1)[-1] if "_steps_" in key else key
        if base not in GATE or key not in old or not isinstance(value, float):
            continue
        se = math.hypot(old.get(f"{key}_se", 0.0), new.get(f"{key}_se", 0.0))
        if GATE[base] * (value - old[key]) < -TOLERANCE_SE * se:
            problems.append(f"{key} {old[key]:.4g} → {value:.4g} (± {se:.2g})")
    return problems


def build(name, scratch):
    out = os.path.join(scratch, "exported")
    for command in COMMANDS[name]:
        argv = [sys.executable, *[part.format(out=out) for part in command], "--out", out,
                "--runs-dir", os.path.join(scratch, "runs")]
        print(f"ship: {' '.join(argv[1:])}", flush=True)
        if subprocess.run(argv, cwd=REPOSITORY).returncode != 0:
            raise SystemExit(f"ship: {name} failed; exported/{name} is unchanged")
    return os.path.join(out, name)


def keep_newest_version(folder):
    serving = os.path.join(folder, "serving")
    versions = sorted(int(v) for v in os.listdir(serving) if v.isdigit())
    for v in versions[:-1]:
        shutil.rmtree(os.path.join(serving, str(v)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=list(MODELS), choices=MODELS, metavar="MODEL",
                   help=f"which ({', '.join(MODELS)}; default all)")
    p.add_argument("--force", action="store_true", help="replace the shipped export even if its quality is lower")
    args = p.parse_args()
    scratch = os.path.join(REPOSITORY, "runs", "ship", time.strftime("%Y%m%d-%H%M%S"))
    for name in args.models:
        built = build(name, scratch)
        keep_newest_version(built)
        target = os.path.join(SHIPPED, name)
        with open(os.path.join(built, "model_card.json")) as f:
            new = json.load(f)
        if os.path.isfile(os.path.join(target, "model_card.json")):
            with open(os.path.join(target, "model_card.json")) as f:
                old = json.load(f)
            problems = worse_figures(old["metrics"], new["metrics"])
            if problems and not args.force:
                print(f"ship: not replacing exported/{name}: the new model is worse on {'; '.join(problems)} "
                      f"(kept in {built}; --force replaces it anyway)")
                continue
            shutil.rmtree(target)
        os.makedirs(SHIPPED, exist_ok=True)
        shutil.move(built, target)
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(target) for f in files)
        print(f"ship: exported/{name} replaced ({size / 1e6:.1f} MB); commit it with its card")


if __name__ == "__main__":
    main()
