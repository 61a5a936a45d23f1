"""On-device and for Keras users: the `zoo` command line on a real export, quantized variants
kept or dropped by their measured quality, the .keras file, and --init-from."""

import json
import os
import subprocess
import sys

import pytest
from conftest import run_python
from PIL import Image
from test_training_paths import exported_unmeasured

from zoo import ZooError, recipe
from zoo.apps import cli
from zoo.export import exporter, tflite
from zoo.models.cgan import CGAN
from zoo.models.vae import VAE, VAEConfig

SMALL_CGAN = ["--preset", "tiny", "--steps-per-epoch", "4", "--eval-samples", "100", "--tflite-variants", "float16",
              "--verbose", "0"]


pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli")]  # its module fixture, built once (conftest.py)


@pytest.fixture(scope="module")
def cgan_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    result = recipe.main(CGAN, [*SMALL_CGAN, "--out", str(root / "exported"), "--runs-dir", str(root / "runs")])
    return root / "exported" / "cgan", result


def zoo(*argv):
    cli.main([str(a) for a in argv])


def fails(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        zoo(*argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err.strip()


def test_info_reads_the_card_as_a_person_does(cgan_export, capsys):
    folder, _ = cgan_export
    zoo("info", folder)
    out = capsys.readouterr().out
    assert "cgan — version 1" in out and "generate(noise float32['N', 8], labels int32['N'])" in out
    assert "fid" in out and "(real:" in out and "cgan_fp16.tflite" in out and "serving" not in out.split("files:")[1]
    assert "made by: a Python call of the recipe at zoo commit" in out and "cores" in out


def test_sample_writes_a_grid_from_the_saved_model_and_the_tflite_variants(cgan_export, capsys, tmp_path):
    folder, _ = cgan_export
    zoo("sample", folder, "--labels", "3,1,4", "--num", "6", "-o", tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").size == (2 * (3 * 30 + 2), 2 * (2 * 30 + 2))  # a column per label, 2 rows
    zoo("sample", folder, "--labels", "0-9", "--tflite", "-o", tmp_path / "b.png")
    zoo("sample", folder, "--labels", "0-9", "--tflite", "float16", "--seed", "2", "-o", tmp_path / "c.png")
    assert "from the TFLite float16" in capsys.readouterr().out
    assert Image.open(tmp_path / "c.png").size == Image.open(tmp_path / "b.png").size


def test_evaluate_reproduces_the_cards_numbers(cgan_export, capsys):
    folder, result = cgan_export
    zoo("evaluate", folder)
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    for key in ("fid", "precision", "recall", "classifier_accuracy", "intra_fid"):
        assert float(rows[key][1]) == pytest.approx(result.card["metrics"][key], rel=1e-4), key
    zoo("evaluate", folder, "--tflite", "float16")
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    quality = result.card["tflite"]["cgan_fp16.tflite"]["quality"]
    assert float(rows["fid"][1]) == pytest.approx(quality["fid"], rel=1e-4)


def test_bad_input_gets_one_line_and_status_2(cgan_export, capsys, tmp_path):
    folder, _ = cgan_export
    assert "is not a folder" in fails(capsys, "info", tmp_path / "nowhere")
    assert "is not a zoo export" in fails(capsys, "info", tmp_path)
    assert "it holds the exports cgan" in fails(capsys, "sample", folder.parent)
    assert "--labels must be in [0, 9], got values in [3, 12]" in fails(capsys, "sample", folder, "--labels", "3,12")
    assert "--labels must be in [0, 9], got values in [-1, -1]" in fails(capsys, "sample", folder, "--labels", "-1")
    assert "--labels must be class ids" in fails(capsys, "sample", folder, "--labels", "three")
    assert "no 'int4' TFLite variant" in fails(capsys, "sample", folder, "--tflite", "int4")
    assert "cgan draws in one network call" in fails(capsys, "sample", folder, "--steps", "4")
    assert "--num must be in [1, 4096], got 0" in fails(capsys, "sample", folder, "--num", "0")
    assert "'cgn' is neither a shipped model" in fails(capsys, "info", "cgn")
    assert "has versions [1], not 7" in fails(capsys, "evaluate", folder, "--version", "7")
    # argparse's own errors: one line too, no usage block above it
    assert fails(capsys, "sample", folder, "--num", "x").endswith(
        "argument --num: invalid int value: 'x' (see zoo sample --help)")
    assert "invalid choice: 'smaple'" in fails(capsys, "smaple", folder)


def test_the_console_script_and_python_m_zoo_print_zoos_lines_only(cgan_export, tmp_path):
    """Not TensorFlow's or LiteRT's start-up notes (eight lines before, and four warnings when
    diffusion loaded): stderr stays empty on success."""
    folder, _ = cgan_export
    script = os.path.join(os.path.dirname(sys.executable), "zoo")
    for command, says in (([script, "info", str(folder)], "cgan — version 1"),
                          ([sys.executable, "-m", "zoo", "info", str(folder)], "cgan — version 1"),
                          ([script, "sample", "diffusion", "-o", str(tmp_path / "d.png")], "10 diffusion samples"),
                          ([script, "sample", "diffusion", "--steps", "2", "--tflite", "-o", str(tmp_path / "e.png")],
                           "TFLite float32, 2 steps")):
        out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stderr == "" and says in out.stdout, out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize("command", [[], ["sample"], ["info"], ["evaluate"], ["web"]])
def test_every_zoo_commands_help_answers_without_starting_tensorflow(command):
    code = ("import sys\nfrom zoo.apps import cli\ntry:\n    cli.main(sys.argv[1:] + ['--help'])\nexcept SystemExit as e:\n"
            "    print('EXIT', e.code, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("EXIT 0 []") and "usage: zoo" in out.stdout, out.stdout + out.stderr
    assert out.stderr == ""


KERAS = """
import json, numpy as np, tensorflow as tf
import zoo
model = zoo.load(FOLDER, runtime="keras").model
serving = tf.saved_model.load(SAVED)
noise = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
labels = np.array([0, 3, 5, 9], "int32")
ours = model.generate(noise, labels).numpy()
theirs = serving.signatures["generate"](noise=tf.constant(noise), labels=tf.constant(labels))["images"].numpy()
print("RESULT" + json.dumps({"type": type(model).__name__, "diff": float(np.abs(ours - theirs).max())}))
"""


def test_the_keras_model_of_an_export_matches_its_saved_model(cgan_export):
    """zoo.load(..., runtime="keras") in a fresh process: the model rebuilt from the card's config
    and the weights the SavedModel stores (the generator's average; the discriminator too, so
    fine-tuning goes on with the game it was trained in)."""
    folder, result = cgan_export
    code = KERAS.replace("FOLDER", repr(str(folder))).replace("SAVED", repr(result.written["saved_model"]))
    out = run_python(code)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.split("RESULT", 1)[1])
    assert got["type"] == "CGAN" and got["diff"] <= 1e-6


def test_init_from_starts_at_the_exported_models_loss(tmp_path):
    small = ["--preset", "tiny", "--steps-per-epoch", "62", "--eval-extractor", "none", "--verbose", "0",
             "--runs-dir", str(tmp_path / "runs")]
    # what is compared are training losses: the runs skip evaluation and TFLite, checked elsewhere
    first = exported_unmeasured(VAE, [*small, "--epochs", "4", "--out", str(tmp_path / "a")])
    trained_loss = first.card["metrics"]["test_loss"]
    fresh = exported_unmeasured(VAE, [*small, "--epochs", "1", "--steps-per-epoch", "3", "--out", str(tmp_path / "b")])
    tuned = exported_unmeasured(VAE, [*small, "--epochs", "1", "--steps-per-epoch", "3", "--out", str(tmp_path / "c"),
                                      "--init-from", str(tmp_path / "a" / "vae")])
    start_fresh = fresh.card["training"]["final_losses"]["loss"]
    start_tuned = tuned.card["training"]["final_losses"]["loss"]
    assert abs(start_tuned - trained_loss) < 0.1 * trained_loss < start_fresh - trained_loss
    with pytest.raises(SystemExit):  # a different architecture is refused in one line
        recipe.main(VAE, [*small, "--latent-dim", "6", "--epochs", "1", "--out", str(tmp_path / "d"),
                          "--init-from", str(tmp_path / "a" / "vae")])


class Judge:
    """A stand-in quality measure: the float16 file "loses" 30% FID, the others nothing."""

    def __init__(self, fid=130.0):
        self.fid = fid

    def measure(self, path):
        return {"fid": self.fid if path.endswith("_fp16.tflite") else 100.0}

    def judge(self, reference, figures):
        ok = figures["fid"] <= 1.1 * reference["fid"]
        return ok, "within" if ok else f"dropped: FID {figures['fid']:.1f} vs {reference['fid']:.1f} (> 10% worse)"

    def settings_for_card(self):
        return {"measure": "a stand-in"}


def test_a_variant_outside_its_tolerance_is_not_written_and_the_card_says_why(tmp_path):
    model = VAE(VAEConfig(latent_dim=4, filters=(4, 8), hidden=16))
    written, card = exporter.export(model, str(tmp_path), card={"metrics": {}}, quality=Judge(),
                                    variants=("float32", "float16"), web_batches=(1,))
    lite = card["tflite"]
    assert lite["vae_fp16.tflite"]["kept"] is False and "FID 130.0 vs 100.0" in lite["vae_fp16.tflite"]["reason"]
    assert not (tmp_path / "vae" / "vae_fp16.tflite").exists() and (tmp_path / "vae" / "vae.tflite").exists()
    for entry in lite.values():
        if entry["kept"]:
            assert entry["bytes"] > 0 and entry["batch1_latency_ms"]["decode"] > 0 and "quality" in entry
    # the browser gets copies of one variant, the one its page runs
    (page,) = {entry["variant"] for entry in card["web"].values()}
    assert sorted(os.listdir(tmp_path / "vae" / "web")) == [tflite.file_name("vae", page, 1)] and lite[
        tflite.file_name("vae", page)]["kept"]


class NaNJudge(Judge):
    """The float16 file returns NaN (as a float16 diffusion file did): measuring it fails."""

    def measure(self, path):
        if path.endswith("_fp16.tflite"):
            raise ZooError("its generate returned NaN or Inf for 3 of 10 inputs")
        return super().measure(path)


def test_a_variant_whose_quality_cannot_be_measured_is_dropped_and_the_export_stands(tmp_path):
    model = VAE(VAEConfig(latent_dim=4, filters=(4, 8), hidden=16))
    written, card = exporter.export(model, str(tmp_path), card={"metrics": {}}, quality=NaNJudge(),
                                  variants=("float32", "float16"), web_batches=())
    entry = card["tflite"]["vae_fp16.tflite"]
    assert entry["kept"] is False and entry["reason"] == ("not usable: its generate returned NaN or Inf for 3 "
                                                          "of 10 inputs")
    assert not (tmp_path / "vae" / "vae_fp16.tflite").exists() and os.path.exists(written["vae.tflite"])
