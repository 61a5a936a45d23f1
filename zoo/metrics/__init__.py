"""Generative metrics: plain functions over features and probabilities (``core``), feature
extractors, Keras metrics and a training callback, and the evaluation entry point.

Numbers from different feature extractors are never comparable; every result names its
extractor.
"""

from zoo.metrics.callbacks import FeatureMetric, GenerativeMetricsCallback
from zoo.metrics.cas import classification_accuracy_score
from zoo.metrics.clip import CLIPScorer
from zoo.metrics.core import (
    GaussianStats,
    classifier_accuracy,
    clip_score,
    density_coverage,
    frechet_distance,
    frechet_distance_from_samples,
    inception_score,
    intra_frechet_distance,
    kernel_distance,
    neighbourhood_metrics,
    precision_recall,
    reconstruction_errors,
)
from zoo.metrics.extractors import (
    ClassifierExtractor,
    InceptionV3Extractor,
    zoo_classifier,
)
from zoo.metrics.feature_metrics import evaluate_samples, fid_infinity
from zoo.metrics.lpips import LPIPS, lpips_distance, lpips_diversity

__all__ = [
    "CLIPScorer", "ClassifierExtractor", "FeatureMetric", "GaussianStats", "GenerativeMetricsCallback",
    "InceptionV3Extractor", "LPIPS", "classification_accuracy_score", "classifier_accuracy", "clip_score",
    "density_coverage", "evaluate_samples", "fid_infinity", "frechet_distance", "inception_score",
    "frechet_distance_from_samples", "intra_frechet_distance", "kernel_distance", "lpips_distance", "lpips_diversity",
    "neighbourhood_metrics", "precision_recall", "reconstruction_errors", "zoo_classifier",
]
