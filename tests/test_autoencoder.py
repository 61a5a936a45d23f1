
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_without_zoo

from zoo import ZooError
from zoo.blocks import corruption
from zoo.core import data
from zoo.core.distribute import Draws
from zoo.export import exporter
from zoo.metrics.anomaly import anomaly_detection, linear_probe
from zoo.models.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    DenoisingAutoencoder,
    DenoisingConfig,
)
from zoo.training.trainer import Trainer

SMALL = dict(latent_dim=8, filters=(8, 16), hidden=32)


# Corruptions ---------------------------------------------------------------------------
def test_corruption_statistics_and_determinism():
    x = tf.fill([64, 28, 28, 1], 0.5)
    seed = Draws([3, 4])
    g = corruption.corrupt(x, "gaussian", 0.1, seed).numpy()
    assert abs(g.mean() - 0.5) < 0.01 and abs(g.std() - 0.1) < 0.005
    sp = corruption.corrupt(x, "salt_pepper", 0.2, seed).numpy()
    changed = sp != 0.5
    assert abs(changed.mean() - 0.2) < 0.01 and abs((sp[changed] == 1).mean() - 0.5) < 0.03
    mp = corruption.corrupt(x, "mask_pixels", 0.3, seed).numpy()
    assert abs((mp == 0).mean() - 0.3) < 0.01
    patches = corruption.corrupt(x, "mask_patches", 0.25, seed, patch_size=4).numpy()
    blocks = patches[:, :, :, 0].reshape(64, 7, 4, 7, 4)
    assert np.all(blocks.min(axis=(2, 4)) == blocks.max(axis=(2, 4)))  # whole 4×4 patches
    assert abs((patches == 0).mean() - 0.25) < 0.03
    for kind in corruption.KINDS:
        a = corruption.corrupt(x, kind, 0.3, seed).numpy()
        np.testing.assert_array_equal(a, corruption.corrupt(x, kind, 0.3, seed).numpy())
        assert not np.array_equal(a, corruption.corrupt(x, kind, 0.3, Draws([3, 5])).numpy())
        assert 0 <= a.min() and a.max() <= 1


