"""The pictures an export folder holds (samples, reconstructions, denoising, the model's own;
inpainting comes with its measurement) and the small grid drawn during training."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.blocks import corruption
from zoo.core import distribute
from zoo.core.images import grid
from zoo.core.progress import stage
from zoo.models.capabilities import ConditionalGenerator, Denoiser, Generator, Reconstructor


def preview(model, images):
    """A small grid drawn during training: samples of a generator, else reconstructions."""
    if isinstance(model, ConditionalGenerator):
        c = model.config.num_classes
        return grid(model.sample_numpy(np.repeat(np.arange(c), 8), 0), rows=c)
    if isinstance(model, Generator):
        return grid(model.sample_numpy(64, 0), rows=8)
    if isinstance(model, Reconstructor):
        return grid(np.concatenate([images[:16], model.reconstruct_numpy(images[:16])]), rows=2)
    return None


def export_pictures(model, splits):
    """name → image grid for the export folder (an inpainter's inpainting.png comes with its
    measurement: ``image_tasks.inpainting_metrics``)."""
    images, labels = splits.test
    mixed = images[np.random.default_rng(0).permutation(len(images))]
    out = {}
    if isinstance(model, (Generator, ConditionalGenerator)):
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
