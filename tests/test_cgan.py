
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import FAST_EXPORT, mirrored, run_without_zoo

from zoo import ZooError
from zoo.blocks import nets
from zoo.core import data
from zoo.export import exporter
from zoo.models.cgan import (
    CGAN,
    CGANConfig,
    DiscriminatorWatch,
    discriminator_loss,
    generator_loss,
)
from zoo.training.trainer import Trainer

SMALL = dict(noise_dim=8, g_filters=(16, 8, 8), d_filters=(8, 16, 16), ema_decay=0.9)


def small_batches(n=64, batch=16):
    x, y = data.mnist5k("train")
    idx = np.random.default_rng(0).permutation(len(y))[:n]
    return tf.data.Dataset.from_tensor_slices((x[idx], y[idx])).repeat().batch(batch, drop_remainder=True)


def test_losses_match_their_definitions():
    real, fake = tf.constant([2.0, 0.5, -1.0]), tf.constant([-2.0, 0.3, 1.5])
    np.testing.assert_allclose(discriminator_loss("hinge", real, fake), [0 + 0, 0.5 + 1.3, 2.0 + 2.5], rtol=1e-6)
    np.testing.assert_allclose(generator_loss("hinge", fake), [2.0, -0.3, -1.5])
    sp = lambda t: np.log1p(np.exp(t))
    np.testing.assert_allclose(discriminator_loss("nonsaturating", real, fake),
                               sp(-real.numpy()) + sp(fake.numpy()), rtol=1e-6)
    np.testing.assert_allclose(generator_loss("nonsaturating", fake), sp(-fake.numpy()), rtol=1e-6)


def test_spectral_norm_bounds_the_largest_singular_value():
    layer = nets.SNDense(6)
    x = tf.ones([2, 5])
    layer(x)
    for _ in range(30):  # power iterations run in training calls
        layer(x, training=True)
    sigma = np.linalg.svd(layer.normalized_kernel(False).numpy(), compute_uv=False)[0]
    assert sigma == pytest.approx(1.0, abs=1e-3)
    assert np.linalg.svd(layer.kernel.numpy(), compute_uv=False)[0] != pytest.approx(1.0, abs=1e-2)


def test_conditional_group_norm_is_group_norm_plus_class_affine(rng):
    layer = nets.ConditionalGroupNorm(groups=2)
    x = tf.constant(rng.normal(size=(3, 4, 4, 4)), tf.float32)
    y = tf.one_hot([0, 1, 2], 3)
    plain = keras.layers.GroupNormalization(2, center=False, scale=False)(x)
    np.testing.assert_allclose(layer([x, y]), plain, atol=1e-5)  # zero-initialised affine
    layer.gamma.kernel.assign(np.full((3, 4), 1.0))
    layer.beta.kernel.assign(np.arange(12, dtype=np.float32).reshape(3, 4))
    expected = plain.numpy() * 2 + np.arange(12).reshape(3, 4)[:, None, None, :]
    np.testing.assert_allclose(layer([x, y]), expected, atol=1e-5)


def test_training_moves_both_networks_and_ema_differs():
    keras.utils.set_random_seed(0)
    model = CGAN(CGANConfig(**SMALL))
    model.configure_optimizers(2e-4)
    trainer = Trainer(model, tf.distribute.get_strategy())
    trainer.build()
    g0 = [w.numpy().copy() for w in model.generator.trainable_variables]
    d0 = [w.numpy().copy() for w in model.discriminator.trainable_variables]
    history = trainer.fit(small_batches(), epochs=2, steps_per_epoch=4, verbose=0)
    assert all(np.isfinite(history.history[k]).all() for k in ("d_loss", "g_loss"))
    assert history.history["d_loss"][0] != history.history["d_loss"][1]
    assert max(np.abs(a - b.numpy()).max() for a, b in zip(g0, model.generator.trainable_variables)) > 1e-5
    assert max(np.abs(a - b.numpy()).max() for a, b in zip(d0, model.discriminator.trainable_variables)) > 1e-5
    raw, ema = model.generator.weights, model.generator_ema.weights  # the average moves with every step
    diffs = [np.abs(r.numpy() - e.numpy()).max() for r, e in zip(raw, ema)]
    assert max(diffs) > 1e-6  # the average lags the raw weights
    # ... and the average lies between the start and the raw weights
    moved = [np.abs(g - r.numpy()).max() for g, r in zip(g0, raw)]
    assert max(diffs) < max(moved)


class SGDCGAN(CGAN):
    """SGD, not Adam: Adam's first step is ≈ lr·sign(g), and biases in front of a GroupNorm
    have a true gradient of 0, so float-order noise would flip their sign."""

    def optimizers_for(self, learning_rate):
        return [(keras.optimizers.SGD(0.1), self.generator), (keras.optimizers.SGD(0.1), self.discriminator)]


