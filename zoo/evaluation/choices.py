"""The choices a recipe makes after training and before measuring, each on training data only
and each recorded in the card's ``evaluation``: what is measured and exported is then what
was chosen, and measuring changes nothing.

- ``sampler``: a generator with several samplers (the VAE's prior and its mixtures) uses the
  one with the lowest FID against training images among those whose recall against them is at
  least its first sampler's.
- ``anomaly_score``: a model that scores anomalies from parts (AE, DAE, VAE) uses the
  combination with the best worst case over proxy anomalies made from held-out normal images
  (``zoo.models.codes.choose_anomaly_score``).
"""

from __future__ import annotations

from zoo.core.progress import stage
from zoo.evaluation.references import stratified
from zoo.evaluation.settings import resolve_extractor
from zoo.metrics import feature_metrics
from zoo.models.capabilities import AnomalyScorer, Generator


def make(model, splits, settings):
    """Every choice the model's capabilities call for; what to record in the card."""
    made = {}
    if isinstance(model, Generator) and len(model.samplers()) > 1:
        extractor, _ = resolve_extractor(settings, splits)
        if extractor:
            made["sampler"] = choose_sampler(model, splits, settings, extractor)
    if isinstance(model, AnomalyScorer):
        made.update(model.choose_anomaly_score(*splits.train))
    return made


def choose_sampler(model, splits, settings, extractor):
    """The sampler with the lowest FID against training images (never the test split) among
    those whose recall against them is at least the first sampler's — the model's own (a VAE's
    prior): a sampler fitted after training may win on fidelity only if it covers the data as
    well. Sets it in use; returns what was measured."""
    train_x, train_y = splits.train
    n = min(settings.samples or len(splits.test[1]), len(train_y))
    real = train_x[stratified(train_y, n, settings.seed + 1)]
    fid, recall = {}, {}
    for name in model.samplers():
        with model.sampling_with(name), stage(
                f"choosing a sampler: FID and recall of {n} {name} samples against training images"):
            measured = feature_metrics.evaluate_samples(model.sample_numpy(n, settings.seed + 7), real,
                                                        extractor=extractor, metrics=("fid", "recall"), bootstrap=0)
        fid[name], recall[name] = measured["fid"], measured["recall"]
    floor = recall[model.samplers()[0]]
    model.use_sampler(min((name for name in fid if recall[name] >= floor), key=fid.get))
    return {"in_use": model.sampler_in_use(), "fid_against_training_images": fid,
            "recall_against_training_images": recall,
            "rule": f"lowest FID among the samplers whose recall is at least {model.samplers()[0]}'s"}
