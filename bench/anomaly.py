"""The anomaly-detection protocol for every held-out digit: train the AE recipe's model on
the other nine digits of mnist5k (minus a held-out tenth for the threshold), score the test
digits by reconstruction MSE, report ROC-AUC, average precision and the rates at a 5%
false-positive threshold. JSON output, with the mean AUC over the ten digits.

    python bench/anomaly.py [--epochs 20]
"""

import argparse
import time

from common import report

import keras
import numpy as np
import tensorflow as tf

from zoo import data, evaluation
from zoo.models.autoencoder import Autoencoder, AutoencoderConfig
from zoo.trainer import Trainer


def run(digit, epochs, seed):
    keras.utils.set_random_seed(seed)
    model = Autoencoder(AutoencoderConfig(anomaly_class=digit, seed=seed))
    model.configure_optimizers(1e-3)
    x, y = data.mnist5k("train")
    keep = model.select_training_examples(y)
    ds = data.training_batches(x[keep], y[keep], 64, seed=seed, first_epoch=0, epochs=epochs)
    Trainer(model, tf.distribute.get_strategy(), jit_compile=True).fit(
        ds, epochs=epochs, steps_per_epoch=int(keep.sum()) // 64, verbose=0)
    result = {}
    evaluation._anomaly(model, evaluation.Splits(data.mnist5k("test"), (x, y)), result, {})
    return {k[len("anomaly_"):]: v for k, v in result.items() if k.startswith("anomaly_")}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.perf_counter()
    per_digit = {digit: run(digit, args.epochs, args.seed) for digit in range(10)}
    report("anomaly", {
        "data": "mnist5k", "epochs": args.epochs, "per_digit": per_digit,
        "mean_auc": float(np.mean([r["auc"] for r in per_digit.values()])),
        "mean_average_precision": float(np.mean([r["average_precision"] for r in per_digit.values()])),
        "seconds": time.perf_counter() - start,
    })


if __name__ == "__main__":
    main()
