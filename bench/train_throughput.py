"""Training throughput (images/s) through zoo's trainer, XLA on and off: the VAE recipe's
train step and the keras-io baseline architecture in the same run, or (``--model
diffusion``) the diffusion U-Net of each recipe preset.

    python bench/train_throughput.py [--model vae|diffusion] [--steps N] [--batch-size 64]
"""

import argparse

from common import report

import keras
import tensorflow as tf

from kerasio_vae import kerasio_vae
from zoo import data
from zoo.models.diffusion import PRESETS, Diffusion, DiffusionConfig
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
    p.add_argument("--model", choices=("vae", "diffusion"), default="vae")
    p.add_argument("--steps", type=int, help="timed steps per epoch, 2 epochs (default 60; diffusion 10)")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    steps = args.steps or (60 if args.model == "vae" else 10)
    results = {}
    for jit in (True, False):
        key = "xla" if jit else "no_xla"
        if args.model == "vae":
            results[f"zoo_vae_images_per_second_{key}"] = throughput(VAE(VAEConfig()), args.batch_size, steps, jit)
            results[f"kerasio_vae_images_per_second_{key}"] = throughput(kerasio_vae(), args.batch_size, steps, jit)
        else:
            for name, preset in PRESETS.items():
                model = Diffusion(DiffusionConfig(channels=preset["channels"]))
                results[f"diffusion_{name}_parameters"] = model.network.count_params()
                results[f"diffusion_{name}_images_per_second_{key}"] = throughput(model, args.batch_size, steps, jit)
    if args.model == "vae":
        results["zoo_vae_parameters"] = VAE(VAEConfig()).count_params()
        results["kerasio_vae_parameters"] = kerasio_vae().count_params()
    report("train_throughput", {"model": args.model, "batch_size": args.batch_size, "steps": 2 * steps, **results})


if __name__ == "__main__":
    main()
