"""The model contract, proven by a model zoo does not ship (tests/gaussian_ae.py, under 80
lines): it trains, evaluates and exports through the recipe flow, with its own signature
set, and nothing in trainer, evaluation, export or recipe knows it."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_without_zoo
from gaussian_ae import GaussianAE, GaussianAEConfig

from zoo import recipe
from zoo.apps import pretrained
from zoo.core import signature as sig

pytestmark = pytest.mark.xdist_group("contract")  # its module fixture, built once (conftest.py)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    return recipe.main(GaussianAE, argv=["--steps-per-epoch", "20", "--eval-samples", "100", "--verbose", "0",
                                         "--out", str(root / "exported"), "--runs-dir", str(root / "runs")])


@pytest.mark.slow
def test_a_new_model_trains_evaluates_and_exports_through_the_recipe(result):
    card, written = result.card, result.written
    assert card["model"] == "gaussian_ae" and os.path.basename(os.path.dirname(result.run_dir)) == "gaussian_ae"
    assert card["training"]["steps"] == 20 and card["metrics"]["test_mse"] < 0.2
    # Its capabilities chose its evaluation: generator metrics (± se, with the real floor) and reconstruction.
    assert {"fid", "fid_se", "precision", "recall", "reconstruction_mse", "linear_probe_accuracy_latent"} <= set(
        card["metrics"])
    assert card["reference"]["fid"] < card["metrics"]["fid"]
    assert {"samples.png", "reconstructions.png", "gaussian_ae.tflite"} <= set(written)
    # and zoo.load gives its Keras model back from the export alone, with the weights it trained
    rebuilt = pretrained.keras_model(os.path.dirname(os.path.dirname(written["saved_model"])))
    assert type(rebuilt) is GaussianAE
    for a, b in zip(rebuilt.weights, result.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert set(card["tflite"]["gaussian_ae.tflite"]["max_abs_difference"]) == {"decode", "compose"}
    codes = card["signatures"]["compose"]["inputs"]["codes"]
    assert codes == {"dtype": "int32", "shape": ["N", 7, 7], "role": "codes", "minimum": 0, "maximum": 3}
    assert card["signatures"]["compose"]["inputs"]["mask"]["values"] == [0.0, 1.0]


SERVE = """
import json, numpy as np, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
m = tf.saved_model.load(SAVED)
rng = np.random.default_rng(0)
codes = rng.integers(0, 4, (3, 7, 7)).astype("int32")
mask = np.zeros((3, 28, 28, 1), "float32"); mask[:, :14] = 1
latent = rng.normal(size=(3, 8)).astype("float32")
out = m.signatures["compose"](codes=tf.constant(codes), mask=tf.constant(mask), latent=tf.constant(latent))["images"]
lite = Interpreter(model_path=LITE).get_signature_runner("compose")(codes=codes, mask=mask, latent=latent)["images"]
errors = {}
for name, bad in {"codes": dict(codes=tf.constant(codes + 4)), "mask": dict(mask=tf.constant(mask * 0.5)),
                  "shape": dict(codes=tf.constant(codes[:, :6]))}.items():
    args = dict(codes=tf.constant(codes), mask=tf.constant(mask), latent=tf.constant(latent)); args.update(bad)
    try:
        m.signatures["compose"](**args); errors[name] = None
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
print("RESULT" + json.dumps({"diff": float(np.abs(out.numpy() - lite).max()), "shape": list(out.shape),
    "painted": out.numpy()[:, 20:, :, 0].round(4).tolist(), "codes": codes.tolist(), "errors": errors}))
"""


@pytest.mark.slow
def test_its_new_signature_serves_and_converts_without_zoo(result):
    out = run_without_zoo(SERVE, SAVED=result.written["saved_model"], LITE=result.written["gaussian_ae.tflite"])
    assert out["shape"] == [3, 28, 28, 1] and out["diff"] <= 1e-4
    # where the mask is 0 the 7×7 codes, each a 4×4 block of grey level code/3
    painted, codes = np.asarray(out["painted"]), np.asarray(out["codes"])
    np.testing.assert_allclose(painted[:, ::4, ::4], codes[:, 5:, :] / 3, atol=1e-4)
    assert "compose: input codes must be in [0, 3]" in out["errors"]["codes"]
    assert "compose: input mask must be one of {0, 1}" in out["errors"]["mask"]
    assert "must have shape [N, 7, 7]" in out["errors"]["shape"]


def test_inputs_are_data_examples_and_client_side_checks():
    codes = sig.Input("codes", "int32", (7, 7), minimum=0, maximum=3)
    example = codes.example(np.random.default_rng(0), 2)
    assert example.shape == (2, 7, 7) and example.dtype == np.int32 and 0 <= example.min() and example.max() <= 3
    assert codes.validate(example)[1] is None
    assert "must be in [0, 3]" in codes.validate(example + 5)[1]
    assert "must have shape ['N', 7, 7]" in codes.validate(example[:, :3])[1]
    mask = sig.mask((4, 4, 1))
    assert set(np.unique(mask.example(np.random.default_rng(0), 8))) == {0.0, 1.0}
    assert "one of {0, 1}" in mask.validate(np.full((1, 4, 4, 1), 0.5, np.float32))[1]
    assert "NaN" in sig.noise("noise", (3,)).validate(np.full((1, 3), np.nan))[1]
    spec = codes.spec(batch=1)
    assert spec.shape.as_list() == [1, 7, 7] and spec.dtype == tf.int32


@pytest.mark.slow
def test_config_round_trips_through_a_keras_file(result, tmp_path):
    """A user who wants a .keras file saves the model zoo.load gives back; Keras reloads it."""
    import keras

    rebuilt = pretrained.keras_model(os.path.dirname(os.path.dirname(result.written["saved_model"])))
    rebuilt.save(tmp_path / "gaussian_ae.keras")
    loaded = keras.saving.load_model(tmp_path / "gaussian_ae.keras")
    assert isinstance(loaded, GaussianAE) and loaded.config == result.model.config
    z = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded.decode(z).numpy(), result.model.decode(z).numpy(), atol=1e-6)
    assert json.loads(json.dumps(GaussianAEConfig().to_dict(), default=list))["latent_dim"] == 8
