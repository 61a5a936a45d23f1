"""Strategy selection, the global batch, and the two rules that make N replicas train exactly
like one device.

1. Losses: compute a per-example loss, then ``average_loss`` it. That divides by the *global*
   batch, so the gradients the optimizer sums across replicas equal the gradient of the mean
   over the global batch. (``ZooModel.minimize`` applies it; no model writes it by hand.)
2. Noise: ``Draws`` draws every random tensor for the whole global batch from one seed and
   keeps this replica's rows, so replica k sees exactly the noise that rows k·b … (k+1)·b of
   a single-device batch would see.
"""

from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf

from zoo.core.errors import ZooError

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
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config():
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


def strategy_name(strategy) -> str:
    return {
        "MirroredStrategy": "mirrored",
        "MultiWorkerMirroredStrategy": "multi_worker",
        "CollectiveAllReduceStrategy": "multi_worker",
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


# Devices ------------------------------------------------------------------------------------------
def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_flags() -> set:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bfloat16() -> str | None:
    """How this CPU computes bfloat16 matrix products: "amx" (Intel AMX tiles), "avx512"
    (AVX512_BF16 dot products) or None (emulated: slower than float32)."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512"
    return None


# The loss rule ------------------------------------------------------------------------------------
def average_loss(per_example_loss):
    """Sum of a per-example loss over this replica's examples / the global batch."""
    return tf.nn.compute_average_loss(per_example_loss)


def assign_in_sync(variables, values):
    """Assign ``values`` (equal on every replica) to ``variables`` from inside ``strategy.run``
    — how the weight averages are updated: a mirrored variable is written through the
    strategy (``merge_call`` + ``extended.update``), as Keras' own optimizer does."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica (or eager, outside any strategy)
        for variable, value in zip(variables, values):
            variable.assign(value)
        return

    def merge(strategy, *merged):
        for variable, value in zip(variables, merged):
            strategy.extended.update(getattr(variable, "value", variable), lambda v, x: v.assign(x), args=(value,))

    context.merge_call(merge, args=tuple(values))


# The noise rule -----------------------------------------------------------------------------------
class Draws:
    """Stateless random draws for this replica's share of a global batch.

    ``seed``: a shape-[2] int32 seed for this step; streams (0, 1, 2, ...) give independent
    draws from it. Every draw has the local batch size as its first dimension; it is cut from
    a draw over the whole global batch, so the result does not depend on how the batch was
    split over replicas.
    """

    def __init__(self, seed, offset=0, replicas=1):
        self.seed = tf.cast(seed, tf.int32)
        self.offset, self.replicas = offset, replicas

    @classmethod
    def for_replica(cls, seed_generator):
        """The draws of this step on this replica (one ``seed_generator.next()`` per step)."""
        seed = tf.cast(seed_generator.next(), tf.int32)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return cls(seed)
        return cls(seed, context.replica_id_in_sync_group, context.num_replicas_in_sync)

    def _stream(self, stream):
        return tf.random.experimental.stateless_fold_in(self.seed, stream)

    def _draw(self, fn, shape, stream, **kwargs):
        shape = tf.convert_to_tensor(shape, tf.int32)
        if self.replicas == 1:
            return fn(shape, self._stream(stream), **kwargs)
        local = shape[0]
        whole = fn(tf.concat([[local * self.replicas], shape[1:]], 0), self._stream(stream), **kwargs)
        start = self.offset * local
        return whole[start:start + local]

    def normal(self, shape, stream=0):
        return self._draw(tf.random.stateless_normal, shape, stream)

    def uniform(self, shape, stream=0, minval=0, maxval=None, dtype=tf.float32):
        return self._draw(tf.random.stateless_uniform, shape, stream, minval=minval, maxval=maxval, dtype=dtype)


@contextlib.contextmanager
def float32_policy():
    """Build layers in float32 whatever the global mixed-precision policy (what is measured and
    exported is float32, whatever trained it)."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
