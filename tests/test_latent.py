"""zoo/latent.py: the mixtures over codes (density against SciPy, sampling statistics, the
fits), the choice of an anomaly score on proxies, and the choice of a sampler."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from zoo import ZooError
from zoo.blocks import latent


def random_mixture(rng, k, d):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 3, (k, d))
    factors = rng.normal(0, 1, (k, d, d))
    covariances = factors @ factors.transpose(0, 2, 1) + 0.5 * np.eye(d)
    return weights, means, covariances


def test_log_density_matches_scipy_and_unused_components_count_for_nothing(rng):
    weights, means, covariances = random_mixture(rng, 3, 4)
    mixture = latent.LatentMixture(4, max_components=5)  # two unused components
    mixture.set_parameters(weights, means, covariances)
    codes = rng.normal(0, 3, (50, 4))
    reference = logsumexp([np.log(w) + multivariate_normal(m, c).logpdf(codes)
                           for w, m, c in zip(weights, means, covariances)], axis=0)
    np.testing.assert_allclose(mixture.log_density(tf.constant(codes, tf.float32)).numpy(), reference,
                               rtol=1e-4, atol=1e-3)
    assert float(mixture.components.numpy()) == 3


def test_unfitted_mixture_is_the_standard_normal(rng):
    codes = rng.normal(size=(20, 3))
    np.testing.assert_allclose(latent.LatentMixture(3).log_density(tf.constant(codes, tf.float32)).numpy(),
                               multivariate_normal(np.zeros(3), np.eye(3)).logpdf(codes), rtol=1e-5, atol=1e-5)


def test_sampling_picks_components_by_weight_and_has_their_moments(rng):
    weights = np.array([0.2, 0.5, 0.3])
    means = np.array([[-20.0, 0.0], [0.0, 20.0], [20.0, 0.0]])
    covariances = np.array([[[1.0, 0.5], [0.5, 2.0]], [[0.3, 0.0], [0.0, 0.3]], [[4.0, -1.0], [-1.0, 1.0]]])
    mixture = latent.LatentMixture(2, max_components=4)
    mixture.set_parameters(weights, means, covariances)
    n = 40_000
    choice = tf.constant(rng.uniform(size=n), tf.float32)
    codes = mixture.sample(choice, tf.constant(rng.normal(size=(n, 2)), tf.float32)).numpy()
    component = np.argmin(((codes[:, None] - means[None]) ** 2).sum(-1), axis=1)  # far apart: unambiguous
    np.testing.assert_allclose(np.bincount(component) / n, weights, atol=0.01)
    for c in range(3):
        own = codes[component == c]
        np.testing.assert_allclose(own.mean(0), means[c], atol=0.05)
        np.testing.assert_allclose(np.cov(own.T), covariances[c], atol=0.1)
    edge = mixture.sample(tf.constant([0.0, 1.0]), tf.zeros([2, 2])).numpy()  # u = 1 stays in range
    np.testing.assert_allclose(edge, means[[0, 2]], atol=1e-5)


def clusters(rng, centres, per_cluster, spread=0.3):
    codes = np.concatenate([c + spread * rng.normal(size=(per_cluster, len(c))) for c in centres])
    return codes, np.repeat(np.arange(len(centres)), per_cluster)


def test_fit_chooses_enough_components_on_held_out_codes(rng):
    centres = rng.normal(0, 10, (4, 2))
    codes, _ = clusters(rng, centres, 200)
    held_out, _ = clusters(rng, centres, 50)
    mixture = latent.LatentMixture(2)
    fitted = mixture.fit(codes, held_out)
    assert fitted["components"] >= 4 and set(fitted["held_out_log_likelihood"]) == {1, 2, 4, 8, 12, 20}
    assert fitted["held_out_log_likelihood"][4] > fitted["held_out_log_likelihood"][1] + 1


def test_fit_by_class_weights_classes_by_their_share_and_scores_an_unseen_class_lower(rng):
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    codes, labels = clusters(rng, centres, 300)
    keep = labels != 2
    codes, labels = codes[keep], labels[keep]
    codes, labels = np.concatenate([codes, codes[labels == 0]]), np.concatenate([labels, labels[labels == 0]])
    density = latent.LatentMixture(2, max_components=6)
    fitted, _ = density.fit_by_class(codes, labels, per_class=2)
    assert fitted["components_per_class"] == {0: 2, 1: 2} and float(density.components.numpy()) == 4
    weights = np.diff(np.r_[0.0, density.cumulative.numpy()[:4]])
    np.testing.assert_allclose([weights[:2].sum(), weights[2:].sum()], [2 / 3, 1 / 3], atol=1e-5)  # class 0 twice
    seen, _ = clusters(rng, centres[:2], 100)
    unseen, _ = clusters(rng, centres[2:], 100)
    surprise = lambda x: -density.log_density(tf.constant(x, tf.float32)).numpy()  # noqa: E731
    assert np.min(surprise(unseen)) > np.max(surprise(seen))


def test_fit_by_class_chooses_the_components_per_class_on_held_out_codes(rng):
    """Classes made of two clusters each: the held-out codes' log-likelihood prefers two
    components per class to one; several counts without held-out codes is one clear error."""
    centres = np.array([[0.0, 0.0], [0.0, 8.0], [8.0, 0.0], [8.0, 8.0]])
    codes, clusters_of = clusters(rng, centres, 200)
    held_out, _ = clusters(rng, centres, 50)
    labels = clusters_of // 2  # class 0: the first two clusters, class 1: the last two
    density = latent.LatentMixture(2, max_components=8)
    fitted, _ = density.fit_by_class(codes, labels, (1, 2, 4), held_out=held_out)
    scores = fitted["held_out_log_likelihood"]
    assert set(scores) == {1, 2, 4} and scores[2] > scores[1] + 1
    assert fitted["per_class"] in (2, 4) and fitted["per_class"] == max(scores, key=scores.get)
    assert fitted["components_per_class"] == {0: fitted["per_class"], 1: fitted["per_class"]}
    np.testing.assert_allclose(density.log_density(tf.constant(held_out, tf.float32)).numpy().mean(),
                               scores[fitted["per_class"]], rtol=1e-5)
    with pytest.raises(ZooError, match="choosing the components per class needs held-out codes"):
        density.fit_by_class(codes, labels, (1, 2))


def test_fit_by_class_copes_with_a_class_of_one_code(rng):
    codes, labels = clusters(rng, np.array([[0.0, 0.0, 0.0]]), 100)
    codes, labels = np.concatenate([codes, [[5.0, 5.0, 5.0]]]), np.r_[labels, 1]
    density = latent.LatentMixture(3, max_components=4)
    assert density.fit_by_class(codes, labels, per_class=2)[0]["components_per_class"] == {0: 2, 1: 1}
    assert np.all(np.isfinite(density.log_density(tf.constant(codes, tf.float32)).numpy()))


def test_an_unseen_class_is_scored_by_the_mixture_of_the_other_classes(rng):
    """surprise_without_own_class: each code under the other classes' components, their
    shares renormalised — the same as a density fitted with the code's class left out."""
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    codes, labels = clusters(rng, centres, 200)
    density = latent.LatentMixture(2, max_components=6)
    _, components = density.fit_by_class(codes, labels, per_class=2)
    probe, probe_labels = clusters(rng, centres, 20)
    unseen = latent.surprise_without_own_class(components, probe, probe_labels)
    seen = -density.log_density(tf.constant(probe, tf.float32)).numpy()
    assert np.all(unseen > seen + 5)  # a code far from every other class is surprising
    for c in range(3):
        without = latent.LatentMixture(2, max_components=6)
        without.set_parameters(*latent.mixture_of_classes(components, leave_out=c))
        own = probe_labels == c
        np.testing.assert_allclose(unseen[own], -without.log_density(tf.constant(probe[own], tf.float32)).numpy(),
                                   rtol=1e-4)
        weights = latent.mixture_of_classes(components, leave_out=c)[0]
        assert len(weights) == 4 and abs(weights.sum() - 1) < 1e-12


