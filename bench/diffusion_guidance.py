"""The classifier-free guidance trade-off of a trained diffusion run (JSON): for each
guidance scale, the recipe's feature metrics (classifier accuracy against the conditioning
labels, FID ± se, KID, precision/recall, …, zoo MNIST classifier) of as many samples as there
are test digits, with the run's DDIM step count, beside the real-data reference.

    python bench/diffusion_guidance.py [--run runs/diffusion/<stamp>] [--guidance 0 1 1.5 2 3]

It restores the run's last checkpoint (whose averaged weights are what the recipe exported),
so it measures the exported model at other guidance scales.
"""

import argparse
import dataclasses
import glob
import json
import os

from common import report

import tensorflow as tf

from zoo import data, evaluation
from zoo.models.diffusion import Diffusion, DiffusionConfig
from zoo.trainer import Trainer


def restore(run):
    """The model of a recipe run folder, at its last checkpoint."""
    with open(os.path.join(run, "run.json")) as f:
        settings = json.load(f)
    model = Diffusion(DiffusionConfig.from_dict(settings["model_config"]))
    model.configure_optimizers(settings["run"]["learning_rate"])
    trainer = Trainer(model, tf.distribute.get_strategy(), checkpoint_dir=os.path.join(run, "checkpoints"))
    return model, trainer.restore(), settings["run"]


def newest_run():
    runs = sorted(glob.glob(os.path.join("runs", "diffusion", "*", "checkpoints")))
    return os.path.dirname(runs[-1]) if runs else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (default: the newest under runs/diffusion)")
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0])
    args = p.parse_args()
    run = args.run or newest_run()
    if run is None or not os.path.isdir(os.path.join(run, "checkpoints")):
        raise SystemExit("no diffusion run found: train one with `python recipes/diffusion.py` or pass --run")
    model, epoch, settings = restore(run)
    splits = evaluation.Splits(data.arrays(settings["data"], "test", settings["data_dir"]),
                               data.arrays(settings["data"], "train", settings["data_dir"]), settings["data"])
    results = {"run": run, "epoch": epoch, "sample_steps": model.config.sample_steps, "by_guidance": {}}
    for g in args.guidance:
        model.config = dataclasses.replace(model.config, guidance=g)
        metrics, reference, _ = evaluation.sample_metrics(model, splits, evaluation.Settings(seed=settings["seed"]))
        results["by_guidance"][str(g)] = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        results["real_data_reference"] = reference
    report("diffusion_guidance", results)


if __name__ == "__main__":
    main()
