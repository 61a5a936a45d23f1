"""Anomaly detection on the leave-one-digit-out protocol (JSON and a table): for every digit
K, train each model (AE, DAE, VAE; the recipes' defaults, the same epochs) on the other nine
digits of mnist5k minus a held-out tenth, fit its latent mixture, let it choose its default
score on the held-out normal images and proxy anomalies made from them (never on K), and
report on the 1,000 test digits:

- the ROC-AUC of every part (reconstruction excess — the MSE beyond what held-out normal
  images with the same ink, edges and lit pixels have —, likelihood in bits — the VAE's negative
  ELBO —, −log density of the code under the mixture, the complexity-corrected likelihood
  −log p(x) − L(x) of Serrà et al. with L the PNG length) and of every candidate combination;
- the chosen score's ROC-AUC, average precision and true-positive rate at the threshold that
  flags 5% of the held-out normal images, and its TFLite form's ROC-AUC.

    python bench/anomaly.py [--epochs 20] [--models ae dae vae] [--digits 0 1 ... 9]
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf
from common import report
from sklearn.metrics import roc_auc_score

from zoo import data, evaluation, latent, progress
from zoo.models.autoencoder import Autoencoder, DenoisingAutoencoder
from zoo.models.vae import VAE
from zoo.trainer import Trainer

MODELS = {"ae": Autoencoder, "dae": DenoisingAutoencoder, "vae": VAE}


def trained(model_class, digit, epochs, seed):
    """The model as its recipe trains it with --anomaly-class digit (default flags)."""
    keras.utils.set_random_seed(seed)
    model = model_class(model_class.Config(anomaly_class=digit, seed=seed))
    model.configure_optimizers(model_class.run_defaults["learning_rate"])
    x, y = data.mnist5k("train")
    keep = model.select_training_examples(y)
    batch = model_class.run_defaults["batch_size"]
    steps = int(keep.sum()) // batch
    ds = data.training_batches(x[keep], y[keep], batch, seed=seed, first_epoch=0, epochs=epochs)
    Trainer(model, tf.distribute.get_strategy(), jit_compile=model_class.jit_compile, steps_per_execution=8).fit(
        ds, epochs=epochs, steps_per_epoch=steps, verbose=0)
    model.after_training(x, y)
    return model


def measure(model, digit):
    splits = evaluation.Splits(data.mnist5k("test"), data.mnist5k("train"))
    metrics, info = {}, {}
    evaluation.anomaly_metrics(model, splits, metrics, info)
    test_x, test_y = splits.test
    parts = model.anomaly_parts_of(test_x)
    centre = dict(zip(model.score.parts, model.score.centre.numpy()))
    scale = dict(zip(model.score.parts, model.score.scale.numpy()))
    candidates = {}
    for name, weights in latent.candidate_combinations(list(parts)).items():
        score = sum(w * (parts[p] - centre[p]) / scale[p] for p, w in weights.items())
        candidates[name] = float(roc_auc_score(test_y == digit, score))
    return {"chosen": model.fitted["anomaly_score"]["chosen"],
            "auc": metrics["anomaly_auc"], "average_precision": metrics["anomaly_average_precision"],
            "tpr_at_5pct_fpr": metrics["anomaly_true_positive_rate"],
            "fpr_at_threshold": metrics["anomaly_false_positive_rate"],
            "auc_tflite": metrics["anomaly_auc_tflite"], "auc_by_candidate": candidates,
            "proxy_auc_by_candidate_and_kind": model.fitted["anomaly_score"]["proxy_auc"],
            "mixture_components": model.fitted["latent_mixture"]["components"],
            "class_density_per_class": model.fitted["class_density"]["per_class"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    progress.set_verbosity(0)  # the JSON is the output
    start = time.perf_counter()
    results = {}
    for name in args.models:
        per_digit = {}
        for digit in args.digits:
            per_digit[digit] = measure(trained(MODELS[name], digit, args.epochs, args.seed), digit)
            print(name, digit, per_digit[digit]["chosen"], round(per_digit[digit]["auc"], 3),
                  {k: round(v, 3) for k, v in per_digit[digit]["auc_by_candidate"].items()}, flush=True)
        candidates = per_digit[args.digits[0]]["auc_by_candidate"]
        results[name] = {
            "per_digit": per_digit,
            "mean_auc": float(np.mean([r["auc"] for r in per_digit.values()])),
            "min_auc": float(np.min([r["auc"] for r in per_digit.values()])),
            "mean_average_precision": float(np.mean([r["average_precision"] for r in per_digit.values()])),
            "mean_tpr_at_5pct_fpr": float(np.mean([r["tpr_at_5pct_fpr"] for r in per_digit.values()])),
            "mean_auc_tflite": float(np.mean([r["auc_tflite"] for r in per_digit.values()])),
            "mean_auc_by_candidate": {c: float(np.mean([r["auc_by_candidate"][c] for r in per_digit.values()]))
                                      for c in candidates},
        }
    report("anomaly", {"data": "mnist5k", "epochs": args.epochs, "seed": args.seed, "models": results,
                       "seconds": time.perf_counter() - start})


if __name__ == "__main__":
    main()
