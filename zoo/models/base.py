"""The model contract: what every zoo model declares.

A zoo model is a ``ZooModel`` (a ``keras.Model``) plus any of the capability types of
``zoo.models.capabilities``. The trainer, the evaluator, the exporter and the recipe call only
what is declared there and here: the hooks of ``ZooModel`` (each with a neutral default) and
the methods of the capabilities a model mixes in.

Training: a model's ``train_step`` computes per-example losses and hands them to
``minimize(loss_fn, network)``, which owns the rules every model must follow (global-batch
averaging, mixed-precision loss scaling, the update, the weight averages). See
docs/design.md, "The model contract".
"""

from __future__ import annotations

import importlib
import weakref

import keras
import numpy as np
import tensorflow as tf

from zoo.core import distribute
from zoo.core.errors import ZooError
from zoo.core.optimizers import Adam


def batched(fn, arrays, batch=500):
    """``fn`` over NumPy ``arrays`` (one or a tuple, split along the first axis), concatenated."""
    arrays = arrays if isinstance(arrays, tuple) else (arrays,)
    return np.concatenate([np.asarray(fn(*(tf.constant(a[i:i + batch]) for a in arrays)))
                           for i in range(0, len(arrays[0]), batch)])


# The run settings of every model's "tiny" preset: a command line checked end to end in seconds
# (the tests' two workers, kill-and-resume and other datasets run it).
TINY_RUN = {"epochs": 1, "steps_per_epoch": 2, "eval_samples": 50, "tflite_variants": ("none",), "web": False}

# zoo_name → the class that declares it (``model_class``): how an export's card names its model.
_CLASSES = {}


def model_class(name):
    """The ZooModel class of an export's ``model`` name."""
    if name not in _CLASSES:
        import_every_model()
    if name not in _CLASSES:
        raise ZooError(f"no zoo model is called {name!r}; the models are {', '.join(sorted(_CLASSES))}")
    return _CLASSES[name]


def import_every_model():
    """Load every model's module, so that each class registers itself (with Keras too)."""
    from zoo import models

    for module in models.MODULES:
        importlib.import_module(f"zoo.models.{module}")


# Compiled inference functions per model, kept outside the Keras object so that neither Keras'
# attribute tracking nor a SavedModel export sees them.
_GRAPHS = weakref.WeakKeyDictionary()


