"""zoo.nets.GroupNorm against an independent NumPy GroupNorm and against Keras' own layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.blocks import nets


def numpy_group_norm(x, groups, gamma, beta, eps):
    n, h, w, c = x.shape
    g = x.astype(np.float64).reshape(n, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = g.var(axis=(1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(n, h, w, c) * gamma + beta


@pytest.mark.parametrize("shape, groups", [((3, 28, 28, 32), 8), ((2, 7, 7, 64), 8), ((4, 5, 3, 6), 3), ((2, 4, 4, 8), 1)])
def test_group_norm_matches_numpy_and_keras_with_its_gradients(shape, groups):
    rng = np.random.default_rng(0)
    # An offset mean far above the spread: where a one-pass E[x²] − E[x]² would lose digits.
    x = tf.constant(rng.normal(50.0, 3.0, shape).astype(np.float32))
    ours, theirs = nets.GroupNorm(groups), keras.layers.GroupNormalization(groups)
    ours.build(shape), theirs.build(shape)
    weights = [rng.normal(size=shape[-1]).astype(np.float32) for _ in range(2)]
    ours.set_weights(weights), theirs.set_weights(weights)

    expected = numpy_group_norm(x.numpy(), groups, *weights, ours.epsilon)
    np.testing.assert_allclose(ours(x).numpy(), expected, atol=2e-4)

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x) * tf.sin(x))
        return tape.gradient(y, [x, *layer.trainable_variables])

    for a, b in zip(gradients(ours), gradients(theirs)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3 * float(tf.reduce_max(tf.abs(b))))


def test_group_norm_computes_in_float32_under_mixed_precision_and_round_trips_its_config():
    x = tf.random.normal([2, 6, 6, 16], 5.0, 2.0)
    layer = nets.GroupNorm(4, dtype="mixed_bfloat16")
    out = layer(tf.cast(x, tf.bfloat16))
    assert out.dtype == tf.bfloat16
    reference = nets.GroupNorm(4)
    reference.build(x.shape)
    np.testing.assert_allclose(out.numpy().astype(np.float32), reference(tf.cast(tf.cast(x, tf.bfloat16), tf.float32)),
                               atol=0.05)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is nets.GroupNorm and clone.groups == 4


def test_group_norm_refuses_what_it_cannot_normalise():
    with pytest.raises(ValueError, match="channels-last"):
        nets.GroupNorm(2)(tf.zeros([2, 8, 4]))
    with pytest.raises(ValueError, match="divisible|multiple"):
        nets.GroupNorm(3)(tf.zeros([1, 4, 4, 8]))
