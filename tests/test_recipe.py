"""The recipes as users run them: flags, bad values, presets, interrupts, resuming."""

import dataclasses
import importlib.util
import json
import os
import re

import pytest
from conftest import REPO

from zoo import recipe
from zoo.core import config
from zoo.recipe import run_config
from zoo.recipe import summary as summary_module
from zoo.recipe.summary import summary
from zoo.training import callbacks

RECIPES = ("vae", "ae", "dae", "cgan", "diffusion", "classifier")


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", os.path.join(REPO, "recipes", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fails(capsys, argv, module="vae"):
    """The one stderr line of a recipe run that must stop with status 2 and no traceback
    (argparse's own errors included: no usage block above it)."""
    with pytest.raises(SystemExit) as e:
        recipe.main(load_recipe(module).MODEL, argv=argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["--latent-dim", "-3"], "argument --latent-dim: must be a positive integer, got -3"),
    (["--batch-size", "abc"], "argument --batch-size: expected an integer, got 'abc'"),
    (["--learning-rate", "0"], "argument --learning-rate: must be a positive number, got 0"),
    (["--beta", "-1"], "argument --beta: must be a number >= 0, got -1"),
    (["--eval-every", "-3"], "argument --eval-every: must be an integer >= 0, got -3"),
    (["--strategy", "tpu"], "argument --strategy: invalid choice: 'tpu'"),
    (["--epochs"], "argument --epochs: expected one argument (see "),
    (["--latent_dim", "3"], "unrecognized arguments: --latent_dim 3 (see "),
    (["--filters", "32", "0"], "--filters must be a non-empty list whose every value be a positive integer, got (32, 0)"),
])
def test_bad_flags_give_one_clear_line(capsys, argv, message):
    assert message in fails(capsys, argv)


@pytest.mark.parametrize("name", RECIPES)
def test_every_flag_default_is_its_config_default(name):
    model_class = load_recipe(name).MODEL
    for preset, overrides in (model_class.presets or {None: {}}).items():
        args = recipe.parser(model_class, [] if preset is None else ["--preset", preset]).parse_args(
            [] if preset is None else ["--preset", preset])
        expected = {**recipe.RunConfig.defaults(), **model_class.run_defaults,
                    **model_class.Config.defaults(), **overrides}
        for f in recipe.RunConfig.flag_fields() + model_class.Config.flag_fields():
            assert getattr(args, f.name) == expected[f.name], (name, preset, f.name)
        # ... and the config built from those flags is the dataclass's own default config.
        run, names, extra = run_config.configs_from_flags(model_class, args)
        built = config.build(model_class.Config, args, names, **extra)
        assert built == model_class.Config(**{k: v for k, v in overrides.items()
                                              if k in model_class.Config.defaults()})


CANDIDATES = ("abc", "-1", "0", "1.5", "11", "1e9", "nan", "bogus")


def _rejected(f):
    """Every candidate text that the field's own type or check refuses: non-numbers, zero,
    negatives, values out of range, unknown choices."""
    kind, check = config.field_type(f), f.metadata.get("check")
    bad = []
    for text in CANDIDATES:
        try:
            value = kind(text) if kind is not bool else config._parse_bool(text)
        except ValueError:
            bad.append(text)
            continue
        if isinstance(value, float) and value != value:  # nan
            bad.append(text)
            continue
        value = (value,) if isinstance(f.default, tuple) else value
        if check is not None and not check.ok(value):
            bad.append(text)
    return bad


@pytest.mark.parametrize("name", RECIPES)
def test_every_flag_refuses_bad_values_in_one_line(name, capsys, tmp_path):
    model_class = load_recipe(name).MODEL
    fields = recipe.RunConfig.flag_fields() + model_class.Config.flag_fields()
    tried = 0
    for f in fields:
        if config.field_type(f) is bool and not isinstance(f.default, tuple):
            continue  # --resume / --no-resume: nothing to get wrong
        bad = _rejected(f) if config.field_type(f) in (int, float, bool) or f.metadata.get("check") else []
        assert bad or f.name in ("data", "data_dir", "out", "runs_dir", "init_from"), f.name
        for text in bad:
            line = fails(capsys, [config.flag_name(f.name), text, "--out", str(tmp_path / "out"),
                                  "--runs-dir", str(tmp_path / "runs")], name)
            assert config.flag_name(f.name) in line and "error" in line, (f.name, text, line)
            tried += 1
    print(name, tried, "bad values refused")
    assert tried > 25
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder


