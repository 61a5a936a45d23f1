"""One training loop for every tf.distribute strategy, in the shape of Orbit's
StandardTrainer: ``train_loop_begin`` (reset metrics) → K × ``train_step`` under
``strategy.run`` inside one compiled call → ``train_loop_end`` (epoch logs, validation,
checkpoint), with Keras callbacks (progress bar, TensorBoard, TerminateOnNaN, per-epoch
previews, ...) driven around it.

Several steps per call: a call of the compiled function runs ``steps_per_execution`` steps in
a loop inside the graph, and its losses come back to Python once per call — on a GPU a small
model's step is a fraction of a millisecond, and a host sync per step would leave the
device idle. The NaN check and the callbacks run once per call, and a call's losses are read
(the host waits for them) only once the next call has been started, so that the device need
not idle while Python reads, checks and reports (read at once, the loop was 12–16% slower than
``Model.fit`` on a GPU: docs/history.md, "Measurements behind the code").

Why not ``Model.fit``: under MultiWorkerMirroredStrategy it fails in Keras 3
("Attempt to convert a value (PerReplica…) to a Tensor", keras-team/keras#20585); this loop
runs the model's own ``train_step`` the same way on one CPU, several GPUs and several workers.

Checkpoints (one per epoch) hold every model variable — the random-number generators'
states included, which ``tf.train.Checkpoint(model=...)`` alone does not restore — the
optimizers, the epoch and the training time so far; with the data order a function of
(seed, epoch) (``zoo.data.training_batches``), a resumed run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import signal
import tempfile
import threading
import time

import keras
import tensorflow as tf

from zoo.core import distribute
from zoo.core.errors import ZooError, error_line


class NonFiniteLoss(ZooError):
    pass


_ctrl_c = threading.Event()
_deferred = threading.Event()  # set while the training loop runs: it raises at its next boundary


@contextlib.contextmanager
def ctrl_c_cannot_be_lost():
    """Ctrl-C is remembered; outside the training loop it raises KeyboardInterrupt as usual,
    inside it the loop raises it at its next boundary (after the running call, or after the
    checkpoint being written; a second Ctrl-C raises at once). Remembering: Python drops a
    KeyboardInterrupt raised inside a finalizer ("Exception ignored in ... __del__", e.g. of a
    TensorFlow resource) — seen under load, where a SIGINT was lost and the run trained to the
    end with exit status 0. Deferring: raised at an arbitrary line of TensorFlow's Python during
    training, it once ended the process in a segmentation fault (1 run of the test suite under
    load) before the one-line message."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def pressed(signum, frame):
        again = _ctrl_c.is_set()
        _ctrl_c.set()
        if again or not _deferred.is_set():  # a second Ctrl-C does not wait for the boundary
            raise KeyboardInterrupt

    _ctrl_c.clear()
    before = signal.signal(signal.SIGINT, pressed)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        _ctrl_c.clear()


@contextlib.contextmanager
def ctrl_c_at_boundaries():
    """Inside: a Ctrl-C only sets the flag that ``raise_if_ctrl_c`` turns into KeyboardInterrupt."""
    _deferred.set()
    try:
        yield
    finally:
        _deferred.clear()
    raise_if_ctrl_c()


def raise_if_ctrl_c():
    if _ctrl_c.is_set():
        raise KeyboardInterrupt


def due(epoch, every, epochs):
    """Whether something done every ``every`` epochs runs after ``epoch`` (0-based) of
    ``epochs``: after every ``every``-th epoch and always after the last."""
    return (epoch + 1) % every == 0 or epoch + 1 == epochs


