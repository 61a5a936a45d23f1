"""Few-step students of a trained diffusion model: guided distillation (Meng et al., CVPR
2023), then progressive distillation (Salimans & Ho, ICLR 2022), as stages of one run.

Stage 0 teaches a student of the teacher's architecture the guided prediction
(guide + g (network − guide), at the export's scale): one network call per step where the
teacher makes two. Each next stage halves the steps: its student, started from the one
before, learns to take in one DDIM step what the one before takes in two (on the halving
grid, ``Schedule.halving_timesteps``), 16 → 8 → 4 → 2 by default. Every student predicts v
(their paper's choice for few steps: at t = T an ε-prediction says nothing of x_0), is trained
by regression on the teacher's target through ``ZooModel.minimize``, and takes the run's
learning-rate schedule over its own stage. The run's epochs are split evenly over the stages,
so a resumed run is in the stage an uninterrupted one was.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from zoo.blocks import schedules
from zoo.core import distribute, progress
from zoo.core.errors import ZooError


@dataclasses.dataclass(frozen=True)
class Stage:
    index: int
    steps: int  # the student's
    guided: bool  # stage 0: learns the guided teacher at its own steps; later ones, the student before at twice
    network: str  # the student's attribute on the model

    @property
    def teacher_steps(self):
        return self.steps if self.guided else 2 * self.steps

    def epochs(self, run_epochs, count):
        """The epochs of a run of ``run_epochs`` this stage trains in (of ``count`` stages)."""
        return range(self.index * run_epochs // count, (self.index + 1) * run_epochs // count)


def network_name(steps):
    return f"student_{steps}"


def stages(config):
    """The chain from the guided teacher's steps down to the fewest student steps: none
    without students."""
    if not config.students:
        return []
    chain, steps = [config.teacher_steps], config.teacher_steps
    while steps > min(config.students):
        steps //= 2
        chain.append(steps)
    return [Stage(i, n, i == 0, network_name(n)) for i, n in enumerate(chain)]


def stage_of(all_stages, epoch, run_epochs):
    if run_epochs is None or run_epochs < len(all_stages):
        raise ZooError(f"--epochs must be at least the {len(all_stages)} distillation stages, got {run_epochs}")
    return next(s for s in all_stages if epoch in s.epochs(run_epochs, len(all_stages))).index


def stage_epochs(model, stage):
    return len(stage.epochs(model.run_epochs, len(model.stages)))


def start_stage(model, stage):
    """Start a stage's student from the network before it (the first from the trained
    network's average), unless it has trained already (a resumed run)."""
    optimizer = model.optimizer_of(stage.network)
    if int(optimizer.iterations.numpy()) == 0:
        before = model.network_ema if stage.index == 0 else getattr(model, model.stages[stage.index - 1].network)
        getattr(model, stage.network).set_weights(before.get_weights())
        what = (f"the guided {stage.steps}-step sampler in one network" if stage.guided else
                f"{stage.steps} steps where the student before takes {stage.teacher_steps}")
        progress.say(f"\nzoo: distillation stage {stage.index + 1} of {len(model.stages)}: {stage.network} learns "
                     f"{what} ({stage_epochs(model, stage)} epochs)")


def train_student(model, stage, images, labels):
    """One update of ``stage``'s student on a batch: per-example squared error of its v against
    the teacher's target at a timestep of its grid; returns the per-example losses."""
    schedule = model.schedule
    x0 = images * 2.0 - 1.0
    labels = tf.cast(labels, tf.int32)
    draws = distribute.Draws.for_replica(model.student_seed_generator)
    n = tf.shape(images)[0]
    grid = tf.constant(np.concatenate([schedule.halving_timesteps(stage.teacher_steps), [-1]]).astype(np.int32))
    k = draws.uniform([n], 0, 0, stage.steps, dtype=tf.int32) * (1 if stage.guided else 2)  # the student's points
    t = tf.gather(grid, k)
    x_t = schedule.q_sample(x0, t, draws.normal(tf.shape(images), 1))
    if stage.guided:
        target = model.guided_prediction(labels, per_example=True)(x_t, t)
    else:
        teacher = getattr(model, model.stages[stage.index - 1].network)

        def denoise(x, at):
            return schedule.eps_from_v(x, at, model.network_output(teacher, x, at, labels))

        x0_target = schedules.two_step_target(schedule, denoise, x_t, t, tf.gather(grid, k + 1), tf.gather(grid, k + 2))
        target = schedules.v_of_x0(schedule, x_t, t, x0_target)
    target = tf.stop_gradient(target)
    student = getattr(model, stage.network)

    def loss():
        prediction = tf.cast(student([x_t, t, labels], training=True), tf.float32)
        return tf.reduce_mean(tf.square(prediction - target), axis=[1, 2, 3])

    return model.minimize(loss, student)
