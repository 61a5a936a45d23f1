"""The evaluation's repeated work, each way it can be done, timed in turn (JSON output).

- FID of 30 bootstrap replicates and of FID∞'s 25 subsets, 1,000 samples × 1,024 features (the
  zoo classifier's, on the default run's sample count): ``frechet_distance`` on each resample
  against ``ResampledFrechet``'s one n × n matrix.
- Precision, recall, density and coverage of the 30 replicates: ``neighbourhood_metrics`` on each
  against ``ResampledNeighbourhoods``' lookups.
- KID's 100 subsets of 500: each subset's kernels against the kernels made once.
- The CAS classifier, 40 epochs over 1,000 images: Keras ``fit`` against the loop
  ``zoo.metrics.cas`` runs (each epoch's batches drawn first, ``train_on_batch``), the test
  accuracy of each.

    python bench/evaluation_speed.py [--repeats 2]
"""

import argparse
import time

import numpy as np
from common import in_rotation, report

from zoo.metrics import core, resampling


def features(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(size=(n, dim)) @ (rng.normal(size=(dim, dim)) / np.sqrt(dim)) + shift, 0)


def clocked(fn):
    start = time.perf_counter()
    value = fn()
    return {"seconds": round(time.perf_counter() - start, 3), "value": value}


def fid_routes(real, fake, draws, subsets):
    def each():
        return [core.frechet_distance(real, fake[i]) for i in draws + subsets]

    def resampled():
        fid = resampling.ResampledFrechet(real, fake)
        return [fid(i) for i in draws + subsets]

    return {"frechet_distance_per_resample": lambda: clocked(each), "resampled_frechet": lambda: clocked(resampled)}


def neighbourhood_routes(real, fake, draws):
    real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
    radii = (*core.knn_radii(real32, 3, 5), core.knn_radii(fake32, 3))

    def each():
        return [core.neighbourhood_metrics(real32, fake32[i], radii=(radii[0], radii[1], radii[2][i])) for i in draws]

    def lookups():
        found = resampling.ResampledNeighbourhoods(real32, fake32, radii)
        return [found(i) for i in draws]

    return {"neighbourhood_metrics_per_resample": lambda: clocked(each),
            "resampled_neighbourhoods": lambda: clocked(lookups)}


def kid_routes(real, fake):
    def with_limit(limit):
        def run():
            saved, core.KERNELS_ONCE = core.KERNELS_ONCE, limit
            try:
                return clocked(lambda: core.kernel_distance(real, fake, 100, 500))
            finally:
                core.KERNELS_ONCE = saved
        return run

    return {"kernels_per_subset": with_limit(0), "kernels_once": with_limit(len(real))}


def cas_routes(epochs):
    import keras
    import tensorflow as tf

    from zoo.blocks import nets
    from zoo.core import data
    from zoo.evaluation.references import stratified
    from zoo.metrics import cas

    splits = data.splits("mnist5k")
    (train_x, train_y), (test_x, test_y) = splits.train, splits.test
    index = stratified(train_y, 1000, 0)
    x, y = train_x[index], train_y[index].astype(np.int32)

    def fit():  # the loop before: plain Keras fit over the same pipeline
        keras.utils.set_random_seed(0)
        network = nets.classifier(x.shape[1:], 10, name="cas_classifier")
        model = keras.Model(network.input, network.output["logits"])
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        ds = data.pipeline(tf.data.Dataset.from_tensor_slices((x, y)), 64, shuffle=True, seed=0, drop_remainder=True)
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False)
        return float(np.mean(np.argmax(model.predict(test_x, batch_size=500, verbose=0), -1) == test_y))

    return {"keras_fit": lambda: clocked(fit),
            "zoo_loop": lambda: clocked(lambda: cas.train_and_test(x, y, test_x, test_y, 10, epochs))}


def summary(runs):
    return {name: {"seconds": [r["seconds"] for r in results],
                   "value": results[0]["value"] if not isinstance(results[0]["value"], list) else None}
            for name, results in runs.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cas-epochs", type=int, default=40)
    args = p.parse_args()
    real, fake = features(1000, 1024, 0), features(1000, 1024, 1, 0.1)
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, 1000, 1000) for _ in range(30)]
    subsets = [rng.choice(1000, n, replace=False) for n in range(200, 1000, 100) for _ in range(3)]
    fid = in_rotation(fid_routes(real, fake, draws, subsets), args.repeats)
    values = [np.asarray(r[0]["value"]) for r in fid.values()]
    results = {
        "features": [1000, 1024],
        "fid_bootstrap_and_subsets": {"resamples": len(draws) + len(subsets), **summary(fid),
                                      "largest_relative_difference": float(np.max(np.abs(values[0] - values[1])
                                                                                  / values[0]))},
        "precision_recall_density_coverage_30_replicates": summary(
            in_rotation(neighbourhood_routes(real, fake, draws), args.repeats)),
        "kid_100_subsets_of_500": summary(in_rotation(kid_routes(real, fake), args.repeats)),
        f"cas_{args.cas_epochs}_epochs_1000_images": summary(in_rotation(cas_routes(args.cas_epochs), args.repeats)),
    }
    report("evaluation_speed", results)


if __name__ == "__main__":
    main()
