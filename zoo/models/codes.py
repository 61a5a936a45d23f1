"""What the models with a latent code (AE, DAE, VAE) share beyond the contract: a density
over the codes of the training images, sampling from it, and an anomaly score built from
parts and chosen without the anomaly class.

A model mixes ``CodeDensity`` in before ``ZooModel``, creates ``self.mixture``
(``latent.LatentMixture``) and ``self.score`` (``latent.ScoreCombination`` over
``ANOMALY_PARTS``), and implements ``codes(images)``, ``decode(codes)`` and
``anomaly_parts(images, exact)``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo import latent
from zoo.models.base import batched

VALIDATION_EVERY = 10  # every 10th normal training image is held out: mixture size, score choice, threshold


class CodeDensity:
    ANOMALY_PARTS = ("reconstruction", "likelihood", "latent", "complexity")

    # Training data ----------------------------------------------------------------------
    def normal_validation(self, labels):
        """Held-out normal training images (every 10th of those not in the anomaly class): with
        ``anomaly_class`` they are left out of training; without, they are every 10th image."""
        k = self.config.anomaly_class
        normal = np.ones(len(labels), bool) if k is None else labels != k
        return normal & (np.cumsum(normal) % VALIDATION_EVERY == 1)

    def select_training_examples(self, labels):
        """With ``anomaly_class``: the other classes, minus the held-out normal tenth."""
        if self.config.anomaly_class is None:
            return None
        return (labels != self.config.anomaly_class) & ~self.normal_validation(labels)

    def held_out_class(self):
        return self.config.anomaly_class

    # After training -----------------------------------------------------------------------
    def after_training(self, images, labels):
        """Fit the mixture over the codes (its size chosen on the held-out codes), the TFLite
        proxy of the PNG length, and the anomaly score (chosen on held-out normal images and
        proxy anomalies made from them)."""
        held_out = self.normal_validation(labels)
        trained = self.select_training_examples(labels)
        fit = (trained if trained is not None else np.ones(len(labels), bool)) & ~held_out
        mixture = self.mixture.fit(self.encode_images(images[fit]), self.encode_images(images[held_out]),
                                   seed=self.config.seed)
        coef, r2 = latent.fit_complexity_proxy(images[fit][:2000])
        self.score.complexity_coef.assign(coef)
        normal = self.anomaly_parts_of(images[held_out])
        proxies = {kind: self.anomaly_parts_of(made)
                   for kind, made in latent.proxy_anomalies(images[held_out], self.config.seed).items()}
        name, weights, centre, scale, aucs = latent.choose_combination(normal, proxies)
        parts = self.score.parts
        self.score.centre.assign(np.array([centre[p] for p in parts], np.float32))
        self.score.scale.assign(np.array([scale[p] for p in parts], np.float32))
        self.score.weights_.assign(np.array([weights.get(p, 0.0) for p in parts], np.float32))
        self.fitted = {
            "latent_mixture": mixture,
            "anomaly_score": {
                "chosen": name, "weights": weights,
                "how": f"of {len(aucs)} candidates (each part, and the latent density plus each other part or all), "
                       f"the one with the best worst-case ROC-AUC between {int(held_out.sum())} held-out normal "
                       "training images and each kind of proxy anomaly made from them (quarter turns, "
                       "upside-down, overlays, halves of two images, one half erased); the anomaly class is "
                       "never used",
                "proxy_auc": aucs, "standardised_on": "the held-out normal images (median, std)",
                "tflite": f"the PNG length L(x) is not a TFLite op: the TFLite score uses a linear proxy of it "
                          f"(ink, edges, lit pixels; R² {r2:.3f} on training images)" if "complexity" in weights
                          else "the same score",
            },
        }

    def measure(self, test, train):
        """What ``after_training`` fitted and chose, for the card's ``evaluation``."""
        return {"settings": dict(getattr(self, "fitted", {}))}

    # Scores -----------------------------------------------------------------------------
    def anomaly_score(self, images, exact=True):
        """The chosen combination of the parts (higher: more anomalous), [N]."""
        return self.score.combine(self.anomaly_parts(images, exact))

    def complexity_corrected(self, likelihood_bits, images, exact):
        """Serrà et al.: −log p(x) − L(x), both in bits."""
        return likelihood_bits - self.score.complexity_bits(images, exact)

    def anomaly_scores(self, images, portable=False):
        return batched(lambda x: self.anomaly_score(x, exact=not portable), images)

    def anomaly_parts_of(self, images):
        """Every part on NumPy images, name → [N]."""
        out = {}
        for i in range(0, len(images), 500):
            for name, value in self.anomaly_parts(tf.constant(images[i:i + 500])).items():
                out.setdefault(name, []).append(value.numpy())
        return {name: np.concatenate(v) for name, v in out.items()}

    # Sampling ---------------------------------------------------------------------------
    def sample_mixture(self, num, seed):
        """Decoded codes of the mixture, deterministic for a seed."""
        seed = tf.cast(seed, tf.int32)
        choice = tf.random.stateless_uniform(tf.stack([num]), seed=tf.stack([seed, 1]))
        noise = tf.random.stateless_normal(tf.stack([num, self.config.latent_dim]), seed=tf.stack([seed, 0]))
        return self.decode(self.mixture.sample(choice, noise))
