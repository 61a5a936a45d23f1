"""The exported VAE, checked the way users meet it: in processes that cannot import zoo."""

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import FAST_EXPORT, REPO, run_python, run_without_zoo
from PIL import Image

from zoo import ZooError
from zoo.apps import pretrained
from zoo.export import card as cards
from zoo.export import exporter, tflite, web_files
from zoo.models.vae import VAE, VAEConfig

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export")]  # its module fixture, built once (conftest.py)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae_recipe")
    # the README's main command with every default but the length (1 epoch, 200 samples)
    result = run_python([os.path.join(REPO, "recipes", "vae.py"), "--epochs", "1", "--verbose", "0",
                         "--eval-samples", "200",
                         "--out", str(root / "exported"), "--runs-dir", str(root / "runs")], cwd=root)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return root / "exported" / "vae", result.stdout


def test_recipe_writes_the_contract_layout_and_summary(exported):
    target, stdout = exported
    files = sorted(os.listdir(target))
    assert {"interpolation.png", "model_card.json", "reconstructions.png", "samples.png", "serving",
            "vae.tflite", "web"} <= set(files)
    assert not [f for f in files if f.endswith(".keras")]  # the weights are stored once: in the SavedModel
    assert os.listdir(target / "serving") == ["1"]
    card = json.loads((target / "model_card.json").read_text())
    # every TFLite file on disk is a variant the card keeps, and every kept one is on disk
    assert {f for f in files if f.endswith(".tflite")} == {f for f, e in card["tflite"].items() if e["kept"]}
    assert tuple(card) == cards.KEYS
    assert card["model"] == "vae" and card["version"] == 1
    assert card["data"]["name"] == "mnist5k" and card["data"]["size"] == 4000
    assert card["config"]["latent_dim"] == 16
    assert set(card["versions"]) == {"zoo", "export_format", "tensorflow", "keras", "python"}
    assert card["versions"]["export_format"] == exporter.FORMAT_VERSION
    made = card["provenance"]
    assert made["command"].startswith("python recipes/vae.py --epochs 1") and made["seed"] == 0
    assert made["precision"] in ("float32", "mixed_bfloat16") and made["machine"]["cores"] == os.cpu_count()
    assert set(made["seconds"]) == {"training", "start_up", "evaluation", "export", "total"}
    stages = dict(made["evaluation_stages"])  # where the evaluation's time went, stage by stage
    assert any(title.startswith("sampling 200 images") for title in stages) and "VAE measurements" in stages
    assert all(0 <= seconds <= made["seconds"]["evaluation"] for seconds in stages.values())
    exported = dict(made["export_stages"])  # and the export's
    assert any(title.startswith("writing the SavedModel") for title in exported)
    assert all(0 <= seconds <= made["seconds"]["export"] for seconds in exported.values())
    for key in ("epochs", "steps", "seconds", "images_per_second", "strategy", "replicas", "final_losses"):
        assert key in card["training"]
    assert card["training"]["steps"] == 4000 // 64
    assert card["metrics"]["nll_iw"] < -card["metrics"]["elbo"]  # IWAE bound is tighter
    assert list(card["signatures"]) == ["decode", "encode", "reconstruct", "sample", "elbo", "anomaly_score",
                                        "generate"]
    lite = card["tflite"]["vae.tflite"]
    assert lite["bytes"] == os.path.getsize(target / "vae.tflite")
    assert 0 <= lite["max_abs_difference"]["decode"] <= 1e-4
    # the card also travels inside the version folder
    assert json.loads((target / "serving" / "1" / "assets.extra" / "model_card.json").read_text())["version"] == 1
    # 8×8 grid of 28×28 digits with 2-pixel padding, scaled ×2
    assert Image.open(target / "samples.png").size == (2 * (8 * 30 + 2),) * 2
    assert "=== vae: done in" in stdout and "nll_iw" in stdout and "vae.tflite" in stdout


