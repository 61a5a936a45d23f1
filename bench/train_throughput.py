"""Training throughput (images/s): zoo's Trainer against Keras ``Model.fit`` on the same model
object, the same data pipeline and the same XLA setting, at 1 step per call and at K steps per
call (zoo's ``--steps-per-execution`` / Keras' ``steps_per_execution``), for the VAE, cGAN and
diffusion training steps; plus the keras-io VAE for scale. JSON; every configuration is timed
``--repeats`` times in rotation, reversed every other round (so drift and going first hit all
alike): compare min and median within one run.

    python bench/train_throughput.py [--models vae cgan diffusion] [--k 1 8] [--steps 40]
        [--repeats 3] [--precision float32 bfloat16] [--xla on off]

``--precision bfloat16`` times ``mixed_bfloat16`` too (whether bfloat16 is worth it on a CPU),
``--precision float16`` times ``mixed_float16`` (GPUs);
``--sweep-k 1 2 4 8 16 32`` times zoo's trainer alone over K (how the default K was chosen).
"""

import argparse
import statistics
import time

import keras
import tensorflow as tf
from common import in_rotation, report
from kerasio_vae import kerasio_vae

from zoo.core import data, distribute
from zoo.models.cgan import CGAN
from zoo.models.diffusion import Diffusion
from zoo.models.vae import VAE
from zoo.training.trainer import Trainer

MODELS = {"vae": VAE, "cgan": CGAN, "diffusion": Diffusion, "kerasio_vae": None}


def build(name, policy):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    # the diffusion model without its guide network: Keras fit runs train_step, and the guide's
    # step (train_step_with_guide) runs in only the first 5 of the default 50 epochs
    model = kerasio_vae() if name == "kerasio_vae" else MODELS[name](
        Diffusion.Config(guide_channels=()) if name == "diffusion" else None)
    model.configure_optimizers((MODELS[name] or VAE).run_defaults["learning_rate"])
    return model


def batches(batch, steps, epochs=None):
    """``steps`` global batches of mnist5k, over as many epochs as that takes (62 per epoch)."""
    x, y = data.mnist5k("train")
    epochs_needed = -(-steps * batch // (len(y) - len(y) % batch))
    return data.training_batches(x, y, batch, seed=0, first_epoch=0, epochs=epochs_needed).take(steps)


class ZooRunner:
    def __init__(self, model, k, jit, batch, steps):
        self.trainer = Trainer(model, tf.distribute.get_strategy(), jit_compile=jit, steps_per_execution=k)
        self.trainer.build()
        self.batch, self.steps = batch, steps
        self.trainer.fit(batches(batch, min(steps, 2 * k), 1), epochs=1, steps_per_epoch=min(steps, 2 * k),
                         verbose=0)  # trace and compile

    def __call__(self):
        self.trainer.seconds = self.trainer.images = 0
        self.trainer.fit(batches(self.batch, self.steps, 1), epochs=1, steps_per_epoch=self.steps, verbose=0)
        return self.trainer.images_per_second


class FitRunner:
    """Keras ``fit`` on the same model object: compiled with the model's own optimizer."""

    def __init__(self, model, k, jit, batch, steps):
        model.compile(optimizer=model.optimizer, steps_per_execution=k, jit_compile=jit)
        self.model, self.batch, self.steps = model, batch, steps
        model.fit(batches(batch, min(steps, 2 * k), 1), epochs=1, steps_per_epoch=min(steps, 2 * k), verbose=0)

    def __call__(self):
        start = time.perf_counter()
        self.model.fit(batches(self.batch, self.steps, 1), epochs=1, steps_per_epoch=self.steps, verbose=0)
        return self.batch * self.steps / (time.perf_counter() - start)


def summary(values):
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": [round(v, 1) for v in values]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["vae", "cgan", "diffusion"], choices=list(MODELS))
    p.add_argument("--k", type=int, nargs="+", default=None, help="steps per call (default: 1 and the recipes' K)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 96; diffusion 24)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", nargs="+", default=["float32"], choices=("float32", "bfloat16", "float16"))
    p.add_argument("--xla", nargs="+", default=None, choices=("on", "off"),
                   help="default: each model's own choice (VAE on, cGAN and diffusion off)")
    p.add_argument("--no-fit", action="store_true", help="time zoo's trainer only")
    p.add_argument("--sweep-k", type=int, nargs="+", help="time zoo's trainer only, over these K")
    args = p.parse_args()
    from zoo.recipe import RunConfig

    default_k = RunConfig.defaults()["steps_per_execution"]
    ks = args.sweep_k or args.k or sorted({1, default_k})
    results = {"batch_size": args.batch_size, "default_k": default_k, "cpu_bfloat16": distribute.cpu_bfloat16(),
               "models": {}}
    for name in args.models:
        steps = args.steps or (24 if name == "diffusion" else 96)
        model_class = MODELS[name] or VAE
        xla_choices = args.xla or ["on" if model_class.xla_by_default else "off"]
        runners = {}
        for precision in args.precision:
            policy = "float32" if precision == "float32" else f"mixed_{precision}"
            for xla in xla_choices:
                model = build(name, policy)  # one model object for every loop of this setting
                for k in ks:
                    runners[f"{precision}/xla_{xla}/zoo_k{k}"] = ZooRunner(model, k, xla == "on", args.batch_size,
                                                                           steps)
                    if not args.no_fit and not args.sweep_k:
                        runners[f"{precision}/xla_{xla}/fit_k{k}"] = FitRunner(model, k, xla == "on",
                                                                               args.batch_size, steps)
        timings = in_rotation(runners, args.repeats)
        results["models"][name] = {"steps_per_run": steps, **{k: summary(v) for k, v in timings.items()}}
        keras.mixed_precision.set_global_policy("float32")
    report("train_throughput", results)


if __name__ == "__main__":
    main()
