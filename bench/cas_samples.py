"""What a CAS on fewer generated samples would cost: the classification accuracy score of a
trained conditional model's samples (drawn as its recipe's evaluation draws them: the feature
metrics' 1,000 test labels first, then the training split's class counts), with classifiers
trained on the first N samples for several seeds, beside the same classifier trained on N real
training images. Fewer samples make the sampling cheaper; the JSON says how far the figure
moves and how much it varies with the classifier's seed. JSON.

    python bench/cas_samples.py [--run runs/diffusion/<time>] [--sizes 1000 2000 4000] [--seeds 3]

``--epochs-scaled`` also trains N < all for proportionally more epochs (the same number of steps).
"""

import argparse
import statistics
import time

import numpy as np
from common import report, restore_run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a recipe's run folder (default: the newest diffusion run under runs/)")
    p.add_argument("--model", default="diffusion")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs-scaled", action="store_true")
    args = p.parse_args()
    import keras

    from zoo.core import data, progress
    from zoo.evaluation import measure
    from zoo.evaluation.references import matching_indices, stratified
    from zoo.export.card import machine
    from zoo.metrics import cas

    progress.set_verbosity(0)
    model, epoch, run, folder = restore_run(args.run, args.model)
    keras.mixed_precision.set_global_policy("float32")
    model = model.float32_copy()
    splits = data.splits(run["data"], run.get("data_dir"))
    (test_x, test_y), (train_x, train_y) = splits.test, splits.train
    classes = model.config.num_classes
    labels = test_y[stratified(test_y, len(test_y), run["seed"])]
    # the recipe's CAS labels: the feature metrics' test labels, then the rest of the training counts
    need = np.bincount(train_y, minlength=classes) - np.bincount(labels, minlength=classes)
    rest = np.repeat(np.arange(classes), np.clip(need, 0, None))
    rest = rest[np.random.default_rng(run["seed"]).permutation(len(rest))]
    all_labels = np.concatenate([labels, rest]).astype(np.int32)
    started = time.perf_counter()
    fake = np.concatenate([model.sample_numpy(all_labels[s:s + 250], run["seed"] + s)
                           for s in range(0, len(all_labels), 250)])
    sampling = time.perf_counter() - started
    results = {}
    for n in args.sizes:
        n = min(n, len(all_labels))
        settings = [measure.CAS_EPOCHS] + ([round(measure.CAS_EPOCHS * len(all_labels) / n)]
                                           if args.epochs_scaled and n < len(all_labels) else [])
        for epochs in settings:
            real = matching_indices(train_y, all_labels[:n], 0)
            row = {"generated": [], "real": [], "seconds_per_classifier": []}
            for seed in range(args.seeds):
                started = time.perf_counter()
                row["generated"].append(cas.train_and_test(fake[:n], all_labels[:n], test_x, test_y, classes, epochs,
                                                           seed=seed))
                row["seconds_per_classifier"].append(round(time.perf_counter() - started, 1))
                row["real"].append(cas.train_and_test(train_x[real], train_y[real], test_x, test_y, classes, epochs,
                                                      seed=seed))
            for key in ("generated", "real"):
                row[f"{key}_mean"] = statistics.mean(row[key])
                row[f"{key}_seed_sd"] = statistics.stdev(row[key]) if len(row[key]) > 1 else None
            mean = row["generated_mean"]
            row["binomial_se_over_the_test_images"] = float(np.sqrt(mean * (1 - mean) / len(test_y)))
            row["sampling_seconds"] = round(sampling * n / len(all_labels), 1)
            results[f"{n} samples, {epochs} epochs"] = row
    report("cas_samples", {"run": folder, "epoch": epoch, "cpu": machine(), "test_images": len(test_y),
                           "all_samples": len(all_labels), "results": results})


if __name__ == "__main__":
    main()
