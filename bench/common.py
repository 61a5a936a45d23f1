"""Helpers shared by the benchmarks: timing and JSON output."""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(fn, repeats=20, warmup=3):
    """Median and spread of wall-clock seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "max_ms": 1e3 * max(times), "repeats": repeats}


def in_rotation(calls, repeats):
    """{name: [what each call returned] × repeats}, the calls made in turn, in reversed order
    every other round: drift hits every call alike, and so does going first in a round, which
    measured slower (the cGAN training step: 299 vs 392 images/s one way round, 446 vs 388 the
    other)."""
    results = {name: [] for name in calls}
    for round_ in range(repeats):
        for name, call in (calls.items() if round_ % 2 == 0 else reversed(calls.items())):
            results[name].append(call())
    return results


def report(name, results):
    import platform

    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]
    print(json.dumps({"benchmark": name, "tensorflow": tf.__version__, "machine": platform.machine(),
                      "cpus": os.cpu_count(), "gpus": gpus, **results}, indent=2))


def restore_run(run=None, model="diffusion"):
    """(model, epoch, run settings) of a recipe run folder at its last checkpoint (default: the
    newest run of ``model`` under runs/): what the recipe exported, to measure it otherwise."""
    import glob
    import types

    import tensorflow as tf

    from zoo.core import data
    from zoo.recipe import run_config
    from zoo.training.trainer import Trainer

    if run is None:
        found = sorted(glob.glob(os.path.join("runs", model, "*", "checkpoints")))
        run = os.path.dirname(found[-1]) if found else None
    if run is None or not os.path.isdir(os.path.join(run, "checkpoints")):
        raise SystemExit(f"no {model} run found: train one with `python recipes/{model}.py` or pass --run")
    with open(os.path.join(run, "run.json")) as f:
        settings = json.load(f)
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe_module", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", f"{settings['model']}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model_class = module.MODEL
    if settings["model"] == "diffusion":  # a run from before autoguidance had no guide network
        settings["model_config"].setdefault("guide_channels", [])
    instance = model_class(model_class.Config.from_dict(settings["model_config"]))
    # The optimizer as the recipe built it (a cosine schedule has no learning-rate variable):
    # a checkpoint restores only into the same structure.
    run_settings = types.SimpleNamespace(**settings["run"])
    labels = data.arrays(run_settings.data, "train", run_settings.data_dir)[1]
    steps_per_epoch = run_config.steps_per_epoch_of(run_settings, instance, labels, run_settings.batch_size)
    instance.configure_optimizers(run_config.learning_rate(run_settings, steps_per_epoch))
    epoch = Trainer(instance, tf.distribute.get_strategy(), checkpoint_dir=os.path.join(run, "checkpoints")).restore()
    if epoch == 0:
        raise SystemExit(f"no checkpoint of {run} could be restored (see the lines above): nothing to measure")
    return instance, epoch, settings["run"], run
