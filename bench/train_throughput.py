"""Training throughput (images/s) of the VAE recipe's train step and of the keras-io
baseline architecture, in the same run, through zoo's trainer (XLA on and off).

    python bench/train_throughput.py [--steps 60] [--batch-size 64]
"""

import argparse

from common import report

import keras
import tensorflow as tf

from kerasio_vae import kerasio_vae
from zoo import data
from zoo.models.vae import VAE, VAEConfig
from zoo.trainer import Trainer


def throughput(model, batch, steps, jit):
    keras.utils.set_random_seed(0)
    model.compile_default(1e-3)
    trainer = Trainer(model, tf.distribute.get_strategy(), jit_compile=jit)
    train = data.pipeline(data.load("mnist5k", "train"), batch, shuffle=True, drop_remainder=True, repeat=True)
    trainer.fit(train, epochs=1, steps_per_epoch=5, verbose=0)  # trace and compile
    trainer.seconds = trainer.images = 0
    trainer.fit(train, epochs=2, steps_per_epoch=steps, initial_epoch=0, verbose=0)
    return round(trainer.images_per_second, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    results = {}
    for jit in (True, False):
        key = "xla" if jit else "no_xla"
        results[f"zoo_vae_images_per_second_{key}"] = throughput(VAE(VAEConfig()), args.batch_size, args.steps, jit)
        results[f"kerasio_vae_images_per_second_{key}"] = throughput(kerasio_vae(), args.batch_size, args.steps, jit)
    results["zoo_vae_parameters"] = VAE(VAEConfig()).count_params()
    results["kerasio_vae_parameters"] = kerasio_vae().count_params()
    report("train_throughput", {"batch_size": args.batch_size, "steps": 2 * args.steps, **results})


if __name__ == "__main__":
    main()