class Trainer:
    def __init__(self, model, strategy, *, checkpoint_dir=None, jit_compile=False, steps_per_execution=1,
                 max_to_keep=2):
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ZooError(f"--steps-per-execution must be a positive integer, got {steps_per_execution!r}")
        self.model = model
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.steps_per_execution = steps_per_execution
        with strategy.scope():
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            # Training time and images of every part of a run (a resumed run adds to them).
            self.seconds_variable = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")
            self.images_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_images")
        self.manager = None
        if checkpoint_dir is not None:
            # Every worker must take part in saving; only the chief keeps what it wrote.
            if not distribute.is_chief(strategy):
                checkpoint_dir = tempfile.mkdtemp(prefix="zoo-worker-ckpt-")
            checkpoint = tf.train.Checkpoint(model=model, variables=list(model.variables),
                                             optimizers=self._optimizers(), epoch=self.epoch,
                                             seconds=self.seconds_variable, images=self.images_variable)
            self.manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=max_to_keep)
        self._train_functions = {}  # the model's step name → its compiled function
        self._test_function = None
        self.seconds = 0.0  # this process's training time
        self.images = 0
        self.last_validation = None  # (epochs trained, losses) of this process's last validation

    def _optimizers(self):
        return {f"optimizer_{i}": opt for i, opt in enumerate(self.model.optimizers)}

    def restore(self):
        """Load the newest readable checkpoint, if any; return the epoch to start from.

        A checkpoint that cannot be read (a crash while it was written) is reported and
        skipped in favour of the one before it.
        """
        if self.manager is None:
            return 0
        self.build()
        for path in reversed(self.manager.checkpoints):
            try:
                with self.strategy.scope():
                    self.manager.checkpoint.restore(path).assert_existing_objects_matched()
                return int(self.epoch.numpy())
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
                reason = error_line(e, limit=160)
                print(f"zoo: skipping unreadable checkpoint {path} ({reason})")
        return 0

    def build(self):
        """Create every variable (model, optimizer slots) so a checkpoint restores into them."""
        with self.strategy.scope():
            self.model.build_optimizers()

    @property
    def total_seconds(self):
        """Training seconds of every part of this run, resumed parts included."""
        return float(self.seconds_variable.numpy())

    @property
    def total_images(self):
        return int(self.images_variable.numpy())

    # Step functions -------------------------------------------------------------------
    def _make_function(self, step):
        if self.jit_compile:
            step = tf.function(step, jit_compile=True, reduce_retracing=True)

        names = set()

        @tf.function
        def function(iterator, steps):
            # A loop inside the graph: no return to Python per step. The step is traced once,
            # in the loop's body, and nothing is carried out of it: what the steps report is
            # read from the model's trackers after the call (as evaluate does). Carrying the
            # outputs needed one step traced before the loop too; with the slots' retrace
            # (fit), a tiny guided diffusion model's first two epochs took 262 s, now 83 s.
            for _ in tf.range(steps):
                outputs = self.strategy.run(step, args=(next(iterator),))
                names.update(outputs)  # at tracing: the trackers this step reports

        return function, names

    def _train_function_for(self, epoch):
        """(compiled function, the names of the trackers its step reports) for ``epoch``."""
        step = self.model.train_step_for_epoch(epoch)
        if step.__name__ not in self._train_functions:
            self._train_functions[step.__name__] = self._make_function(step)
        return self._train_functions[step.__name__]

    def _reset_metrics(self):
        for m in self.model.metrics:
            m.reset_state()

    def _metric_results(self, prefix="", names=None):
        """The trackers' results as tensors (on a GPU: not waited for); only ``names`` where
        given — what the steps of an epoch reported (a phase's loss is left out once the phase
        is over)."""
        return {prefix + m.name: m.result() for m in self.model.metrics if names is None or m.name in names}

    def _metric_logs(self, prefix="", names=None):
        """The trackers' results as Python floats."""
        return {k: float(v) for k, v in self._metric_results(prefix, names).items()}

    # Loops ----------------------------------------------------------------------------
    def fit(self, dataset, *, epochs, steps_per_epoch, callbacks=(), validation_data=None,
            validation_every=1, initial_epoch=0, verbose=1):
        """Train on ``dataset``: exactly (epochs − initial_epoch) × steps_per_epoch global
        batches (``zoo.data.training_batches`` from ``initial_epoch``, or any dataset that
        yields at least that many full batches). ``validation_data`` is evaluated after the
        first epoch, every ``validation_every``-th and the last — by epoch number, never by
        where this part of a run began: a model's ``test_step`` may draw noise from the
        generators its training draws from, so a resumed run must validate where an
        uninterrupted one did to end with the same weights."""
        if steps_per_epoch < 1:
            raise ZooError("the training split is smaller than one global batch; lower --batch-size")
        batch_size = dataset.element_spec[0].shape[0]
        if batch_size is None:
            raise ZooError("Trainer.fit needs a dataset batched with drop_remainder=True, so every "
                           "step sees the full global batch on every replica")
        model = self.model
        callbacks = keras.callbacks.CallbackList(
            list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch,
        )
        model.stop_training = False
        # Optimizer slots created before the first call: slots created while a function is
        # first traced make tf.function trace it a second time.
        self.build()
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        callbacks.on_train_begin()
        logs = {}
        with ctrl_c_at_boundaries():  # a Ctrl-C stops the loop between calls, not inside one
            for epoch in range(initial_epoch, epochs):
                self._reset_metrics()
                callbacks.on_epoch_begin(epoch)
                model.begin_epoch(epoch)
                logs, step, elapsed = self._train_epoch(epoch, iterator, steps_per_epoch, callbacks)
                self.seconds += elapsed
                self.images += step * batch_size
                self.seconds_variable.assign_add(elapsed)
                self.images_variable.assign_add(step * batch_size)
                if validation_data is not None and (epoch == 0 or due(epoch, validation_every, epochs)):
                    validation = self.evaluate(validation_data)
                    self.last_validation = (epoch + 1, validation)
                    logs.update({f"val_{k}": v for k, v in validation.items()})
                self.epoch.assign(epoch + 1)
                callbacks.on_epoch_end(epoch, logs)
                if self.manager is not None:
                    self.manager.save(checkpoint_number=epoch + 1)
                raise_if_ctrl_c()
                if model.stop_training:
                    break
        callbacks.on_train_end(logs)
        return model.history

    def _train_epoch(self, epoch, iterator, steps_per_epoch, callbacks):
        """One epoch's calls of ``steps_per_execution`` steps; (logs, steps, seconds)."""
        model = self.model
        train_function, reported = self._train_function_for(epoch)
        start, step = time.perf_counter(), 0
        unread = None  # (steps done, the trackers' results) of the call not yet read
        callbacks.on_train_batch_begin(step)
        while step < steps_per_epoch:
            k = min(self.steps_per_execution, steps_per_epoch - step)
            train_function(iterator, tf.constant(k))
            step += k
            # Read the previous call's losses now that this one is running; the
            # callbacks still see begin and end of each call in order (a call's
            # begin comes once the one before has been read).
            if unread is not None:
                self._after_call(epoch, *unread, callbacks)
                callbacks.on_train_batch_begin(unread[0])
            unread = (step, self._metric_results(names=reported))
            raise_if_ctrl_c()
            if model.stop_training:
                break
        logs = dict(self._after_call(epoch, *unread, callbacks))  # extended by the caller
        return logs, step, time.perf_counter() - start

    def _after_call(self, epoch, step, results, callbacks):
        """A call's losses read (the running means of the epoch so far): the callbacks'
        batch end, then the NaN check; returns them."""
        logs = {k: float(v) for k, v in results.items()}
        callbacks.on_train_batch_end(step - 1, logs)
        if not all(math.isfinite(v) for v in logs.values()):
            self.model.stop_training = True
            self._raise_non_finite(epoch, step, logs)
        return logs

    def _raise_non_finite(self, epoch, step, logs):
        last = self.manager.latest_checkpoint if self.manager else None
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved before it"
        raise NonFiniteLoss(
            f"training stopped at epoch {epoch + 1}, step {step}: the losses became "
            f"{ {k: v for k, v in logs.items() if not math.isfinite(v)} } ({kept}); lower "
            "--learning-rate, or turn off --mixed-precision"
        )

    def evaluate(self, dataset, prefix=""):
        """Run ``test_step`` over a finite batched dataset; return the metric results."""
        if self._test_function is None:
            step = self.model.test_step
            if self.jit_compile:
                step = tf.function(step, jit_compile=True, reduce_retracing=True)

            @tf.function
            def test_function(distributed):
                # Iterating inside tf.function ends cleanly on every replica and worker,
                # also when the last batch is partial.
                for batch in distributed:
                    outputs = self.strategy.run(step, args=(batch,))
                    self._test_names.update(outputs)  # at tracing: the trackers test_step reports

            self._test_names = set()
            self._test_function = test_function
        self._reset_metrics()
        self._test_function(self.strategy.experimental_distribute_dataset(dataset))
        return self._metric_logs(prefix, self._test_names)

    @property
    def images_per_second(self):
        return self.images / self.seconds if self.seconds else float("nan")
