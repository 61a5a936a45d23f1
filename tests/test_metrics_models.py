"""Extractors, LPIPS, CLIP score, CAS, Keras metrics and the callback, on real data."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import ZooError, metrics
from zoo.core import data
from zoo.metrics import cas, extractors
from zoo.metrics.lpips import LPIPS


@pytest.fixture(scope="module")
def mnist():
    return data.mnist5k("train"), data.mnist5k("test")


def test_shipped_classifier_is_accurate_and_small(mnist):
    _, (test_x, test_y) = mnist
    clf = extractors.zoo_classifier()
    probabilities = clf.probabilities(test_x)
    assert probabilities.shape == (1000, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    assert np.mean(probabilities.argmax(1) == test_y) >= 0.98
    assert clf.features(test_x[:7]).shape == (7, 1024)
    assert os.path.getsize(extractors.CLASSIFIER_WEIGHTS) < 1_000_000


def test_the_second_classifier_is_built_apart_and_as_accurate(mnist):
    """The independent feature space: another architecture (three levels, 256-d features), its own
    seed and training, as accurate on the test digits; its features are not the first's."""
    (train_x, _), (test_x, test_y) = mnist
    second, first = extractors.get("second_mnist_classifier"), extractors.zoo_classifier()
    assert np.mean(second.probabilities(test_x).argmax(1) == test_y) >= 0.98
    assert second.features(test_x[:7]).shape == (7, 256) and len(second.network.layers) > len(first.network.layers)
    real = metrics.frechet_distance(second.features(train_x), second.features(test_x))  # train is sorted by class
    noise = metrics.frechet_distance(second.features(np.random.default_rng(0).uniform(0, 1, test_x.shape).astype(
        np.float32)), second.features(test_x))
    assert real < noise / 10


@pytest.mark.slow
def test_real_data_is_close_and_noise_is_far(mnist):
    (train_x, train_y), (test_x, test_y) = mnist  # no standard errors: their bootstraps took a third of the time
    real = metrics.evaluate_samples(train_x[::4], test_x, extractor="zoo_mnist_classifier", bootstrap=0)
    # The floor: two disjoint samples of the same split, same sizes. At 1,000 samples and
    # k=3 even identical distributions give precision/recall near 0.89, not 1.
    floor = metrics.evaluate_samples(train_x[::4], train_x[1::4], extractor="zoo_mnist_classifier", bootstrap=0)
    noise = np.random.default_rng(0).uniform(0, 1, test_x.shape).astype(np.float32)
    fake = metrics.evaluate_samples(noise, test_x, extractor="zoo_mnist_classifier", bootstrap=0)
    assert real["feature_extractor"] == "zoo_mnist_classifier"
    for key in ("precision", "recall"):
        assert real[key] >= 0.8 and real[key] >= floor[key] - 0.06, (key, real[key], floor[key])
    assert real["fid"] < 2 * floor["fid"]
    assert fake["fid"] > 20 * real["fid"] and fake["precision"] < 0.05
    assert real["inception_score"] > 8 and abs(real["kid"]) < fake["kid"] / 20
    # Conditional metrics with the true labels: the real digits are "generated" correctly.
    cond = metrics.evaluate_samples(train_x[::4], test_x, extractor="zoo_mnist_classifier",
                                    metrics=("intra_fid", "classifier_accuracy"),
                                    fake_labels=train_y[::4], real_labels=test_y, bootstrap=0)
    assert cond["classifier_accuracy"] > 0.97 and len(cond["intra_fid_per_class"]) == 10


def test_bad_images_are_rejected(mnist):
    _, (test_x, _) = mnist
    with pytest.raises(ZooError, match=r"must be in \[0, 1\]; got values in \[0, 255\]"):
        metrics.evaluate_samples(test_x * 255, test_x)
    with pytest.raises(ZooError, match="rank 4"):
        metrics.evaluate_samples(test_x[..., 0], test_x)
    with pytest.raises(ZooError, match="NaN"):
        metrics.evaluate_samples(np.full_like(test_x[:20], np.nan), test_x)


def test_inception_v3_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ZooError, match="inception_v3_weights_tf_dim_ordering_tf_kernels.h5"):
        extractors.InceptionV3Extractor()
    # Same network, random weights: the resize/grayscale plumbing and output shapes.
    inception = extractors.InceptionV3Extractor(weights=None)
    images = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    assert inception.features(images).shape == (2, 2048)
    p = inception.probabilities(images)
    assert p.shape == (2, 1000) and np.allclose(p.sum(1), 1, atol=1e-4)