SERVE = """
import json, sys
import numpy as np, tensorflow as tf
m = tf.saved_model.load(SAVED)
out = {"signatures": sorted(m.signatures.keys())}
rng = np.random.default_rng(0)
images = tf.constant(rng.uniform(0, 1, (3, 28, 28, 1)), tf.float32)
dec = m.signatures["decode"](latent=tf.constant(rng.normal(size=(3, 16)), tf.float32))["images"]
default = m.signatures["serving_default"](latent=tf.zeros([2, 16]))["images"]
enc = m.signatures["encode"](images=images)
rec = m.signatures["reconstruct"](images=images)["images"]
s1 = m.signatures["sample"](num=tf.constant(4), seed=tf.constant(7))["images"].numpy()
s2 = m.signatures["sample"](num=tf.constant(4), seed=tf.constant(7))["images"].numpy()
elbo = m.signatures["elbo"](images=images)["elbo"]
out.update(decode=list(dec.shape), default=list(default.shape), mean=list(enc["mean"].shape),
           log_var=list(enc["log_var"].shape), reconstruct=list(rec.shape), sample=list(s1.shape),
           sample_same=bool(np.array_equal(s1, s2)), elbo=elbo.numpy().tolist(),
           in_range=bool(0 <= dec.numpy().min() and dec.numpy().max() <= 1))
errors = {}
bad = {
    "latent_width": lambda: m.signatures["decode"](latent=tf.zeros([2, 8])),
    "latent_rank": lambda: m.signatures["decode"](latent=tf.zeros([16])),
    "latent_nan": lambda: m.signatures["decode"](latent=tf.fill([1, 16], float("nan"))),
    "image_range": lambda: m.signatures["encode"](images=images * 255),
    "image_shape": lambda: m.signatures["encode"](images=tf.zeros([1, 32, 32, 1])),
    "num_zero": lambda: m.signatures["sample"](num=tf.constant(0), seed=tf.constant(0)),
}
for name, call in bad.items():
    try:
        call()
        errors[name] = None
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
out["errors"] = errors
print("RESULT" + json.dumps(out))
"""


def test_saved_model_serves_every_signature_without_zoo(exported):
    target, _ = exported
    out = run_without_zoo(SERVE, SAVED=target / "serving" / "1")
    assert {"decode", "encode", "reconstruct", "sample", "elbo", "serving_default"} <= set(out["signatures"])
    assert out["decode"] == [3, 28, 28, 1] and out["default"] == [2, 28, 28, 1] and out["in_range"]
    assert out["mean"] == [3, 16] and out["log_var"] == [3, 16] and out["reconstruct"] == [3, 28, 28, 1]
    assert out["sample"] == [4, 28, 28, 1] and out["sample_same"]
    assert len(out["elbo"]) == 3 and all(e < 0 for e in out["elbo"])
    errors = out["errors"]
    assert "decode: input latent must have shape [N, 16]" in errors["latent_width"] and "[8]" in errors["latent_width"]
    assert "expected shape [?,16]" in errors["latent_rank"]  # caught by EnsureShape
    assert "NaN or Inf" in errors["latent_nan"]
    assert "must be in [0, 1]" in errors["image_range"]
    assert "must have shape [N, 28, 28, 1]" in errors["image_shape"]
    assert "sample: input num must be in [1, 4096]" in errors["num_zero"]


def test_saved_model_cli_lists_the_signatures(exported):
    target, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--all", "--dir", str(target / "serving" / "1")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("serving_default", "decode", "encode", "reconstruct", "sample", "elbo"):
        assert f"signature_def['{name}']" in out.stdout


LITE = """
import json, sys
import numpy as np, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=LITE_FILE)
assert set(interpreter.get_signature_list()) == {"decode", "anomaly_score", "generate"}, interpreter.get_signature_list()
runner = interpreter.get_signature_runner("decode")
latent = np.random.default_rng(1).normal(size=(64, 16)).astype(np.float32)
lite = runner(latent=latent)["images"]
one = Interpreter(model_path=LITE_FILE).get_signature_runner("decode")(latent=latent[:1])["images"]
ref = tf.saved_model.load(SAVED).signatures["decode"](latent=tf.constant(latent))["images"].numpy()
print("RESULT" + json.dumps({"shape": list(lite.shape), "diff": float(np.abs(lite - ref).max()),
                             "diff1": float(np.abs(one - ref[:1]).max())}))
"""


