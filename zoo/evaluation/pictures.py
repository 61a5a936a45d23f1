"""The pictures an export folder holds (samples, reconstructions, denoising, the model's own;
inpainting and, where enough were measured, samples come with their measurement) and the small
grid drawn during training."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.blocks import corruption
from zoo.core import distribute
from zoo.core.images import grid
from zoo.core.progress import stage
from zoo.models.capabilities import ConditionalGenerator, Denoiser, Generator, Reconstructor

PER_CLASS = 8  # samples.png: a row of 8 samples per class, or 8 rows of 8


def samples_grid(samples, labels=None, num_classes=None):
    """samples.png from drawn samples: a row of the first ``PER_CLASS`` of each class (``labels``
    given), else the first ``PER_CLASS``² in rows; None when there are fewer."""
    if labels is None:
        n = PER_CLASS * PER_CLASS
        return grid(samples[:n], rows=PER_CLASS) if len(samples) >= n else None
    rows = [np.flatnonzero(labels == c)[:PER_CLASS] for c in range(num_classes)]
    if min(len(r) for r in rows) < PER_CLASS:
        return None
    return grid(samples[np.concatenate(rows)], rows=num_classes)


def preview(model, images):
    """A small grid drawn during training: samples of a generator, else reconstructions."""
    if isinstance(model, ConditionalGenerator):
        labels = np.repeat(np.arange(model.config.num_classes), PER_CLASS)
        return samples_grid(model.sample_numpy(labels, 0), labels, model.config.num_classes)
    if isinstance(model, Generator):
        return samples_grid(model.sample_numpy(PER_CLASS * PER_CLASS, 0))
    if isinstance(model, Reconstructor):
        return grid(np.concatenate([images[:16], model.reconstruct_numpy(images[:16])]), rows=2)
    return None


def export_pictures(model, splits, measured=()):
    """name → image grid for the export folder, but those of the measurement (``measured``: its
    names; inpainting.png, and samples.png drawn from the samples measured)."""
    images, labels = splits.test
    mixed = images[np.random.default_rng(0).permutation(len(images))]
    out = {}
    if isinstance(model, (Generator, ConditionalGenerator)) and "samples.png" not in measured:
        with stage("samples.png"):
            out["samples.png"] = preview(model, images)
    if isinstance(model, Reconstructor):  # two rows of (originals, reconstructions), 16 each (fewer for a small split)
        per_row = min(16, len(mixed) // 2)
        originals = mixed[:2 * per_row]
        recon = model.reconstruct_numpy(originals)
        pairs = np.concatenate([np.stack([originals[i:i + per_row], recon[i:i + per_row]]) for i in (0, per_row)])
        out["reconstructions.png"] = grid(pairs.reshape(-1, *images.shape[1:]), rows=4)
    if isinstance(model, Denoiser):
        kind, level = model.training_corruption()
        noisy = corruption.corrupt(tf.constant(mixed[:16]), kind, level, distribute.Draws([0, 0]), 4).numpy()
        out["denoising.png"] = grid(np.concatenate([noisy, model.reconstruct_numpy(noisy), mixed[:16]]), rows=3)
    with stage(f"{type(model).__name__} pictures"):
        out.update(model.extra_pictures(images, labels))
    return out
