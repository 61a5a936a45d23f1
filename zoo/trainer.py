"""One training loop for every tf.distribute strategy, in the shape of Orbit's
StandardTrainer: ``train_loop_begin`` (reset metrics) → ``train_step`` under
``strategy.run`` over ``strategy.experimental_distribute_dataset`` → ``train_loop_end``
(epoch logs, validation, checkpoint), with Keras callbacks (progress bar, TensorBoard,
TerminateOnNaN, per-epoch previews, ...) driven around it.

Why not ``Model.fit``: under MultiWorkerMirroredStrategy it fails in Keras 3
("Attempt to convert a value (PerReplica…) to a Tensor", keras-team/keras#20585); this
loop runs the model's own ``train_step`` the same way on one CPU, several GPUs and
several workers.
"""

from __future__ import annotations

import math
import tempfile
import time

import keras
import tensorflow as tf

from zoo import ZooError, distribute


class NonFiniteLoss(ZooError):
    pass


class Trainer:
    def __init__(self, model, strategy, *, checkpoint_dir=None, jit_compile=False, max_to_keep=2):
        self.model = model
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.manager = None
        if checkpoint_dir is not None:
            # Every worker must take part in saving; only the chief keeps what it wrote.
            if not distribute.is_chief(strategy):
                checkpoint_dir = tempfile.mkdtemp(prefix="zoo-worker-ckpt-")
            checkpoint = tf.train.Checkpoint(model=model, optimizers=self._optimizers(), epoch=self.epoch)
            self.manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=max_to_keep)
        self._train_function = None
        self._test_function = None
        self.seconds = 0.0
        self.images = 0

    def _optimizers(self):
        return {f"optimizer_{i}": opt for i, opt in enumerate(self.model.all_optimizers)}

    def restore(self):
        """Load the newest readable checkpoint, if any; return the epoch to start from.

        A checkpoint that cannot be read (a crash while it was written) is reported and
        skipped in favour of the one before it.
        """
        if self.manager is None:
            return 0
        with self.strategy.scope():
            self.build()
        for path in reversed(self.manager.checkpoints):
            try:
                with self.strategy.scope():
                    self.manager.checkpoint.restore(path).assert_existing_objects_matched()
                return int(self.epoch.numpy())
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
                reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                print(f"zoo: skipping unreadable checkpoint {path} ({reason})")
        return 0

    def build(self):
        """Create every variable (model, optimizer slots) so a checkpoint restores into them."""
        self.model.build_optimizers()

    # Step functions -------------------------------------------------------------------
    def _make_function(self, step):
        if self.jit_compile:
            step = tf.function(step, jit_compile=True, reduce_retracing=True)

        @tf.function
        def function(iterator):
            outputs = self.strategy.run(step, args=(next(iterator),))
            return {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in outputs.items()}

        return function

    def _distribute(self, dataset):
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def _reset_metrics(self):
        for m in self.model.metrics:
            m.reset_state()

    def _metric_logs(self, prefix=""):
        return {prefix + m.name: float(m.result()) for m in self.model.metrics}

    # Loops ----------------------------------------------------------------------------
    def fit(self, dataset, *, epochs, steps_per_epoch, callbacks=(), validation_data=None,
            initial_epoch=0, verbose=1):
        """Train on ``dataset`` (batched with the global batch, repeated, drop_remainder)."""
        if steps_per_epoch < 1:
            raise ZooError("the training split is smaller than one global batch; lower --batch-size")
        batch_size = dataset.element_spec[0].shape[0]
        if batch_size is None:
            raise ZooError("Trainer.fit needs a dataset batched with drop_remainder=True, so every "
                           "step sees the full global batch on every replica")
        model = self.model
        if self._train_function is None:
            self._train_function = self._make_function(model.train_step)
        callbacks = keras.callbacks.CallbackList(
            list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch,
        )
        model.stop_training = False
        iterator = self._distribute(dataset)
        callbacks.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            start = time.perf_counter()
            for step in range(steps_per_epoch):
                callbacks.on_train_batch_begin(step)
                logs = {k: float(v) for k, v in self._train_function(iterator).items()}
                callbacks.on_train_batch_end(step, logs)
                if not all(math.isfinite(v) for v in logs.values()):
                    model.stop_training = True
                    self._raise_non_finite(epoch, step, logs)
                if model.stop_training:
                    break
            self.seconds += time.perf_counter() - start
            self.images += (step + 1) * batch_size
            logs = self._metric_logs()
            if validation_data is not None:
                logs.update(self.evaluate(validation_data, prefix="val_"))
            self.epoch.assign(epoch + 1)
            callbacks.on_epoch_end(epoch, logs)
            if self.manager is not None:
                self.manager.save(checkpoint_number=epoch + 1)
            if model.stop_training:
                break
        callbacks.on_train_end(logs)
        return model.history

    def _raise_non_finite(self, epoch, step, logs):
        last = self.manager.latest_checkpoint if self.manager else None
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved before it"
        raise NonFiniteLoss(
            f"training stopped at epoch {epoch + 1}, step {step + 1}: the losses became "
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
                    self.strategy.run(step, args=(batch,))

            self._test_function = test_function
        self._reset_metrics()
        self._test_function(self.strategy.experimental_distribute_dataset(dataset))
        return self._metric_logs(prefix)

    @property
    def images_per_second(self):
        return self.images / self.seconds if self.seconds else float("nan")