def test_psnr_matches_formula(rng):
    a = rng.uniform(0, 1, (3, 8, 8, 1))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = 10 * np.log10(1 / ((a - b) ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(corruption.psnr(a, b).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise="mask_pixels", noise_level=1.5), r"noise_level must be in \[0, 1\], got 1.5"),
    (dict(noise="salt_pepper", noise_level=-0.1), r"noise_level must be in \[0, 1\], got -0.1"),
    (dict(noise="gaussian", noise_level=11.0), r"noise_level must be in \[0, 10\], got 11.0"),
    (dict(noise="blur"), "noise must be one of gaussian, salt_pepper, mask_pixels, mask_patches, got 'blur'"),
    (dict(anomaly_class=10), r"anomaly_class must be in 0..9 \(the dataset's classes\), got 10"),
    (dict(loss="l1"), "loss must be one of mse, bce, got 'l1'"),
    (dict(latent_dim=0), "latent_dim must be a positive integer, got 0"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ZooError, match=message):
        DenoisingConfig(**kwargs)


# Training -----------------------------------------------------------------------------
def train(model, steps=30):
    keras.utils.set_random_seed(0)
    model.configure_optimizers(3e-3)
    ds = data.pipeline(data.load("mnist5k", "train"), 32, shuffle=True, drop_remainder=True, repeat=True)
    return Trainer(model, tf.distribute.get_strategy()).fit(ds, epochs=2, steps_per_epoch=steps, verbose=0)


@pytest.mark.parametrize("model", [
    lambda: Autoencoder(AutoencoderConfig(**SMALL)), lambda: Autoencoder(AutoencoderConfig(**SMALL, loss="bce")),
    lambda: DenoisingAutoencoder(DenoisingConfig(**SMALL, noise="mask_patches", noise_level=0.25))])
def test_few_steps_reduce_the_loss(model):
    history = train(model())
    assert history.history["mse"][-1] < 0.8 * history.history["mse"][0]


def test_dae_corrupts_only_in_training_and_per_step():
    model = DenoisingAutoencoder(DenoisingConfig(**SMALL, noise="gaussian", noise_level=0.5))
    assert model.name == "dae" and Autoencoder(AutoencoderConfig(**SMALL)).name == "ae"
    x = tf.fill([2, 28, 28, 1], 0.5)
    first, second = model.corrupt_for_training(x).numpy(), model.corrupt_for_training(x).numpy()
    assert not np.array_equal(first, second) and not np.allclose(first, 0.5)
    # Inference paths never corrupt: deterministic and equal to decode(encode(x)).
    np.testing.assert_array_equal(model.reconstruct(x).numpy(), model.reconstruct(x).numpy())
    np.testing.assert_allclose(model.anomaly_score(x).numpy(),
                               ((model.decode(model.encode(x)) - x) ** 2).numpy().mean(axis=(1, 2, 3)), rtol=1e-6)


def test_anomaly_class_is_left_out_of_training():
    model = Autoencoder(AutoencoderConfig(**SMALL, anomaly_class=3))
    labels = np.array([3, 3, 4, 4, 5, 4, 4, 4, 4, 4, 4, 3])
    kept = model.select_training_examples(labels)
    # class 3 never; of the others every 10th, starting with the first, is the held-out
    # normal data: of these nine normal images, the first (index 2)
    assert kept.tolist() == [False, False, False] + [True] * 8 + [False]
    assert model.normal_validation(labels).tolist() == [False, False, True] + [False] * 9
    assert Autoencoder(AutoencoderConfig(**SMALL)).select_training_examples(labels) is None


# Evaluation math ----------------------------------------------------------------------
def test_anomaly_detection_on_a_known_case(rng):
    # A model that reconstructs class A perfectly and class B badly: AUC = 1.
    normal_scores, anomaly_score_numpy = rng.uniform(0, 0.01, 200), rng.uniform(0.5, 1, 50)
    scores = np.concatenate([normal_scores, anomaly_score_numpy])
    labels = np.r_[np.zeros(200, bool), np.ones(50, bool)]
    result = anomaly_detection(scores, labels, rng.uniform(0, 0.01, 1000), false_positive_rate=0.05)
    assert result["anomaly_auc"] == 1.0 and result["anomaly_average_precision"] == 1.0
    assert result["anomaly_true_positive_rate"] == 1.0 and 0.0 < result["anomaly_false_positive_rate"] < 0.12
    # Random scores: AUC near 0.5.
    assert abs(anomaly_detection(rng.uniform(size=250), labels, rng.uniform(size=100))["anomaly_auc"] - 0.5) < 0.15
    with pytest.raises(ZooError, match="both anomalies and normal"):
        anomaly_detection(scores, np.zeros(250, bool), normal_scores)


def test_linear_probe_separates_separable_features(rng):
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    assert linear_probe(x[:100], y[:100], x[100:], y[100:])["linear_probe_accuracy_latent"] > 0.9


# Export -------------------------------------------------------------------------------
SERVE = """
import json, numpy as np, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
m = tf.saved_model.load(SAVED)
x = np.random.default_rng(0).uniform(0, 1, (5, 28, 28, 1)).astype("float32")
out = {k: list(v.shape) for k, v in m.signatures["reconstruct"](images=tf.constant(x)).items()}
score = m.signatures["anomaly_score"](images=tf.constant(x))["score"].numpy()
latent = m.signatures["encode"](images=tf.constant(x))["latent"]
dec = m.signatures["decode"](latent=latent)["images"].numpy()
rec = m.signatures["reconstruct"](images=tf.constant(x))["images"].numpy()
interp = Interpreter(model_path=LITE)
lite_score = interp.get_signature_runner("anomaly_score")(images=x)["score"]
lite_rec = interp.get_signature_runner("reconstruct")(images=x)["images"]
try:
    m.signatures["anomaly_score"](images=tf.constant(x * 255))
    err = None
except tf.errors.InvalidArgumentError as e:
    err = e.message
print("RESULT" + json.dumps({"rec": out, "score": score.tolist(), "lite_score": lite_score.tolist(),
    "lite_diff": float(np.abs(lite_rec - rec).max()), "decode_diff": float(np.abs(dec - rec).max()),
    "mse": ((rec - x) ** 2).mean(axis=(1, 2, 3)).tolist(), "signatures": sorted(m.signatures), "err": err,
    "lite_signatures": sorted(interp.get_signature_list())}))
"""


@pytest.mark.slow
def test_export_serves_and_scores_without_zoo(tmp_path):
    model = DenoisingAutoencoder(DenoisingConfig(**SMALL))
    written, card = exporter.export(model, str(tmp_path), card={"metrics": {}}, variants=("float32",), web_batches=())
    assert set(card["tflite"]["dae.tflite"]["max_abs_difference"]) == {"reconstruct", "anomaly_score", "generate"}
    out = run_without_zoo(SERVE, SAVED=written["saved_model"], LITE=written["dae.tflite"])
    assert out["signatures"] == ["anomaly_score", "decode", "encode", "generate", "reconstruct", "sample",
                                 "serving_default"]
    assert out["lite_signatures"] == ["anomaly_score", "generate", "reconstruct"]
    assert out["rec"] == {"images": [5, 28, 28, 1]}
    np.testing.assert_allclose(out["score"], out["mse"], rtol=1e-5)  # batch scorer: [N] → [N]
    np.testing.assert_allclose(out["lite_score"], out["score"], atol=1e-5)
    assert out["lite_diff"] <= 1e-4 and out["decode_diff"] <= 1e-6
    assert "must be in [0, 1]" in out["err"]


def test_recipe_rejects_bad_anomaly_class(capsys):
    from test_recipe import fails

    assert "--anomaly-class must be in 0..9 (the dataset's classes), got 12" in fails(
        capsys, ["--anomaly-class", "12", "--out", "/tmp"], "ae")
