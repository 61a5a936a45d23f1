"""The diffusion model's settings: every default, help text and check in one place."""

from __future__ import annotations

import dataclasses

from zoo.blocks import schedules
from zoo.core.config import (
    Config,
    ConfigError,
    each,
    in_range,
    non_negative,
    non_negative_int,
    one_of,
    positive_int,
    setting,
)


@dataclasses.dataclass
class DiffusionConfig(Config):
    """The defaults are the recipe's ``cpu`` preset: a model built in Python samples exactly
    as the default export does."""

    image_shape: tuple = setting((28, 28, 1), "image height, width, channels", from_data=True)
    num_classes: int = setting(10, "classes in the dataset", from_data=True)
    channels: tuple = setting((32, 64, 64), "U-Net channels per resolution level", each(positive_int))
    attention: tuple = setting((False, False, True), "self-attention at each level (one flag per level)",
                               each(one_of(True, False)))
    schedule: str = setting("cosine", "noise schedule", one_of(*schedules.SCHEDULES))
    timesteps: int = setting(1000, "diffusion steps T of training", positive_int)
    # After 15 CPU epochs v + Min-SNR gave classifier accuracy 0.57 / FID 379, ε + Min-SNR
    # 0.37 / 683, plain ε 0.24 / 976.
    prediction: str = setting("v", "what the network predicts: v = √ᾱ ε − √(1−ᾱ) x₀, or the noise ε",
                              one_of("v", "eps"))
    label_dropout: float = setting(0.1, "share of training labels replaced by the null class (for guidance)",
                                   in_range(0, 1, high_open=True))
    min_snr_gamma: float = setting(5.0, "Min-SNR-γ loss weighting (Hang et al. 2023); 0: plain MSE", non_negative)
    ema_decay: float = setting(0.999, "decay of the weights' moving average used for sampling and export",
                               in_range(0, 1, high_open=True))
    sample_steps: int = setting(20, "DDIM steps of the exported generate/sample/inpaint signatures", positive_int)
    # The card measures DDIM and DPM-Solver++(2M) at these steps and at sample_steps: the same
    # number of guided predictions each.
    dpm_solver_steps: int = setting(10, "steps of the exported DPM-Solver++(2M) sampler (generate_dpm_solver, "
                                    "sample_dpm_solver: Lu et al. 2022), one guided prediction per step",
                                    positive_int)
    guidance: float = setting(1.4, "guidance scale g of the export: ε_guide + g (ε − ε_guide), against the guide "
                              "network, or against the unconditional prediction without one (0: unconditional, "
                              "1: conditional alone); higher: more accurate digits, less diversity "
                              "(bench/diffusion_guidance.py)",
                              non_negative)
    guidance_interval: tuple = setting((0.0, 1.0), "apply guidance only at timesteps t/T in [low, high] "
                                       "(Kynkäänniemi et al. 2024); elsewhere the conditional prediction alone, "
                                       "one network call", each(in_range(0, 1)))
    inpaint_resample: int = setting(5, "RePaint resamplings r of the inpaint signature (1: none)", positive_int)
    inpaint_jump: int = setting(2, "RePaint jump length j (DDIM steps gone back up at a time)", positive_int)
    inpaint_eta: float = setting(1.0, "DDIM η of the inpainting steps (1: stochastic, as RePaint's DDPM steps)",
                                 in_range(0, 1))
    # Lower half hidden, 200 test digits (bench/results/inpainting_choose_label.json): a plain
    # unconditional fill is read as the original digit 0.685 of the time; choosing the label
    # first and filling with it, 0.785 at 10 timesteps and 0.83 at 25.
    inpaint_label_steps: int = setting(25, "timesteps at which the model compares the classes to choose the label "
                                       "of a label-free inpainting (a diffusion classifier), which it then fills "
                                       "with; 0: fill without a label", non_negative_int)
    # Autoguidance (Karras et al. 2024): guided against a half-width network trained in the first
    # epochs only; at the same accuracy 7-9 FID lower than classifier-free guidance, and cheaper
    # (docs/models/diffusion.md). Scale 1.4: the lowest with accuracy ≥ 0.97 against training
    # digits (bench/results/diffusion_autoguidance_guidance.json).
    guide_channels: tuple = setting((16, 32, 32), "U-Net channels of the guide network (one per level; "
                                    "none: classifier-free guidance by the network's own unconditional "
                                    "prediction)", each(positive_int, empty_ok=True))
    guide_epochs: int = setting(5, "epochs at the start of training in which the guide network trains too "
                                "(with the run's learning-rate schedule compressed into them)", positive_int)
    # Few-step students (zoo.models.diffusion.students): recipes/distill.py trains them from a trained model.
    students: tuple = setting((), "DDIM step counts of the few-step students to distil from the trained model's "
                              "guided sampler (e.g. 4 2; powers of two below --teacher-steps): a run with students "
                              "trains only them, from --init-from's weights (recipes/distill.py)",
                              each(positive_int, empty_ok=True), type=int)
    teacher_steps: int = setting(16, "steps of the guided sampler the first student learns, on the halving grid "
                                 "(a power of two); each next student halves the steps", positive_int)
    seed: int = setting(0, "seed of the model's noise", flag=False)

    def validate(self):
        if self.teacher_steps & (self.teacher_steps - 1):
            raise ConfigError("teacher_steps", self.teacher_steps,
                              "must be a power of two (each stage halves the steps)")
        if self.students:
            self.students = tuple(sorted(set(self.students), reverse=True))
            if [n for n in self.students if n & (n - 1)]:
                raise ConfigError("students", self.students, "must be powers of two (each stage halves the steps of "
                                  f"--teacher-steps {self.teacher_steps})")
            if self.students[0] >= self.teacher_steps:
                raise ConfigError("students", self.students, f"must take fewer steps than --teacher-steps "
                                  f"{self.teacher_steps}")
            if self.prediction != "v":
                raise ConfigError("students", self.students, "need a model that predicts v (a few-step student "
                                  "must predict x_0 well at t = T, where ε says nothing of it: Salimans & Ho 2022)")
        if self.teacher_steps > self.timesteps:
            raise ConfigError("teacher_steps", self.teacher_steps, f"must be at most the {self.timesteps} timesteps")
        if self.timesteps < 2:
            raise ConfigError("timesteps", self.timesteps, "must be at least 2")
        for name in ("sample_steps", "dpm_solver_steps"):
            if getattr(self, name) > self.timesteps:
                raise ConfigError(name, getattr(self, name), f"must be at most the {self.timesteps} timesteps")
        low_high = self.guidance_interval
        if len(low_high) != 2 or not low_high[0] < low_high[1]:
            raise ConfigError("guidance_interval", low_high, "must be two fractions of T, low < high")
        if len(self.attention) != len(self.channels):
            raise ConfigError("attention", self.attention, f"needs one flag per level of channels {self.channels}")
        if self.num_classes == 1 and not self.guide_channels and self.guidance != 1:
            raise ConfigError("guidance", self.guidance, "is classifier-free guidance (no --guide-channels), which "
                              "needs classes, and the data is unlabelled (one class): pass --guidance 1 (off), or "
                              "keep the default guide network (autoguidance needs no labels)")
        if self.guide_channels and len(self.guide_channels) != len(self.channels):
            raise ConfigError("guide_channels", self.guide_channels,
                              f"needs one width per level of channels {self.channels} (or none)")
