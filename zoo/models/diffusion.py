"""Class-conditional denoising diffusion model (DDPM training, DDIM sampling) with
autoguidance (or classifier-free guidance) and an EMA of the weights.

The network (``nets.unet``) predicts v (or ε) from x_t, t and a label; labels are dropped
to a null class with probability ``label_dropout`` while training, so one network gives
both conditional and unconditional predictions. ``network_ema``, the moving average of the
network moved by every training step, is what sampling, evaluation and export use. A
smaller guide network, trained alongside in the first ``guide_epochs`` epochs only (and
averaged the same way), is what sampling guides against: a worse model of the same data.
Schedules and samplers live in ``zoo.schedules``; every sampler runs inside one graph
(``tf.while_loop``).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets, schedules
from zoo.core import distribute
from zoo.core import signature as sig
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
from zoo.core.errors import ZooError
from zoo.core.images import grid
from zoo.core.optimizers import Adam
from zoo.models import distillation
from zoo.models.base import TINY_RUN, ConditionalGenerator, Inpainter, ZooModel


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
    # Few-step students (zoo.models.distillation): recipes/distill.py trains them from a trained model.
    students: tuple = setting((), "DDIM step counts of the few-step students to distil from the trained model's "
                              "guided sampler (e.g. 4 2; powers of two below --teacher-steps): a run with students "
                              "trains only them, from --init-from's weights (recipes/distill.py)",
                              each(positive_int, empty_ok=True), type=int)
    teacher_steps: int = setting(16, "steps of the guided sampler the first student learns, on the halving grid "
                                 "(a power of two); each next student halves the steps", positive_int)
    seed: int = setting(0, "seed of the model's noise", flag=False)

    def validate(self):
        if self.teacher_steps & (self.teacher_steps - 1):
            raise ConfigError("teacher_steps", self.teacher_steps, "must be a power of two (each stage halves the steps)")
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
        if self.sample_steps > self.timesteps:
            raise ConfigError("sample_steps", self.sample_steps, f"must be at most the {self.timesteps} timesteps")
        low_high = self.guidance_interval
        if len(low_high) != 2 or not low_high[0] < low_high[1]:
            raise ConfigError("guidance_interval", low_high, "must be two fractions of T, low < high")
        if len(self.attention) != len(self.channels):
            raise ConfigError("attention", self.attention, f"needs one flag per level of channels {self.channels}")
        if self.guide_channels and len(self.guide_channels) != len(self.channels):
            raise ConfigError("guide_channels", self.guide_channels,
                              f"needs one width per level of channels {self.channels} (or none)")


@keras.saving.register_keras_serializable("zoo")
class Diffusion(ZooModel, ConditionalGenerator, Inpainter):
    Config = DiffusionConfig
    zoo_name = "diffusion"
    tracked = ("loss", "guide_loss", "student_loss")
    # full: for a GPU (untested); its guide as much narrower than the network as the CPU preset's
    # distill: the students of a trained cpu-preset model (recipes/distill.py); tiny: a command line
    # checked in seconds
    presets = {"cpu": {}, "full": {"channels": (64, 128, 256), "guide_channels": (32, 64, 128), "epochs": 200},
               "distill": {"students": (4, 2), "init_from": "exported/diffusion", "epochs": 28,
                           "learning_rate": 2e-4, "warmup_steps": 20, "tflite_variants": ("int8_dynamic",)},
               "tiny": {"channels": (8, 16), "attention": (False, True), "guide_channels": (4, 8), "sample_steps": 4,
                        "inpaint_resample": 1, "inpaint_label_steps": 2, **TINY_RUN}}
    # Only int8_dynamic is tried: float16's DDIM loop returned NaN for every sample and the
    # full-integer calibrator crashed (signal 11) in TF 2.21; judged on 500 paired samples (the
    # same noise and labels as float32's). Batch 32, cosine decay from 2e-3, 50 epochs: the
    # measured runs behind them are in docs/history.md ("The diffusion model's defaults").
    run_defaults = {"epochs": 50, "batch_size": 32, "learning_rate": 2e-3, "lr_schedule": "cosine",
                    "warmup_steps": 200, "tflite_variants": ("int8_dynamic",)}
    variant_samples = 500
    jit_compile = False  # measured on a 2-core CPU: this U-Net trained faster without XLA (194 vs 160 images/s)
    # bfloat16 where the CPU computes it natively: the step 1.32× faster, card metrics equal within
    # their errors (bench/results/train_throughput_bfloat16_groupnorm.json; docs/history.md)
    bfloat16_on_cpu = True
    # the held-out loss (1,000 test digits through the U-Net) takes ~2.5 s: 140 s of a default
    # run if measured after every epoch
    validation_every = 5
    preview_every = 10  # a preview samples 80 digits × 20 steps, ~3.4 s (~20% of a CPU epoch): 5 in a default run

    # The exported DDIM loop recovers x̂0 = (x_t − √(1−ᾱ) ε̂) / √ᾱ, and √ᾱ_{T−1} ≈ 5e-5 in
    # its first step turns float32 rounding differences between TFLite and TensorFlow kernels
    # into up to ~1e-3 in the samples (v-models go through the same ε route).
    tflite_tolerance = 1e-3

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.schedule = schedules.Schedule(c.schedule, c.timesteps)
        self.network = nets.unet(c.image_shape, c.num_classes, c.channels, c.attention)
        self.network_ema = nets.unet(c.image_shape, c.num_classes, c.channels, c.attention, name="unet_ema")
        self.keep_average("network", "network_ema", c.ema_decay)
        self.seed_generator = keras.random.SeedGenerator(c.seed)
        self.guide_network = self.guide_network_ema = None
        if c.guide_channels:
            self.guide_network = nets.unet(c.image_shape, c.num_classes, c.guide_channels, c.attention,
                                           name="unet_guide")
            self.guide_network_ema = nets.unet(c.image_shape, c.num_classes, c.guide_channels, c.attention,
                                               name="unet_guide_ema")
            self.keep_average("guide_network", "guide_network_ema", c.ema_decay)
            # its own draws: the network's training is the same with or without a guide
            self.guide_seed_generator = keras.random.SeedGenerator(c.seed + 1)
        self.stages = distillation.stages(c)
        for stage in self.stages:
            setattr(self, stage.network, nets.unet(c.image_shape, c.num_classes, c.channels, c.attention,
                                                   name=stage.network))
        if self.stages:
            self.student_seed_generator = keras.random.SeedGenerator(c.seed + 2)
        # the students the export ships; the others only teach the next one
        self.training_only = tuple(stage.network for stage in self.stages if stage.steps not in c.students)
        self._sampler = self.samplers()[0]
        self.built = True  # the networks are functional models, built on construction

    def optimizers_for(self, learning_rate):
        if self.stages:  # a distillation: the students only, each with the run's schedule over its stage
            distillation.stage_of(self.stages, 0, self.run_epochs)  # enough epochs for every stage
            return [(Adam(self._learning_rate_over(distillation.stage_epochs(self, stage))),
                     getattr(self, stage.network)) for stage in self.stages]
        plan = [(Adam(learning_rate), self.network)]
        if self.guide_network is not None:
            plan.append((Adam(self._learning_rate_over(self.config.guide_epochs)),
                         self.guide_network))
        return plan

    # Training --------------------------------------------------------------------------
    def draw(self, images, seed_generator=None):
        """t, ε and the label-dropout mask for a batch: fresh per step."""
        draws = distribute.Draws.for_replica(seed_generator or self.seed_generator)
        n = tf.shape(images)[0]
        t = draws.uniform([n], 0, 0, self.config.timesteps, dtype=tf.int32)
        noise = draws.normal(tf.shape(images), 1)
        drop = draws.uniform([n], 2)
        return t, noise, drop < self.config.label_dropout

    def per_example_loss(self, images, labels, training, guide=False):
        """The loss of the network (``guide``: of the guide network) on a batch."""
        network = self.guide_network if guide else self.network
        x0 = images * 2.0 - 1.0
        t, noise, drop = self.draw(images, self.guide_seed_generator if guide else None)
        labels = tf.where(drop, self.config.num_classes, tf.cast(labels, tf.int32))
        x_t = self.schedule.q_sample(x0, t, noise)
        target = noise if self.config.prediction == "eps" else self.schedule.v_target(x0, t, noise)
        pred = tf.cast(network([x_t, t, labels], training=training), tf.float32)
        return self.loss_weight(t) * tf.reduce_mean(tf.square(pred - target), axis=[1, 2, 3])

    def loss_weight(self, t):
        """Min-SNR-γ: each timestep's loss weighted as if the target were x_0 with weight
        min(SNR_t, γ), so the many nearly-clean timesteps stop dominating the gradient."""
        gamma = self.config.min_snr_gamma
        if gamma == 0:
            return tf.ones_like(t, tf.float32)
        snr = self.schedule.snr(t)
        return tf.minimum(snr, gamma) / (snr if self.config.prediction == "eps" else snr + 1.0)

    def train_step(self, data):
        images, labels = data
        per_example = self.minimize(lambda: self.per_example_loss(images, labels, training=True), self.network)
        return self.update_trackers(loss=per_example)

    def train_step_with_guide(self, data):
        """A step of the network and one of the guide network, on the same batch."""
        logs = self.train_step(data)
        images, labels = data
        per_example = self.minimize(lambda: self.per_example_loss(images, labels, True, guide=True),
                                    self.guide_network)
        return {**logs, **self.update_trackers(guide_loss=per_example)}

    def train_step_for_epoch(self, epoch):
        if self.stages:
            return self._stage_steps()[distillation.stage_of(self.stages, epoch, self.run_epochs)]
        if self.guide_network is not None and epoch < self.config.guide_epochs:
            return self.train_step_with_guide
        return self.train_step

    def begin_epoch(self, epoch):
        """The first epoch of a distillation stage starts its student from the one before (the
        first from the trained network's average), unless it has trained already (a resumed run)."""
        if self.stages:
            distillation.start_stage(self, self.stages[distillation.stage_of(self.stages, epoch, self.run_epochs)])

    def _stage_steps(self):
        """One named step per stage (the trainer compiles each distinct step once, by name)."""
        if not hasattr(self, "_steps_by_stage"):
            self._steps_by_stage = []
            for stage in self.stages:
                def step(data, stage=stage):
                    images, labels = data
                    return self.update_trackers(student_loss=distillation.train_student(self, stage, images, labels))

                step.__name__ = f"train_{stage.network}"
                self._steps_by_stage.append(step)
        return self._steps_by_stage

    def test_step(self, data):
        images, labels = data
        return self.update_trackers(loss=self.per_example_loss(images, labels, training=False))

    # Sampling (the averaged network) ---------------------------------------------------
    def network_call(self, network):
        """``network`` as one tf.function, traced once per input shape and called from every
        sampler, signature and SavedModel that uses it instead of traced at each call site: a
        SavedModel's four signatures traced the U-Nets nine times (~2.5 s each) and stored
        nine copies of them."""
        return self.graph(("network call", network.name), lambda x, t, y: network([x, t, y]), reduce_retracing=False)

    def predict(self, network, x_t, t, labels):
        """``network``'s output (v or ε, as the config says it predicts), float32."""
        inputs = (tf.convert_to_tensor(v) for v in (x_t, t, labels))
        return tf.cast(self.network_call(network)(*inputs), tf.float32)

    def as_eps(self, x_t, t, out):
        return out if self.config.prediction == "eps" else self.schedule.eps_from_v(x_t, t, out)

    def eps(self, network, x_t, t, labels):
        return self.as_eps(x_t, t, self.predict(network, x_t, t, labels))

    def guided_prediction(self, labels, guidance=None, per_example=False):
        """x_t, t → the averaged network's guided output, at timesteps inside
        ``guidance_interval`` (a sampler step has one t for the whole batch); elsewhere the
        conditional prediction alone, one call. With a guide network (autoguidance):
        guide + g (network − guide), both under the label; without one (classifier-free):
        uncond + g (cond − uncond), both halves in one batched call. Guidance is linear in the
        output, and ε is linear in v, so combining v's is combining ε's. ``labels`` None (or
        g = 0): the unconditional prediction alone; g = 1: the conditional one. ``per_example``:
        each example has its own t (a distillation target), so the interval is applied per example."""
        network = self.network_ema
        g = self.config.guidance if guidance is None else guidance
        if labels is None or g == 0:
            return lambda x, t: self.predict(network, x, t, tf.fill(tf.shape(t), self.config.num_classes))
        labels = tf.cast(labels, tf.int32)
        if g == 1:
            return lambda x, t: self.predict(network, x, t, labels)
        low, high = (round(f * (self.config.timesteps - 1)) for f in self.config.guidance_interval)

        if self.guide_network_ema is not None:
            def guided(x, t):
                guide = self.predict(self.guide_network_ema, x, t, labels)
                return guide + g * (self.predict(network, x, t, labels) - guide)
        else:
            null = tf.fill(tf.shape(labels), self.config.num_classes)

            def guided(x, t):
                both = self.predict(network, tf.concat([x, x], 0), tf.concat([t, t], 0), tf.concat([labels, null], 0))
                cond, uncond = tf.split(both, 2)
                return uncond + g * (cond - uncond)

        if (low, high) == (0, self.config.timesteps - 1):
            return guided
        if per_example:
            def inside_or_not(x, t):
                inside = tf.logical_and(t >= low, t <= high)[:, None, None, None]
                return tf.where(inside, guided(x, t), self.predict(network, x, t, labels))

            return inside_or_not

        def predict(x, t):
            inside = tf.logical_and(t[0] >= low, t[0] <= high)
            return tf.cond(inside, lambda: guided(x, t), lambda: self.predict(network, x, t, labels))

        return predict

    def guided_denoiser(self, labels, guidance=None):
        """x_t, t → the guided ε̂ (``guided_prediction``, as ε): what the samplers see."""
        predict = self.guided_prediction(labels, guidance)
        return lambda x, t: self.as_eps(x, t, predict(x, t))

    def to_images(self, x):
        return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)

    def generate(self, noise, labels, steps=None, guidance=None, eta=0.0, seed=None):
        """DDIM from the given x_T noise (deterministic for η = 0), images in [0, 1]."""
        x = schedules.ddim_sample(self.schedule, self.guided_denoiser(labels, guidance), noise,
                                  steps or self.config.sample_steps, eta=eta, seed=seed)
        return self.to_images(x)

    def initial_noise(self, n, seed):
        shape = tf.concat([[n], tf.constant(self.config.image_shape, tf.int32)], 0)
        return tf.random.stateless_normal(shape, seed=tf.stack([tf.cast(seed, tf.int32), 0]))

    def sample(self, labels, seed):
        return self.generate(self.initial_noise(tf.shape(labels)[0], seed), labels)

    def generate_with_student(self, steps, noise, labels):
        """DDIM on the halving grid with the ``steps``-step student: one network call per step."""
        student = getattr(self, distillation.network_name(steps))
        labels = tf.cast(labels, tf.int32)
        x = schedules.ddim_sample(self.schedule, lambda x, t: self.schedule.eps_from_v(
            x, t, self.predict(student, x, t, labels)), noise, steps, times=self.schedule.halving_timesteps(steps))
        return self.to_images(x)

    def generate_with_teacher(self, steps, noise, labels):
        """The guided sampler on the halving grid: what the first student learns, at its steps."""
        x = schedules.ddim_sample(self.schedule, self.guided_denoiser(labels), noise, steps,
                                  times=self.schedule.halving_timesteps(steps))
        return self.to_images(x)

    # Samplers: the exported guided DDIM, and with students the teacher on their grid and each student
    def samplers(self):
        c = self.config
        if not c.students:
            return ("guided_ddim",)
        return ("guided_ddim", f"guided_ddim_{c.teacher_steps}_steps", *(f"student_{n}_steps" for n in c.students))

    def use_sampler(self, name):
        if name not in self.samplers():
            raise ZooError(f"the diffusion model has no sampler {name!r}; it has {', '.join(self.samplers())}")
        self._sampler = name

    def sampler_in_use(self):
        return self._sampler

    def _sampler_fn(self):
        """labels, seed → images, for the sampler in use."""
        name, steps = self._sampler, _steps_in(self._sampler)
        if name == "guided_ddim":
            return self.sample
        if name.startswith("student"):
            return lambda y, seed: self.generate_with_student(steps, self.initial_noise(tf.shape(y)[0], seed), y)
        return lambda y, seed: self.generate_with_teacher(steps, self.initial_noise(tf.shape(y)[0], seed), y)

    def sample_ddpm(self, labels, seed, guidance=None):
        """Ancestral sampling through all T steps (slow; for comparison)."""
        x = schedules.ddpm_sample(self.schedule, self.guided_denoiser(labels, guidance),
                                  self.initial_noise(tf.shape(labels)[0], seed), tf.stack([seed, 1]))
        return self.to_images(x)

    def inpaint_moves(self):
        """Moves of the inpainting path: the TFLite ``inpaint`` takes one noise image per move."""
        c = self.config
        return schedules.repaint_moves(c.sample_steps, c.inpaint_resample, c.inpaint_jump)

    def inpaint(self, images, mask, noise, labels, seed=None, path_noise=None):
        """Fill the pixels where ``mask`` is 0, keeping those where it is 1, by RePaint
        (resampling r, jump length j of the config). An image without a label (``labels``
        None, or the null class ``num_classes``) gets one in a first pass — an unconditional
        fill, then the class under which the network best explains the kept pixels
        (``choose_labels``) — and is filled with it. Returns (images, the labels filled with)."""
        x0 = images * 2.0 - 1.0
        labels = self.labels_to_fill_with(x0, mask, noise, labels, seed, path_noise)
        return self.to_images(self.repaint(x0, mask, noise, labels, seed, path_noise)), labels

    def repaint(self, x0, mask, noise, labels, seed=None, path_noise=None):
        """One RePaint fill of ``x0`` ([-1, 1]) under ``labels`` (None: unconditional)."""
        # A null label needs no special case: the network was trained on it, so its
        # "conditional" prediction is the unconditional one and guidance leaves it as it is.
        c = self.config
        return schedules.repaint_sample(self.schedule, self.guided_denoiser(labels), noise, c.sample_steps,
                                        (x0, mask), c.inpaint_resample, c.inpaint_jump, c.inpaint_eta,
                                        tf.constant([0, 3]) if seed is None else seed, path_noise)

    def labels_to_fill_with(self, x0, mask, noise, labels, seed=None, path_noise=None):
        """``labels`` where given; where an image has none (None, or the null class), the label
        ``choose_labels`` reads from an unconditional first fill (with ``inpaint_label_steps``
        0: the null class stays, and the fill is the plain unconditional one)."""
        c = self.config
        n = tf.shape(x0)[0]
        labels = tf.fill([n], c.num_classes) if labels is None else tf.cast(labels, tf.int32)
        if not c.inpaint_label_steps:
            return labels
        unlabelled = tf.equal(labels, c.num_classes)

        def chosen():
            first = self.repaint(x0, mask, noise, None, seed, path_noise)  # one network call per move
            return tf.where(unlabelled, self.choose_labels(mask * x0 + (1.0 - mask) * first, mask), labels)

        return tf.cond(tf.reduce_any(unlabelled), chosen, lambda: labels)

    def choose_labels(self, x0, mask):
        """The class under which the averaged network's noise predictions best explain the
        pixels of ``x0`` ([-1, 1]) where ``mask`` is 1, at ``inpaint_label_steps`` noise
        levels on fixed noise (a diffusion classifier, Li et al. 2023), int32 [N]."""
        c = self.config
        noise = np.random.default_rng(c.seed + 1).standard_normal((c.inpaint_label_steps, *c.image_shape))
        return schedules.classify_by_denoising(
            self.schedule, lambda x, t, y: self.eps(self.network_ema, x, t, y), x0, mask, c.num_classes,
            schedules.classifier_timesteps(c.inpaint_label_steps, c.timesteps), noise.astype(np.float32))

    def denoise(self, noisy_images, timesteps, labels):
        """One evaluation of the EMA network: ε̂(x_t, t, label); label num_classes = unconditional."""
        return self.eps(self.network_ema, noisy_images, timesteps, labels)

    def signatures(self):
        c = self.config
        noise = sig.noise("noise", c.image_shape)
        labels = sig.labels(c.num_classes)
        maybe_label = sig.labels(c.num_classes, null_class=True)
        return [
            # plain functions: a shared tf.function would reuse its dynamic-batch trace in the
            # fixed-batch web files, whose output would then be declared [-1, …]
            sig.Signature("generate", lambda noise, labels: {"images": self.generate(noise, labels)}, (noise, labels),
                          tflite=True),
            sig.Signature("sample", lambda labels, seed: {"images": self.sample(labels, seed)}, (labels, sig.seed())),
            sig.Signature("denoise", lambda noisy_images, timesteps, labels: {
                "noise": self.denoise(noisy_images, timesteps, labels)},
                (sig.noise("noisy_images", c.image_shape), sig.timesteps(c.timesteps), maybe_label)),
            sig.Signature("inpaint", lambda images, mask, noise, labels: dict(zip(
                ("images", "labels"), self.inpaint(images, mask, noise, labels))),
                (sig.images(c.image_shape), sig.mask(c.image_shape), noise, maybe_label)),
            # The TFLite inpaint: RePaint's per-move noise as an input instead of drawn inside.
            sig.Signature("inpaint", lambda images, mask, noise, path_noise, labels: dict(zip(
                ("images", "labels"), self.inpaint(images, mask, noise, labels, path_noise=path_noise))),
                (sig.images(c.image_shape), sig.mask(c.image_shape), noise,
                 sig.noise("path_noise", (self.inpaint_moves(), *c.image_shape)), maybe_label),
                tflite=True, saved_model=False, web=False),  # no page runs RePaint's 200-move loop
            *(signature for steps in c.students for signature in self._student_signatures(steps, noise, labels)),
        ]

    def _student_signatures(self, steps, noise, labels):
        return [
            sig.Signature(f"generate_{steps}_steps", lambda noise, labels: {
                "images": self.generate_with_student(steps, noise, labels)}, (noise, labels), tflite=True),
            sig.Signature(f"sample_{steps}_steps", lambda labels, seed: {"images": self.generate_with_student(
                steps, self.initial_noise(tf.shape(labels)[0], seed), labels)}, (labels, sig.seed())),
        ]

    # Capabilities ----------------------------------------------------------------------
    def generate_images_for(self, labels, seed=0, batch=250):
        c = self.config
        sample = self.graph(("sample", self._sampler, c.guidance, c.guidance_interval, c.sample_steps),
                            self._sampler_fn())
        labels = np.asarray(labels, np.int32)
        return np.concatenate([sample(tf.constant(labels[i:i + batch]), tf.constant(seed + i)).numpy()
                               for i in range(0, len(labels), batch)])

    def _inpaint_key(self):
        c = self.config
        return ("inpaint", c.guidance, c.guidance_interval, c.sample_steps, c.inpaint_resample, c.inpaint_jump,
                c.inpaint_eta, c.inpaint_label_steps)

    def _inpaint_batches(self, images, mask, seed, batch):
        """Batches of (images, mask, x_T, RePaint's per-move noise), the noise drawn from ``seed``
        and the batch's first index and passed in explicitly, so that any subset of a batch
        can be filled again with the very noise it had."""
        shape = images.shape[1:]
        for i in range(0, len(images), batch):
            n = len(images[i:i + batch])
            noise = tf.random.stateless_normal((n, *shape), seed=[seed + i, 7]).numpy()
            path = tf.random.stateless_normal((n, self.inpaint_moves(), *shape), seed=[seed + i, 3]).numpy()
            yield slice(i, i + n), images[i:i + n], np.asarray(mask[i:i + n], np.float32), noise, path

    def _fill(self, x, m, noise, path, labels):
        """RePaint fills under ``labels``, as ``inpaint`` makes them once its labels are known.
        The label choice is a graph of its own (``_labels_to_fill_with``): traced inside this one as
        well, as ``inpaint`` has it, it was traced twice for a branch evaluation never takes —
        the tiny-flag recipe's first inpainting stage 30 → 16 s, the whole run 244 → 217 s."""
        fill = self.graph(self._inpaint_key() + ("given",), lambda x, m, noise, path, y: self.to_images(
            self.repaint(x * 2.0 - 1.0, m, noise, y, path_noise=path)))
        return fill(*(tf.constant(a) for a in (x, m, noise, path, np.asarray(labels, np.int32)))).numpy()

    def _labels_to_fill_with(self, x, m, noise, path, labels):
        """``labels_to_fill_with`` on a NumPy batch: the labels ``inpaint`` fills it with."""
        choose = self.graph(self._inpaint_key() + ("labels",), lambda x, m, noise, path, y: self.labels_to_fill_with(
            x * 2.0 - 1.0, m, noise, y, path_noise=path))
        return choose(*(tf.constant(a) for a in (x, m, noise, path, np.asarray(labels, np.int32)))).numpy()

    def inpaint_images(self, images, mask, labels=None, seed=0, batch=250):
        null = self.config.num_classes
        labels = np.full(len(images), null, np.int32) if labels is None else np.asarray(labels, np.int32)
        out = []
        for s, x, m, noise, path in self._inpaint_batches(images, mask, seed, batch):
            y = labels[s]
            if (y == null).any():  # a batch whose images all have labels needs no choice traced
                y = self._labels_to_fill_with(x, m, noise, path, y)
            out.append(self._fill(x, m, noise, path, y))
        return np.concatenate(out)

    def inpaint_with_and_without_label(self, images, mask, labels, seed=0, batch=250):
        """The same two fills as two ``inpaint_images`` calls, sharing work: a label-free fill
        is filled with the label the model chooses, so wherever that is the true label it is
        the labelled fill itself (same noise), and only the other images are filled again.
        Lower half, 100 digits: one guided fill, one unconditional fill, the label choice and
        guided fills of the ~20% chosen otherwise, instead of two guided fills, one
        unconditional fill and the label choice (the card's six fills measured 252 → 210 s)."""
        labels = np.asarray(labels, np.int32)
        without, with_label = [], []
        for s, x, m, noise, path in self._inpaint_batches(images, mask, seed, batch):
            labelled = self._fill(x, m, noise, path, labels[s])
            chosen = self._labels_to_fill_with(x, m, noise, path, np.full(len(x), self.config.num_classes))
            free, other = labelled.copy(), chosen != labels[s]
            if other.any():
                free[other] = self._fill(x[other], m[other], noise[other], path[other], chosen[other])
            without.append(free)
            with_label.append(labelled)
        return np.concatenate(without), np.concatenate(with_label)

    def extra_pictures(self, images, labels):
        c = self.config
        noise = self.initial_noise(1, 11)
        x, path = tf.function(lambda: schedules.ddim_sample(
            self.schedule, self.guided_denoiser(tf.constant([labels[0]])), noise, c.sample_steps, trajectory=True))()
        steps = np.concatenate([self.to_images(noise).numpy(), self.to_images(path[:, 0]).numpy()])
        return {"denoising_steps.png": grid(steps, rows=1)}


def _steps_in(sampler):
    """The step count in a sampler's name ("student_4_steps" → 4), or None."""
    digits = [part for part in sampler.split("_") if part.isdigit()]
    return int(digits[0]) if digits else None
