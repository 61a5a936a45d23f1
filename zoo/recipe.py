"""The train → evaluate → export flow every recipe shares, in named stages.

    recipe.main(VAE)        # all of recipes/vae.py

1. settings  the flags, generated from ``RunConfig`` and the model's ``Config`` (a preset
             sets their defaults); every value checked, bad ones refused in one line
2. setup     output folder, precision, seed, strategy, XLA: before anything heavy
3. data      the dataset, its train and test splits, the examples the model trains on
4. model     built under the strategy, optimizers, ``--init-from`` weights
5. run       runs/<name>/<timestamp>/ (or the unfinished one ``--resume`` continues)
6. train     ``zoo.trainer.Trainer``: K steps per call, a checkpoint per epoch
7. fit       ``model.after_training`` on the float32 model that is exported: what gradient steps
             do not learn (densities over codes)
8. choose    ``zoo.choices``: the settings chosen on training data, before anything is measured
9. measure   ``zoo.evaluation``: metrics and pictures from the model's capabilities; changes nothing
10. card     ``zoo.card``: what was trained, how, how well, where it came from
11. export   ``zoo.exporter`` (the chief only)
12. summary  the closing table
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time

import keras
import tensorflow as tf

from zoo import (
    ZooError,
    choices,
    config,
    data,
    distribute,
    error_line,
    evaluation,
    exporter,
    images,
    progress,
)
from zoo import card as cards
from zoo.config import (
    Config,
    ConfigError,
    any_int,
    each,
    non_negative_int,
    one_of,
    positive,
    positive_int,
    setting,
)
from zoo.metrics import GenerativeMetricsCallback
from zoo.trainer import Trainer, ctrl_c_cannot_be_lost, due

PRECISIONS = ("off", "float16", "bfloat16")
EXTRACTORS = ("auto", "zoo_mnist_classifier", "inception_v3", "none")


@dataclasses.dataclass
class RunConfig(Config):
    """The settings every recipe shares (a model's ``run_defaults`` and presets set some defaults)."""

    data: str = setting("mnist5k", "mnist5k (built in, offline) or any tensorflow-datasets image dataset name")
    data_dir: str | None = setting(None, "tensorflow-datasets data folder", type=str)
    epochs: int = setting(10, "passes over the training split", positive_int)
    batch_size: int = setting(64, "global batch size, split evenly over the replicas", positive_int)
    learning_rate: float = setting(1e-3, "Adam learning rate", positive)
    lr_schedule: str = setting("constant", "learning-rate schedule: constant, or cosine decay to 0 over the run "
                               "after a linear warm-up", one_of("constant", "cosine"))
    warmup_steps: int = setting(0, "steps of linear warm-up of the learning rate (cosine schedule)", non_negative_int)
    steps_per_epoch: int | None = setting(None, "at most this many steps per epoch (quick trials; default: the "
                                          "whole training split)", positive_int, type=int)
    steps_per_execution: int = setting(8, "training steps per compiled call; losses come back to Python once per "
                                       "call (bench/train_throughput.py)", positive_int)
    strategy: str = setting("auto", "auto: MirroredStrategy when more than one GPU is visible; multi_worker reads "
                            "TF_CONFIG", one_of(*distribute.STRATEGIES))
    mixed_precision: str | None = setting(None, "compute in float16 (GPUs) or bfloat16 (CPUs with AVX512_BF16 or "
                                          "AMX) with float32 weights; the flag alone: float16; off: float32; "
                                          "default: the model's choice for this device", one_of(*PRECISIONS), type=str,
                                          const="float16")
    jit_compile: bool | None = setting(None, "compile the train step with XLA (default: the model's measured "
                                       "choice; off where XLA cannot run, e.g. several CPU replicas)", type=bool)
    seed: int = setting(0, "seed for weights, data order and noise", any_int)
    out: str = setting("exported", "export folder: writes OUT/<model>/")
    runs_dir: str = setting("runs", "where runs/<model>/<timestamp>/ go")
    resume: bool = setting(False, "continue the latest unfinished run of this model from its last checkpoint")
    init_from: str | None = setting(None, "start from the weights of an export folder (exported/<model>) or a .keras "
                                    "file (fine-tuning; a diffusion model with students: its teacher)", type=str)
    verbose: int = setting(1, "progress output: 0 none, 1 progress bars, 2 a line per epoch", one_of(0, 1, 2))
    eval_extractor: str = setting("auto", "network behind FID/KID/IS/precision/recall; auto: the zoo classifier for "
                                  "MNIST digits, InceptionV3 otherwise; none: skip the feature metrics",
                                  one_of(*EXTRACTORS))
    eval_every: int = setting(0, "also compute the feature metrics every N epochs during training (0: off)",
                              non_negative_int)
    eval_samples: int | None = setting(None, "generated samples for the evaluation, and at most as many test "
                                       "images for model measurements and inpainting (default: as many as test "
                                       "images, and as many as training images for CAS)", positive_int, type=int)
    tflite_variants: tuple = setting(("float16", "int8_dynamic", "int8"), "TFLite variants to try besides float32, "
                                     "each kept only if its quality stays within the model's tolerances (none: "
                                     "float32 only)", each(one_of("float16", "int8_dynamic", "int8", "none")))
    web: bool = setting(True, "also write fixed-batch TFLite copies for the browser (exported/<model>/web/, "
                        "`zoo web`)")

    def validate(self):
        if self.data_dir is not None and not os.path.isdir(self.data_dir):
            raise ConfigError("data_dir", self.data_dir, "must be an existing folder")


@dataclasses.dataclass
class Result:
    model: object
    card: dict
    written: dict
    run_dir: str
    args: argparse.Namespace


# 1. Settings -------------------------------------------------------------------------------
def _split_preset(model_class, preset):
    """A preset's overrides, split into model-config and run-setting ones."""
    fields = set(model_class.Config.defaults())
    return ({k: v for k, v in preset.items() if k in fields}, {k: v for k, v in preset.items() if k not in fields})


def parser(model_class, argv=None, description=None):
    """The recipe's flags: the shared ``RunConfig`` ones and one per field of the model's
    ``Config``, with the defaults of the preset named in ``argv`` (the first preset if none)."""
    presets = model_class.presets
    preset = {}
    if presets:
        chosen = config.FlagParser(add_help=False)
        chosen.add_argument("--preset", choices=list(presets), default=next(iter(presets)))
        preset = presets.get(chosen.parse_known_args(argv)[0].preset, {})
    config_defaults, run_defaults = _split_preset(model_class, preset)
    p = config.FlagParser(description=description or model_class.__doc__,
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if presets:
        p.add_argument("--preset", choices=list(presets), default=next(iter(presets)),
                       help="defaults for size and length: " + "; ".join(f"{k}: {v or 'the config defaults'}"
                                                                         for k, v in presets.items()))
    config.add_flags(p, RunConfig, {**model_class.run_defaults, **run_defaults}, p.add_argument_group("run"))
    flags = p.add_argument_group(f"{model_class.__name__} ({model_class.Config.__name__})")
    config.add_flags(p, model_class.Config, config_defaults, flags)
    return p


def configs_from_flags(model_class, args):
    """(RunConfig, the model's config with the dataset's defaults) — every flag checked."""
    run = config.build(RunConfig, args, [f.name for f in RunConfig.flag_fields()])
    names = [f.name for f in model_class.Config.flag_fields()]
    extra = {"seed": run.seed} if "seed" in model_class.Config.defaults() else {}
    config.build(model_class.Config, args, names, **extra)  # the flags alone, before any data is read
    return run, names, extra


# 2. Setup ----------------------------------------------------------------------------------
def precision_policy(run, model_class):
    """The Keras dtype policy: what the flag asks for, else bfloat16 where the model measured
    it worth it and this CPU computes it natively, else float32."""
    asked = run.mixed_precision
    if asked == "float16":
        return "mixed_float16"
    if asked == "bfloat16":
        if not distribute.has_gpu() and distribute.cpu_bfloat16() is None:
            print("zoo: warning: this CPU has no native bfloat16 (AVX512_BF16 or AMX): --mixed-precision bfloat16 "
                  "will be emulated and slower than float32")
        return "mixed_bfloat16"
    if asked is None and model_class.bfloat16_on_cpu and not distribute.has_gpu():
        if distribute.cpu_bfloat16() is not None:
            return "mixed_bfloat16"
        print(f"zoo: this CPU computes no bfloat16 (AVX512_BF16 or AMX): {model_class.zoo_name} trains in float32, "
              "slower than where it does (the time left is printed after the second epoch)")
    return "float32"


def jit_setting(run, model_class, strategy):
    """XLA for the train step: the flag, else the model's choice — but never under a strategy
    that synchronises replicas (mirrored, multi_worker), on any device. The step is compiled
    as a tf.function nested inside ``strategy.run``, and synchronisation from inside it fails:
    on an H100 every recipe under --strategy mirrored --jit-compile died at its first step
    ("`merge_call` called while defining a new graph or a tf.function", from the loss-scaled
    optimizer and the spectral-norm layers); CPU workers abort ("Collectives are not yet
    implemented for CPU devices when compiling with XLA"). Keras' own fit turns XLA off under
    tf.distribute for the same reason."""
    name = distribute.strategy_name(strategy)
    if name in ("mirrored", "multi_worker"):
        if run.jit_compile:
            chosen = run.strategy if run.strategy == name else f"{run.strategy} (here {name})"
            raise ConfigError("--jit-compile", True, f"cannot be used with --strategy {chosen}: XLA cannot compile a "
                              "step that synchronises replicas; drop it or pass --no-jit-compile", say_value=False)
        return False
    return model_class.jit_compile if run.jit_compile is None else run.jit_compile


def steps_per_epoch_of(run, model, train_labels, global_batch):
    """Global batches per epoch of the examples the model trains on (capped by --steps-per-epoch)."""
    keep = model.select_training_examples(train_labels)
    examples = len(train_labels) if keep is None else int(keep.sum())
    steps = examples // global_batch
    if run.steps_per_epoch:
        steps = min(steps, run.steps_per_epoch)
    if steps < 1:
        raise ZooError(f"the training split has {examples} examples, fewer than one global batch of "
                       f"{global_batch}; lower --batch-size")
    return steps


def learning_rate(run, steps_per_epoch):
    """The learning rate the optimizers get: a number, or a cosine schedule over the whole run."""
    if run.lr_schedule == "constant":
        return run.learning_rate
    total = run.epochs * steps_per_epoch
    warmup = min(run.warmup_steps, total - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else run.learning_rate, total - warmup, alpha=0.0, warmup_target=run.learning_rate if warmup
        else None, warmup_steps=warmup)


# 5. Run folders ----------------------------------------------------------------------------
def _unfinished_runs(model_dir):
    if not os.path.isdir(model_dir):
        return []
    runs = sorted(d for d in os.listdir(model_dir) if os.path.isdir(os.path.join(model_dir, d)))
    return [os.path.join(model_dir, d) for d in runs
            if not os.path.exists(os.path.join(model_dir, d, "finished.json"))]


def run_directory(runs_dir, model_name, resume, run_settings):
    """runs/<model>/<timestamp>/; with ``resume`` the latest unfinished one of this model."""
    model_dir = os.path.join(runs_dir, model_name)
    if resume:
        unfinished = _unfinished_runs(model_dir)
        if unfinished:
            run_dir = unfinished[-1]
            with open(os.path.join(run_dir, "run.json")) as f:
                before = json.load(f)
            changed = _changed_settings(before, run_settings)
            if changed:
                raise ZooError(
                    f"--resume found {run_dir}, trained with other settings ({'; '.join(changed)}); resume with the "
                    "same flags, or drop --resume to start a new run")
            return run_dir, True
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = os.path.join(model_dir, stamp)
    os.makedirs(run_dir)
    write_json_atomic(os.path.join(run_dir, "run.json"), run_settings)
    return run_dir, False


# Run settings a resumed run must share with the run it continues: they decide which weights
# each step computes (the data order, the learning rate at each step, the phases by epoch).
SAME_ON_RESUME = ("data", "epochs", "batch_size", "learning_rate", "lr_schedule", "warmup_steps", "steps_per_epoch",
                  "seed", "init_from")


def _changed_settings(before, now):
    """The model config and run settings that differ between two runs' run.json, as text."""
    changed = [f"{k} {before['model_config'].get(k)!r} → {v!r}" for k, v in now["model_config"].items()
               if before["model_config"].get(k) != v]
    changed += [f"--{k.replace('_', '-')} {before['run'].get(k)!r} → {now['run'].get(k)!r}" for k in SAME_ON_RESUME
                if before["run"].get(k) != now["run"].get(k)]
    return changed


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


# 6. Training callbacks ---------------------------------------------------------------------
class PreviewCallback(keras.callbacks.Callback):
    """Saves ``draw()`` as samples/epoch_NNN.png after every ``every`` epochs and the last one."""

    def __init__(self, directory, draw, every=1):
        super().__init__()
        self.directory, self.draw, self.every = directory, draw, every
        os.makedirs(directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if not due(epoch, self.every, self.params.get("epochs")):
            return
        picture = self.draw()
        if picture is not None:
            images.save_png(picture, os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png"))


class HistoryCSV(keras.callbacks.CSVLogger):
    """Keras' CSVLogger, except that a resumed run appends under the columns the file already
    has: Keras takes them from the first epoch of each part, and a part that starts after a
    phase (the diffusion guide's loss is logged in the first epochs only) would shift its
    values into the wrong columns. A value an epoch lacks is written as NA."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.append and not self.append_header:
            with open(self.filename) as f:
                header = f.readline().strip().split(self.sep)
            self.keys = header[1:]  # after "epoch"


class TimeLeft(keras.callbacks.Callback):
    """Early in a run, the training time left at its pace: a run that will take an hour (a CPU
    without bfloat16 instructions trains the diffusion model in float32) says so at once. Told
    after the second epoch a process trains (the first also traces the step: the default
    diffusion run's first epoch took twice its second)."""

    def on_train_begin(self, logs=None):
        self.trained = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += 1
        left = self.params.get("epochs", 0) - epoch - 1
        if self.trained == 2 and left > 0:
            seconds = time.perf_counter() - self.started
            progress.say(f"\nzoo: {seconds:.0f} s per epoch: about {left * seconds / 60:.0f} min of training left "
                         f"({left} epochs), then evaluation and export")


def standard_callbacks(run_dir, chief, preview, every):
    callbacks = [keras.callbacks.TerminateOnNaN(), TimeLeft()]
    if chief:
        callbacks += [
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            HistoryCSV(os.path.join(run_dir, "history.csv"), append=True),
            PreviewCallback(os.path.join(run_dir, "samples"), preview, every),
        ]
    return callbacks


# The flow ----------------------------------------------------------------------------------
class Failure(Exception):
    """A stage failed after training: the checkpoint is kept, --resume finishes the job."""


def held_out_losses(trainer, test):
    """The losses on the test split after training: the last validation's when it came after
    the last trained epoch (the same weights and data; a second pass took 11 s of the
    tiny-flag diffusion recipe: 1,000 test digits through both U-Nets), else a pass of their
    own (a resumed run with nothing left to train). Every worker takes the same branch: the
    pass is collective."""
    if trainer.last_validation is not None and trainer.last_validation[0] == int(trainer.epoch.numpy()):
        return trainer.last_validation[1]
    return trainer.evaluate(test)


def main(model_class, argv=None, flags=None):
    """Run the recipe of ``model_class`` with ``argv`` (default: the command line).
    ``flags``: a parser from ``parser(model_class)`` that a recipe added its own flags to."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = flags or parser(model_class, argv)
    args = p.parse_args(argv)
    policy = keras.mixed_precision.global_policy()  # the flow sets its own; a caller gets theirs back
    try:
        with ctrl_c_cannot_be_lost():
            return _flow(model_class, args, argv)
    except ConfigError as e:
        _fail(p, str(e), 2)
    except ZooError as e:
        _fail(p, str(e), 2)
    except Failure as e:
        _fail(p, str(e), 1)
    except KeyboardInterrupt:
        _fail(p, "interrupted (Ctrl-C); the checkpoint of the last finished epoch is kept: run the same command "
                 "with --resume to continue from it", 130)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _fail(p, message, status):
    print(f"\n{p.prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


@dataclasses.dataclass
class Setup:
    """What stage 2 decided, before anything heavy."""

    out: str
    policy: str
    strategy: object
    chief: bool
    global_batch: int
    jit: bool


def setup(run, model_class):
    progress.set_verbosity(run.verbose)
    out = exporter.prepare_output_dir(run.out)
    exporter.prepare_output_dir(run.runs_dir, "--runs-dir", "the training runs")
    policy = precision_policy(run, model_class)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(run.seed)
    strategy = distribute.get_strategy(run.strategy)
    return Setup(out, policy, strategy, distribute.is_chief(strategy),
                 distribute.check_global_batch(run.batch_size, strategy), jit_setting(run, model_class, strategy))


def load_data(run, model_class, args, config_names, config_extra):
    """(dataset info, the model config with the dataset's fields, the splits)."""
    info = data.info(run.data, run.data_dir)
    fields = model_class.Config.defaults()
    from_data = {k: v for k, v in (("image_shape", tuple(info.image_shape)), ("num_classes", info.num_classes))
                 if k in fields}
    model_config = config.build(model_class.Config, args, config_names, **config_extra, **from_data)
    splits = evaluation.Splits(data.arrays(run.data, "test", run.data_dir), data.arrays(run.data, "train", run.data_dir),
                               run.data)
    return info, model_config, splits


def build_model(run, model_class, model_config, s, train_labels):
    """The model under the strategy, its optimizers, ``--init-from`` weights; (model, steps per epoch)."""
    with s.strategy.scope():
        model = model_class(model_config)
        steps_per_epoch = steps_per_epoch_of(run, model, train_labels, s.global_batch)
        model.configure_optimizers(learning_rate(run, steps_per_epoch), lambda epochs: learning_rate(
            dataclasses.replace(run, epochs=min(epochs, run.epochs)), steps_per_epoch), epochs=run.epochs)
    started_from = load_weights(model, run.init_from) if run.init_from else None
    return model, steps_per_epoch, started_from


def train(run, model, s, splits, fit, steps_per_epoch, run_dir):
    """``zoo.trainer.Trainer`` from the last checkpoint; (trainer, final losses, test losses)."""
    name, (test_x, test_y), (fit_x, fit_y) = model.zoo_name, splits.test, fit
    trainer = Trainer(model, s.strategy, checkpoint_dir=os.path.join(run_dir, "checkpoints"), jit_compile=s.jit,
                      steps_per_execution=run.steps_per_execution)
    initial_epoch = trainer.restore()
    if initial_epoch:
        print(f"zoo: resuming {run_dir} from epoch {initial_epoch} of {run.epochs}")
    callbacks = standard_callbacks(run_dir, s.chief, lambda: evaluation.preview(model, test_x), model.preview_every)
    callbacks += model.training_callbacks()
    draw = evaluation.sampler(model)
    if run.eval_every > 0 and draw is not None and run.eval_extractor != "none":
        extractor = None if run.eval_extractor == "auto" else run.eval_extractor
        callbacks.insert(0, GenerativeMetricsCallback(draw, test_x, test_y, every=run.eval_every, extractor=extractor,
                                                      seed=run.seed, num_samples=run.eval_samples))
    print(f"zoo: training {name} on {run.data} ({len(fit_y)} images, global batch {s.global_batch}, "
          f"{s.strategy.num_replicas_in_sync} replica(s), {s.policy}, XLA {'on' if s.jit else 'off'}, "
          f"{run.steps_per_execution} steps per call); run folder {run_dir}")
    batches = data.training_batches(fit_x, fit_y, s.global_batch, seed=run.seed, first_epoch=initial_epoch,
                                    epochs=run.epochs, steps_per_epoch=steps_per_epoch)
    test = data.pipeline(tf.data.Dataset.from_tensor_slices((test_x, test_y)), s.global_batch)
    history = trainer.fit(batches, epochs=run.epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                          validation_data=test, validation_every=model.validation_every,
                          initial_epoch=initial_epoch, verbose=run.verbose)
    final = {k: v[-1] for k, v in history.history.items()} if history and history.history else {}
    return trainer, final, {f"test_{k}": v for k, v in held_out_losses(trainer, test).items()}


def _flow(model_class, args, argv):
    started = time.perf_counter()
    name = model_class.zoo_name
    run, config_names, config_extra = configs_from_flags(model_class, args)
    s = setup(run, model_class)  # 2
    info, model_config, splits = load_data(run, model_class, args, config_names, config_extra)  # 3
    train_x, train_y = splits.train
    model, steps_per_epoch, started_from = build_model(run, model_class, model_config, s, train_y)  # 4
    keep = model.select_training_examples(train_y)
    fit = (train_x, train_y) if keep is None else (train_x[keep], train_y[keep])
    run_settings = json.loads(json.dumps({"model": name, "run": run.to_dict(), "model_config": model_config.to_dict()},
                                         default=list))
    run_dir, resumed = run_directory(run.runs_dir, name, run.resume, run_settings)  # 5
    trainer, final_losses, test_losses = train(run, model, s, splits, fit, steps_per_epoch, run_dir)  # 6
    trained = time.perf_counter()
    if not s.chief:
        print(f"zoo: worker done (training {trainer.seconds:.0f} s); the chief evaluates and exports")
        return Result(model, {}, {}, run_dir, args)

    try:
        eval_settings = evaluation.EvaluationSettings(run.eval_extractor, run.eval_samples, seed=run.seed)
        # What is measured is what is exported: the float32 model, whatever precision trained it,
        # and float32 instruments (a cGAN trained in bfloat16 and so sampled and scored: FID 174.58
        # on its card, 174.49 from its float32 export).
        trained_model, model = model, (model.float32_copy() if s.policy != "float32" else model)
        keras.mixed_precision.set_global_policy("float32")  # the CAS classifier, extractors, export
        model.after_training(train_x, train_y)  # 7 fit what gradients do not (the model knows what it held out)
        chosen = choices.make(model, splits, eval_settings)  # 8 choose, before measuring
        measured = evaluation.evaluate_model(model, splits, eval_settings)  # 9 measure
        pictures = evaluation.pictures(model, splits)
        evaluated = time.perf_counter()
        card = {  # 10
            "provenance": cards.provenance(argv, run, s.policy, {
                "training": trainer.total_seconds, "start_up": trained - started - trainer.seconds,
                "evaluation": evaluated - trained}),
            "data": {**info.as_dict("train", len(fit[1])), "evaluated_on": info.as_dict("test", len(splits.test[1]))},
            "config": cards.config_section(model_config, run, s.global_batch),
            "training": {**cards.training_section(run, trained_model, trainer, distribute.strategy_name(s.strategy),
                                                  s.strategy.num_replicas_in_sync, s.policy, s.jit, resumed, run_dir,
                                                  final_losses), **({"started_from": started_from} if started_from else {})},
            "metrics": {**test_losses, **measured.metrics},
            "reference": measured.reference,
            "evaluation": {**chosen, **measured.info, "seed": run.seed, "seconds": round(evaluated - trained, 1)},
            "feature_extractor": measured.info.get("feature_extractor"),
        }
        variants = tuple(v for v in run.tflite_variants if v != "none")  # 11
        quality = evaluation.TFLiteQuality(model, splits, eval_settings) if variants else None
        written, card = exporter.export(model, s.out, card=card, pictures=pictures, variants=("float32", *variants),
                                        quality=quality, calibration_images=fit[0][:1000],
                                        web_batches=model.web_batches if run.web else ())
    except KeyboardInterrupt:
        raise
    except (ZooError, OSError, tf.errors.OpError, ValueError, RuntimeError) as e:
        # after training, even a ZooError is not a bad flag (exit 2) but a failed stage: the
        # checkpoint is kept (seen: a NaN check deep in the evaluation of a quantized file)
        if os.environ.get("ZOO_DEBUG"):
            raise
        cause = error_line(e, limit=200)
        raise Failure(f"evaluation or export failed after training ({type(e).__name__}: {cause}); the trained "
                      f"checkpoint is kept in {run_dir}: fix the cause and run the same command with --resume to "
                      "finish without retraining") from None
    write_json_atomic(os.path.join(run_dir, "finished.json"), {"card": card, "written": written})
    summary(name, card, written)  # 12
    return Result(model, card, written, run_dir, args)


def load_weights(model, path):
    """``--init-from``: the weights of an export folder (or a .keras file) whose model has the
    same architecture — or, for a model with parts the export lacks (a diffusion model with
    students), the networks both have. Returns what the card records of where it started."""
    from zoo import pretrained

    if not (os.path.isdir(path) or (path.endswith(".keras") and os.path.isfile(path))):
        raise ConfigError("--init-from", path, "must be an export folder (exported/<model>: run its recipe first) or "
                          "a .keras file")
    try:
        source = (pretrained.keras_model(path) if os.path.isdir(path)
                  else keras.saving.load_model(path, compile=False))
    except ZooError as e:
        raise ConfigError("--init-from", path, f"must be an export zoo can read ({e})") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise ConfigError("--init-from", path, f"must be an export folder or .keras file zoo can read "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if type(source) is not type(model):
        raise ConfigError("--init-from", path, f"holds a {type(source).__name__}, not a {type(model).__name__}")
    mine, theirs = model.get_weights(), source.get_weights()
    if [w.shape for w in mine] == [w.shape for w in theirs]:
        model.set_weights(theirs)
    else:
        shared = model.shared_networks(source)
        if not shared:
            raise ConfigError("--init-from", path, f"holds a {type(source).__name__} with config "
                              f"{source.config.to_dict()}: a different architecture from these flags'; pass the same "
                              "architecture flags")
        for network in shared:
            getattr(model, network).set_weights(getattr(source, network).get_weights())
    print(f"zoo: starting from the weights of {path}")
    if not os.path.isdir(path):
        return {"path": path}
    from zoo.export_folder import ExportFolder

    before = ExportFolder(path).card
    return {"path": path, "model": before["model"], "version": before["version"],
            "training_seconds": before["training"]["seconds"], "commit": before.get("provenance", {}).get("commit")}


def summary(model_name, card, written):
    """The end-of-run table: the metrics, the files, and where the time went."""
    rows = [("metric", "value ± standard error   (the same for real data)"), *cards.metric_rows(card)]
    if card.get("feature_extractor"):
        rows += [("feature metrics by", str(card["feature_extractor"]))]
    score = card.get("evaluation", {}).get("anomaly_score")
    if score:  # which score the anomaly_* rows measure, and that the anomaly class did not choose it
        rows += [("anomaly score", f"{score['chosen']} (chosen on held-out normal images and proxy anomalies)")]
    rows += [("", ""), ("file", "path")]
    rows += list(written.items())
    # a file the export tried and did not ship is a finding: say which and why, not only in the card
    rows += [(f"{'web/' if section == 'web' else ''}{name}", "not shipped: " + entry.get("reason", ""))
             for section in ("tflite", "web") for name, entry in card.get(section, {}).items()
             if isinstance(entry, dict) and entry.get("kept") is False]
    t, seconds = card["training"], card["provenance"]["seconds"]
    speed = f"{t['images_per_second']:.0f} images/s" if t["images_per_second"] else "no training left"
    rows += [("", ""), ("training", f"{t['seconds']:.0f} s, {speed}, {t['strategy']} × {t['replicas']}, "
                                    f"{t['mixed_precision']}"),
             ("evaluation / export", f"{seconds['evaluation']:.0f} s / {seconds['export']:.0f} s"),
             ("total time", f"{seconds['total']:.0f} s")]
    width = max(len(r[0]) for r in rows)
    print(f"\n=== {model_name}: done ===")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
