"""The diffusion model's samplers: each a small object that turns x_T noise and labels into
images with the model's networks, in one graph (``images``), and says what it exports
(``signatures``). The model owns the networks and the guided prediction; a sampler owns its
loop (``zoo.blocks.schedules``). A new sampler is a class here and an entry in
``Diffusion.sampler_objects``; no other sampler changes.

| sampler                | card name             | per step         | exported as                        |
|------------------------|-----------------------|------------------|------------------------------------|
| ``GuidedDDIM()``       | guided_ddim (in use)  | 1 guided         | generate, sample                   |
| ``GuidedDDIM(n)``      | ddim_<n>_steps        | 1 guided         | — (measured beside DPM-Solver)     |
| ``GuidedDPMSolver(n)`` | dpm_solver_<n>_steps  | 1 guided         | generate_dpm_solver,               |
|                        |                       |                  | sample_dpm_solver (dpm_solver_steps) |
| ``TeacherOnGrid(n)``   | guided_ddim_<n>_steps | 1 guided         | — (what the first student learns)  |
| ``Student(n)``         | student_<n>_steps     | 1 network call   | generate_<n>_steps, sample_<n>_steps |

A guided prediction is two network calls (the network and its guide) inside the guidance
interval and one outside it.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from zoo.blocks import schedules
from zoo.core import signature as sig
from zoo.models.diffusion import students


class Sampler:
    """x_T noise and labels → images in [0, 1], in one graph."""

    name = ""

    def images(self, model, noise, labels):
        raise NotImplementedError

    def signatures(self, model, noise, labels):
        """The export signatures of this sampler (``noise``, ``labels``: the inputs' declarations)."""
        return []

    def exported_pair(self, model, suffix, noise, labels):
        """``generate<suffix>`` (noise, labels; TFLite too) and ``sample<suffix>`` (labels, seed)."""
        return [
            sig.Signature(f"generate{suffix}", lambda noise, labels: {"images": self.images(model, noise, labels)},
                          (noise, labels), tflite=True),
            sig.Signature(f"sample{suffix}", lambda labels, seed: {"images": self.images(
                model, model.initial_noise(tf.shape(labels)[0], seed), labels)}, (labels, sig.seed())),
        ]


@dataclasses.dataclass(frozen=True)
class GuidedDDIM(Sampler):
    """DDIM (Song et al. 2021) with the guided prediction, on DDIM's grid; ``steps`` None: the
    config's ``sample_steps`` (the exported ``generate``/``sample``)."""

    steps: int | None = None

    @property
    def name(self):
        return "guided_ddim" if self.steps is None else f"ddim_{self.steps}_steps"

    def images(self, model, noise, labels):
        return model.generate(noise, labels, steps=self.steps)


@dataclasses.dataclass(frozen=True)
class GuidedDPMSolver(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022) with the guided prediction: second order at one guided
    prediction per step (``schedules.dpm_solver_sample``)."""

    steps: int

    @property
    def name(self):
        return f"dpm_solver_{self.steps}_steps"

    def images(self, model, noise, labels):
        x = schedules.dpm_solver_sample(model.schedule, model.guided_denoiser(labels), noise, self.steps)
        return model.to_images(x)

    def signatures(self, model, noise, labels):
        return self.exported_pair(model, "_dpm_solver", noise, labels) if self.steps == model.config.dpm_solver_steps \
            else []


@dataclasses.dataclass(frozen=True)
class OnHalvingGrid(Sampler):
    """DDIM on progressive distillation's grid (``Schedule.halving_timesteps``) with ``denoiser``."""

    steps: int

    def denoiser(self, model, labels):
        raise NotImplementedError

    def images(self, model, noise, labels):
        x = schedules.ddim_sample(model.schedule, self.denoiser(model, labels), noise, self.steps,
                                  times=model.schedule.halving_timesteps(self.steps))
        return model.to_images(x)


class TeacherOnGrid(OnHalvingGrid):
    """The guided sampler on the halving grid at ``steps``: what the first student learns."""

    @property
    def name(self):
        return f"guided_ddim_{self.steps}_steps"

    def denoiser(self, model, labels):
        return model.guided_denoiser(labels)


class Student(OnHalvingGrid):
    """The ``steps``-step student on the halving grid: one network call per step."""

    @property
    def name(self):
        return f"student_{self.steps}_steps"

    def denoiser(self, model, labels):
        student = getattr(model, students.network_name(self.steps))
        labels = tf.cast(labels, tf.int32)
        return lambda x, t: model.schedule.eps_from_v(x, t, model.network_output(student, x, t, labels))

    def signatures(self, model, noise, labels):
        return self.exported_pair(model, f"_{self.steps}_steps", noise, labels)


def of_config(config):
    """The samplers a model of ``config`` has, the exported guided DDIM first (the one in use
    until another is picked): DDIM and DPM-Solver++ at ``dpm_solver_steps`` and at
    ``sample_steps``, and with students the teacher on their grid and each student."""
    steps = sorted({config.dpm_solver_steps, config.sample_steps})
    found = [GuidedDDIM()]
    found += [GuidedDDIM(n) for n in steps if n != config.sample_steps]
    found += [GuidedDPMSolver(n) for n in steps]
    if config.students:
        found += [TeacherOnGrid(config.teacher_steps), *(Student(n) for n in config.students)]
    return {sampler.name: sampler for sampler in found}
