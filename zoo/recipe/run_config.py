"""A recipe's settings: ``RunConfig`` (what every recipe shares) and the flags generated from it and
the model's ``Config``; and what they decide before anything heavy (precision, XLA, steps per
epoch, the learning rate)."""

from __future__ import annotations

import dataclasses
import os

import keras

from zoo.core import config, data, distribute, own_data
from zoo.core.config import (
    Config,
    ConfigError,
    any_int,
    each,
    in_range,
    non_negative_int,
    one_of,
    positive,
    positive_int,
    setting,
)
from zoo.core.errors import ZooError

PRECISIONS = ("off", "float16", "bfloat16")
EXTRACTORS = ("auto", "zoo_mnist_classifier", "inception_v3", "none")
# or a classifier export folder: the domain classifier `python recipes/classifier.py --data DIR` makes
EXTRACTOR = config.Check(f"must be one of {', '.join(EXTRACTORS)} or a classifier export folder (python "
                         "recipes/classifier.py --data DIR makes one)",
                         lambda v: v in EXTRACTORS or os.path.isfile(os.path.join(v, "model_card.json")))


@dataclasses.dataclass
class RunConfig(Config):
    """The settings every recipe shares (a model's ``run_defaults`` and presets set some defaults)."""

    data: str = setting("mnist5k", "mnist5k (built in, offline), a folder of your images (class subfolders, or "
                        "none: unlabelled; train/ and test/ when split), an .npz with images (and labels), or any "
                        "tensorflow-datasets image dataset name")
    image_size: tuple = setting((), "with a folder or .npz: resize every image to H W (default: their own size, "
                                "when all agree)", each(positive_int, empty_ok=True), type=int)
    color_mode: str | None = setting(None, "with a folder or .npz: grayscale or rgb (default: grayscale when every "
                                     "image is)", one_of(*own_data.COLOR_MODES), type=str)
    test_fraction: float = setting(0.2, "data without a test split (a folder or .npz without train/ and test/, a "
                                   "tensorflow-datasets dataset with train alone): the fraction of each class "
                                   "held out for testing, chosen by --seed", in_range(0, 1, low_open=True,
                                                                                      high_open=True))
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
    out: str | None = setting(None, "export folder: writes OUT/<model>/ (default: the run's own folder, "
                              "runs/<model>/<time>/<model>/, so that no run replaces an export you have)", type=str)
    replace: bool = setting(False, "let the export replace one already in OUT/<model>/ (a shipped model too: "
                            "recipes/ship.py replaces those only at no lower quality)")
    runs_dir: str = setting("runs", "where runs/<model>/<timestamp>/ go")
    resume: bool = setting(False, "continue the latest unfinished run of this model from its last checkpoint")
    init_from: str | None = setting(None, "start from the weights of an export folder, a shipped model's name (vae) "
                                    "or a .keras file (fine-tuning; a diffusion model with students: its teacher)",
                                    type=str)
    verbose: int = setting(1, "progress output: 0 none, 1 progress bars, 2 a line per epoch", one_of(0, 1, 2))
    eval_extractor: str = setting("auto", "network behind FID/KID/IS/precision/recall; auto: the zoo classifier for "
                                  "MNIST digits, InceptionV3 otherwise; a classifier export folder for your own "
                                  "images (recipes/classifier.py --data DIR); none: skip the feature metrics",
                                  EXTRACTOR)
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
        if len(self.image_size) not in (0, 2):
            raise ConfigError("image_size", self.image_size, "must be two numbers, height and width")
        own = own_data.is_own(self.data)
        if not own and (self.image_size or self.color_mode):
            raise ConfigError("image_size" if self.image_size else "color_mode", self.image_size or self.color_mode,
                              "applies to --data with a folder of images or an .npz file only")
        if own and not os.path.exists(self.data):
            raise ConfigError("data", self.data, "must be an existing folder of images or .npz file (or mnist5k, or "
                              "a tensorflow-datasets name)")

    def read_as(self):
        """How ``--data``'s own images are read (zoo.core.own_data); for a tensorflow-datasets
        name, how a test split is held out if it has none; None for mnist5k."""
        if self.data in data.BUILTIN:
            return None
        if not own_data.is_own(self.data):
            return {"test_fraction": self.test_fraction, "seed": self.seed}
        return {"image_size": list(self.image_size) or None, "color_mode": self.color_mode,
                "test_fraction": self.test_fraction, "seed": self.seed}


def _split_preset(model_class, preset):
    """A preset's overrides, split into model-config and run-setting ones."""
    fields = set(model_class.Config.defaults())
    return ({k: v for k, v in preset.items() if k in fields}, {k: v for k, v in preset.items() if k not in fields})


def parser(model_class, argv=None, description=None):
    """The recipe's flags: the shared ``RunConfig`` ones and one per field of the model's
    ``Config``, with the defaults of the preset named in ``argv`` (the first preset if none)."""
    presets = model_class.presets
    preset, name = {}, None
    if presets:
        chosen = config.FlagParser(add_help=False)
        chosen.add_argument("--preset", choices=list(presets), default=next(iter(presets)))
        name = chosen.parse_known_args(argv)[0].preset
        preset = presets.get(name, {})
    config_defaults, run_defaults = _split_preset(model_class, preset)
    p = config.FlagParser(description=description or model_class.__doc__,
                          formatter_class=config.HelpWithDefaults)
    if presets:  # its default is the preset in use (recipes/distill.py passes --preset distill)
        p.add_argument("--preset", choices=list(presets), default=name,
                       help=f"defaults for size and length (in use: {name}): " + "; ".join(
                           f"{k}: {v or 'the config defaults'}" for k, v in presets.items()))
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
    return model_class.xla_by_default if run.jit_compile is None else run.jit_compile


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
