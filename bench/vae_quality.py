"""Test negative ELBO (nats/image, lower is better) of zoo's VAE with the recipe's default
flags against the classic keras-io VAE, both trained on mnist5k for the same epochs by the
same loop, evaluated on the same 1,000 test digits.

    python bench/vae_quality.py [--epochs 30]
"""

import argparse

import keras
import tensorflow as tf
from common import report
from kerasio_vae import kerasio_vae

from zoo.core import data
from zoo.models.vae import VAE, VAEConfig
from zoo.training.trainer import Trainer


def train_and_evaluate(model, epochs, batch, learning_rate, seed):
    keras.utils.set_random_seed(seed)
    model.configure_optimizers(learning_rate)
    trainer = Trainer(model, tf.distribute.get_strategy(), jit_compile=True)
    train_x, train_y = data.mnist5k("train")
    train = data.training_batches(train_x, train_y, batch, seed=seed, first_epoch=0, epochs=epochs)
    trainer.fit(train, epochs=epochs, steps_per_epoch=len(train_y) // batch, verbose=0)
    result = model.measure(data.mnist5k("test"), (train_x, train_y))
    return {"test_negative_elbo": -result["elbo"], "test_nll_iw": result["nll_iw"],
            "parameters": model.count_params(), "train_seconds": round(trainer.seconds, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    zoo_vae = train_and_evaluate(VAE(VAEConfig(seed=args.seed)), args.epochs, 64, 1e-3, args.seed)
    keras.utils.set_random_seed(args.seed)
    baseline = train_and_evaluate(kerasio_vae(args.seed), args.epochs, 64, 1e-3, args.seed)
    report("vae_quality", {
        "data": "mnist5k", "epochs": args.epochs,
        "zoo_vae": zoo_vae, "kerasio_vae": baseline,
        "nats_better": round(baseline["test_negative_elbo"] - zoo_vae["test_negative_elbo"], 2),
    })


if __name__ == "__main__":
    main()