# The contract ----------------------------------------------------------------------------------
class ZooModel(keras.Model):
    """Base class of every zoo model.

    Class attributes a model sets: ``Config`` (a ``zoo.config.Config`` dataclass),
    ``zoo_name`` (the name of its runs/ and exported/ folders), ``tracked`` (the losses its
    steps report); optionally ``presets``, ``run_defaults``, ``xla_by_default``,
    ``preview_every``, ``validation_every``, ``tflite_tolerance``. Methods to implement: ``train_step``,
    ``test_step``, ``signatures``; the hooks below have neutral defaults.
    """

    Config = None
    zoo_name = None
    tracked = ("loss",)
    # name → overrides of config fields and run settings (e.g. epochs); the first is the
    # recipe's default and must equal the Config defaults (one source for every default).
    presets = {}
    run_defaults = {}  # the recipe's defaults for shared settings: epochs, batch_size, learning_rate
    xla_by_default = False  # XLA for the train step when --jit-compile is not given (measured per model)
    # train in mixed bfloat16 by default on CPUs that compute it natively (bench/train_throughput.py
    # --precision; the card metrics after the default epochs must match float32 within noise)
    bfloat16_on_cpu = False
    headline = ("fid", "precision", "recall")  # the figures a run's report leads with (the card has all)
    preview_every = 1  # epochs between preview grids during training (the last epoch always gets one)
    validation_every = 1  # epochs between held-out losses (the first and the last epoch always get one)
    tflite_tolerance = 1e-4  # the largest SavedModel↔TFLite difference the exporter accepts
    # how much worse than the float32 TFLite file a quantized variant may be and still be kept:
    # accuracy points, relative FID, PSNR dB, ROC-AUC
    variant_tolerances = {"classifier_accuracy": 0.01, "fid": 0.10, "psnr": 0.5, "auc": 0.01}
    web_batches = (1, 10)  # fixed batch sizes of the TFLite copies for the browser
    variant_samples = 1000  # generated samples behind each TFLite variant's quality figures
    # networks (attribute names) that only training uses: an export does not store them
    training_only = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("zoo_name"):  # declared here, not inherited (a test's subclass stays out)
            _CLASSES[cls.zoo_name] = cls

    def __init__(self, config=None, **kwargs):
        kwargs.setdefault("name", self.zoo_name or type(self).__name__.lower())
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = self.Config.from_dict(config)
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise ZooError(f"{type(self).__name__} takes a {self.Config.__name__}, got {type(self.config).__name__}")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked}
        self._optimizer_plan = []  # [(optimizer, network attribute name or "" for the model)]
        self._averages = []  # [(source attribute, average attribute, decay)]

    # Keras plumbing -----------------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self.trackers.values())

    def update_trackers(self, **values):
        """Add this step's values to their trackers; returns the running means of those
        (a step that trains part of the model reports only that part's losses)."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in values}

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def headline_of(cls, metrics):
        """The ``headline`` figures a card's ``metrics`` has, in order."""
        return [k for k in cls.headline if k in metrics]

    def float32_copy(self):
        """The same model in float32, with these weights: what is exported, whatever
        precision trained it."""
        with distribute.float32_policy():
            copy = type(self).from_config(self.get_config())
        copy.set_weights(self.get_weights())
        return copy

    # Training hooks -----------------------------------------------------------------------------
    def train_step_for_epoch(self, epoch):
        """The step that trains epoch ``epoch`` (0-based): ``train_step``, unless the model
        trains in phases (the diffusion model's guide network, only in the first epochs).
        The trainer compiles each distinct step once, by name."""
        return self.train_step

    def begin_epoch(self, epoch):
        """Called by the trainer before each epoch it trains (0-based), on every worker, outside
        the compiled step: a model that trains in phases may prepare one (a distillation stage
        starts its student from the one before)."""

    def optimizers_for(self, learning_rate):
        """[(optimizer, network)]: what each optimizer trains; default one Adam for the model."""
        return [(Adam(learning_rate), self)]

    def configure_optimizers(self, learning_rate, learning_rate_over=None, epochs=None):
        """Create the optimizers (loss-scaled under mixed_float16) and compile.
        ``learning_rate_over(epochs)``: the run's learning rate as it would be for a run of
        that many epochs, for a network trained in part of the run only (default: the same
        ``learning_rate``); ``epochs``: the run's (a model that trains in phases splits them)."""
        self._learning_rate_over = learning_rate_over or (lambda epochs: learning_rate)
        self.run_epochs = epochs
        plan = self.optimizers_for(learning_rate)
        self.compile(optimizer=plan[0][0])  # Keras wraps it in a LossScaleOptimizer for mixed_float16
        optimizers = [self.optimizer]
        for optimizer, _ in plan[1:]:
            if self.dtype_policy.name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizers.append(optimizer)
        self._optimizer_plan = [(opt, self._attribute_of(net)) for opt, (_, net) in zip(optimizers, plan)]

    @property
    def optimizers(self):
        """Every optimizer the model trains with (checkpointed together)."""
        return [opt for opt, _ in self._optimizer_plan]

    def build_optimizers(self):
        """Create the optimizer slots before a checkpoint restores into them."""
        for optimizer, name in self._optimizer_plan:
            if not optimizer.built:
                optimizer.build(self._network(name).trainable_variables)

    def optimizer_of(self, name):
        """The optimizer of the network attribute ``name`` ("" for the whole model)."""
        optimizer = next((opt for opt, n in self._optimizer_plan if n == name), None)
        if optimizer is None:
            raise ZooError(f"{type(self).__name__}.optimizers_for has no optimizer for {name or 'the model'}")
        return optimizer

    def minimize(self, loss_fn, network=None):
        """One update of ``network`` (default: the whole model) by its optimizer.

        ``loss_fn()`` returns per-example losses (or a dict with them under "loss"); they are
        averaged over the *global* batch, scaled for mixed precision, differentiated and
        applied; then every weight average of ``network`` moves. Returns what ``loss_fn``
        returned.
        """
        network = self if network is None else network
        name = self._attribute_of(network)
        optimizer = self.optimizer_of(name)
        variables = network.trainable_variables
        with tf.GradientTape() as tape:
            outputs = loss_fn()
            per_example = outputs["loss"] if isinstance(outputs, dict) else outputs
            scaled = optimizer.scale_loss(distribute.average_loss(per_example))
        optimizer.apply(tape.gradient(scaled, variables), variables)
        for source, target, decay in self._averages:
            if source == name:
                self._move_average(self._network(source), self._network(target), decay, optimizer.iterations)
        return outputs

    def keep_average(self, source, target, decay):
        """Keep ``target`` (a network shaped like ``source``) an exponential moving average of
        ``source``'s weights, updated by every ``minimize`` of ``source``. Its decay warms up
        as min(decay, (1 + n) / (10 + n)) after n updates: a fixed 0.999 would still hold a
        third of the initial weights after the 1,000 steps a short CPU run has."""
        source_net, target_net = getattr(self, source), getattr(self, target)
        target_net.set_weights(source_net.get_weights())
        target_net.trainable = False
        self._averages.append((source, target, float(decay)))

    @staticmethod
    def _move_average(source, target, decay, iterations):
        n = tf.cast(iterations, tf.float32) - 1.0
        momentum = tf.minimum(decay, (1.0 + n) / (10.0 + n))
        values = [momentum * t + (1.0 - momentum) * s if s.trainable else s  # states are copied
                  for t, s in zip(target.weights, source.weights)]
        distribute.assign_in_sync(target.weights, values)

    def graph(self, key, fn, reduce_retracing=True, input_signature=None):
        """``tf.function(fn)``, compiled once per model and ``key`` (include in the key every
        Python value the function reads, e.g. a guidance scale). ``reduce_retracing=False``:
        one trace per input shape, so a caller with static shapes keeps them; an
        ``input_signature`` with a None batch: one trace for every batch size."""
        cache = _GRAPHS.setdefault(self, {})
        if key not in cache:
            cache[key] = tf.function(fn, reduce_retracing=reduce_retracing, input_signature=input_signature)
        return cache[key]

    def stored_weights(self):
        """(index in ``self.weights``, weight) of each weight an export stores: all but those of
        the ``training_only`` networks and of the networks whose weight average is stored (a
        model rebuilt from the export starts them from their average: ``start_from_averages``)."""
        skip = {id(w) for source, _, _ in self._averages for w in self._network(source).weights}
        skip |= {id(w) for name in self.training_only for w in self._network(name).weights}
        return [(i, w) for i, w in enumerate(self.weights) if id(w) not in skip]

    def networks(self):
        """attribute name → each sub-network (a Keras layer) of the model."""
        return {name: value for name, value in vars(self).items()
                if isinstance(value, keras.layers.Layer) and not name.startswith("_")}

    def shared_networks(self, other):
        """The sub-networks this model and ``other`` both have, with the same weight shapes."""
        mine, theirs = self.networks(), other.networks()
        return [name for name in mine if name in theirs
                and [w.shape for w in mine[name].weights] == [w.shape for w in theirs[name].weights]]

    def network_roles(self):
        """network attribute → (parameters, what it is, whether the export stores it): why
        ``count_params`` (every network held while training) exceeds what is shipped."""
        averaged = {source: target for source, target, _ in self._averages}
        average_of = {target: (source, decay) for source, target, decay in self._averages}
        roles = {}
        for name, network in self.networks().items():
            if name in average_of:
                source, decay = average_of[name]
                role, stored = f"the weight average (EMA {decay:g}) of {source}: what inference uses", True
            elif name in averaged:
                role, stored = f"trained by gradient steps; its average {averaged[name]} is exported", False
            elif name in self.training_only:
                role, stored = "used in training only", False
            else:
                role, stored = "trained by gradient steps", True
            roles[name] = (network.count_params(), role, stored)
        return roles

    def start_from_averages(self):
        """Set every averaged network to its average (a model rebuilt from an export, which
        stores the averages only: fine-tuning goes on from the weights that were shipped)."""
        for source, target, _ in self._averages:
            self._network(source).set_weights(self._network(target).get_weights())

    def _attribute_of(self, network):
        if network is self:
            return ""
        for name, value in vars(self).items():
            if value is network:
                return name
        for name in dir(type(self)):
            if not name.startswith("__") and getattr(self, name, None) is network:
                return name
        raise ZooError(f"{network.name} is not an attribute of {type(self).__name__}")

    def _network(self, name):
        return self if name == "" else getattr(self, name)

    def training_callbacks(self):
        """Model-specific Keras callbacks added to training."""
        return []

    def select_training_examples(self, labels):
        """A boolean mask over the training split (None: train on every example)."""
        return

    def after_training(self, images, labels):
        """Fit what is not learned by gradient steps (e.g. a density over codes) on the
        training data, before evaluation and export."""

    # Export and evaluation hooks ----------------------------------------------------------------
    def signatures(self):
        """The inference functions to export (``zoo.signature.Signature``), serving_default first."""
        raise NotImplementedError

    def measure(self, test, train):
        """Model-specific measurements for the card: ``test`` and ``train`` are (images,
        labels) NumPy pairs (the training split as trained on). Measurements only."""
        return {}

    def extra_pictures(self, images, labels):
        """Model-specific pictures (name → grid) beyond what its capabilities give."""
        return {}
