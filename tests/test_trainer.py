import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.models.vae import VAE, VAEConfig
from zoo.training.trainer import NonFiniteLoss, Trainer

SMALL = dict(latent_dim=4, filters=(4, 8), hidden=16)


def dataset(n=64, batch=16):
    images = np.random.default_rng(0).uniform(0, 1, (n, 28, 28, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((images, np.zeros(n, np.int32))).repeat().batch(batch, drop_remainder=True)


class ExplodingVAE(VAE):
    """Its loss turns NaN from the 6th step on (epoch 2 with 4 steps per epoch): the trackers
    report it, as they would a real divergence."""

    def objective(self, images, training=False):
        out = super().objective(images, training)
        bad = training and self.optimizer.iterations >= 5  # the count before this step's update
        return {**out, "loss": tf.where(bad, tf.constant(np.nan, tf.float32), out["loss"])}


def make(cls, ckpt):
    model = cls(VAEConfig(**SMALL))
    model.configure_optimizers(1e-3)
    trainer = Trainer(model, tf.distribute.get_strategy(), checkpoint_dir=str(ckpt))
    trainer.build()
    return model, trainer


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model, trainer = make(ExplodingVAE, tmp_path)
    with pytest.raises(NonFiniteLoss) as e:
        trainer.fit(dataset(), epochs=5, steps_per_epoch=4, verbose=0)
    message = str(e.value)
    assert "epoch 2, step 2" in message and "nan" in message and "ckpt-1" in message
    assert trainer.manager.latest_checkpoint.endswith("ckpt-1")


class CountingVAE(VAE):
    """Counts how often its training step is traced (Python runs only while tracing)."""
    traces = 0

    def train_step(self, data):
        CountingVAE.traces += 1
        return super().train_step(data)


def test_the_step_is_traced_once_and_its_losses_come_from_the_trackers():
    """K steps per call, calls of K and of fewer steps, two epochs, optimizer slots not built
    beforehand: one trace (tracing dominated the first epoch of the diffusion model: a step
    traced before the loop and in it, and a second trace for slots created in the first)."""
    model = CountingVAE(VAEConfig(**SMALL))
    model.configure_optimizers(1e-3)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    CountingVAE.traces = 0
    history = Trainer(model, tf.distribute.get_strategy(), steps_per_execution=3).fit(
        dataset(), epochs=2, steps_per_epoch=4, verbose=0, callbacks=[Record()])
    assert CountingVAE.traces == 1
    assert int(model.optimizer.iterations.numpy()) == 8 and len(seen) == 4  # calls of 3 and 1 steps
    assert set(seen[-1]) == {"loss", "reconstruction", "kl", "elbo"}
    assert seen[-1]["loss"] == pytest.approx(history.history["loss"][-1])  # the epoch's running mean


class StepNumberVAE(VAE):
    """Reports as its loss the number of steps before this one (0, 1, 2, ...), so the running
    mean after n steps is (n − 1) / 2; its gradients are the VAE's."""

    def objective(self, images, training=False):
        out = super().objective(images, training)
        steps = tf.cast(self.optimizer.iterations, tf.float32)
        return {**out, "loss": out["loss"] + tf.stop_gradient(steps - out["loss"])}


def test_a_calls_losses_are_read_once_the_next_call_runs_and_reach_the_callbacks_in_order():
    """The host waits for a call's losses only after starting the next call (on a GPU the
    device keeps working meanwhile), yet every callback sees each call's own losses, the
    calls' begin and end in order, and the epoch's last call before the epoch ends."""
    model = StepNumberVAE(VAEConfig(**SMALL))
    model.configure_optimizers(1e-3)
    events = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            events.append(("begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            # steps run so far, by the optimizer: the call after this one has already run
            # unless this is the epoch's last call
            events.append(("end", batch, logs["loss"], int(model.optimizer.iterations.numpy())))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch", epoch, logs["loss"]))

    Trainer(model, tf.distribute.get_strategy(), steps_per_execution=2).fit(
        dataset(), epochs=2, steps_per_epoch=5, verbose=0, callbacks=[Record()])
    # per epoch: calls of 2, 2 and 1 steps; the second epoch's steps are numbered from 5
    expected = []
    for epoch, first in ((0, 0), (1, 5)):
        for begin, end, later in ((0, 2, 4), (2, 4, 5), (4, 5, 5)):
            steps = range(first, first + end)
            expected += [("begin", begin), ("end", end - 1, pytest.approx(np.mean(steps)), first + later)]
        expected.append(("epoch", epoch, pytest.approx(np.mean(range(first, first + 5)))))
    assert events == expected


def test_restore_continues_from_the_saved_epoch(tmp_path):
    model, trainer = make(VAE, tmp_path)
    trainer.fit(dataset(), epochs=2, steps_per_epoch=3, verbose=0)
    weights = model.get_weights()
    resumed, trainer2 = make(VAE, tmp_path)
    assert trainer2.restore() == 2
    for a, b in zip(weights, resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.optimizer.iterations.numpy()) == 6
    history = trainer2.fit(dataset(), epochs=3, steps_per_epoch=3, initial_epoch=2, verbose=0)
    assert len(history.history["loss"]) == 1 and int(resumed.optimizer.iterations.numpy()) == 9


def test_validation_runs_after_the_first_every_nth_and_last_epoch_by_number(tmp_path):
    _, trainer = make(VAE, tmp_path)
    validated = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if "val_loss" in logs:
                validated.append(epoch + 1)

    held_out = dataset(32).take(2)
    trainer.fit(dataset(), epochs=7, steps_per_epoch=1, validation_data=held_out, validation_every=3,
                callbacks=[Record()], verbose=0)
    assert validated == [1, 3, 6, 7]
    validated.clear()  # a resumed part validates where an uninterrupted run does, not at its start
    trainer.fit(dataset(), epochs=11, steps_per_epoch=1, validation_data=held_out, validation_every=3,
                callbacks=[Record()], initial_epoch=7, verbose=0)
    assert validated == [9, 11]


def test_the_test_losses_are_the_last_validation_when_it_followed_the_last_epoch(tmp_path):
    """flow.held_out_losses: the last epoch's validation was a pass over the test split with
    the final weights, so it is not run again; a run resumed with nothing left to train (no
    validation in this process) gets a pass of its own."""
    from zoo.recipe.flow import held_out_losses

    model, trainer = make(VAE, tmp_path)
    held_out = dataset(32).take(2)
    passes = []
    evaluate = trainer.evaluate
    trainer.evaluate = lambda data, prefix="": passes.append(prefix) or evaluate(data, prefix)
    history = trainer.fit(dataset(), epochs=2, steps_per_epoch=1, validation_data=held_out, verbose=0)
    assert len(passes) == 2  # after epochs 1 and 2
    losses = held_out_losses(trainer, held_out)
    assert len(passes) == 2
    assert losses == {k[len("val_"):]: v[-1] for k, v in history.history.items() if k.startswith("val_")}
    assert {"loss", "elbo", "kl", "reconstruction"} <= set(losses)

    _, resumed = make(VAE, tmp_path)
    assert resumed.restore() == 2
    resumed.fit(dataset(), epochs=2, steps_per_epoch=1, validation_data=held_out, initial_epoch=2, verbose=0)
    again = held_out_losses(resumed, held_out)
    assert set(again) == set(losses)
    np.testing.assert_allclose(again["loss"], losses["loss"], rtol=0.05)  # same weights, other noise draws


@pytest.mark.slow
def test_a_resumed_run_validates_where_an_uninterrupted_one_did_and_ends_with_its_weights(tmp_path):
    """The VAE's test_step draws its noise from the generator training draws from: a resumed
    part that also validated at its own first epoch (the 5th here) would shift every later draw."""
    from zoo.core import data

    images = np.random.default_rng(0).uniform(0, 1, (48, 28, 28, 1)).astype(np.float32)
    labels = np.zeros(48, np.int32)
    held_out = tf.data.Dataset.from_tensor_slices((images[:16], labels[:16])).batch(16)

    class StopAfter(keras.callbacks.Callback):  # a run killed after its 4th epoch's checkpoint
        def __init__(self, epochs):
            super().__init__()
            self.epochs = epochs

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.epochs:
                self.model.stop_training = True

    def train(ckpt, first, stop=None):
        keras.utils.set_random_seed(0)  # the same initial weights
        model, trainer = make(VAE, ckpt)
        start = trainer.restore()
        assert start == first
        batches = data.training_batches(images, labels, 16, seed=1, first_epoch=start, epochs=7)
        trainer.fit(batches, epochs=7, steps_per_epoch=3, validation_data=held_out, validation_every=3,
                    initial_epoch=start, callbacks=[StopAfter(stop)] if stop else [], verbose=0)
        return model.get_weights()

    whole = train(tmp_path / "whole", 0)
    train(tmp_path / "parts", 0, stop=4)
    resumed = train(tmp_path / "parts", 4)
    for a, b in zip(whole, resumed):
        np.testing.assert_array_equal(a, b)


def test_half_written_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    model, trainer = make(VAE, tmp_path)
    trainer.fit(dataset(), epochs=2, steps_per_epoch=2, verbose=0)
    data_files = [f for f in os.listdir(tmp_path) if f.startswith("ckpt-2.data")]
    for f in data_files:  # truncate as a crash mid-write would
        with open(tmp_path / f, "r+b") as fh:
            fh.truncate(10)
    _, trainer2 = make(VAE, tmp_path)
    assert trainer2.restore() == 1
    assert "skipping unreadable checkpoint" in capsys.readouterr().out


def test_fit_rejects_datasets_with_partial_batches():
    model = VAE(VAEConfig(**SMALL))
    model.configure_optimizers(1e-3)
    trainer = Trainer(model, tf.distribute.get_strategy())
    ds = dataset().unbatch().batch(16)
    with pytest.raises(Exception, match="drop_remainder=True"):
        trainer.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)


def test_mixed_precision_trains_with_loss_scaling():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = VAE(VAEConfig(**SMALL))
        model.configure_optimizers(1e-3)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.encoder.layers[1].compute_dtype == "float16"
        trainer = Trainer(model, tf.distribute.get_strategy())
        trainer.build()
        history = trainer.fit(dataset(), epochs=1, steps_per_epoch=3, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.trainable_variables[0].dtype == "float32"  # float32 master weights
        assert model.decode(tf.zeros([1, 4])).dtype == tf.float32  # float32 outputs
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_weight_average_warms_up_and_follows_every_step():
    """The average moves inside minimize(): x̄ ← m·x̄ + (1 − m)·x with m = min(decay, (1+n)/(10+n))
    after n earlier updates; no sync call is needed before sampling."""
    from zoo.models.cgan import CGAN, CGANConfig

    class SGDCGAN(CGAN):
        def optimizers_for(self, learning_rate):
            return [(keras.optimizers.SGD(learning_rate), self.generator),
                    (keras.optimizers.SGD(learning_rate), self.discriminator)]

    model = SGDCGAN(CGANConfig(noise_dim=8, g_filters=(16, 8, 8), d_filters=(8, 16, 16), ema_decay=0.999))
    model.configure_optimizers(0.05)
    np.testing.assert_array_equal(model.generator_ema.weights[0].numpy(), model.generator.weights[0].numpy())
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)), tf.float32)
    labels = tf.constant(np.arange(8) % 10, tf.int32)
    expected = [w.numpy().astype(np.float64) for w in model.generator.trainable_weights]
    for n in range(3):
        model.train_step((images, labels))
        m = min(0.999, (1 + n) / (10 + n))
        expected = [m * e + (1 - m) * w.numpy() for e, w in zip(expected, model.generator.trainable_weights)]
    got = [w.numpy() for w in model.generator_ema.trainable_weights] or [
        w.numpy() for w in model.generator_ema.weights]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert max(np.abs(g - w.numpy()).max() for g, w in zip(got, model.generator.trainable_weights)) > 1e-6