def test_few_codes_cap_the_components_and_too_many_components_is_one_clear_error(rng):
    """No component count is tried that the codes cannot support (two codes per dimension
    per component); parameters for more components than the layer holds are refused."""
    fitted = latent.LatentMixture(4).fit(rng.normal(size=(20, 4)), rng.normal(size=(5, 4)))
    assert set(fitted["held_out_log_likelihood"]) == {1, 2} and fitted["components"] in (1, 2)
    with pytest.raises(ZooError, match="a mixture of 3 components does not fit in 2"):
        latent.LatentMixture(2, max_components=2).set_parameters(*random_mixture(rng, 3, 2))


def test_the_score_with_the_best_worst_proxy_wins(rng):
    """A part that separates every kind of proxy a little beats one that separates one kind
    perfectly and another not at all; the anomaly class never enters."""
    normal = {"steady": rng.normal(0, 1, 500), "spiky": rng.normal(0, 1, 500)}
    proxies = {"a": {"steady": rng.normal(1.5, 1, 500), "spiky": rng.normal(10, 1, 500)},
               "b": {"steady": rng.normal(1.5, 1, 500), "spiky": rng.normal(0, 1, 500)}}
    name, weights, centre, scale, aucs = latent.choose_combination(normal, proxies)
    assert name == "steady" and weights == {"steady": 1.0}
    assert aucs["spiky"]["a"] > 0.99 and abs(aucs["spiky"]["b"] - 0.5) < 0.06
    assert abs(centre["steady"]) < 0.2 and abs(scale["steady"] - 1) < 0.1


