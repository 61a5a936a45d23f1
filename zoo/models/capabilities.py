"""The capability types: what a zoo model can do, declared by mixing them in. The trainer, the
evaluator, the exporter and the apps dispatch on ``isinstance(model, Capability)`` — never on
model names or ``hasattr`` — so a new model slots in by declaring what it can do.

Names say where a method runs: a graph function (tensors in and out, what a signature
exports) has the signature's name (``sample``, ``reconstruct``, ``anomaly_score``); the method
that runs it on NumPy arrays, in batches, is the same name with ``_numpy`` (``sample_numpy``,
``reconstruct_numpy``, ``anomaly_score_numpy``). The capabilities' methods over images, labels
and codes are the NumPy ones (tests/test_layers.py holds the rule)."""

from __future__ import annotations

import contextlib

import numpy as np


class Capability:
    """Marker base of the capability types."""


class Sampling(Capability):
    """What a generator samples with: its samplers (a VAE's prior and its mixtures, a diffusion
    model's guided sampler and its few-step students). Evaluation measures each; the first is
    in use until ``use_sampler`` picks another."""

    def samplers(self):
        return ("default",)

    def use_sampler(self, name):
        """Make ``name`` the sampler of the NumPy methods (and, where the model exports it so, of
        the ``sample`` signature)."""

    def sampler_in_use(self):
        return self.samplers()[0]

    @contextlib.contextmanager
    def sampling_with(self, name):
        """``name`` in use inside the block, the sampler in use before it afterwards: how a
        measurement of every sampler leaves the choice as it found it."""
        before = self.sampler_in_use()
        self.use_sampler(name)
        try:
            yield
        finally:
            self.use_sampler(before)


class Generator(Sampling):
    """Draws new images without a label."""

    def sample_numpy(self, num, seed=0):
        """``num`` images, float32 NHWC in [0, 1], deterministic for a seed (NumPy), from the
        sampler in use."""
        raise NotImplementedError


class ConditionalGenerator(Sampling):
    """Draws images of requested classes; ``config.num_classes`` says how many there are."""

    # Intra-FID estimates a covariance for each class from the samples evaluation draws (1,000
    # by default: 10 a class at 100 classes, fewer is noise), and the samples picture has a row
    # of each class.
    max_classes = 100

    def sample_numpy(self, labels, seed=0):
        """One image per label, float32 NHWC in [0, 1], deterministic for a seed (NumPy)."""
        raise NotImplementedError

    @classmethod
    def with_one_class(cls, config):
        """What training on unlabelled images (one class) means for this model: said before
        training and kept in the card."""
        return f"unlabelled: one class, so the {cls.zoo_name} draws without a class of its own"


class Reconstructor(Capability):
    """Encodes images to codes and decodes codes back to images."""

    def encode_numpy(self, images):
        """Codes [N, d] of images (NumPy)."""
        raise NotImplementedError

    def decode_numpy(self, codes):
        """Images from codes (NumPy)."""
        raise NotImplementedError

    def reconstruct_numpy(self, images):
        """decode(encode(images)) (NumPy)."""
        return self.decode_numpy(self.encode_numpy(images))


class Denoiser(Capability):
    """Removes a corruption it was trained to remove (its reconstruction is the denoised image)."""

    def training_corruption(self):
        """(kind, level): the ``zoo.corruption`` noise it was trained on, at its evaluation level."""
        raise NotImplementedError


class AnomalyScorer(Capability):
    """Scores how unlike its training data an image is (higher: more anomalous)."""

    def anomaly_score_numpy(self, images, portable=False):
        """One score per image (NumPy), what the ``anomaly_score`` signature returns
        (``portable``: what its TFLite version returns)."""
        raise NotImplementedError

    def anomaly_parts_numpy(self, images):
        """The per-image scores the anomaly score is built from, name → [N] (NumPy)."""
        return {}

    def held_out_class(self):
        """The class left out of training to be detected, or None."""
        return

    def normal_validation(self, labels):
        """A mask of normal training images held out of training (detection thresholds)."""
        return np.zeros(len(labels), bool)

    def choose_anomaly_score(self, images, labels):
        """Choose the score (``zoo.choices``, after ``after_training``) on the training split;
        returns what to record in the card's ``evaluation``."""
        return {}


class Inpainter(Capability):
    """Fills the pixels of an image where a mask is 0, keeping those where it is 1."""

    def inpaint_numpy(self, images, mask, labels=None, seed=0, with_labels=False):
        """Filled images (NumPy); ``labels`` None: without a label; ``with_labels``: also the
        label each image was filled with (given, or chosen from its kept pixels)."""
        raise NotImplementedError

    def inpaint_with_and_without_label_numpy(self, images, mask, labels, seed=0):
        """(fills without the label, fills with ``labels``), as ``inpaint_numpy`` gives them;
        a model that can share work between the two overrides this."""
        return self.inpaint_numpy(images, mask, None, seed), self.inpaint_numpy(images, mask, labels, seed)
