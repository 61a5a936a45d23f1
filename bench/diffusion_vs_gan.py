"""The diffusion model against the cGAN, in two feature spaces (JSON): zoo's classifier's and a
second classifier's, built and trained apart (zoo.metrics.extractors.CLASSIFIERS). For the cGAN
export and each diffusion setting — guidance scale, DDIM steps, the averaged or the training
network, the distilled students — the same 1,000 test labels: classifier accuracy, FID ± se,
precision, recall in both spaces, and FID per class in zoo's (intra-FID), beside the real-data
reference.

    python bench/diffusion_vs_gan.py --run runs/diffusion/<stamp> --cgan exported/cgan \\
        [--students exported/diffusion] [--guidance 1.4 1.7 2.0] [--sample-steps 20 8]
"""

import argparse
import dataclasses
import itertools

from common import report, restore_run

from zoo.apps import pretrained
from zoo.core import data, progress
from zoo.evaluation import measure
from zoo.evaluation.settings import EvaluationSettings

KEYS = ("classifier_accuracy", "fid", "fid_se", "precision", "recall", "intra_fid", "independent_fid",
        "independent_fid_se", "independent_precision", "independent_recall")


def measured(model, splits, seed):
    m = measure.sample_metrics(model, splits, EvaluationSettings(seed=seed))
    return {**{k: m.metrics[k] for k in KEYS if k in m.metrics},
            "intra_fid_per_class": m.metrics.get("intra_fid_per_class")}, m.reference


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (its checkpoint has the training networks too)")
    p.add_argument("--cgan", default="exported/cgan")
    p.add_argument("--students", help="an export with distilled students (measured at their steps)")
    p.add_argument("--guidance", type=float, nargs="+", default=[1.4, 1.7, 2.0])
    p.add_argument("--sample-steps", type=int, nargs="+", default=[20])
    p.add_argument("--raw", action="store_true", help="also the training networks instead of their averages")
    args = p.parse_args()
    progress.set_verbosity(0)
    model, epoch, settings, run = restore_run(args.run)
    splits = data.splits(settings["data"])
    results = {"run": run, "epoch": epoch, "cgan": args.cgan, "by_setting": {}}
    results["by_setting"]["cgan"], reference = measured(pretrained.keras_model(args.cgan), splits, settings["seed"])
    results["real_data_reference"] = {k: v for k, v in reference.items() if k in KEYS}
    base = model.config
    for weights, (g, n) in itertools.product(("ema", "raw") if args.raw else ("ema",),
                                             itertools.product(args.guidance, args.sample_steps)):
        if weights == "raw":  # the averages are not needed again: every averaged setting came first
            model.network_ema.set_weights(model.network.get_weights())
            model.guide_network_ema.set_weights(model.guide_network.get_weights())
        model.config = dataclasses.replace(base, guidance=g, sample_steps=n)
        key = f"diffusion g={g}, {n} steps" + (", training networks" if weights == "raw" else "")
        results["by_setting"][key], _ = measured(model, splits, settings["seed"])
        print(key, {k: round(v, 3) for k, v in results["by_setting"][key].items() if isinstance(v, float)}, flush=True)
    if args.students:
        distilled = pretrained.keras_model(args.students)
        for steps in distilled.config.students:
            with distilled.sampling_with(f"student_{steps}_steps"):
                key = f"student, {steps} steps"
                results["by_setting"][key], _ = measured(distilled, splits, settings["seed"])
                print(key, {k: round(v, 3) for k, v in results["by_setting"][key].items() if isinstance(v, float)},
                      flush=True)
    report("diffusion_vs_gan", results)


if __name__ == "__main__":
    main()
