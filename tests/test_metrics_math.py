"""Each metric against an independent float64 NumPy/SciPy reference and known cases."""

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from zoo import ZooError
from zoo.metrics import core as M
from zoo.metrics import resampling


def fid_reference(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def test_fid_matches_sqrtm_formula(rng):
    a = rng.normal(size=(400, 32))
    b = rng.normal(0.3, 1.2, size=(300, 32)) @ rng.normal(size=(32, 32)) * 0.3
    assert M.frechet_distance(a, b) == pytest.approx(fid_reference(a, b), rel=1e-6)


def test_fid_rank_deficient_covariances(rng):
    # Fewer samples than dimensions: both covariances are singular.
    a, b = rng.normal(size=(20, 64)), rng.normal(0.5, 1, size=(25, 64))
    got = M.frechet_distance(a, b)
    assert np.isfinite(got) and got == pytest.approx(fid_reference(a, b), rel=1e-5)


def test_resampled_fid_matches_sqrtm_formula_on_bootstrap_draws_and_subsets(rng):
    # Fewer samples than dimensions, as a bootstrap over 1,000 digits in 1,024 features.
    a = rng.normal(size=(40, 48))
    b = rng.normal(0.4, 1.3, size=(30, 48)) @ rng.normal(size=(48, 48)) * 0.3 + 50  # far from 0: centring matters
    resampled = resampling.ResampledFrechet(a, b)
    draw = rng.integers(0, 30, 30)  # with repeats
    assert len(np.unique(draw)) < 30
    for index in (draw, rng.choice(30, 12, replace=False), np.arange(30)):
        assert resampled(index) == pytest.approx(fid_reference(a, b[index]), rel=1e-6)
    with pytest.raises(ZooError, match="resample of 1 rows has no covariance"):
        resampled(np.array([3]))


def test_fid_known_cases(rng):
    a = rng.normal(size=(500, 16))
    assert M.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    # Closed form for Gaussians: ‖μ1−μ2‖² + tr(Σ1 + Σ2 − 2(Σ1Σ2)^½); diagonal Σ give Σ(√s1 − √s2)².
    m1, m2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert M.frechet_distance_from_stats(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-12)


def test_streaming_statistics_equal_batch_statistics(rng):
    x = rng.normal(size=(1000, 8)) * 5 + 100
    stats = M.GaussianStats()
    for part in np.array_split(x, 7):
        stats.update(part.astype(np.float32))
    mean, cov = stats.mean_cov()
    np.testing.assert_allclose(mean, x.astype(np.float32).astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float32).astype(np.float64), rowvar=False), rtol=1e-8)


def is_reference(p, splits):
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0)
        kl = [sum(pi * np.log(pi / qi) for pi, qi in zip(row, py) if pi > 0) for row in part]
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores), np.std(scores)


