import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from zoo import recipe


def load_recipe(name):
    recipes = os.path.join(REPO, "recipes")
    if recipes not in sys.path:
        sys.path.insert(0, recipes)  # as when run as a script: dae.py imports ae.py
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", os.path.join(REPO, "recipes", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fails(capsys, argv, module="vae"):
    r = load_recipe(module)
    with pytest.raises(SystemExit) as e:
        recipe.run(module, r.build, r.flags, argv=argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["--latent-dim", "-3"], "--latent-dim: expected a positive integer, got -3"),
    (["--batch-size", "abc"], "--batch-size: expected a positive integer, got 'abc'"),
    (["--learning-rate", "0"], "--learning-rate: expected a positive number, got 0"),
    (["--strategy", "tpu"], "--strategy: invalid choice: 'tpu'"),
])
def test_bad_flags_give_one_clear_line(capsys, argv, message):
    assert message in fails(capsys, argv)


def test_bad_settings_fail_before_training(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "is a file" in fails(capsys, ["--out", str(a_file), "--runs-dir", runs])
    assert "not a writable folder" in fails(capsys, ["--out", str(a_file / "x"), "--runs-dir", runs])
    assert "unknown dataset 'nope'" in fails(capsys, ["--data", "nope", "--out", str(tmp_path), "--runs-dir", runs])
    line = fails(capsys, ["--strategy", "mirrored", "--batch-size", "63", "--out", str(tmp_path), "--runs-dir", runs])
    assert "--batch-size 63 is not divisible by the 2 replicas" in line
    assert not os.path.exists(runs)  # nothing trained, no run folder


def _checkpoints(runs):
    found = []
    for root, _, files in os.walk(runs):
        found += [f for f in files if f.startswith("ckpt-") and f.endswith(".index")]
    return found


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "exported"
    cmd = [sys.executable, os.path.join(REPO, "recipes", "vae.py"), "--epochs", "6", "--verbose", "0",
           "--latent-dim", "4", "--runs-dir", str(runs), "--out", str(out), "--resume"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_checkpoints(runs)) < 2 and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved = len(_checkpoints(runs))  # max_to_keep=2: ckpt-(k-1), ckpt-k
    assert saved >= 1 and first.returncode == -signal.SIGKILL
    (run_dir,) = os.listdir(runs / "vae")
    assert not (runs / "vae" / run_dir / "finished.json").exists()

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    line = next(l for l in second.stdout.splitlines() if l.startswith("zoo: resuming"))
    resumed_from = int(line.split("from epoch ")[1].split()[0])
    assert 1 <= resumed_from < 6
    assert os.listdir(runs / "vae") == [run_dir]  # same run, not a new one
    assert (runs / "vae" / run_dir / "finished.json").exists()
    epochs_logged = (runs / "vae" / run_dir / "history.csv").read_text().strip().splitlines()[1:]
    assert int(epochs_logged[-1].split(",")[0]) == 5  # epoch indices continue to the end

    # A finished run is not resumed: --resume starts a new one.
    third = subprocess.run(cmd[:3] + ["1"] + cmd[4:], env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0 and "resuming" not in third.stdout
    assert len(os.listdir(runs / "vae")) == 2


def test_previews_follow_the_models_preview_every(tmp_path):
    import numpy as np

    class Model:
        preview_every = 3

        def preview(self):
            return np.zeros((4, 4, 1), np.float32)

    callback = recipe.PreviewCallback(str(tmp_path))
    callback.set_model(Model())
    callback.set_params({"epochs": 7})
    for epoch in range(7):
        callback.on_epoch_end(epoch)
    assert sorted(os.listdir(tmp_path)) == ["epoch_003.png", "epoch_006.png", "epoch_007.png"]


def test_diffusion_presets_fill_unset_flags_and_explicit_flags_win():
    from zoo import data

    r = load_recipe("diffusion")
    info = data.info("mnist5k")
    args = r.flags.parse_args([])
    model = r.build(args, info)
    assert (args.epochs, model.config.prediction, model.config.channels) == (55, "v", (32, 64, 64))
    args = r.flags.parse_args(["--prediction", "eps", "--epochs", "3", "--min-snr-gamma", "0"])
    model = r.build(args, info)
    assert (args.epochs, model.config.prediction, model.config.min_snr_gamma) == (3, "eps", 0.0)
