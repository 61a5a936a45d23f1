"""Anomaly detection and feature-quality numbers for autoencoders."""

from __future__ import annotations

import numpy as np

from zoo.core.errors import ZooError


def anomaly_detection(scores, is_anomaly, normal_validation_scores, false_positive_rate=0.05):
    """ROC-AUC and average precision of ``scores`` (higher = more anomalous) for telling
    anomalies from normal test samples, and the rates at a threshold chosen on normal
    validation data so that ``false_positive_rate`` of it is flagged."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, is_anomaly = np.asarray(scores, np.float64), np.asarray(is_anomaly, bool)
    if scores.shape != is_anomaly.shape:
        raise ZooError(f"{len(scores)} scores but {len(is_anomaly)} labels")
    if is_anomaly.all() or not is_anomaly.any():
        raise ZooError("anomaly detection needs both anomalies and normal samples in the test data")
    if not 0 < false_positive_rate < 1:
        raise ZooError(f"false_positive_rate must be in (0, 1), got {false_positive_rate}")
    threshold = float(np.quantile(np.asarray(normal_validation_scores, np.float64), 1 - false_positive_rate))
    flagged = scores > threshold
    return {
        "anomaly_auc": float(roc_auc_score(is_anomaly, scores)),
        "anomaly_average_precision": float(average_precision_score(is_anomaly, scores)),
        "anomaly_threshold": threshold,
        "anomaly_target_fpr": false_positive_rate,
        "anomaly_true_positive_rate": float(flagged[is_anomaly].mean()),
        "anomaly_false_positive_rate": float(flagged[~is_anomaly].mean()),
    }


def linear_probe(train_features, train_labels, test_features, test_labels, prefix="latent"):
    """Accuracy of a logistic-regression classifier trained on ``train_features`` and
    tested on ``test_features`` (features standardised on the training set)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_features, train_labels)
    return {f"linear_probe_accuracy_{prefix}": float(probe.score(test_features, test_labels))}