def test_tflite_decode_matches_saved_model_without_zoo(exported):
    target, _ = exported
    out = run_without_zoo(LITE, LITE_FILE=target / "vae.tflite", SAVED=target / "serving" / "1")
    assert out["shape"] == [64, 28, 28, 1]
    assert out["diff"] <= 1e-4 and out["diff1"] <= 1e-4


def test_the_keras_model_is_rebuilt_from_the_saved_model_alone(exported):
    """No .keras file: the card's config and the weights the SavedModel stores give the model
    back, every weight equal to what the SavedModel computes with."""
    target, _ = exported
    model = pretrained.keras_model(str(target))
    serving = tf.saved_model.load(str(target / "serving" / "1"))
    stored = {v.name: v.numpy() for v in serving.model_weights}
    assert len(stored) == len(model.weights)  # the VAE keeps no averaged networks: every weight is stored
    images = np.random.default_rng(0).uniform(0, 1, (5, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model.reconstruct_numpy(images),
                               serving.signatures["reconstruct"](images=tf.constant(images))["images"].numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(model.anomaly_score_numpy(images),
                               serving.signatures["anomaly_score"](images=tf.constant(images))["score"].numpy(),
                               rtol=1e-5, atol=1e-4)
    card = json.loads((target / "model_card.json").read_text())
    assert model.sampler_in_use() == card["evaluation"]["sampler"]["in_use"]


def _tree_hash(path):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for f in sorted(files):
            h.update(f.encode())
            h.update(open(os.path.join(root, f), "rb").read())
    return h.hexdigest()


SMALL = dict(latent_dim=4, filters=(4, 8), hidden=16)


def test_new_export_takes_the_next_version_and_never_touches_older_ones(tmp_path):
    model = VAE(VAEConfig(**SMALL))
    written, card = exporter.export(model, str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    assert card["version"] == 1 and written["saved_model"].endswith(os.path.join("serving", "1"))
    before = _tree_hash(tmp_path / "vae" / "serving" / "1")
    _, card2 = exporter.export(model, str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    assert card2["version"] == 2
    assert sorted(os.listdir(tmp_path / "vae" / "serving")) == ["1", "2"]
    assert _tree_hash(tmp_path / "vae" / "serving" / "1") == before
    assert json.loads((tmp_path / "vae" / "model_card.json").read_text())["version"] == 2


def test_interrupted_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    model = VAE(VAEConfig(**SMALL))
    exporter.export(model, str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    card_before = (tmp_path / "vae" / "model_card.json").read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    started = []  # float32 and the variant convert in child processes: they must not outlive the export
    real = tflite.Conversion
    monkeypatch.setattr(tflite, "Conversion", lambda *a, **k: started.append(real(*a, **k)) or started[-1])
    monkeypatch.setattr(exporter, "compare_tflite", crash)
    with pytest.raises(KeyboardInterrupt):
        exporter.export(model, str(tmp_path), card={"metrics": {}}, variants=("float32", "int8_dynamic"), web_batches=())
    assert len(started) == 2 and not any(conversion.running for conversion in started)
    assert sorted(os.listdir(tmp_path / "vae" / "serving")) == ["1"]
    assert not [f for f in os.listdir(tmp_path / "vae") if f.startswith(".tmp")]
    assert (tmp_path / "vae" / "model_card.json").read_text() == card_before


def test_a_conversion_in_a_child_process_fails_in_one_line(tmp_path):
    missing = tflite.Conversion(str(tmp_path / "no_saved_model"), ["decode"], str(tmp_path / "a.tflite"))
    with pytest.raises(RuntimeError) as failed:
        missing.wait()
    assert str(failed.value) and "\n" not in str(failed.value) and "Traceback" not in str(failed.value)
    with pytest.raises(RuntimeError, match=re.escape(str(failed.value))):
        missing.wait()  # asked again: the same outcome, not a silent success
    assert not (tmp_path / "a.tflite").exists()


class PNGLengthInTFLite(VAE):
    """Its TFLite anomaly score would compute the exact PNG length (no TFLite op): the
    float32 conversion fails."""

    def signatures(self):
        return [dataclasses.replace(s, lite_fn=None) if s.name == "anomaly_score" else s for s in super().signatures()]


def test_a_failed_float32_conversion_ends_the_export_in_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(ZooError) as failed:
        exporter.export(PNGLengthInTFLite(VAEConfig(**SMALL)), str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    message = str(failed.value)
    assert message.startswith("converting decode, anomaly_score, generate to TFLite failed: ") and "\n" not in message
    # the cause, not the last line of the converter's MLIR dump
    assert message.endswith("'tf.EncodePng' op is neither a custom op nor a flex op (TF Select ops: EncodePng, "
                            "StringLength)"), message
    assert not os.listdir(tmp_path / "vae" / "serving") and not [f for f in os.listdir(tmp_path / "vae")
                                                                 if f != "serving"]


def test_tflite_disagreement_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "compare_tflite", lambda *a, **k: ({"decode": 0.5}, {"decode": 0.5}))
    with pytest.raises(ZooError, match="disagrees with the SavedModel by 0.5"):
        exporter.export(VAE(VAEConfig(**SMALL)), str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    assert not (tmp_path / "vae" / "serving" / "1").exists()


@pytest.mark.parametrize("float16_ms, shipped", [(1.0, ["float32", "int8_dynamic"]),
                                                 (0.5, ["float32", "int8_dynamic", "float16"])])
def test_a_larger_variant_ships_only_when_it_is_faster_than_every_smaller_one(tmp_path, float16_ms, shipped):
    """Both quantized files are within the tolerances: the smaller ships, the larger only if it
    is measurably faster; float32 always (it computes what the SavedModel computes)."""
    sizes, latencies = {"float32": 400, "float16": 200, "int8_dynamic": 100}, {"float32": 1.2, "float16": float16_ms,
                                                                             "int8_dynamic": 1.0}
    card, files = {"tflite": {}}, {}
    for variant, size in sizes.items():
        name = tflite.file_name("m", variant)
        files[name] = str(tmp_path / name)
        open(files[name], "wb").write(b"x" * size)
        card["tflite"][name] = {"variant": variant, "bytes": size, "kept": True,
                                "batch1_latency_ms": {"generate": latencies[variant]}}
    ctx = exporter.ExportContext(model=None, name="m", target=str(tmp_path), tmp=str(tmp_path),
                                 options=exporter.ExportOptions(), card=card, pictures={}, saved_signatures=[],
                                 lite_signatures=[], files=files, kept=list(sizes))
    exporter.choose_variants(ctx)
    assert ctx.kept == shipped and set(ctx.files) == {tflite.file_name("m", v) for v in shipped}
    assert sorted(os.listdir(tmp_path)) == sorted(ctx.files)
    if "float16" not in shipped:
        entry = card["tflite"]["m_fp16.tflite"]
        assert not entry["kept"] and "int8_dynamic is smaller and no slower (1.0 vs 1.0 ms" in entry["reason"]
        assert "quality" not in entry  # a file no user would choose is not even measured
    assert web_files.web_variant({v: card["tflite"][tflite.file_name("m", v)] for v in ctx.kept}) == "int8_dynamic"


def test_output_folder_checks(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(ZooError, match="is a file"):
        exporter.prepare_output_dir(str(target))
    with pytest.raises(ZooError, match="not a writable folder"):
        exporter.prepare_output_dir(str(target / "below"))
    assert exporter.prepare_output_dir(str(tmp_path / "new")) == str(tmp_path / "new")
