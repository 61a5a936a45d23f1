"""The flags, callbacks and train → evaluate → export flow that every recipe shares.

A recipe adds its model's flags and says how to build the model from them; everything
else — data, strategy, run folders, resuming, checkpoints, TensorBoard, previews,
evaluation, export, the closing summary — happens here, the same for every model.
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
import numpy as np
import tensorflow as tf

from zoo import ZooError, data, distribute, export, images, metrics
from zoo.trainer import Trainer

RUNS_DIR = "runs"
EVAL_TRAIN_LIMIT = 10_000  # training images handed to evaluation (linear probes, thresholds)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def parser(description, *, epochs, batch_size, learning_rate, jit_compile=True):
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="mnist5k",
                   help="mnist5k (built in, offline) or any tensorflow-datasets image dataset name")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data folder")
    p.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the training split")
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="global batch size, split evenly over the replicas")
    p.add_argument("--learning-rate", type=positive_float, default=learning_rate, help="Adam learning rate")
    p.add_argument("--strategy", choices=distribute.STRATEGIES, default="auto",
                   help="auto: MirroredStrategy when more than one GPU is visible; "
                        "multi_worker reads TF_CONFIG")
    p.add_argument("--mixed-precision", action="store_true",
                   help="compute in float16 with float32 weights and loss scaling (GPUs)")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=jit_compile,
                   help="compile the train step with XLA")
    p.add_argument("--out", default="exported", help="export folder: writes OUT/<model>/")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data order and noise")
    p.add_argument("--resume", action="store_true",
                   help="continue the latest unfinished run of this model from its last checkpoint")
    p.add_argument("--runs-dir", default=RUNS_DIR, help="where runs/<model>/<timestamp>/ go")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output")
    p.add_argument("--eval-extractor", default="auto",
                   choices=("auto", "zoo_mnist_classifier", "inception_v3", "none"),
                   help="network behind FID/KID/IS/precision/recall; auto: the zoo classifier for "
                        "28×28×1 images, InceptionV3 otherwise; none: skip the feature metrics")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="also compute the feature metrics every N epochs during training (0: off)")
    return p


# Run folders ---------------------------------------------------------------------------
def _unfinished_runs(model_dir):
    if not os.path.isdir(model_dir):
        return []
    runs = sorted(d for d in os.listdir(model_dir) if os.path.isdir(os.path.join(model_dir, d)))
    return [os.path.join(model_dir, d) for d in runs
            if not os.path.exists(os.path.join(model_dir, d, "finished.json"))]


def run_directory(runs_dir, model_name, resume, settings):
    """runs/<model>/<timestamp>/; with ``resume`` the latest unfinished one of this model."""
    model_dir = os.path.join(runs_dir, model_name)
    if resume:
        unfinished = _unfinished_runs(model_dir)
        if unfinished:
            run_dir = unfinished[-1]
            with open(os.path.join(run_dir, "run.json")) as f:
                before = json.load(f)
            if before["model_config"] != settings["model_config"]:
                raise ZooError(
                    f"--resume found {run_dir}, trained with model config {before['model_config']}, "
                    f"but these flags give {settings['model_config']}; resume with the same flags, "
                    "or drop --resume to start a new run"
                )
            return run_dir, True
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = os.path.join(model_dir, stamp)
    os.makedirs(run_dir)
    _write_json_atomic(os.path.join(run_dir, "run.json"), settings)
    return run_dir, False


def _write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


# Callbacks ----------------------------------------------------------------------------
class PreviewCallback(keras.callbacks.Callback):
    """Saves ``model.preview()`` as samples/epoch_NNN.png after every ``model.preview_every``
    epochs and after the last one."""

    def __init__(self, directory):
        super().__init__()
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % getattr(self.model, "preview_every", 1) and epoch + 1 != self.params.get("epochs"):
            return
        picture = self.model.preview()
        if picture is not None:
            images.save_png(picture, os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png"))


def standard_callbacks(run_dir, chief=True):
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if chief:
        callbacks += [
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
            PreviewCallback(os.path.join(run_dir, "samples")),
        ]
    return callbacks


# The flow -----------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    model: object
    card: dict
    written: dict
    run_dir: str


def run(model_name, build, p, argv=None):
    """Parse flags, train ``build(args, info)`` under the chosen strategy, evaluate, export."""
    args = p.parse_args(argv)
    try:
        return _run(model_name, build, args)
    except ZooError as e:
        print(f"\n{p.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)


def _feature_metrics(model, args, test_images, test_labels):
    """The feature metrics of the model's samples against the test split, or why not."""
    if args.eval_extractor == "none" or not hasattr(model, "evaluation_samples"):
        return {}, None
    extractor = None if args.eval_extractor == "auto" else args.eval_extractor
    try:
        result = metrics.evaluate_model(model, test_images, test_labels, extractor=extractor, seed=args.seed)
    except ZooError as e:
        print(f"zoo: skipping the feature metrics: {e}")
        return {}, {"name": None, "skipped": str(e)}
    name = result.pop("feature_extractor")
    return result, name