def test_inception_score(rng):
    logits = rng.normal(size=(200, 10)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, std = M.inception_score(p, splits=10)
    ref = is_reference(p, 10)
    assert mean == pytest.approx(ref[0], rel=1e-10) and std == pytest.approx(ref[1], rel=1e-8)
    assert M.inception_score(np.full((100, 10), 0.1))[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(100) % 10]
    assert M.inception_score(confident)[0] == pytest.approx(10.0)


def kid_reference(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda K: (K.sum() - np.trace(K)) / (m * (m - 1))
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def test_kid_matches_unbiased_mmd(rng):
    a, b = rng.normal(size=(300, 16)), rng.normal(0.2, 1, size=(300, 16))
    mean, std = M.kernel_distance(a, b, subsets=1, subset_size=300)
    assert mean == pytest.approx(kid_reference(a, b), rel=1e-10) and std == 0
    mean, _ = M.kernel_distance(a, a, subsets=5, subset_size=100)
    assert abs(mean) < 0.05
    with pytest.raises(ZooError, match="has 300 samples; KID with subset_size=1000"):
        M.kernel_distance(a, b)


def test_kid_subsets_from_kernels_made_once_or_per_subset(rng, monkeypatch):
    a, b = rng.normal(size=(120, 16)), rng.normal(0.2, 1, size=(90, 16))
    draw = np.random.default_rng(7)
    subsets = [(draw.choice(120, 40, replace=False), draw.choice(90, 40, replace=False)) for _ in range(6)]
    expected = [kid_reference(a[i], b[j]) for i, j in subsets]
    once = M.kernel_distance(a, b, subsets=6, subset_size=40, seed=7)
    monkeypatch.setattr(M, "KERNELS_ONCE", 50)  # larger sets: each subset's kernels on their own
    apart = M.kernel_distance(a, b, subsets=6, subset_size=40, seed=7)
    for got in (once, apart):
        assert got == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-10)


def brute_force(real, fake, k_pr=3, k_dc=5):
    drr, dff, drf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_real = np.sort(drr, axis=1)[:, k_pr]  # column 0 is the sample itself
    r_fake = np.sort(dff, axis=1)[:, k_pr]
    r_real5 = np.sort(drr, axis=1)[:, k_dc]
    precision = np.mean([(drf[:, j] <= r_real).any() for j in range(len(fake))])
    recall = np.mean([(drf[i, :] <= r_fake).any() for i in range(len(real))])
    density = (drf <= r_real5[:, None]).sum() / (k_dc * len(fake))
    coverage = np.mean((drf.min(axis=1) <= r_real5))
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


def test_neighbourhood_metrics_match_brute_force(rng):
    real = rng.normal(size=(1500, 24))  # more than one block of 1024
    fake = rng.normal(0.3, 1.1, size=(1100, 24))
    got = M.neighbourhood_metrics(real, fake)
    ref = brute_force(real, fake)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-6), key
    assert M.precision_recall(real, fake) == {"precision": got["precision"], "recall": got["recall"]}
    assert M.density_coverage(real, fake) == {"density": got["density"], "coverage": got["coverage"]}


def test_resampled_neighbourhoods_match_brute_force_with_each_point_keeping_its_ball(rng):
    real = rng.normal(size=(300, 12))
    fake = rng.normal(0.3, 1.1, size=(1100, 12))  # more than one block of 1024
    r_real3, r_real5 = (np.sort(cdist(real, real), axis=1)[:, k] for k in (3, 5))
    r_fake3 = np.sort(cdist(fake, fake), axis=1)[:, 3]
    lookups = resampling.ResampledNeighbourhoods(real, fake, (r_real3 ** 2, r_real5 ** 2, r_fake3 ** 2))
    index = rng.integers(0, 1100, 1100)  # a bootstrap draw: repeats keep the ball of their point
    drf = cdist(real, fake[index])
    expected = {"precision": np.mean((drf <= r_real3[:, None]).any(axis=0)),
                "recall": np.mean((drf <= r_fake3[index][None, :]).any(axis=1)),
                "density": (drf <= r_real5[:, None]).sum() / (5 * len(index)),
                "coverage": np.mean(drf.min(axis=1) <= r_real5)}
    assert lookups(index) == pytest.approx(expected, rel=1e-9)
    radii = tuple(np.float32(r ** 2) for r in (r_real3, r_real5, r_fake3[index]))
    # neighbourhood_metrics sums its density counts in float32
    assert lookups(index) == pytest.approx(M.neighbourhood_metrics(real, fake[index], radii=radii), rel=1e-6)


def test_identical_sets_are_perfect(rng):
    x = rng.normal(size=(300, 8))
    assert M.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    assert M.density_coverage(x, x)["coverage"] == 1.0
    far = M.precision_recall(x, x + 100)
    assert far == {"precision": 0.0, "recall": 0.0}


def test_intra_fid_and_classifier_accuracy(rng):
    real = rng.normal(size=(200, 4))
    labels = np.arange(200) % 2
    fake = real + np.where(labels[:, None] == 1, 1.0, 0.0)
    result = M.intra_frechet_distance(real, labels, fake, labels, num_classes=2)
    assert result["per_class"][0] == pytest.approx(0, abs=1e-8)
    assert result["per_class"][1] == pytest.approx(4.0, rel=1e-8)  # mean shift of 1 in 4 dims
    assert result["mean"] == pytest.approx(2.0, rel=1e-8)
    p = np.eye(3)[[0, 1, 2, 0]]
    assert M.classifier_accuracy(p, np.array([0, 1, 1, 0])) == 0.75