@pytest.mark.slow
def test_feature_metric_accumulates_like_the_function(mnist):
    (train_x, _), (test_x, _) = mnist
    fid = metrics.FeatureMetric("fid", test_x)
    precision = metrics.FeatureMetric("precision", test_x)
    for batch in np.array_split(train_x[:1000], 4):
        fid.update_state(batch)
        precision.update_state(batch)
    expected = metrics.evaluate_samples(train_x[:1000], test_x, metrics=("fid", "precision"))
    assert fid.result() == pytest.approx(expected["fid"], rel=1e-6)
    assert precision.result() == pytest.approx(expected["precision"], rel=1e-6)
    fid.reset_state()
    with pytest.raises(ZooError, match="at least 2 samples"):
        fid.result()


def test_callback_logs_metrics_into_history(mnist):
    from zoo.models.vae import VAE, VAEConfig
    from zoo.training.trainer import Trainer

    _, (test_x, test_y) = mnist
    keras.utils.set_random_seed(0)
    model = VAE(VAEConfig(latent_dim=4, filters=(4, 8), hidden=16))
    model.configure_optimizers(1e-3)
    ds = data.pipeline(data.load("mnist5k", "train"), 64, drop_remainder=True, repeat=True)
    from zoo.evaluation import measure

    callback = metrics.GenerativeMetricsCallback(measure.sampler(model), test_x[:300], test_y[:300], every=2)
    history = Trainer(model, tf.distribute.get_strategy()).fit(
        ds, epochs=2, steps_per_epoch=3, callbacks=[callback, keras.callbacks.CSVLogger(os.devnull)], verbose=0)
    assert set(history.history) >= {"gen_fid", "gen_kid", "gen_precision", "gen_recall", "gen_inception_score"}
    assert len(history.history["gen_fid"]) == 1 and history.history["gen_fid"][0] > 0


def lpips_reference(maps_a, maps_b, weights):
    total = 0.0
    for fa, fb, w in zip(maps_a, maps_b, weights):
        fa = fa / (np.sqrt((fa**2).sum(-1, keepdims=True)) + 1e-10)
        fb = fb / (np.sqrt((fb**2).sum(-1, keepdims=True)) + 1e-10)
        total = total + ((fa - fb) ** 2 * w).sum(-1).mean(axis=(1, 2))
    return total


def test_lpips_math_with_a_small_backbone(rng):
    inputs = keras.Input((16, 16, 1))
    c1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    c2 = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(c1)
    backbone = keras.Model(inputs, [c1, c2])
    weights = [rng.uniform(0, 1, 4), rng.uniform(0, 1, 6)]
    lp = LPIPS(lambda x: backbone(x), weights)
    a = rng.uniform(0, 1, (5, 16, 16, 1)).astype(np.float32)
    b = rng.uniform(0, 1, (5, 16, 16, 1)).astype(np.float32)
    ref = lpips_reference([m.numpy().astype(np.float64) for m in backbone(a)],
                          [m.numpy().astype(np.float64) for m in backbone(b)], weights)
    np.testing.assert_allclose(lp(a, b), ref, rtol=1e-4)
    np.testing.assert_allclose(lp(a, a), 0, atol=1e-6)
    np.testing.assert_allclose(lp(a, b), lp(b, a), rtol=1e-6)
    with pytest.raises(ZooError, match="non-negative"):
        LPIPS(lambda x: backbone(x), [-np.ones(4), np.ones(6)])


def test_lpips_offline_variant_and_missing_standard_weights(mnist, tmp_path):
    _, (test_x, _) = mnist
    assert metrics.lpips_distance(test_x[:10], test_x[:10]) == pytest.approx(0, abs=1e-6)
    same_digit = metrics.lpips_distance(test_x[0:10], test_x[10:20])  # both zeros
    other_digit = metrics.lpips_distance(test_x[0:10], test_x[110:120])  # zeros vs ones
    assert 0 < same_digit < other_digit
    assert metrics.lpips_diversity(test_x[:100], pairs=50) > 0
    with pytest.raises(ZooError, match="LPIPS linear weights not found"):
        LPIPS.vgg16(str(tmp_path / "lpips_vgg.npz"), vgg_weights=None)
    np.savez(tmp_path / "partial.npz", lin0=np.ones(64))
    with pytest.raises(ZooError, match="lacks"):
        LPIPS.vgg16(str(tmp_path / "partial.npz"), vgg_weights=None)
    with pytest.raises(ZooError, match="VGG16 ImageNet weights not found"):
        LPIPS.vgg16(str(tmp_path / "partial.npz"), vgg_weights=str(tmp_path / "vgg.h5"))