def _run(model_name, build, args):
    started = time.perf_counter()
    out = export.prepare_output_dir(args.out)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(args.seed)
    strategy = distribute.get_strategy(args.strategy)
    chief = distribute.is_chief(strategy)
    global_batch = distribute.check_global_batch(args.batch_size, strategy)
    info = data.info(args.data, args.data_dir)

    with strategy.scope():
        model = build(args, info)
        model.compile_default(args.learning_rate)
    settings = {"model": model_name, "flags": vars(args), "model_config": model.config_dict()}
    run_dir, resumed = run_directory(args.runs_dir, model_name, args.resume, json.loads(json.dumps(settings, default=list)))

    train = data.load(args.data, "train", args.data_dir)
    train_size = info.num_examples["train"]
    selection = model.training_selection()
    if selection is not None:
        train = train.enumerate().filter(lambda i, xy: selection(i, xy[1])).map(lambda i, xy: xy)
        train_size = int(train.reduce(0, lambda n, _: n + 1))
    train = data.pipeline(train, global_batch, shuffle=True, seed=args.seed, drop_remainder=True, repeat=True)
    test_images, test_labels = data.arrays(args.data, "test", args.data_dir)
    test = data.pipeline(tf.data.Dataset.from_tensor_slices((test_images, test_labels)), global_batch)
    steps_per_epoch = train_size // global_batch

    trainer = Trainer(model, strategy, checkpoint_dir=os.path.join(run_dir, "checkpoints"),
                      jit_compile=args.jit_compile)
    initial_epoch = trainer.restore()
    if resumed:
        print(f"zoo: resuming {run_dir} from epoch {initial_epoch} of {args.epochs}")
    else:
        with strategy.scope():
            trainer.build()
    callbacks = standard_callbacks(run_dir, chief) + model.callbacks()
    if args.eval_every > 0 and hasattr(model, "evaluation_samples"):
        extractor = None if args.eval_extractor in ("auto", "none") else args.eval_extractor
        callbacks.insert(0, metrics.GenerativeMetricsCallback(test_images, test_labels, every=args.eval_every,
                                                              extractor=extractor, seed=args.seed))
    print(f"zoo: training {model_name} on {args.data} ({train_size} images, "
          f"global batch {global_batch}, {strategy.num_replicas_in_sync} replica(s)); run folder {run_dir}")
    history = trainer.fit(train, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
                          callbacks=callbacks, validation_data=test,
                          initial_epoch=initial_epoch, verbose=args.verbose)
    final = {k: v[-1] for k, v in history.history.items()} if history and history.history else {}

    print("zoo: evaluating on the test split")
    scores = {f"test_{k}": v for k, v in trainer.evaluate(test).items()}
    train_arrays = data.arrays(args.data, "train", args.data_dir, limit=EVAL_TRAIN_LIMIT)
    scores.update(model.evaluate_arrays(test_images, test_labels, train=train_arrays))
    feature_metrics, extractor = _feature_metrics(model, args, test_images, test_labels)
    scores.update(feature_metrics)

    card = {
        "data": {**info.as_dict("train"), "size": train_size, "evaluated_on": info.as_dict("test")},
        "config": {**model.config_dict(), "learning_rate": args.learning_rate,
                   "batch_size": global_batch, "seed": args.seed},
        "training": {
            "epochs": args.epochs,
            "steps": int(model.optimizer.iterations.numpy()) if model.optimizer else None,
            "seconds": round(trainer.seconds, 2),
            "images_per_second": round(trainer.images_per_second, 1),
            "strategy": distribute.strategy_name(strategy),
            "replicas": strategy.num_replicas_in_sync,
            "mixed_precision": args.mixed_precision,
            "jit_compile": args.jit_compile,
            "resumed": resumed,
            "run_dir": run_dir,
            "final_losses": final,
        },
        "metrics": scores,
        "feature_extractor": extractor,
    }
    written = {}
    if chief:
        print("zoo: exporting")
        written, card = export.export(model, out, card=card, pictures=model.pictures(test_images, test_labels))
    _write_json_atomic(os.path.join(run_dir, "finished.json"), {"card": card, "written": written})
    summary(model_name, card, written, time.perf_counter() - started)
    return Result(model, card, written, run_dir)


def summary(model_name, card, written, seconds):
    rows = [("metric", "value")]
    rows += [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in card["metrics"].items()
             if not isinstance(v, dict)]
    if card.get("feature_extractor"):
        rows += [("feature metrics by", str(card["feature_extractor"]))]
    rows += [("", ""), ("file", "path")]
    rows += list(written.items())
    t = card["training"]
    rows += [("", ""), ("training", f"{t['seconds']:.0f} s, {t['images_per_second']:.0f} images/s, "
                                    f"{t['strategy']} × {t['replicas']}"),
             ("total time", f"{seconds:.0f} s")]
    width = max(len(r[0]) for r in rows)
    print(f"\n=== {model_name}: done ===")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
