"""Anomaly detection on the leave-one-digit-out protocol (JSON and a table): for every digit
K, each model (AE, DAE, VAE) as its recipe trains it with --anomaly-class K (the recipe's
defaults, the same epochs): on the other nine digits of mnist5k minus a held-out tenth, its
latent mixture fitted and its score chosen on the held-out normal images and proxy anomalies
made from them (never on K); reported on the 1,000 test digits:

- the ROC-AUC of every part (reconstruction excess — the MSE beyond what held-out normal
  images with the same ink, edges and lit pixels have —, likelihood in bits — the VAE's negative
  ELBO —, −log density of the code under the mixture, the complexity-corrected likelihood
  −log p(x) − L(x) of Serrà et al. with L the PNG length) and of every candidate combination;
- the chosen score's ROC-AUC, average precision and true-positive rate at the threshold that
  flags 5% of the held-out normal images, and its TFLite form's ROC-AUC.

    python bench/anomaly.py [--epochs 20] [--models ae dae vae] [--digits 0 1 ... 9]
"""

import argparse
import tempfile
import time

import numpy as np
from common import report
from sklearn.metrics import roc_auc_score

from zoo import recipe
from zoo.blocks import latent
from zoo.core import data, progress
from zoo.models.autoencoder import Autoencoder, DenoisingAutoencoder
from zoo.models.vae import VAE

MODELS = {"ae": Autoencoder, "dae": DenoisingAutoencoder, "vae": VAE}


def trained(model_class, digit, epochs, seed):
    """``python recipes/<model>.py --anomaly-class DIGIT`` with the recipe's defaults but the
    epochs: the model, fitted and with its score chosen, and its card."""
    with tempfile.TemporaryDirectory() as out:
        result = recipe.main(model_class, ["--anomaly-class", str(digit), "--epochs", str(epochs), "--seed", str(seed),
                                           "--eval-extractor", "none", "--tflite-variants", "none", "--no-web",
                                           "--verbose", "0", "--out", out, "--runs-dir", out])
    return result.model, result.card


def measure(model, card, digit):
    test_x, test_y = data.mnist5k("test")
    parts = model.anomaly_parts_numpy(test_x)
    centre, scale = model.codes.score.standardisation()
    candidates = {name: float(roc_auc_score(test_y == digit, latent.standardised_sum(parts, weights, centre, scale)))
                  for name, weights in latent.candidate_combinations(list(parts)).items()}
    metrics, chosen = card["metrics"], card["evaluation"]["anomaly_score"]
    return {"chosen": chosen["chosen"],
            "auc": metrics["anomaly_auc"], "average_precision": metrics["anomaly_average_precision"],
            "tpr_at_5pct_fpr": metrics["anomaly_true_positive_rate"],
            "fpr_at_threshold": metrics["anomaly_false_positive_rate"],
            "auc_tflite": metrics["anomaly_auc_tflite"], "auc_by_candidate": candidates,
            "proxy_auc_by_candidate_and_kind": chosen["proxy_auc"],
            "mixture_components": card["evaluation"]["latent_mixture"]["components"],
            "class_density_per_class": card["evaluation"]["class_density"]["per_class"]}


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
            per_digit[digit] = measure(*trained(MODELS[name], digit, args.epochs, args.seed), digit)
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