def test_a_part_that_hardly_varies_is_never_chosen(rng):
    """A part whose spread is under 0.1% of its size (an untrained decoder's likelihood) is left
    out, however well it separates the proxies: float32 cannot keep its signal."""
    normal = {"latent": rng.normal(0, 1, 500), "likelihood": 784.0 + 0.1 * rng.normal(0, 1, 500)}
    proxies = {"a": {"latent": rng.normal(1, 1, 500), "likelihood": 784.5 + 0.1 * rng.normal(0, 1, 500)}}
    name, weights, centre, scale, aucs = latent.choose_combination(normal, proxies)
    assert name == "latent" and weights == {"latent": 1.0} and set(aucs) == {"latent"} and "likelihood" in scale
    normal["likelihood"] = 784.0 + 10 * rng.normal(0, 1, 500)  # varying: a candidate again
    proxies["a"]["likelihood"] = 834.0 + 10 * rng.normal(0, 1, 500)
    assert set(latent.choose_combination(normal, proxies)[4]) == {"latent", "likelihood", "latent+likelihood"}
    three = latent.candidate_combinations(["latent", "likelihood", "reconstruction"])
    assert three["all"] == {"latent": 1.0, "likelihood": 1.0, "reconstruction": 1.0} and len(three) == 6


def numpy_image_statistics(images):
    """Ink, edges (horizontal and vertical absolute differences) and pixels over 0.1, [N, 3]."""
    x = images[..., 0].astype(np.float64)
    edges = np.abs(np.diff(x, axis=1)).sum((1, 2)) + np.abs(np.diff(x, axis=2)).sum((1, 2))
    return np.stack([x.sum((1, 2)), edges, (x > 0.1).sum((1, 2))], 1)


def test_the_reconstruction_excess_is_the_error_beyond_its_fit_on_image_statistics(rng):
    """Coefficients against NumPy least squares; the excess is the error minus the fit, so it
    has no linear trend left in ink, edges or lit pixels; unfitted it is the error itself."""
    images = rng.uniform(0, 1, (300, 28, 28, 1)).astype(np.float32) * (rng.uniform(size=(300, 1, 1, 1)) < 0.5)
    images *= rng.uniform(0.2, 1, (300, 1, 1, 1)).astype(np.float32)  # varying ink
    stats = numpy_image_statistics(images)
    errors = 1e-4 * stats[:, 0] + rng.normal(0, 0.005, 300) + 0.02  # grows with the ink, as MSE does
    design = np.c_[stats, np.ones(300)]
    reference, *_ = np.linalg.lstsq(design, errors, rcond=None)
    combination = latent.ScoreCombination(["reconstruction_excess", "latent"])
    plain = combination.reconstruction_excess(tf.constant(errors, tf.float32), tf.constant(images)).numpy()
    np.testing.assert_allclose(plain, errors, rtol=1e-6)
    coef, r2 = latent.fit_on_image_statistics(images, errors)
    np.testing.assert_allclose(design @ coef, design @ reference, rtol=1e-4, atol=1e-6)
    assert 0.3 < r2 < 1
    combination.reconstruction_coef.assign(coef)
    excess = combination.reconstruction_excess(tf.constant(errors, tf.float32), tf.constant(images)).numpy()
    np.testing.assert_allclose(excess, errors - design @ reference, atol=2e-5)
    assert abs(excess.mean()) < 1e-5 and all(abs(np.corrcoef(excess, stats[:, i])[0, 1]) < 1e-2 for i in range(3))


def test_the_mixture_sampler_fits_then_draws_in_the_graph_and_widens_with_its_spread(rng):
    """pythae's GaussianMixtureSampler shape (fit, then draw) with its randomness as inputs: the
    draws have the codes' moments, are the same for a seed, and `spread` scales each component."""
    codes = np.concatenate([rng.normal(-3, 0.5, (600, 2)), rng.normal(3, 0.5, (600, 2))])
    sampler = latent.MixtureSampler(2, max_components=4)
    fitted = sampler.fit(codes[::2], codes[1::2])
    assert fitted["components"] >= 2
    draws = sampler.draw(tf.constant(4000), tf.constant(1)).numpy()
    assert abs(draws.mean()) < 0.2 and 2.8 < np.abs(draws).mean() < 3.2
    np.testing.assert_array_equal(draws, sampler.draw(tf.constant(4000), tf.constant(1)).numpy())
    left = draws[draws[:, 0] < 0]
    sampler.spread.assign(2.0)
    wide = sampler.draw(tf.constant(4000), tf.constant(1)).numpy()
    assert np.std(wide[wide[:, 0] < 0][:, 1]) == pytest.approx(2 * np.std(left[:, 1]), rel=0.1)
