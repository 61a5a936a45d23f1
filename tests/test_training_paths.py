"""The paths users take through training, by the command line: killed and resumed runs end
exactly where uninterrupted ones do, Ctrl-C and failures after training end in one line that
says what to do, reduced precision trains and still exports float32, and every recipe runs as
two local workers."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY, free_ports
from test_recipe import load_recipe

from zoo import recipe
from zoo.apps import pretrained
from zoo.blocks import latent
from zoo.evaluation import measure, pictures, settings
from zoo.export import exporter
from zoo.models.vae import VAE

pytestmark = pytest.mark.slow  # recipe command lines end to end (the full suite's tier)

# A small VAE through the recipe: every path of the flow, half a second per epoch.
SMALL_VAE = [*TINY, "--steps-per-epoch", "20", "--eval-extractor", "none"]


def command(*args):
    return [sys.executable, os.path.join(REPO, "recipes", "vae.py"), *SMALL_VAE, *args]


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def checkpoints(runs):
    return sorted(f for root, _, files in os.walk(runs) for f in files if f.startswith("ckpt-") and f.endswith(".index"))


def final_weights(run_dir):
    """The model variables of a run's last checkpoint, by name."""
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith("variables/") and "OPTIMIZER" not in k}


def test_a_killed_run_resumed_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    args = ["--epochs", "6", "--steps-per-execution", "4", "--seed", "3"]
    # the uninterrupted run, in this process and unmeasured: its checkpoint and training time are
    # what is compared (its own evaluation and export took ~40 of this test's 160 s)
    straight = exported_unmeasured(VAE, [*SMALL_VAE, *args, "--runs-dir", str(tmp_path / "a"), "--out",
                                         str(tmp_path / "out_a")])

    runs = tmp_path / "b"
    cmd = command(*args, "--runs-dir", str(runs), "--out", str(tmp_path / "out_b"), "--resume")
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(checkpoints(runs)) < 2 and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL and 1 <= len(checkpoints(runs)) <= 2
    (run_dir,) = os.listdir(runs / "vae")
    assert not (runs / "vae" / run_dir / "finished.json").exists()

    second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed_from = int(next(line for line in second.stdout.splitlines() if line.startswith("zoo: resuming"))
                       .split("from epoch ")[1].split()[0])
    assert 1 <= resumed_from < 6
    a = final_weights(tmp_path / "a" / "vae" / os.listdir(tmp_path / "a" / "vae")[0])
    b = final_weights(runs / "vae" / run_dir)
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:  # the same data order, RNG states and updates: the same weights, to the bit
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    card = json.loads((tmp_path / "out_b" / "vae" / "model_card.json").read_text())
    assert card["training"]["resumed"] and card["training"]["steps"] == 6 * 20  # --steps-per-epoch 20
    # the card counts the training time of both parts (a fresh process re-compiles: more, never less)
    assert card["training"]["seconds"] > 0.5 * straight.card["training"]["seconds"]


