"""The train → evaluate → export flow every recipe shares, in named stages.

    recipe.main(VAE)        # all of recipes/vae.py

1. settings  the flags, generated from ``RunConfig`` and the model's ``Config`` (a preset
             sets their defaults); every value checked, bad ones refused in one line
             (``zoo.recipe.run_config``)
2. setup     output folder, precision, seed, strategy, XLA: before anything heavy
3. data      the dataset, its train and test splits, the examples the model trains on
4. model     built under the strategy, optimizers, ``--init-from`` weights (``zoo.recipe.init_from``)
5. run       runs/<name>/<timestamp>/ (or the unfinished one ``--resume`` continues:
             ``zoo.training.run_folder``)
6. train     ``zoo.training.trainer.Trainer``: K steps per call, a checkpoint per epoch
7. fit       ``model.after_training`` on the float32 model that is exported: what gradient steps
             do not learn (densities over codes)
8. choose    ``zoo.evaluation.choices``: the settings chosen on training data, before anything is measured
9. measure   ``zoo.evaluation``: metrics and pictures from the model's capabilities; changes nothing
10. card     ``zoo.export.card``: what was trained, how, how well, where it came from
11. export   ``zoo.export.exporter`` (the chief only)
12. summary  the closing report (``zoo.recipe.summary``)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import tensorflow as tf

from zoo.core import config, data, distribute, progress
from zoo.core.config import ConfigError
from zoo.core.errors import ZooError, error_line
from zoo.evaluation import measure, pictures
from zoo.evaluation.settings import EvaluationSettings
from zoo.export import card as cards
from zoo.export import exporter, quality
from zoo.metrics import GenerativeMetricsCallback
from zoo.models.capabilities import ConditionalGenerator
from zoo.recipe.init_from import load_weights
from zoo.recipe.run_config import (
    configs_from_flags,
    jit_setting,
    learning_rate,
    parser,
    precision_policy,
    steps_per_epoch_of,
)
from zoo.recipe.summary import summary
from zoo.training.callbacks import standard_callbacks
from zoo.training.run_folder import run_directory, write_json_atomic
from zoo.training.trainer import Trainer, ctrl_c_cannot_be_lost


@dataclasses.dataclass
class Result:
    model: object
    card: dict
    written: dict
    run_dir: str
    args: argparse.Namespace


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

    out: str | None  # --out, or None: the run's own folder
    verbose: int  # --verbose as this output takes it (no bars where it is no terminal)
    policy: str
    strategy: object
    chief: bool
    global_batch: int
    jit: bool


def setup(run, model_class):
    verbose = progress.set_verbosity(run.verbose)
    out = None if run.out is None else exporter.prepare_output_dir(run.out)
    if out is not None and not run.replace:
        keep_what_is_there(os.path.join(out, model_class.zoo_name))
    exporter.prepare_output_dir(run.runs_dir, "--runs-dir", "the training runs")
    policy = precision_policy(run, model_class)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(run.seed)
    strategy = distribute.get_strategy(run.strategy)
    return Setup(out, verbose, policy, strategy, distribute.is_chief(strategy),
                 distribute.check_global_batch(run.batch_size, strategy), jit_setting(run, model_class, strategy))


def keep_what_is_there(folder):
    """Refuse, before anything trains, a run whose export would replace one the user has."""
    card = os.path.join(folder, "model_card.json")
    if not os.path.isfile(card):
        return
    try:
        with open(card) as f:
            had = json.load(f)
        fid = had.get("metrics", {}).get("fid")
        what = f"a {had['model']} export of {had.get('created', '?')[:10]}" + (f" (FID {fid:.1f})" if fid else "")
    except (OSError, ValueError, KeyError, TypeError):
        what = "an export"
    raise ConfigError("--out", os.path.dirname(folder), f"{os.path.dirname(folder)!r} already holds {what} in "
                      f"{folder}: a run replaces an export only when told to. Leave --out out (the export goes in "
                      "the run's own folder), choose another folder, or pass --replace", say_value=False)


def load_data(run, model_class, args, config_names, config_extra):
    """(dataset info, the model config with the dataset's fields, the splits)."""
    info = data.info(run.data, run.data_dir, run.read_as())
    if issubclass(model_class, ConditionalGenerator) and info.num_classes > model_class.max_classes:
        raise data.DataError(f"--data {run.data} has {info.num_classes} classes and the {model_class.zoo_name} draws "
                             f"at most {model_class.max_classes} (each class needs samples of its own to be measured): "
                             "merge classes into at most that many folders, or train the vae, ae or dae")
    fields = model_class.Config.defaults()
    from_data = {k: v for k, v in (("image_shape", tuple(info.image_shape)), ("num_classes", info.num_classes))
                 if k in fields}
    model_config = config.build(model_class.Config, args, config_names, **config_extra, **from_data)
    splits = data.splits(run.data, run.data_dir, run.read_as())
    if info.read_as is not None:
        labelled = f"{info.num_classes} classes ({', '.join(info.class_names)})" if info.class_names else \
            one_class(model_class, model_config) or "unlabelled: one class"
        print(f"zoo: {run.data}: {info.num_examples['train']} training and {info.num_examples['test']} test images "
              f"of {'×'.join(map(str, info.image_shape))}, {labelled}; test split: {info.read_as['split_by']}")
    return info, model_config, splits


def one_class(model_class, model_config):
    """What unlabelled data means for a model that draws by class (else None)."""
    if model_config.to_dict().get("num_classes") == 1 and issubclass(model_class, ConditionalGenerator):
        return model_class.with_one_class(model_config)
    return None


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
    name, (fit_x, fit_y) = model.zoo_name, fit
    trainer = Trainer(model, s.strategy, checkpoint_dir=os.path.join(run_dir, "checkpoints"), jit_compile=s.jit,
                      steps_per_execution=run.steps_per_execution)
    initial_epoch = trainer.restore()
    if initial_epoch:
        print(f"zoo: resuming {run_dir} from epoch {initial_epoch} of {run.epochs}")
    callbacks = standard_callbacks(run_dir, s.chief, lambda: pictures.preview(
        model, data.unit_float(splits.stored_test[0][:16])), model.preview_every)
    callbacks += model.training_callbacks()
    draw = measure.sampler(model)
    if run.eval_every > 0 and draw is not None and run.eval_extractor != "none":
        extractor = None if run.eval_extractor == "auto" else run.eval_extractor
        callbacks.insert(0, GenerativeMetricsCallback(draw, *splits.test, every=run.eval_every, extractor=extractor,
                                                      seed=run.seed, num_samples=run.eval_samples))
    print(f"zoo: training {name} on {run.data} ({len(fit_y)} images, global batch {s.global_batch}, "
          f"{s.strategy.num_replicas_in_sync} replica(s), {s.policy}, XLA {'on' if s.jit else 'off'}, "
          f"{run.steps_per_execution} steps per call); run folder {run_dir}")
    batches = data.training_batches(fit_x, fit_y, s.global_batch, seed=run.seed, first_epoch=initial_epoch,
                                    epochs=run.epochs, steps_per_epoch=steps_per_epoch)
    test = data.held_out_batches(*splits.stored_test, s.global_batch)
    history = trainer.fit(batches, epochs=run.epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                          validation_data=test, validation_every=model.validation_every,
                          initial_epoch=initial_epoch, verbose=s.verbose)
    final = {k: v[-1] for k, v in history.history.items()} if history and history.history else {}
    return trainer, final, {f"test_{k}": v for k, v in held_out_losses(trainer, test).items()}


@dataclasses.dataclass
class Trained:
    """What stages 2–6 made: the settings, the data, the model and how its training went."""

    run: object
    setup: Setup
    info: object
    model_config: object
    splits: object
    fit: tuple
    model: object
    trainer: Trainer
    resumed: bool
    run_dir: str
    out: str  # where the export goes: --out, or the run's own folder
    started_from: dict | None
    final_losses: dict
    test_losses: dict
    start_up: float  # seconds outside the training steps: set-up, tracing, held-out losses, previews, checkpoints
    trained_at: float  # time.perf_counter() when training ended


def _flow(model_class, args, argv):
    started = time.perf_counter()
    t = _train_stages(model_class, args, started)
    if not t.setup.chief:
        print(f"zoo: worker done (training {t.trainer.seconds:.0f} s); the chief evaluates and exports")
        return Result(t.model, {}, {}, t.run_dir, args)
    try:
        model, eval_settings = _float32_model(t)
        model.after_training(*t.splits.train)  # 7 fit what gradients do not (the model knows what it held out)
        # 8 choose, before measuring; 9 measure
        chosen, measured, grids, stages = measure.evaluate_for_export(model, t.splits, eval_settings)
        card = _card(t, argv, chosen, measured, time.perf_counter() - t.trained_at, stages)  # 10
        written, card = _export(t, model, card, grids, eval_settings)  # 11
    except KeyboardInterrupt:
        raise
    except (ZooError, OSError, tf.errors.OpError, ValueError, RuntimeError) as e:
        # after training, even a ZooError is not a bad flag (exit 2) but a failed stage: the
        # checkpoint is kept (seen: a NaN check deep in the evaluation of a quantized file)
        if os.environ.get("ZOO_DEBUG"):
            raise
        cause = error_line(e, limit=200)
        raise Failure(f"evaluation or export failed after training ({type(e).__name__}: {cause}); the trained "
                      f"checkpoint is kept in {t.run_dir}: fix the cause and run the same command with --resume to "
                      "finish without retraining") from None
    write_json_atomic(os.path.join(t.run_dir, "finished.json"), {"card": card, "written": written})
    summary(model_class, card, written, t.run_dir, getattr(args, "preset", None))  # 12
    return Result(model, card, written, t.run_dir, args)


def _train_stages(model_class, args, started):
    """Stages 1–6: settings, setup, data, model, run folder, training (every worker)."""
    run, config_names, config_extra = configs_from_flags(model_class, args)
    s = setup(run, model_class)  # 2
    info, model_config, splits = load_data(run, model_class, args, config_names, config_extra)  # 3
    train_x, train_y = splits.stored_train  # as held: uint8 for a user's images
    model, steps_per_epoch, started_from = build_model(run, model_class, model_config, s, train_y)  # 4
    keep = model.select_training_examples(train_y)
    fit = (train_x, train_y) if keep is None else (train_x[keep], train_y[keep])
    run_settings = json.loads(json.dumps({"model": model_class.zoo_name, "run": run.to_dict(),
                                          "model_config": model_config.to_dict()}, default=list))
    run_dir, resumed = run_directory(run.runs_dir, model_class.zoo_name, run.resume, run_settings)  # 5
    trainer, final_losses, test_losses = train(run, model, s, splits, fit, steps_per_epoch, run_dir)  # 6
    trained_at = time.perf_counter()
    return Trained(run, s, info, model_config, splits, fit, model, trainer, resumed, run_dir, s.out or run_dir,
                   started_from, final_losses, test_losses, trained_at - started - trainer.seconds, trained_at)


def _float32_model(t):
    """What is measured is what is exported: the float32 model, whatever precision trained it,
    and float32 instruments (a cGAN trained in bfloat16 and so sampled and scored: FID 174.58
    on its card, 174.49 from its float32 export). Returns (model, evaluation settings)."""
    model = t.model.float32_copy() if t.setup.policy != "float32" else t.model
    keras.mixed_precision.set_global_policy("float32")  # the CAS classifier, extractors, export
    return model, EvaluationSettings(t.run.eval_extractor, t.run.eval_samples, seed=t.run.seed)


def _card(t, argv, chosen, measured, evaluation_seconds, stages):
    """Stage 10: the card of the run, before the export adds what it wrote; ``stages``: the
    evaluation's, [title, seconds] each."""
    run, s = t.run, t.setup
    classes = one_class(type(t.model), t.model_config)
    training = cards.training_section(run, t.model, t.trainer, distribute.strategy_name(s.strategy),
                                      s.strategy.num_replicas_in_sync, s.policy, s.jit, t.resumed, t.run_dir,
                                      t.final_losses)
    return {
        "provenance": {**cards.provenance(argv, run, s.policy, {
            "training": t.trainer.total_seconds, "start_up": t.start_up, "evaluation": evaluation_seconds}),
            "evaluation_stages": stages},
        "data": {**t.info.as_dict("train", len(t.fit[1])), **({"classes": classes} if classes else {}),
                 "evaluated_on": t.info.as_dict("test", len(t.splits.test[1]))},
        "config": cards.config_section(t.model_config, run, s.global_batch),
        "training": {**training, **({"started_from": t.started_from} if t.started_from else {})},
        "metrics": {**t.test_losses, **measured.metrics},
        "reference": measured.reference,
        "evaluation": {**chosen, **measured.info, "seed": run.seed, "seconds": round(evaluation_seconds, 1)},
        "feature_extractor": measured.info.get("feature_extractor"),
    }


def _export(t, model, card, grids, eval_settings):
    """Stage 11: the export folder; (files written, the finished card)."""
    variants = tuple(v for v in t.run.tflite_variants if v != "none")
    judge = quality.TFLiteQuality(model, t.splits, eval_settings) if variants else None
    return exporter.export(model, t.out, card=card, pictures=grids, variants=("float32", *variants),
                           quality=judge, calibration_images=data.unit_float(t.fit[0][:1000]),
                           web_batches=model.web_batches if t.run.web else ())
