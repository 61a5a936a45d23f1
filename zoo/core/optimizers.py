"""Keras' Adam, each variable updated by TensorFlow's fused Adam kernel.

Keras 3 writes Adam's update as about twenty separate operations per variable (casts, the two
β powers, the moment updates, the step), so a training step's graph grows with the number of
weights, not their size. Tracing and optimising that graph is most of a model's first training
call: the diffusion model's two U-Nets have 274 weights, and its first guided step took 26 s to
trace and 20 s more to run once (21,000 graph nodes); with one ``ResourceApplyAdam`` per weight,
16 s and 13 s (14,400 nodes); later steps take the same time (~500 ms per batch of 32 in
float32 on a 2-core CPU, either way). The kernel computes
what Keras' ``update_step`` writes, in the same order — m += (g − m)(1 − β₁),
v += (g² − v)(1 − β₂), w −= m·α / (√v + ε), α = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ) — so results agree to
float32 rounding (tests/test_optimizers.py checks it against Keras' Adam, on two replicas and
under XLA too).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("zoo")
class Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with the same arguments, state and checkpoints; AMSGrad and
    sparse (IndexedSlices) gradients take Keras' own path."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (inside a distribution strategy's
    update, the copy on the device being updated)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle
