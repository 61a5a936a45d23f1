"""Strategy selection, the global batch, and per-replica loss scaling.

The rule every hand-written loss follows: compute a per-example loss, then
``average_loss`` it. That divides by the *global* batch, so the gradients that the
optimizer sums across replicas equal the gradient of the mean over the global batch,
and N replicas with global batch B update the weights exactly as one device with B.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from zoo import ZooError

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def get_strategy(name="auto") -> tf.distribute.Strategy:
    """``auto``: MirroredStrategy when more than one GPU is visible, else the default strategy."""
    if name not in STRATEGIES:
        raise ZooError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    tf_config = os.environ.get("TF_CONFIG")
    if not tf_config:
        raise ZooError(
            "--strategy multi_worker needs TF_CONFIG (the cluster and this worker's task); "
            "see https://www.tensorflow.org/guide/distributed_training#setting_up_the_tf_config_environment_variable"
        )
    try:
        json.loads(tf_config)
    except ValueError as e:
        raise ZooError(f"TF_CONFIG is not valid JSON ({e}): {tf_config[:200]!r}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def strategy_name(strategy) -> str:
    return {
        "MirroredStrategy": "mirrored",
        "MultiWorkerMirroredStrategy": "multi_worker",
        "_DefaultDistributionStrategy": "default",
    }.get(type(strategy).__name__, type(strategy).__name__)


def is_chief(strategy) -> bool:
    """The worker that writes checkpoints, logs and exports (always true off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def check_global_batch(batch_size, strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ZooError(f"--batch-size must be a positive integer, got {batch_size!r}")
    if batch_size % replicas:
        raise ZooError(
            f"--batch-size {batch_size} is not divisible by the {replicas} replicas of this "
            f"strategy; use a multiple of {replicas}, e.g. {replicas * max(1, batch_size // replicas)}"
        )
    return batch_size


def average_loss(per_example_loss):
    """Sum of a per-example loss over this replica's examples / the global batch."""
    return tf.nn.compute_average_loss(per_example_loss)


def replica_seed(seed_generator):
    """A stateless-RNG seed that differs per replica and per call.

    A Keras SeedGenerator's state is mirrored, so every replica would draw the same
    noise; folding in the replica id keeps the draws independent across replicas.
    """
    seed = tf.cast(seed_generator.next(), tf.int32)
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group if replica is not None else 0
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(replica_id, tf.int32))
