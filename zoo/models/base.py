"""What every zoo model shares: config handling, loss trackers, and the hooks that the
trainer, the evaluator and the exporter call."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo import ZooError


def check_positive(name, value):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ZooError(f"{name} must be a positive integer, got {value!r}")


class EMAWarmupAdam(keras.optimizers.Adam):
    """Adam that keeps a moving average of the weights whose decay warms up:
    min(decay, (1 + step) / (10 + step)). A fixed decay of 0.999 would still hold a third
    of the initial weights after 1,000 steps, which is all a short CPU run has."""

    def __init__(self, learning_rate, ema_decay, **kwargs):
        super().__init__(learning_rate, use_ema=ema_decay > 0, ema_momentum=ema_decay, **kwargs)

    @property
    def ema_momentum(self):
        step = keras.ops.cast(self.iterations, "float32")
        return keras.ops.minimum(self._ema_decay, (1.0 + step) / (10.0 + step))

    @ema_momentum.setter
    def ema_momentum(self, value):
        self._ema_decay = float(value)

    def get_config(self):
        config = super().get_config()
        config["ema_decay"] = self._ema_decay
        config.pop("ema_momentum", None)
        config.pop("use_ema", None)
        return config


def copy_ema_weights(optimizer, source, target):
    """Copy into ``target`` (a network shaped like ``source``) the moving averages that a
    Keras optimizer built with ``use_ema=True`` keeps of ``source``'s trainable weights;
    weights it does not average are copied as they are."""
    opt = getattr(optimizer, "inner_optimizer", optimizer)
    averages = {}
    if opt is not None and getattr(opt, "use_ema", False) and opt.built:
        averages = {id(v): a for v, a in zip(opt._trainable_variables, opt._model_variables_moving_average)}
    for t, s in zip(target.weights, source.weights):
        t.assign(averages.get(id(s), s))


class ZooModel(keras.Model):
    """Base class. Subclasses set ``Config`` (a dataclass) and ``tracked`` (names of the
    Mean metrics their ``train_step``/``test_step`` report), and implement:

    - ``signatures()``: the inference methods the exporter turns into SavedModel/TFLite
      signatures (``zoo.export.Signature``), serving_default first;
    - ``evaluate_arrays(images, labels, train=None)``: model-specific numbers for the card
      (``train``: up to 10,000 training images and labels, for probes);
    - ``pictures(images, labels)``: name → image grid for the export folder;
    - ``preview()``: a small image grid drawn at the end of every ``preview_every`` epochs.
    """

    Config = None
    tracked = ("loss",)
    preview_every = 1  # epochs between preview grids (the last epoch always gets one)

    def __init__(self, config=None, **kwargs):
        name = kwargs.pop("name", None) or type(self).__name__.lower()
        super().__init__(name=name, **kwargs)
        if isinstance(config, dict):
            config = self.Config(**config)
        self.config = config or self.Config()
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def update_trackers(self, **values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def config_dict(self):
        return dataclasses.asdict(self.config)

    def compile_default(self, learning_rate):
        """The optimizer a recipe trains with (models with two optimizers override this)."""
        self.compile(optimizer=keras.optimizers.Adam(learning_rate))

    @property
    def all_optimizers(self):
        """Every optimizer the model trains with (checkpointed together)."""
        return [self.optimizer]

    def build_optimizers(self):
        """Create optimizer slots before a checkpoint restores into them."""
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def callbacks(self):
        """Model-specific Keras callbacks the recipe adds to training."""
        return []

    def conditional_samples(self, sample, num, labels, seed, batch):
        """``sample(labels, seed)`` over ``labels`` (default: classes in turn) in batches,
        each batch with its own seed; a NumPy array of images."""
        labels = np.arange(num) % self.config.num_classes if labels is None else np.asarray(labels)
        return np.concatenate([sample(tf.constant(labels[i:i + batch], tf.int32), tf.constant(seed + i)).numpy()
                               for i in range(0, num, batch)])

    # Hooks with neutral defaults.
    def evaluate_arrays(self, images, labels, train=None):
        return {}

    def training_selection(self):
        """None (train on every example) or ``(index, label) -> bool tensor``."""
        return None

    def pictures(self, images, labels):
        return {}

    def preview(self):
        return None
