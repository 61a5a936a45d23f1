"""RePaint inpainting (Lugmayr et al. 2022) with the diffusion model's guided prediction, and the
label it fills with when none is given (a diffusion classifier, Li et al. 2023): the
``inpaint`` signatures and the NumPy fills evaluation makes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.blocks import schedules
from zoo.core import signature as sig


class RePaint:
    """The inpainting sampler of a ``Diffusion`` model (resampling r, jump length j and η of its
    config). Graph methods take tensors; those ending in ``_numpy`` take and return arrays."""

    def __init__(self, model):
        self.model = model

    def signatures(self, noise, maybe_label):
        """``inpaint`` in the SavedModel (RePaint's noise drawn inside), and in TFLite with its
        per-move noise as an input (no random op)."""
        c = self.model.config
        return [
            sig.Signature("inpaint", lambda images, mask, noise, labels: dict(zip(
                ("images", "labels"), self.images(images, mask, noise, labels))),
                (sig.images(c.image_shape), sig.mask(c.image_shape), noise, maybe_label)),
            sig.Signature("inpaint", lambda images, mask, noise, path_noise, labels: dict(zip(
                ("images", "labels"), self.images(images, mask, noise, labels, path_noise=path_noise))),
                (sig.images(c.image_shape), sig.mask(c.image_shape), noise,
                 sig.noise("path_noise", (self.moves(), *c.image_shape)), maybe_label),
                tflite=True, saved_model=False, web=False),  # no page runs RePaint's 200-move loop
        ]

    def moves(self):
        """Moves of the inpainting path: the TFLite ``inpaint`` takes one noise image per move."""
        c = self.model.config
        return schedules.repaint_moves(c.sample_steps, c.inpaint_resample, c.inpaint_jump)

    def images(self, images, mask, noise, labels, seed=None, path_noise=None):
        """Fill the pixels where ``mask`` is 0, keeping those where it is 1, by RePaint
        (resampling r, jump length j of the config). An image without a label (``labels``
        None, or the null class ``num_classes``) gets one in a first pass — an unconditional
        fill, then the class under which the network best explains the kept pixels
        (``choose_labels``) — and is filled with it. Returns (images, the labels filled with)."""
        x0 = images * 2.0 - 1.0
        labels = self.labels_to_fill_with(x0, mask, noise, labels, seed, path_noise)
        return self.model.to_images(self.repaint(x0, mask, noise, labels, seed, path_noise)), labels

    def repaint(self, x0, mask, noise, labels, seed=None, path_noise=None):
        """One RePaint fill of ``x0`` ([-1, 1]) under ``labels`` (None: unconditional)."""
        # A null label needs no special case: the network was trained on it, so its
        # "conditional" prediction is the unconditional one and guidance leaves it as it is.
        c = self.model.config
        return schedules.repaint_sample(self.model.schedule, self.model.guided_denoiser(labels), noise, c.sample_steps,
                                        (x0, mask), c.inpaint_resample, c.inpaint_jump, c.inpaint_eta,
                                        tf.constant([0, 3]) if seed is None else seed, path_noise)

    def labels_to_fill_with(self, x0, mask, noise, labels, seed=None, path_noise=None):
        """``labels`` where given; where an image has none (None, or the null class), the label
        ``choose_labels`` reads from an unconditional first fill (with ``inpaint_label_steps``
        0: the null class stays, and the fill is the plain unconditional one)."""
        c = self.model.config
        n = tf.shape(x0)[0]
        labels = tf.fill([n], c.num_classes) if labels is None else tf.cast(labels, tf.int32)
        if not c.inpaint_label_steps:
            return labels
        unlabelled = tf.equal(labels, c.num_classes)

        def chosen():
            first = self.repaint(x0, mask, noise, None, seed, path_noise)  # one network call per move
            return tf.where(unlabelled, self.choose_labels(mask * x0 + (1.0 - mask) * first, mask), labels)

        return tf.cond(tf.reduce_any(unlabelled), chosen, lambda: labels)

    def choose_labels(self, x0, mask):
        """The class under which the averaged network's noise predictions best explain the
        pixels of ``x0`` ([-1, 1]) where ``mask`` is 1, at ``inpaint_label_steps`` noise
        levels on fixed noise (a diffusion classifier, Li et al. 2023), int32 [N]."""
        c = self.model.config
        noise = np.random.default_rng(c.seed + 1).standard_normal((c.inpaint_label_steps, *c.image_shape))
        return schedules.classify_by_denoising(
            self.model.schedule, lambda x, t, y: self.model.eps(self.model.network_ema, x, t, y), x0, mask,
            c.num_classes,
            schedules.classifier_timesteps(c.inpaint_label_steps, c.timesteps), noise.astype(np.float32))

    def _key(self):
        c = self.model.config
        return ("inpaint", c.guidance, c.guidance_interval, c.sample_steps, c.inpaint_resample, c.inpaint_jump,
                c.inpaint_eta, c.inpaint_label_steps)

    def batches(self, images, mask, seed, batch):
        """Batches of (images, mask, x_T, RePaint's per-move noise), the noise drawn from ``seed``
        and the batch's first index and passed in explicitly, so that any subset of a batch
        can be filled again with the very noise it had."""
        shape = images.shape[1:]
        for i in range(0, len(images), batch):
            n = len(images[i:i + batch])
            noise = tf.random.stateless_normal((n, *shape), seed=[seed + i, 7]).numpy()
            path = tf.random.stateless_normal((n, self.moves(), *shape), seed=[seed + i, 3]).numpy()
            yield slice(i, i + n), images[i:i + n], np.asarray(mask[i:i + n], np.float32), noise, path

    def _batch_specs(self):
        """The NumPy fills' inputs (images, mask, x_T, RePaint's noise, labels) with any batch size:
        one trace serves the full batches and the subsets filled again (two traces before)."""
        shape = tuple(self.model.config.image_shape)
        image = tf.TensorSpec((None, *shape), tf.float32)
        return [image, image, image, tf.TensorSpec((None, self.moves(), *shape), tf.float32),
                tf.TensorSpec((None,), tf.int32)]

    def fill_numpy(self, x, m, noise, path, labels):
        """RePaint fills under ``labels``, as ``inpaint`` makes them once its labels are known.
        The label choice is a graph of its own (``labels_to_fill_with_numpy``): traced inside
        this one, it was traced twice for a branch evaluation never takes (a tiny run's first
        inpainting stage took twice as long; docs/history.md)."""
        fill = self.model.graph(self._key() + ("given",), lambda x, m, noise, path, y: self.model.to_images(
            self.repaint(x * 2.0 - 1.0, m, noise, y, path_noise=path)), input_signature=self._batch_specs())
        return fill(*(tf.constant(a) for a in (x, m, noise, path, np.asarray(labels, np.int32)))).numpy()

    def labels_to_fill_with_numpy(self, x, m, noise, path, labels):
        """``labels_to_fill_with`` on a NumPy batch: the labels ``inpaint`` fills it with."""
        choose = self.model.graph(self._key() + ("labels",), lambda x, m, noise, path, y: self.labels_to_fill_with(
            x * 2.0 - 1.0, m, noise, y, path_noise=path), input_signature=self._batch_specs())
        return choose(*(tf.constant(a) for a in (x, m, noise, path, np.asarray(labels, np.int32)))).numpy()

    def inpaint_numpy(self, images, mask, labels=None, seed=0, batch=250, with_labels=False):
        """The fills (``with_labels``: and the labels each was filled with) of any batch."""
        null = self.model.config.num_classes
        labels = np.full(len(images), null, np.int32) if labels is None else np.asarray(labels, np.int32)
        out, used = [], []
        for s, x, m, noise, path in self.batches(images, mask, seed, batch):
            y = labels[s]
            if (y == null).any():  # a batch whose images all have labels needs no choice traced
                y = self.labels_to_fill_with_numpy(x, m, noise, path, y)
            out.append(self.fill_numpy(x, m, noise, path, y))
            used.append(np.asarray(y, np.int32))
        return (np.concatenate(out), np.concatenate(used)) if with_labels else np.concatenate(out)

    def with_and_without_label_numpy(self, images, mask, labels, seed=0, batch=250):
        """The same two fills as two ``inpaint_numpy`` calls, sharing work: a label-free fill
        is filled with the label the model chooses, so wherever that is the true label it is
        the labelled fill itself (same noise), and only the other images are filled again.
        For 100 digits: one guided fill, one unconditional fill, the label choice and guided
        fills of the ~20% chosen otherwise, instead of two guided fills, one unconditional fill
        and the label choice (the card's six fills 17% faster; docs/history.md)."""
        labels = np.asarray(labels, np.int32)
        without, with_label = [], []
        for s, x, m, noise, path in self.batches(images, mask, seed, batch):
            labelled = self.fill_numpy(x, m, noise, path, labels[s])
            chosen = self.labels_to_fill_with_numpy(x, m, noise, path, np.full(len(x), self.model.config.num_classes))
            free, other = labelled.copy(), chosen != labels[s]
            if other.any():
                free[other] = self.fill_numpy(x[other], m[other], noise[other], path[other], chosen[other])
            without.append(free)
            with_label.append(labelled)
        return np.concatenate(without), np.concatenate(with_label)
