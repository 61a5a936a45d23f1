"""Every sample metric with its uncertainty and its real-data reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import metrics
from zoo.core import data
from zoo.evaluation import references, settings
from zoo.models.vae import VAE, VAEConfig
from zoo.training.trainer import Trainer


@pytest.mark.slow
def test_bootstrap_standard_error_of_fid_matches_the_spread_over_independent_draws():
    """A fixed model: its FID's bootstrap standard error from one draw of n samples agrees
    within a factor of 2 with the standard deviation of FID over 10 independent draws of n."""
    keras.utils.set_random_seed(0)
    model = VAE(VAEConfig(latent_dim=8, filters=(8, 16), hidden=32))
    model.configure_optimizers(3e-3)
    x, y = data.mnist5k("train")
    Trainer(model, tf.distribute.get_strategy()).fit(
        data.training_batches(x, y, 64, seed=0, first_epoch=0, epochs=2), epochs=2, steps_per_epoch=30, verbose=0)
    test_x, _ = data.mnist5k("test")
    extractor = metrics.zoo_classifier()
    real = extractor.features(test_x)
    n = 300
    draws = [metrics.frechet_distance(real, extractor.features(model.sample_numpy(n, seed=1000 * i)))
             for i in range(10)]
    one = metrics.evaluate_samples(model.sample_numpy(n, seed=99), test_x, metrics=("fid",), bootstrap=30)
    spread = float(np.std(draws, ddof=1))
    assert 0.5 <= one["fid_se"] / spread <= 2.0, (one["fid_se"], spread, draws)
    assert "fid_infinity" in one and one["fid_infinity"] < one["fid"]  # FID's bias shrinks with n


@pytest.mark.slow
def test_the_real_data_reference_matches_the_published_floor_within_its_standard_error():
    """1,000 real training digits against the 1,000 test digits, zoo classifier features:
    FID 138–145, precision 0.81–0.83, recall 0.82–0.84 over three draws (measured when the reference was built)."""
    splits = data.Splits(data.mnist5k("test"), data.mnist5k("train"))
    reference = references.real_reference(splits, "zoo_mnist_classifier", splits.test[1], False,
                                          settings.EvaluationSettings(bootstrap=30))
    for key, (low, high) in {"fid": (138, 145), "precision": (0.81, 0.83), "recall": (0.82, 0.84)}.items():
        se = reference[f"{key}_se"]
        assert se > 0 and low - se <= reference[key] <= high + se, (key, reference[key], se)
