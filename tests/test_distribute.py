import json
import os
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import free_ports, mirrored

from zoo import ZooError
from zoo.core import distribute
from zoo.models.vae import VAE, VAEConfig
from zoo.training.trainer import Trainer

SMALL = dict(latent_dim=4, filters=(4, 8), hidden=16)


def one_step(strategy, weights, images, batch):
    with strategy.scope():
        model = VAE(VAEConfig(**SMALL))
        model.configure_optimizers(1e-2)
        model.set_weights(weights)
        trainer = Trainer(model, strategy)
        trainer.build()
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), np.int32))).batch(batch, drop_remainder=True)
    trainer.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    return model.get_weights()


def test_two_replicas_update_weights_like_one_device(rng):
    # With its real reparameterisation noise: replicas draw the global batch's noise and
    # keep their rows (distribute.Draws), so the update does not depend on the split.
    assert len(tf.config.list_logical_devices("CPU")) == 2
    images = rng.uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
    weights = VAE(VAEConfig(**SMALL)).get_weights()
    strategy = mirrored()
    assert strategy.num_replicas_in_sync == 2

    single = one_step(tf.distribute.get_strategy(), weights, images, 16)
    double = one_step(strategy, weights, images, 16)
    moved = max(np.max(np.abs(a - b)) for a, b in zip(single, weights))
    assert moved > 1e-3  # the step really changed the weights
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_replicas_draw_their_rows_of_the_global_batch_noise():
    strategy = mirrored()
    with strategy.scope():
        gen = keras.random.SeedGenerator(7)
    single_gen = keras.random.SeedGenerator(7)

    @tf.function
    def draw():
        return strategy.run(lambda: distribute.Draws.for_replica(gen).normal([3, 2], stream=1))

    first = [t.numpy() for t in strategy.experimental_local_results(draw())]
    second = [t.numpy() for t in strategy.experimental_local_results(draw())]
    one_device = distribute.Draws.for_replica(single_gen).normal([6, 2], stream=1).numpy()
    np.testing.assert_array_equal(np.concatenate(first), one_device)  # replica k = rows 3k … 3k+2
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[0], second[0])


def test_strategy_selection_and_batch_checks(monkeypatch):
    assert distribute.strategy_name(distribute.get_strategy("auto")) == "default"  # no GPUs here
    with pytest.raises(ZooError, match="'bogus'"):
        distribute.get_strategy("bogus")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ZooError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")
    strategy = mirrored()
    assert distribute.check_global_batch(64, strategy) == 64
    with pytest.raises(ZooError, match="--batch-size 63 is not divisible by the 2 replicas"):
        distribute.check_global_batch(63, strategy)


def test_average_loss_divides_by_the_global_batch():
    strategy = mirrored()
    values = tf.constant([1.0, 2.0, 3.0, 4.0])
    dist = strategy.experimental_distribute_values_from_function(
        lambda ctx: values[2 * ctx.replica_id_in_sync_group: 2 * ctx.replica_id_in_sync_group + 2])
    per_replica = strategy.run(distribute.average_loss, args=(dist,))
    total = strategy.reduce("SUM", per_replica, axis=None)
    assert float(total) == pytest.approx(2.5)  # the mean over the global batch of 4


WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np, tensorflow as tf, keras
    from zoo.core import distribute
    from zoo.models.vae import VAE, VAEConfig
    from zoo.training.trainer import Trainer
    keras.utils.set_random_seed(0)
    strategy = distribute.get_strategy("multi_worker")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    images = np.random.default_rng(0).uniform(0, 1, (64, 28, 28, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(64, "int32"))).repeat().batch(16, drop_remainder=True)
    with strategy.scope():
        model = VAE(VAEConfig(latent_dim=4, filters=(4, 8), hidden=16))
        model.configure_optimizers(1e-2)
        before = [w.copy() for w in model.get_weights()]
        trainer = Trainer(model, strategy, checkpoint_dir=sys.argv[2])
        trainer.build()
    history = trainer.fit(ds, epochs=2, steps_per_epoch=3, verbose=0)
    np.savez(sys.argv[1], *model.get_weights())
    np.savez(sys.argv[1] + ".before.npz", *before)
    print("LOSSES", json.dumps(history.history["loss"]))
""")


@pytest.mark.slow
def test_multi_worker_training_on_two_local_processes(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"w{i}.npz"), str(tmp_path / "ckpt")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    before = np.load(tmp_path / "w0.npz.before.npz")
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    assert any(np.max(np.abs(w0[k] - before[k])) > 1e-3 for k in w0.files)
    losses = json.loads(outputs[0].split("LOSSES", 1)[1].splitlines()[0])
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert (tmp_path / "ckpt" / "checkpoint").exists()  # the chief wrote the checkpoints
