"""Where a recipe's evaluation spends its time, stage by stage: a trained run folder's model
restored from its last checkpoint and evaluated as its recipe does
(``measure.evaluate_for_export``: choices, measurements, the export's pictures), each stage's
seconds recorded (``progress.recorded``: sampling per sampler, feature metrics, the second classifier, CAS, its
real-data reference, inpainting, the model's own measurements). JSON.

    python bench/evaluation_stages.py [--run runs/diffusion/<time>] [--model diffusion] [--fresh-cache]

``--fresh-cache`` measures as a first run on a machine does, with an empty ZOO_CACHE (the
real-data references computed, not read).
"""

import argparse
import os
import platform
import tempfile
import time

from common import report, restore_run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a recipe's run folder (default: the newest of --model under runs/)")
    p.add_argument("--model", default="diffusion")
    p.add_argument("--fresh-cache", action="store_true")
    args = p.parse_args()
    if args.fresh_cache:
        os.environ["ZOO_CACHE"] = tempfile.mkdtemp(prefix="zoo-cache-")
    import keras

    from zoo.core import data, progress
    from zoo.evaluation import measure
    from zoo.evaluation.settings import EvaluationSettings
    from zoo.export.card import machine

    progress.set_verbosity(0)  # stdout is the JSON; the stages are timed all the same
    model, epoch, run, folder = restore_run(args.run, args.model)
    keras.mixed_precision.set_global_policy("float32")
    splits = data.splits(run["data"], run.get("data_dir"))
    settings = EvaluationSettings(run.get("eval_extractor", "auto"), run.get("eval_samples"), seed=run["seed"])
    started = time.perf_counter()
    model.after_training(*splits.train)
    _, _, _, stages = measure.evaluate_for_export(model, splits, settings)
    total = time.perf_counter() - started
    report("evaluation_stages", {"run": folder, "epoch": epoch, "cpu": machine(), "platform": platform.platform(),
                                 "fresh_cache": args.fresh_cache, "seconds": round(total, 1),
                                 "stages": stages})


if __name__ == "__main__":
    main()
