import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core import data
from zoo.models.vae import ANOMALY_BETA, VAE, VAEConfig, bernoulli_log_likelihood, gaussian_kl, slerp
from zoo.training.trainer import Trainer

SMALL = dict(latent_dim=4, filters=(8, 16), hidden=32)


def test_likelihood_and_kl_match_float64_references(rng):
    x = rng.uniform(0, 1, (3, 4, 4, 1))
    logits = rng.normal(0, 3, (3, 4, 4, 1))
    p = 1 / (1 + np.exp(-logits))
    reference = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=(1, 2, 3))
    got = bernoulli_log_likelihood(tf.constant(x, tf.float32), tf.constant(logits, tf.float32)).numpy()
    np.testing.assert_allclose(got, reference, rtol=1e-5)

    mean, log_var = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    var = np.exp(log_var)
    # KL(N(m, v) || N(0, 1)) = 0.5 (v + m² − 1 − ln v), per dimension, summed.
    reference = 0.5 * np.sum(var + mean**2 - 1 - np.log(var), axis=1)
    got = gaussian_kl(tf.constant(mean, tf.float32), tf.constant(log_var, tf.float32)).numpy()
    np.testing.assert_allclose(got, reference, rtol=1e-5)


def test_slerp_endpoints_and_norm(rng):
    a, b = rng.normal(size=(2, 8)), rng.normal(size=(2, 8))
    path = slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[:, 0], a, atol=1e-12)
    np.testing.assert_allclose(path[:, -1], b, atol=1e-12)
    # For unit vectors the path stays on the sphere.
    an, bn = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(slerp(an, bn, np.linspace(0, 1, 7)), axis=-1), 1, atol=1e-12)


def test_training_reduces_the_negative_elbo_and_iwae_is_tighter():
    keras.utils.set_random_seed(0)
    images, labels = data.mnist5k("train")
    model = VAE(VAEConfig(**SMALL))
    model.configure_optimizers(3e-3)
    trainer = Trainer(model, tf.distribute.get_strategy())
    ds = data.pipeline(data.load("mnist5k", "train"), 64, shuffle=True, drop_remainder=True, repeat=True)
    history = trainer.fit(ds, epochs=3, steps_per_epoch=15, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < loss[0] - 20, loss
    test_x, _ = data.mnist5k("test")
    chunk = tf.constant(test_x[:100])
    # log p(x) ≥ IWAE_k ≥ ELBO in expectation; with k=20 the gap is clearly positive.
    assert float(tf.reduce_mean(model.log_likelihood_iw(chunk, k=20))) > float(
        tf.reduce_mean(model.elbo_per_image(chunk, samples=20)))


def test_signature_functions_shapes_and_determinism():
    model = VAE(VAEConfig(**SMALL))
    sigs = {s.name: s for s in model.signatures()}
    assert list(sigs)[0] == "decode" and [s.name for s in model.signatures() if s.tflite] == ["decode", "anomaly_score", "generate"]
    out = sigs["sample"].fn(num=tf.constant(5), seed=tf.constant(3))["images"].numpy()
    again = sigs["sample"].fn(num=tf.constant(5), seed=tf.constant(3))["images"].numpy()
    other = sigs["sample"].fn(num=tf.constant(5), seed=tf.constant(4))["images"].numpy()
    assert out.shape == (5, 28, 28, 1) and 0 <= out.min() and out.max() <= 1
    np.testing.assert_array_equal(out, again)
    assert not np.allclose(out, other)
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)), tf.float32)
    enc = sigs["encode"].fn(images=images)
    assert enc["mean"].shape == (2, 4) and enc["log_var"].shape == (2, 4)
    np.testing.assert_array_equal(sigs["elbo"].fn(images=images)["elbo"], sigs["elbo"].fn(images=images)["elbo"])


def test_config_round_trip_and_validation():
    model = VAE(VAEConfig(**SMALL))
    clone = VAE.from_config(model.get_config())
    assert clone.config == model.config
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    with pytest.raises(Exception, match="latent_dim must be a positive integer, got 0"):
        VAEConfig(latent_dim=0)
    with pytest.raises(Exception, match="beta must be a number >= 0, got -1.0"):
        VAEConfig(beta=-1)
    # β: 1 (the ELBO) unless the VAE is trained to detect a class it never sees; a given β stays.
    assert VAEConfig().beta == 1.0 and VAEConfig(anomaly_class=3).beta == ANOMALY_BETA == 0.5
    assert VAEConfig(anomaly_class=3, beta=1).beta == 1.0 and VAEConfig(beta=0).beta == 0.0
    assert VAEConfig.from_dict(VAEConfig(anomaly_class=3).to_dict()).beta == 0.5
    with pytest.raises(Exception, match=r"images of 30×30 cannot be used: the conv encoder halves them 2 times, "
                                        r"so height and width must be multiples of 4 \(e.g. 24×24, 28×28, 32×32"):
        VAE(VAEConfig(image_shape=(30, 30, 1), **SMALL))
