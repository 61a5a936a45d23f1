"""zoo's GroupNorm against Keras' GroupNormalization, in one run: the layer alone at the
U-Net's shapes, the diffusion U-Net's forward pass (what sampling costs), and a full training
step of the diffusion model and the cGAN through zoo's Trainer. JSON, milliseconds and
images/s; every pair is timed in rotation (``--repeats``), so drift hits both alike.

    python bench/group_norm.py [--repeats 6] [--steps 48] [--parts layer forward training]
"""

import argparse
import contextlib
import statistics
import time

import keras
import tensorflow as tf
from common import in_rotation, report

from zoo.blocks import nets
from zoo.core import data
from zoo.models.cgan import CGAN
from zoo.models.diffusion import Diffusion
from zoo.training.trainer import Trainer

IMPLEMENTATIONS = {"zoo": nets.GroupNorm, "keras": keras.layers.GroupNormalization}


@contextlib.contextmanager
def group_norm(name):
    """Build networks with the named implementation (nets builds every GroupNorm by this name)."""
    nets.GroupNorm, saved = IMPLEMENTATIONS[name], nets.GroupNorm
    try:
        yield
    finally:
        nets.GroupNorm = saved


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rotate(timers, repeats):
    """{name: [seconds per call] × repeats}: two warm-up calls each, then ``in_rotation``."""
    for fn in timers.values():
        fn(), fn()
    return in_rotation({name: lambda fn=fn: seconds(fn) for name, fn in timers.items()}, repeats)


def summary(runs, per):
    """ms per ``per`` unit: median and min."""
    return {name: {"median_ms": round(1e3 * statistics.median(t) / per, 3), "min_ms": round(1e3 * min(t) / per, 3)}
            for name, t in runs.items()}


def layer_timers(shape, groups):
    x = tf.random.normal(shape)
    timers = {}
    for name, cls in IMPLEMENTATIONS.items():
        layer = cls(groups)
        layer.build(shape)

        def forward_backward(layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(layer(x) * x)
            return tape.gradient(y, [x, *layer.trainable_variables])

        timers[f"{name}/forward"] = tf.function(lambda layer=layer: layer(x))
        timers[f"{name}/forward_backward"] = tf.function(forward_backward)
    return timers


def unet_forward_timers(batch):
    x, t, y = tf.random.normal([batch, 28, 28, 1]), tf.fill([batch], 500), tf.fill([batch], 3)
    timers = {}
    for name in IMPLEMENTATIONS:
        with group_norm(name):
            net = nets.unet((28, 28, 1), 10, (32, 64, 64), (False, False, True))
        timers[name] = tf.function(lambda net=net: net([x, t, y]))
    return timers


def training_timers(model_class, steps, batch):
    x, y = data.mnist5k("train")
    timers = {}
    for name in IMPLEMENTATIONS:
        with group_norm(name):
            keras.utils.set_random_seed(0)
            model = model_class()
        model.configure_optimizers(model_class.run_defaults["learning_rate"])
        trainer = Trainer(model, tf.distribute.get_strategy(), steps_per_execution=8)
        trainer.build()

        def train(trainer=trainer):
            trainer.fit(data.training_batches(x, y, batch, seed=0, first_epoch=0, epochs=1).take(steps),
                        epochs=1, steps_per_epoch=steps, verbose=0)

        timers[name] = train
    return timers


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--steps", type=int, default=48, help="training steps per timed run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--parts", nargs="+", default=["layer", "forward", "training"], choices=("layer", "forward", "training"))
    p.add_argument("--models", nargs="+", default=["diffusion", "cgan"], choices=("diffusion", "cgan"),
                   help="the models whose training step is timed")
    args = p.parse_args()
    results = {"layer": {}, "unet_forward_ms_per_image": {}, "training_images_per_second": {}}
    for shape in [(64, 28, 28, 32), (64, 14, 14, 64), (64, 7, 7, 64)] if "layer" in args.parts else []:
        results["layer"][str(shape)] = summary(rotate(layer_timers(shape, 8), args.repeats), 1)
    for batch in (64, 500) if "forward" in args.parts else []:
        results["unet_forward_ms_per_image"][batch] = summary(rotate(unet_forward_timers(batch), args.repeats), batch)
    models = {"diffusion": Diffusion, "cgan": CGAN}
    for label, model_class in [(m, models[m]) for m in args.models] if "training" in args.parts else []:
        runs = rotate(training_timers(model_class, args.steps, args.batch_size), args.repeats)
        images = args.steps * args.batch_size
        results["training_images_per_second"][label] = {
            name: {"median": round(images / statistics.median(t), 1), "max": round(images / min(t), 1),
                   "runs": [round(images / x, 1) for x in t]}
            for name, t in runs.items()}
    report("group_norm", {"repeats": args.repeats, "steps": args.steps, "batch_size": args.batch_size, **results})


if __name__ == "__main__":
    main()