def test_ctrl_c_during_training_ends_in_one_line(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(command("--epochs", "50", "--runs-dir", str(runs), "--out", str(tmp_path / "out")),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not checkpoints(runs) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before its first checkpoint was written"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "interrupted (Ctrl-C)" in last and "--resume" in last


def test_a_failure_after_training_keeps_the_checkpoint_and_resume_finishes_the_job(tmp_path, monkeypatch, capsys):
    argv = [*SMALL_VAE, "--epochs", "2", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "SaveV2: No space left on device")

    monkeypatch.setattr(exporter, "export", full_disk)
    with pytest.raises(SystemExit) as e:
        recipe.main(VAE, argv)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "ResourceExhaustedError: SaveV2: No space left on device" in last
    assert "checkpoint is kept" in last and "--resume" in last
    monkeypatch.undo()
    result = recipe.main(VAE, [*argv, "--resume"])
    out = capsys.readouterr().out
    assert "resuming" in out and "from epoch 2 of 2" in out  # nothing left to train
    assert result.card["training"]["seconds"] > 0 and result.card["training"]["images_per_second"] > 0
    assert os.path.isdir(result.written["saved_model"])


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_reduced_precision_trains_and_exports_float32(precision, tmp_path, monkeypatch):
    import keras

    trained_in = []

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            trained_in.append(self.model.encoder.layers[1].compute_dtype)

    monkeypatch.setattr(VAE, "training_callbacks", lambda self: [Watch()])
    result = recipe.main(VAE, [*SMALL_VAE, "--epochs", "1", "--steps-per-epoch", "5", "--mixed-precision", precision,
                               "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert result.card["training"]["mixed_precision"] == f"mixed_{precision}" and trained_in == [precision]
    # ... and what was measured for the card is what was exported: the float32 model
    assert result.model.encoder.layers[1].compute_dtype == "float32"
    lite = result.card["tflite"]["vae.tflite"]
    # the float32 export passed its parity (images absolutely; the anomaly score, in the hundreds, relatively)
    assert lite["max_abs_difference"]["decode"] <= 1e-4 and lite["max_abs_difference"]["generate"] <= 1e-4
    # the recipe gives the caller's policy back (a notebook or test that calls it goes on in float32)
    assert keras.mixed_precision.global_policy().name == "float32"
    exported = pretrained.keras_model(str(tmp_path / "out" / "vae"))
    assert exported.decoder.layers[-1].compute_dtype == "float32"


def test_the_anomaly_command_trains_without_the_class_and_reports_the_chosen_score(tmp_path):
    """README: `python recipes/vae.py --anomaly-class K` trains on the other digits (with the
    anomaly β), chooses its score without K and reports the chosen score's figures."""
    out = subprocess.run(command("--anomaly-class", "1", "--epochs", "1", "--steps-per-epoch", "5", "--max-components",
                                 "2", "--eval-extractor", "none", "--out", str(tmp_path / "out"),
                                 "--runs-dir", str(tmp_path / "runs")),
                         env=ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    card = json.loads((tmp_path / "out" / "vae" / "model_card.json").read_text())
    assert card["config"]["anomaly_class"] == 1 and card["config"]["beta"] == 0.5
    metrics, settings = card["metrics"], card["evaluation"]
    for name in ("anomaly_auc", "anomaly_auc_tflite", "anomaly_average_precision", "anomaly_true_positive_rate"):
        assert 0.0 <= metrics[name] <= 1.0, name
    chosen = settings["anomaly_score"]["chosen"]
    assert chosen in latent.candidate_combinations(list(metrics["anomaly_auc_by_part"]))
    assert settings["class_density"]["per_class"] in (1, 2, 3, 4)
    assert len(settings["reconstruction_excess"]["coefficients"]) == 4 and "R²" in settings["reconstruction_excess"]["what"]
    assert {int(c) for c in settings["class_density"]["components_per_class"]} == set(range(10)) - {1}
    assert re.search(r"\n  anomaly_auc +0\.\d+", out.stdout)
    assert re.search(r"\n  anomaly score +" + re.escape(chosen) + r" \(chosen on held-out", out.stdout)


# Two local workers -----------------------------------------------------------------------
class _Trained(Exception):
    """Raised where the recipe would start evaluating, carrying the trained model."""


def trained_alone(name, argv):
    """The model that ``python recipes/<name>.py ARGV`` trains (and fits after training), in
    this process, without its evaluation and export."""
    def stop(model, *args, **kwargs):
        raise _Trained(model)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(measure, "evaluate_model", stop)
        with pytest.raises(_Trained) as stopped:
            recipe.main(load_recipe(name).MODEL, argv)
    return stopped.value.args[0]


def exported_unmeasured(model_class, argv):
    """``recipe.main(model_class, argv)`` that trains, fits, and writes its card and SavedModel,
    but neither evaluates nor writes TFLite files: for tests that need a trained export whose
    evaluation and conversion are not what they check (on a tiny diffusion teacher those took
    107 of 154 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(measure, "evaluate_model", lambda *args, **kwargs: settings.Measured())
        patch.setattr(pictures, "export_pictures", lambda *args, **kwargs: {})
        patch.setattr(exporter, "TFLITE_STEPS", exporter.SAVED_MODEL_ONLY)
        return recipe.main(model_class, argv)


def weight_layout(model):
    """(path, shape) of each weight, paths without the suffix Keras adds to a layer name seen
    before in this process (name_1, ...)."""
    return [(re.sub(r"_\d+(?=/)", "", w.path), tuple(w.shape)) for w in model.weights]


# No AE case: the DAE is the AE plus its corruption (a subclass; its draws per replica are what two
# workers could get wrong), so the AE's run took 71 s of the suite and checked nothing the DAE's does not.
@pytest.mark.parametrize("name", ["vae", "dae", "cgan", "diffusion", "classifier"])
def test_every_recipe_runs_as_two_local_workers_and_exports_what_one_process_does(name, tmp_path):
    """The README's command line, `--strategy multi_worker` with TF_CONFIG, the tiny preset in
    float32: both workers exit 0, only the chief exports, and the export equals
    a single-process run with the same global batch (the same data order and noise). Float32
    because in bfloat16 (the cGAN's and diffusion's default on CPUs with bfloat16 instructions)
    one and two replicas round their partial gradient sums differently: measured, 6e-5 and more
    (a third of an Adam step at lr 2e-4) on 9% of one cGAN layer's weights, which would hide a
    real difference."""
    script = os.path.join(REPO, "recipes", f"{name}.py")
    # No feature metrics on the chief: they are the single-process code (the export test measures
    # them); with them the VAE, cGAN and diffusion cases took 231 s alone, 197 s without.
    tiny = [*TINY, "--eval-samples", "20", "--eval-extractor", "none", "--mixed-precision", "off"]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for i in range(2):
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(
            [sys.executable, script, "--strategy", "multi_worker", *tiny, "--out", str(tmp_path / f"w{i}"),
             "--runs-dir", str(tmp_path / f"runs{i}")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    # The reference, trained while the workers run: the same flags in one process, in this one,
    # stopped where evaluation would begin (after the fits that follow training): what is
    # compared are the weights, and its own evaluation and export took half of this test's
    # 293 s for diffusion. The workers cannot use XLA (no CPU collectives); the reference must
    # not either: XLA's floating-point order alone moves Adam's first steps (±lr each, whatever
    # |g|) by up to 4e-3.
    try:
        alone = trained_alone(name, [*tiny, "--no-jit-compile", "--out", str(tmp_path / "single"),
                                     "--runs-dir", str(tmp_path / "runs_single")])
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "multi_worker × 2" in outputs[0] and "the chief evaluates and exports" in outputs[1]
    assert (tmp_path / "w0" / name / "model_card.json").exists() and not (tmp_path / "w1" / name).exists()
    chief = pretrained.keras_model(str(tmp_path / "w0" / name))
    assert weight_layout(chief) == weight_layout(alone)
    card = json.loads((tmp_path / "w0" / name / "model_card.json").read_text())
    adam_step = card["config"]["learning_rate"]
    # what the export stores (a training network whose average is stored starts from it)
    stored = {id(w) for _, w in chief.stored_weights()}
    agree, total = 0, 0
    for a, b in ((a, b) for a, b in zip(chief.weights, alone.weights) if id(a) in stored):
        # The trained networks: only the order of floating-point sums differs. Adam moves a weight
        # by about ±lr whatever its gradient's size, so a near-zero gradient (a bias in front of a
        # normalisation) whose sign that order flips may differ by up to 2·lr per step: allowed for
        # a few weights of the model (in the tiny preset's 8-channel nets, all 8 of one cGAN bias),
        # all others agree to 2e-5. What EM fits after training (the latent mixtures, the score
        # statistics) amplifies the differences a little.
        a, b, path = a.numpy(), b.numpy(), a.path
        if any(fitted in path for fitted in ("sampling_mixture", "class_density", "score_combination")):
            np.testing.assert_allclose(a, b, rtol=2e-2, atol=1e-3, err_msg=path)
            continue
        difference = np.abs(a.astype(np.float64) - b.astype(np.float64))
        assert difference.max() <= 2 * adam_step * card["training"]["steps"] + 2e-5, path
        agree, total = agree + np.sum(difference <= 2e-5 + 1e-4 * np.abs(b)), total + difference.size
    assert agree / total >= 0.999, f"{total - agree} of {total} weights differ"
    assert card["training"]["strategy"] == "multi_worker" and card["training"]["replicas"] == 2
    assert card["training"]["steps"] == 2


def folder_digest(folder):
    """Every file under ``folder`` by relative path → its bytes' hash."""
    import hashlib

    return {os.path.relpath(os.path.join(root, f), folder): hashlib.sha256(open(os.path.join(root, f), "rb").read())
            .hexdigest() for root, _, files in os.walk(folder) for f in files}


def test_no_documented_recipe_run_replaces_an_export_the_user_has(tmp_path):
    """README: `python recipes/vae.py --preset tiny`, run where exported/ is (a clone's root). Its
    export goes in its own run folder: exported/vae stays as it was, to the byte, and zoo.load
    still gives the shipped model. A run told to write into a folder that holds an export is
    refused before training (one line, exit 2) unless it says --replace."""
    os.makedirs(tmp_path / "exported")
    subprocess.run(["cp", "-r", os.path.join(REPO, "exported", "vae"), str(tmp_path / "exported")], check=True)
    mine, shipped = folder_digest(tmp_path / "exported"), folder_digest(os.path.join(REPO, "exported", "vae"))
    recipe_path = os.path.join(REPO, "recipes", "vae.py")
    out = subprocess.run([sys.executable, recipe_path, "--preset", "tiny"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    # read as a log is (no terminal): zoo's lines only, no bars' colour codes, no one-piece bars
    assert out.stderr == "" and "\x1b" not in out.stdout and not re.search(r"^1/1 ", out.stdout, re.M), out.stdout
    assert folder_digest(tmp_path / "exported") == mine
    assert folder_digest(os.path.join(REPO, "exported", "vae")) == shipped
    (run,) = os.listdir(tmp_path / "runs" / "vae")
    export = os.path.join("runs", "vae", run, "vae")
    assert os.path.isfile(tmp_path / export / "model_card.json") and f"export      {export}" in out.stdout
    assert pretrained.load("vae").card["metrics"]["fid"] < 1000  # still the shipped model, not the tiny one

    refused = subprocess.run([sys.executable, recipe_path, "--preset", "tiny", "--out", "exported"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600, env=ENV)
    had = json.load(open(tmp_path / "exported" / "vae" / "model_card.json"))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"vae.py: error: --out 'exported' already holds a vae export of {had['created'][:10]} "
        f"(FID {had['metrics']['fid']:.1f}) in "
        "exported/vae: a run replaces an export only when told to. Leave --out out (the export goes in the run's own "
        "folder), choose another folder, or pass --replace"]
    assert folder_digest(tmp_path / "exported") == mine and len(os.listdir(tmp_path / "runs" / "vae")) == 1

    replaced = subprocess.run([sys.executable, recipe_path, "--preset", "tiny", "--out", "exported", "--replace"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600, env=ENV)
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert json.load(open(tmp_path / "exported" / "vae" / "model_card.json"))["metrics"]["fid"] > 1000  # the tiny one