def test_clip_score_and_reconstruction_errors(rng):
    i = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    assert M.clip_score(i, t) == pytest.approx(100 * (1 + 0 + np.sqrt(0.5)) / 3)
    a = rng.uniform(0, 1, (2, 4, 4, 1))
    b = np.clip(a + 0.1, 0, 1)
    err = M.reconstruction_errors(a, b)
    assert err["mse"] == pytest.approx(np.mean((a - b) ** 2)) and err["mae"] == pytest.approx(np.mean(np.abs(a - b)))


@pytest.mark.parametrize("call, message", [
    (lambda r: M.frechet_distance(r.normal(size=(5, 3)), r.normal(size=(5, 4))), "different widths: 3 vs 4"),
    (lambda r: M.frechet_distance(r.normal(size=(1, 3)), r.normal(size=(5, 3))), "has 1 samples; a covariance needs at least 2"),
    (lambda r: M.precision_recall(r.normal(size=(3, 2)), r.normal(size=(9, 2))), "has 3 samples; k=3 nearest neighbours needs at least 4"),
    (lambda r: M.frechet_distance(np.full((5, 2), np.nan), r.normal(size=(5, 2))), "NaN or Inf"),
    (lambda r: M.frechet_distance(r.normal(size=(5, 2, 1)), r.normal(size=(5, 2))), "must be a 2-D array"),
    (lambda r: M.classifier_accuracy(np.eye(3), np.array([0, 1, 3])), r"labels must be in \[0, 3\); got values in \[0, 3\]"),
    (lambda r: M.inception_score(r.normal(size=(20, 3))), "sum to 1"),
    (lambda r: M.reconstruction_errors(np.ones((1, 2, 2, 1)) * 2, np.ones((1, 2, 2, 1))), r"must be in \[0, 1\]"),
    (lambda r: M.reconstruction_errors(np.ones((2, 2, 1)), np.ones((2, 2, 1))), "rank 4"),
])
def test_bad_input(rng, call, message):
    with pytest.raises(ZooError, match=message):
        call(rng)


@pytest.mark.parametrize("side", [8, 2])  # 64 features, more than a class's 15 samples; 4, fewer
def test_bootstrap_replicates_equal_the_metrics_of_each_resample_computed_whole(rng, side):
    """evaluate_samples reads a resample's FID, intra-FID and neighbourhood metrics from what it
    found once for all resamples; each replicate equals the metrics of its rows computed from scratch."""
    import tensorflow as tf

    from zoo.metrics import extractors, feature_metrics

    class Flat(extractors.Extractor):
        name = "flat"
        _features = staticmethod(lambda x: tf.reshape(x, [tf.shape(x)[0], -1]))
        _probabilities = staticmethod(lambda x: tf.nn.softmax(10 * tf.reshape(x, [tf.shape(x)[0], -1])[:, :3]))

    real_y, fake_y = np.arange(60) % 3, np.arange(45) % 3  # 15 samples a class, fewer than the 64 features
    real_x = rng.uniform(0, 1, (60, side, side, 1)).astype(np.float32)
    fake_x = np.clip(real_x[:45] + rng.normal(0, 0.2, (45, side, side, 1)), 0, 1).astype(np.float32)
    got = feature_metrics.evaluate_samples(fake_x, real_x, extractor=Flat(), metrics=feature_metrics.CONDITIONAL,
                                           fake_labels=fake_y, real_labels=real_y, bootstrap=4, seed=3)
    real, fake = real_x.reshape(60, -1).astype(np.float64), fake_x.reshape(45, -1).astype(np.float64)
    draw, by_class, replicates = np.random.default_rng(3), [np.flatnonzero(fake_y == c) for c in range(3)], []
    radii = (*M.knn_radii(real.astype(np.float32), 3, 5), M.knn_radii(fake.astype(np.float32), 3))
    for _ in range(4):  # the bootstrap's draws: within each class
        i = np.concatenate([draw.choice(members, len(members)) for members in by_class])
        replicates.append({"fid": M.frechet_distance(real, fake[i]),
                           "intra_fid": M.intra_frechet_distance(real, real_y, fake[i], fake_y[i], 3)["mean"],
                           **M.neighbourhood_metrics(real, fake[i], radii=(radii[0], radii[1], radii[2][i]))})
    for key in ("fid", "intra_fid", "precision", "recall", "density", "coverage"):
        assert got[f"{key}_se"] == pytest.approx(np.std([r[key] for r in replicates], ddof=1), rel=1e-6), key
