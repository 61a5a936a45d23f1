"""Real-data references: the figures a perfect generator would reach at the same sample count,
computed once per dataset and extractor and cached (``ZOO_CACHE``, default ~/.cache/zoo), so
"FID 176" is read against "real: 141"; and the class-stratified draws they share with the
measurements."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from zoo.core.progress import stage
from zoo.metrics import feature_metrics


def cache_dir():
    return os.environ.get("ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


def cached(kind, key, compute):
    """``compute()`` once per (kind, key), kept as JSON under the cache folder."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"{kind}-{digest}.json")
    try:
        with open(path) as f:
            return json.load(f)["value"]
    except (OSError, ValueError, KeyError):
        pass
    value = compute()
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"key": key, "value": value}, f, default=str)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: recompute next time
    return value


def fingerprint(images):
    return hashlib.sha256(np.ascontiguousarray(images[:: max(1, len(images) // 64)]).tobytes()).hexdigest()[:12]


def data_key(splits, **more):
    """A cache key of the data a reference was computed on, and what else decided it."""
    return {"data": splits.data_name, "train": fingerprint(splits.train[0]), "test": fingerprint(splits.test[0]),
            **more, "version": 1}


def stratified(labels, n, seed):
    """``n`` indices whose class counts are proportional to those of ``labels`` (whatever
    their order: the test split may be sorted by class)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    share = np.empty(len(labels))
    for c in np.unique(labels):
        members = order[labels[order] == c]
        share[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.argsort(share, kind="stable")[:n]


def matching_indices(train_labels, test_labels, seed):
    """Training indices with the same class counts as ``test_labels`` (a random draw)."""
    order = np.random.default_rng(seed).permutation(len(train_labels))
    picked = []
    for c, count in zip(*np.unique(test_labels, return_counts=True)):
        of_class = order[train_labels[order] == c][:count]
        picked.extend(of_class)
    return np.sort(np.asarray(picked, int))


def real_reference(splits, extractor, labels, conditional, settings, metrics=None):
    """The feature metrics of real training images with the class counts of ``labels`` (those
    the generated samples were drawn for) against the test split: the floor a perfect
    generator would reach at this sample count."""
    test_x, test_y = splits.test
    train_x, train_y = splits.train
    n = len(labels)
    metrics = metrics or (feature_metrics.CONDITIONAL if conditional else feature_metrics.UNCONDITIONAL)

    def compute():
        with stage(f"real-data reference: {n} training images against the test split ({extractor})"):
            index = matching_indices(train_y, labels, settings.seed)
            labelled = conditional and {"intra_fid", "classifier_accuracy"} & set(metrics)
            result = feature_metrics.evaluate_samples(
                train_x[index], test_x, extractor=extractor, metrics=metrics,
                fake_labels=train_y[index] if labelled else None, real_labels=test_y if labelled else None,
                bootstrap=settings.bootstrap, seed=settings.seed)
        return {k: v for k, v in result.items() if isinstance(v, float)}

    key = data_key(splits, n=n, counts=np.bincount(labels).tolist(), extractor=extractor, conditional=conditional,
                    seed=settings.seed, bootstrap=settings.bootstrap, metrics=list(metrics))
    return cached("reference", key, compute)