def test_bad_paths_fail_before_training(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "is a file" in fails(capsys, ["--out", str(a_file), "--runs-dir", runs])
    assert "--runs-dir" in fails(capsys, ["--runs-dir", str(a_file), "--out", str(tmp_path)])
    assert "not a writable folder" in fails(capsys, ["--out", str(a_file / "x"), "--runs-dir", runs])
    assert "unknown dataset 'nope'" in fails(capsys, ["--data", "nope", "--out", str(tmp_path), "--runs-dir", runs])
    assert "--data-dir must be an existing folder" in fails(capsys, ["--data-dir", str(tmp_path / "none")])
    assert "--init-from must be an export folder (runs/<model>/<time>/<model>, exported/<model>), a shipped model's name" \
        in fails(capsys, ["--init-from", str(a_file), "--out", str(tmp_path), "--runs-dir", runs])
    line = fails(capsys, ["--strategy", "mirrored", "--batch-size", "63", "--out", str(tmp_path), "--runs-dir", runs])
    assert "--batch-size 63 is not divisible by the 2 replicas" in line
    line = fails(capsys, ["--strategy", "mirrored", "--jit-compile", "--out", str(tmp_path), "--runs-dir", runs])
    assert "--jit-compile cannot be used with --strategy mirrored" in line
    assert line.endswith("pass --no-jit-compile")  # not ", got True": the value is not what is wrong
    assert not os.path.exists(os.path.join(runs, "vae"))  # no run folder: nothing trained


def test_previews_follow_the_models_preview_every(tmp_path):
    import numpy as np

    callback = callbacks.PreviewCallback(str(tmp_path), lambda: np.zeros((4, 4, 1), np.float32), every=3)
    callback.set_params({"epochs": 7})
    for epoch in range(7):
        callback.on_epoch_end(epoch)
    assert sorted(os.listdir(tmp_path)) == ["epoch_003.png", "epoch_006.png", "epoch_007.png"]


def test_diffusion_presets_fill_unset_flags_and_explicit_flags_win():
    model_class = load_recipe("diffusion").MODEL
    args = recipe.parser(model_class, []).parse_args([])
    assert (args.epochs, args.prediction, tuple(args.channels), args.guidance) == (50, "v", (32, 64, 64), 1.4)
    argv = ["--preset", "full", "--prediction", "eps", "--epochs", "3"]
    args = recipe.parser(model_class, argv).parse_args(argv)
    assert (args.epochs, args.prediction, tuple(args.channels)) == (3, "eps", (64, 128, 256))
    argv = ["--preset", "full"]
    assert recipe.parser(model_class, argv).parse_args(argv).epochs == 200


def test_history_csv_appends_a_resumed_part_under_the_columns_the_file_has(tmp_path):
    path = tmp_path / "history.csv"
    first = callbacks.HistoryCSV(str(path), append=True)
    first.on_train_begin()
    first.on_epoch_end(0, {"guide_loss": 0.3, "loss": 0.2, "val_loss": 0.25})  # a phase's loss in it
    first.on_train_end()
    resumed = callbacks.HistoryCSV(str(path), append=True)
    resumed.on_train_begin()
    resumed.on_epoch_end(1, {"loss": 0.1})  # after the phase, without a held-out loss
    resumed.on_train_end()
    assert path.read_text().splitlines() == ["epoch,guide_loss,loss,val_loss", "0,0.3,0.2,0.25", "1,NA,0.1,NA"]


def test_guide_channels_given_without_widths_is_classifier_free_guidance_and_a_wrong_count_one_line(capsys):
    model_class = load_recipe("diffusion").MODEL
    args = recipe.parser(model_class, ["--guide-channels"]).parse_args(["--guide-channels"])
    run, names, extra = run_config.configs_from_flags(model_class, args)
    assert config.build(model_class.Config, args, names, **extra).guide_channels == ()
    assert "--guide-channels needs one width per level of channels (32, 64, 64) (or none), got (8, 16)" in fails(
        capsys, ["--guide-channels", "8", "16"], "diffusion")


def test_config_errors_from_python_name_the_field():
    from zoo.models.vae import VAEConfig

    with pytest.raises(config.ConfigError, match=r"^beta must be a number >= 0, got -1.0$"):
        VAEConfig(beta=-1)
    with pytest.raises(Exception, match="VAEConfig has no field"):
        VAEConfig.from_dict({"latent": 3})
    assert dataclasses.asdict(VAEConfig(latent_dim=3))["latent_dim"] == 3


@pytest.mark.parametrize("flag, gpu, cpu_bf16, prefers_bf16, expected", [
    (None, False, "avx512_bf16", True, "mixed_bfloat16"),   # the model's measured choice, native bf16
    (None, False, None, True, "float32"),                   # no native bfloat16: never by default
    (None, True, "avx512_bf16", True, "float32"),           # on a GPU the choice is float16, and asked for
    (None, False, "amx_bf16", False, "float32"),            # the model did not measure it worth it
    ("off", False, "amx_bf16", True, "float32"),            # the flag wins
    ("float16", False, None, False, "mixed_float16"),
    ("bfloat16", False, "avx512_bf16", False, "mixed_bfloat16"),
])
def test_precision_policy_follows_flag_then_model_then_cpu(monkeypatch, flag, gpu, cpu_bf16, prefers_bf16,
                                                            expected):
    monkeypatch.setattr(run_config.distribute, "has_gpu", lambda: gpu)
    monkeypatch.setattr(run_config.distribute, "cpu_bfloat16", lambda: cpu_bf16)
    model_class = type("M", (), {"bfloat16_on_cpu": prefers_bf16, "zoo_name": "m"})
    assert run_config.precision_policy(recipe.RunConfig(mixed_precision=flag), model_class) == expected


@pytest.mark.parametrize("gpu", [False, True])
def test_xla_never_runs_under_a_strategy_that_synchronises_replicas(monkeypatch, gpu):
    """On an H100, every recipe under --strategy mirrored (one GPU replica) with XLA died at its
    first step with "`merge_call` called while defining a new graph": the compiled step is a
    tf.function nested inside strategy.run. The default strategy keeps the model's choice."""
    import tensorflow as tf
    from conftest import mirrored

    from zoo.models.vae import VAE

    monkeypatch.setattr(run_config.distribute, "has_gpu", lambda: gpu)
    one_replica = tf.distribute.MirroredStrategy(["/cpu:0"])
    for strategy in (one_replica, mirrored()):
        assert run_config.jit_setting(recipe.RunConfig(strategy="mirrored"), VAE, strategy) is False
        with pytest.raises(config.ConfigError, match="--jit-compile"):
            run_config.jit_setting(recipe.RunConfig(strategy="auto", jit_compile=True), VAE, strategy)
    default = tf.distribute.get_strategy()
    assert VAE.xla_by_default is True
    assert run_config.jit_setting(recipe.RunConfig(), VAE, default) is True
    assert run_config.jit_setting(recipe.RunConfig(jit_compile=False), VAE, default) is False


def test_the_summary_reports_what_was_made_where_and_what_next(capsys, tmp_path, monkeypatch):
    """The report leads with the export and the run folder, the model's headline figures beside
    the shipped model's (same data), the files the export tried and did not keep, and the next
    command; the tiny preset says its figures mean nothing. The full table stays in the card."""
    card = {"model": "m", "version": 1, "data": {"name": "mnist5k"},
            "metrics": {"fid": 170.0, "fid_se": 4.0, "kid": 0.1, "precision": 0.5, "cas": 0.93},
            "reference": {"fid": 141.0}, "evaluation": {"cas": {"samples": 1000, "epochs": 40}},
            "signatures": {"sample": {}},
            "training": {"seconds": 10.0, "images_per_second": 400.0, "strategy": "default", "replicas": 1,
                         "mixed_precision": "float32"},
            "tflite": {"m.tflite": {"kept": True}, "m_float16.tflite": {"kept": False, "reason": "NaN samples"}},
            "web": {"m_b1.tflite": {"kept": True}, "m_int8_b10.tflite": {"kept": False, "reason": "differs by 0.3"}},
            "provenance": {"seconds": {"training": 10.0, "evaluation": 1.0, "export": 2.0, "total": 13.0}}}
    shipped = tmp_path / "shipped"
    (shipped / "m").mkdir(parents=True)
    (shipped / "m" / "model_card.json").write_text(json.dumps({
        **card, "metrics": {"fid": 150.0, "fid_se": 3.0, "cas": 0.94}, "evaluation": {"cas": {"samples": 4000, "epochs": 10}}}))
    monkeypatch.setattr(summary_module.pretrained, "SHIPPED_PLACES", (str(shipped),))
    from zoo.models.base import ZooModel

    model_class = type("M", (), {"zoo_name": "m", "headline": ("fid", "precision", "recall", "cas"),
                                 "headline_of": classmethod(ZooModel.headline_of.__func__)})
    export = tmp_path / "runs" / "m" / "t" / "m"
    summary(model_class, card, {"saved_model": str(export / "serving" / "1")}, str(export.parent), "tiny")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "=== m: done in 13 s (training 10 s, evaluation 1 s, export 2 s) ===" in out
    assert any(line.split()[:2] == ["export", str(export)] and "m.tflite, web/" in line for line in lines)
    assert any(line.split()[:3] == ["run", "folder", str(export.parent)] for line in lines)
    assert "the tiny preset" in out and "figures mean nothing" in out
    fid = next(line for line in lines if line.strip().startswith("fid"))
    assert "170 ± 4 (real 141)" in fid and "150 ± 3" in fid and "measured on" not in fid  # this run, then shipped
    cas = next(line for line in lines if line.strip().startswith("cas"))  # shipped: measured otherwise, and says so
    assert "0.93" in cas and "0.94 [measured on 4,000 samples, 10 epochs]" in cas
    assert any(line.strip().startswith("precision") and "0.5" in line for line in lines)
    assert "kid" not in out and "recall" not in out  # not a headline figure / not measured
    assert "not shipped: m_float16.tflite: NaN samples" in out and "not shipped: web/m_int8_b10.tflite" in out
    assert "m_b1.tflite: " not in out
    assert f"zoo info {export}" in out and f"next: zoo sample {export}" in out
    assert "trained     10 s at 400 images/s, default × 1, float32" in out


def test_the_time_left_is_told_after_the_second_epoch(capsys, monkeypatch):
    """A run that will take an hour says so at once, from the pace of its second epoch (the first
    also traces the step)."""
    from zoo.core import progress

    monkeypatch.setitem(progress.VERBOSE, "level", 1)
    clock = iter([0.0, 100.0, 130.0, 130.0])  # epoch 0 begins; epoch 1 begins, ends; epoch 2 begins
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    callback = callbacks.TimeLeft()
    callback.set_params({"epochs": 52})
    callback.on_train_begin()
    for epoch in range(3):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == ["zoo: 30 s per epoch: about 25 min of training left (50 epochs), then evaluation and export"]


def test_each_stage_is_timed_once_in_the_order_it_finished(monkeypatch):
    """What the card's provenance.evaluation_stages holds: a stage inside another comes first,
    a stage finished twice counts once, and stages outside the block are not recorded."""
    from zoo.core import progress

    monkeypatch.setitem(progress.VERBOSE, "level", 0)
    clock = iter([0.0, 1.0, 3.5, 10.0, 20.0, 21.0, 22.0, 23.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    with progress.recorded() as stages:
        with progress.stage("outer"):  # starts at 0
            inner = progress.Stage("inner", 4)  # starts at 1
            inner.finish()  # 3.5
            inner.finish()
        # outer ends at 10
        with progress.stage("next"):  # 20 → 21
            pass
    with progress.stage("after"):
        pass
    assert stages == [["inner", 2.5], ["outer", 10.0], ["next", 1.0]]


@pytest.mark.parametrize("name", (*RECIPES, "distill"))
def test_every_recipes_help_lists_its_flags(name, capsys):
    """``--help`` as a user types it (argparse formats every help text: a stray % once crashed
    the classifier's)."""
    module = load_recipe(name)
    argv = ["--preset", "distill"] if name == "distill" else []  # what recipes/distill.py passes on
    p = module.flags() if hasattr(module, "flags") else recipe.parser(module.MODEL, argv)
    with pytest.raises(SystemExit) as e:
        p.parse_args([*argv, "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for f in recipe.RunConfig.flag_fields() + module.MODEL.Config.flag_fields():
        assert f"--{f.name.replace('_', '-')}" in out, (name, f.name)
    assert "(default: None)" not in out and not re.search(r"default[^()]*\) \(default:", out)  # said once
    if module.MODEL.presets:
        assert f"(in use: {'distill' if name == 'distill' else next(iter(module.MODEL.presets))})" in out
