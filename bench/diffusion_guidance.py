"""The guidance trade-off of a trained diffusion run (JSON): for each
guidance scale, the recipe's feature metrics (classifier accuracy against the conditioning
labels, FID ± se, KID, precision/recall, …, zoo MNIST classifier) of as many samples as there
are test digits, with the run's DDIM step count, beside the real-data reference.

    python bench/diffusion_guidance.py [--run runs/diffusion/<stamp>] [--guidance 0 1 1.5 2 3]

It restores the run's last checkpoint (whose averaged weights are what the recipe exported),
so it measures the exported model at other guidance scales. ``--weights raw`` samples from the
training network (and guide network) instead of their averages (what an EMA decay of 0 would
have exported); ``--reference training`` compares with training digits instead of the test split, to choose a
setting (a guidance scale) without the digits the card's figures are measured on.
"""

import argparse
import dataclasses
import itertools

import numpy as np
from common import report, restore_run

from zoo.core import data, progress
from zoo.evaluation import measure
from zoo.evaluation.settings import EvaluationSettings


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (default: the newest under runs/diffusion)")
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--intervals", nargs="+", default=None,
                   help="guidance intervals low,high as fractions of T (default: the run's own)")
    p.add_argument("--sample-steps", type=int, nargs="+", default=None,
                   help="DDIM step counts to measure (default: the run's own)")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema",
                   help="sample from the averaged network (exported) or the training network")
    p.add_argument("--reference", choices=("test", "training"), default="test",
                   help="real digits the samples are compared with: the test split (what the card reports), "
                        "or as many training digits drawn at random, to choose a setting without the test digits")
    args = p.parse_args()
    progress.set_verbosity(0)  # the JSON is the output
    model, epoch, settings, run = restore_run(args.run)
    if args.weights == "raw":
        model.network_ema.set_weights(model.network.get_weights())
        if model.guide_network is not None:
            model.guide_network_ema.set_weights(model.guide_network.get_weights())
    test = data.arrays(settings["data"], "test", settings["data_dir"])
    train = data.arrays(settings["data"], "train", settings["data_dir"])
    if args.reference == "training":
        pick = np.random.default_rng(1).choice(len(train[1]), len(test[1]), replace=False)
        test = (train[0][pick], train[1][pick])
    splits = data.Splits(test, train, settings["data"])
    results = {"run": run, "epoch": epoch, "weights": args.weights, "sample_steps": model.config.sample_steps,
               "reference": args.reference, "by_guidance": {}}
    base = model.config
    intervals = [tuple(float(v) for v in i.split(",")) for i in args.intervals] if args.intervals else [
        base.guidance_interval]
    steps = args.sample_steps or [base.sample_steps]
    for interval, g, n in itertools.product(intervals, args.guidance, steps):
        model.config = dataclasses.replace(base, guidance=g, guidance_interval=interval, sample_steps=n)
        measured = measure.sample_metrics(model, splits, EvaluationSettings(seed=settings["seed"]))
        metrics, reference = measured.metrics, measured.reference
        key = str(g) + (f" on [{interval[0]}, {interval[1]}]" if len(intervals) > 1 else "") + (
            f", {n} steps" if len(steps) > 1 else "")
        results["by_guidance"][key] = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        results["real_data_reference"] = reference
        print(key, {k: round(metrics[k], 3) for k in ("classifier_accuracy", "fid", "fid_se", "precision", "recall")},
              flush=True)
    report("diffusion_guidance", results)


if __name__ == "__main__":
    main()