def test_lpips_vgg16_standard_variant_runs_with_given_weights(tmp_path):
    weights = {f"lin{i}": np.full(n, 0.1) for i, n in enumerate((64, 128, 256, 512, 512))}
    np.savez(tmp_path / "lin.npz", **weights)
    lp = LPIPS.vgg16(str(tmp_path / "lin.npz"), vgg_weights=None)  # random VGG: plumbing only
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    assert lp(x, x) == pytest.approx([0, 0], abs=1e-6) and np.all(lp(x, x[::-1]) > 0)


def test_clip_score_with_small_encoders(rng):
    projection = rng.normal(size=(8 * 8, 16))
    vocabulary = {w: rng.normal(size=16) for w in "a zero one digit of".split()}
    image_encoder = lambda x: x.reshape(len(x), -1) @ projection
    text_encoder = lambda texts: np.stack([sum(vocabulary[w] for w in t.split()) for t in texts])
    scorer = metrics.CLIPScorer(image_encoder, text_encoder)
    images = rng.uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    captions = ["a zero", "digit one", "a digit of one"]
    i, t = image_encoder(images), text_encoder(captions)
    cos = (i * t).sum(1) / np.linalg.norm(i, axis=1) / np.linalg.norm(t, axis=1)
    assert scorer(images, captions) == pytest.approx(100 * np.maximum(cos, 0).mean(), rel=1e-9)
    with pytest.raises(ZooError, match="3 images but 2 captions"):
        scorer(images, captions[:2])
    with pytest.raises(ZooError, match="keras-hub|CLIP preset"):
        metrics.CLIPScorer.from_keras_hub("clip_vit_base_patch32")


def test_the_cards_cas_comes_with_its_binomial_standard_error(mnist, tmp_path, monkeypatch):
    """A recipe's CAS: the figure, its standard error over the test images (what the card
    says it is), and the real-data reference at the same sample count."""
    import types

    from zoo.evaluation import measure, settings

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    (train_x, train_y), (test_x, test_y) = mnist
    order = np.random.default_rng(1).permutation(len(train_x))[:1000]
    splits = data.Splits((test_x[:200], test_y[:200]), (train_x[order], train_y[order]))
    model = types.SimpleNamespace(config=types.SimpleNamespace(num_classes=10))
    # three epochs on 500 "generated" digits: seconds
    out = measure._cas(model, splits, settings.EvaluationSettings(), train_x[order[:500]], train_y[order[:500]], 3)
    p = out.metrics["cas"]
    assert 0.5 < p < 1 and out.metrics["cas_se"] == pytest.approx(np.sqrt(p * (1 - p) / 200))
    assert out.info["cas"] == {"samples": 500, "epochs": 3, "standard_error": "binomial over the 200 test images"}
    assert 0.5 < out.reference["cas"] < 1


@pytest.mark.slow
def test_cas_trains_on_generated_pairs_and_tests_on_real(mnist):
    (train_x, train_y), (test_x, test_y) = mnist
    order = np.random.default_rng(1).permutation(len(train_x))  # the split is sorted by class
    train_x, train_y = train_x[order], train_y[order]
    # "Generated" = real digits with correct labels: CAS should match the real-data score,
    # and shuffled labels must destroy it.
    # 500 images a side: 0.911 and 0.889 here (1,000 gave 0.945 and 0.931 in twice the time)
    good = metrics.classification_accuracy_score(train_x[:500], train_y[:500], train_x[1000:1500],
                                                 train_y[1000:1500], test_x, test_y, 10, epochs=8)
    shuffled = np.random.default_rng(0).permutation(train_y[:500])
    # the CAS half alone (its real-data twin would repeat the one above)
    bad = cas.train_and_test(train_x[:500], shuffled, test_x, test_y, 10, epochs=8)
    assert good["cas"] > 0.8 and good["real_data_accuracy"] > 0.8
    assert bad < 0.3
    with pytest.raises(ZooError, match=r"generated labels must be in \[0, 10\)"):
        metrics.classification_accuracy_score(train_x[:10], np.full(10, 11), train_x[:10], train_y[:10],
                                              test_x, test_y, 10)