def one_step(strategy, weights, ds):
    with strategy.scope():
        model = SGDCGAN(CGANConfig(**SMALL))
        model.configure_optimizers(0.1)
        model.set_weights(weights)
        trainer = Trainer(model, strategy)
        trainer.build()
    trainer.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    return [v.numpy() for v in model.generator.trainable_variables + model.discriminator.trainable_variables]


@pytest.mark.slow
def test_two_replicas_update_both_networks_like_one_device():
    # The noise is drawn for the whole global batch and sliced per replica, so the real
    # model (not a noiseless stand-in) must give the same update on 1 and 2 replicas.
    weights = SGDCGAN(CGANConfig(**SMALL)).get_weights()
    single = one_step(tf.distribute.get_strategy(), weights, small_batches(16, 16))
    double = one_step(mirrored(), weights, small_batches(16, 16))
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_discriminator_watch_warns_after_patience(capsys):
    watch = DiscriminatorWatch(patience=2)
    for epoch in range(3):
        watch.on_epoch_end(epoch, {"d_real_accuracy": 1.0, "d_fake_accuracy": 0.995})
    assert "discriminator has been right" in capsys.readouterr().out
    watch.on_epoch_end(3, {"d_real_accuracy": 0.7, "d_fake_accuracy": 0.8})
    assert watch.streak == 0


SERVE = """
import json, numpy as np, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
m = tf.saved_model.load(SAVED)
noise = np.random.default_rng(0).normal(size=(10, 8)).astype("float32")
labels = np.arange(10, dtype="int32")
gen = m.signatures["generate"](noise=tf.constant(noise), labels=tf.constant(labels))["images"].numpy()
s1 = m.signatures["sample"](labels=tf.constant(labels), seed=tf.constant(5))["images"].numpy()
s2 = m.signatures["sample"](labels=tf.constant(labels), seed=tf.constant(5))["images"].numpy()
s3 = m.signatures["sample"](labels=tf.constant(labels), seed=tf.constant(6))["images"].numpy()
lite = Interpreter(model_path=LITE).get_signature_runner("generate")(noise=noise, labels=labels)["images"]
errors = {}
for name, call in {
    "label": lambda: m.signatures["generate"](noise=tf.constant(noise[:1]), labels=tf.constant([10])),
    "negative": lambda: m.signatures["sample"](labels=tf.constant([-1]), seed=tf.constant(0)),
    "width": lambda: m.signatures["generate"](noise=tf.zeros([1, 5]), labels=tf.constant([1])),
}.items():
    try:
        call(); errors[name] = None
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
print("RESULT" + json.dumps({"shape": list(gen.shape), "range": [float(gen.min()), float(gen.max())],
    "same": bool(np.array_equal(s1, s2)), "differ": bool(not np.allclose(s1, s3)),
    "lite": float(np.abs(lite - gen).max()), "errors": errors, "gen": gen[:2].tolist()}))
"""


@pytest.mark.slow
def test_export_uses_ema_weights_and_serves_without_zoo(tmp_path):
    keras.utils.set_random_seed(0)
    model = CGAN(CGANConfig(**SMALL))
    model.configure_optimizers(1e-3)
    Trainer(model, tf.distribute.get_strategy()).fit(small_batches(), epochs=1, steps_per_epoch=3, verbose=0)
    written, card = exporter.export(model, str(tmp_path), card={"metrics": {}}, **FAST_EXPORT)
    out = run_without_zoo(SERVE, SAVED=written["saved_model"], LITE=written["cgan.tflite"])
    assert out["shape"] == [10, 28, 28, 1] and 0 <= out["range"][0] and out["range"][1] <= 1
    assert out["same"] and out["differ"] and out["lite"] <= 1e-4
    assert card["tflite"]["cgan.tflite"]["batch1_latency_ms"]["generate"] > 0
    assert "must be in [0, 9]" in out["errors"]["label"] and "must be in [0, 9]" in out["errors"]["negative"]
    assert "must have shape [N, 8]" in out["errors"]["width"]
    # The export is the EMA generator, not the raw one.
    noise = tf.constant(np.random.default_rng(0).normal(size=(2, 8)), tf.float32)
    y = tf.one_hot([0, 1], 10)
    ema = (model.generator_ema([noise, y]).numpy() + 1) / 2
    raw = (model.generator([noise, y]).numpy() + 1) / 2
    np.testing.assert_allclose(out["gen"], ema, atol=1e-5)
    assert np.abs(ema - raw).max() > 1e-4


def test_bad_configs():
    with pytest.raises(ZooError, match="loss must be one of hinge, nonsaturating, got 'wasserstein'"):
        CGANConfig(loss="wasserstein")
    with pytest.raises(ZooError, match=r"ema_decay must be in \[0, 1\), got 1.0"):
        CGANConfig(ema_decay=1.0)
    with pytest.raises(ZooError, match=r"g_filters must be a non-empty list whose every value be a positive integer"):
        CGANConfig(g_filters=(16, 0, 8))
