"""The classifier-free guidance trade-off of a trained diffusion run (JSON): for each
guidance scale, the recipe's evaluation (classifier accuracy against the conditioning
labels, FID, KID, precision/recall, …, zoo MNIST classifier) of as many samples as there are
test digits, with the run's DDIM step count.

    python bench/diffusion_guidance.py [--run runs/diffusion/<stamp>] [--guidance 0 1 1.5 2 3]

It restores the run's last checkpoint (the EMA weights), so it measures the model the
recipe exported, at other guidance scales.
"""

import argparse
import glob
import json
import os

from common import report

import tensorflow as tf

from zoo import data, metrics
from zoo.models.diffusion import Diffusion, DiffusionConfig
from zoo.trainer import Trainer


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (default: the newest under runs/diffusion)")
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0])
    args = p.parse_args()
    runs = sorted(glob.glob(os.path.join("runs", "diffusion", "*", "checkpoints")))
    run = args.run or (os.path.dirname(runs[-1]) if runs else None)
    if run is None or not os.path.isdir(os.path.join(run, "checkpoints")):
        raise SystemExit("no diffusion run found: train one with `python recipes/diffusion.py` or pass --run")
    with open(os.path.join(run, "run.json")) as f:
        settings = json.load(f)
    model = Diffusion(DiffusionConfig(**settings["model_config"]))
    model.compile_default(settings["flags"]["learning_rate"])
    trainer = Trainer(model, tf.distribute.get_strategy(), checkpoint_dir=os.path.join(run, "checkpoints"))
    trainer.build()
    epoch = trainer.restore()
    images, labels = data.arrays(settings["flags"]["data"], "test", settings["flags"]["data_dir"])
    results = {"run": run, "epoch": epoch, "sample_steps": model.config.sample_steps, "by_guidance": {}}
    for g in args.guidance:
        model.config.guidance = g
        scores = metrics.evaluate_model(model, images, labels, seed=settings["flags"]["seed"])
        results["by_guidance"][str(g)] = {k: v for k, v in scores.items() if not isinstance(v, dict)}
    report("diffusion_guidance", results)


if __name__ == "__main__":
    main()
