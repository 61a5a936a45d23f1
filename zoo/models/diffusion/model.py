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

import re

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets, schedules
from zoo.core import distribute
from zoo.core import signature as sig
from zoo.core.errors import ZooError
from zoo.core.images import grid
from zoo.core.optimizers import Adam
from zoo.models.base import TINY_RUN, ZooModel
from zoo.models.capabilities import ConditionalGenerator, Inpainter
from zoo.models.diffusion import samplers, students
from zoo.models.diffusion.config import DiffusionConfig
from zoo.models.diffusion.inpainting import RePaint


@keras.saving.register_keras_serializable("zoo")
class Diffusion(ZooModel, ConditionalGenerator, Inpainter):
    Config = DiffusionConfig
    zoo_name = "diffusion"
    headline = ("fid", "classifier_accuracy", "cas")
    tracked = ("loss", "guide_loss", "student_loss")
    # full: for a GPU (untested); its guide as much narrower than the network as the CPU preset's
    # distill: the students of a trained cpu-preset model (recipes/distill.py); tiny: a command line
    # checked in seconds
    presets = {"cpu": {}, "full": {"channels": (64, 128, 256), "guide_channels": (32, 64, 128), "epochs": 200},
               "distill": {"students": (4, 2), "init_from": "diffusion", "epochs": 28,
                           "learning_rate": 2e-4, "warmup_steps": 20, "tflite_variants": ("int8_dynamic",)},
               "tiny": {"channels": (8, 16), "attention": (False, True), "guide_channels": (4, 8), "sample_steps": 4,
                        "dpm_solver_steps": 4,
                        "inpaint_resample": 1, "inpaint_label_steps": 2, **TINY_RUN}}
    # Only int8_dynamic is tried: float16's DDIM loop returned NaN for every sample and the
    # full-integer calibrator crashed (signal 11) in TF 2.21; judged on 500 paired samples (the
    # same noise and labels as float32's). Batch 32, cosine decay from 2e-3, 50 epochs: the
    # measured runs behind them are in docs/history.md ("The diffusion model's defaults").
    run_defaults = {"epochs": 50, "batch_size": 32, "learning_rate": 2e-3, "lr_schedule": "cosine",
                    "warmup_steps": 200, "tflite_variants": ("int8_dynamic",)}
    variant_samples = 500
    xla_by_default = False  # measured on a 2-core CPU: this U-Net trained faster without XLA (194 vs 160 images/s)
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
        self.stages = students.stages(c)
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
            students.stage_of(self.stages, 0, self.run_epochs)  # enough epochs for every stage
            return [(Adam(self._learning_rate_over(students.stage_epochs(self, stage))),
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
            return self._stage_steps()[students.stage_of(self.stages, epoch, self.run_epochs)]
        if self.guide_network is not None and epoch < self.config.guide_epochs:
            return self.train_step_with_guide
        return self.train_step

    def begin_epoch(self, epoch):
        """The first epoch of a distillation stage starts its student from the one before (the
        first from the trained network's average), unless it has trained already (a resumed run)."""
        if self.stages:
            students.start_stage(self, self.stages[students.stage_of(self.stages, epoch, self.run_epochs)])

    def _stage_steps(self):
        """One named step per stage (the trainer compiles each distinct step once, by name)."""
        if not hasattr(self, "_steps_by_stage"):
            self._steps_by_stage = []
            for stage in self.stages:
                def step(data, stage=stage):
                    images, labels = data
                    return self.update_trackers(student_loss=students.train_student(self, stage, images, labels))

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

    def network_output(self, network, x_t, t, labels):
        """``network``'s output (v or ε, as the config says it predicts), float32."""
        inputs = (tf.convert_to_tensor(v) for v in (x_t, t, labels))
        return tf.cast(self.network_call(network)(*inputs), tf.float32)

    def as_eps(self, x_t, t, out):
        return out if self.config.prediction == "eps" else self.schedule.eps_from_v(x_t, t, out)

    def eps(self, network, x_t, t, labels):
        return self.as_eps(x_t, t, self.network_output(network, x_t, t, labels))

    @classmethod
    def with_one_class(cls, config):
        guidance = ("its guidance is autoguidance (a guide network), which needs no labels" if config.guide_channels
                    else "classifier-free guidance, which needs classes, is off (--guidance 1)")
        return f"{super().with_one_class(config)}; {guidance}"

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
            return lambda x, t: self.network_output(network, x, t, tf.fill(tf.shape(t), self.config.num_classes))
        labels = tf.cast(labels, tf.int32)
        if g == 1:
            return lambda x, t: self.network_output(network, x, t, labels)
        low, high = (round(f * (self.config.timesteps - 1)) for f in self.config.guidance_interval)

        if self.guide_network_ema is not None:
            def guided(x, t):
                guide = self.network_output(self.guide_network_ema, x, t, labels)
                return guide + g * (self.network_output(network, x, t, labels) - guide)
        else:
            null = tf.fill(tf.shape(labels), self.config.num_classes)

            def guided(x, t):
                both = self.network_output(network, tf.concat([x, x], 0), tf.concat([t, t], 0),
                                           tf.concat([labels, null], 0))
                cond, uncond = tf.split(both, 2)
                return uncond + g * (cond - uncond)

        if (low, high) == (0, self.config.timesteps - 1):
            return guided
        if per_example:
            def inside_or_not(x, t):
                inside = tf.logical_and(t >= low, t <= high)[:, None, None, None]
                return tf.where(inside, guided(x, t), self.network_output(network, x, t, labels))

            return inside_or_not

        def predict(x, t):
            inside = tf.logical_and(t[0] >= low, t[0] <= high)
            return tf.cond(inside, lambda: guided(x, t), lambda: self.network_output(network, x, t, labels))

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

    # Samplers (zoo.models.diffusion.samplers), chosen by name in the card's terms -----------
    def sampler_objects(self):
        """name → sampler: the exported guided DDIM first, then those the card measures beside it."""
        return samplers.of_config(self.config)

    @classmethod
    def headline_of(cls, metrics):
        """And each distilled student's FID."""
        return super().headline_of(metrics) + sorted((k for k in metrics if re.fullmatch(r"student_\d+_steps_fid", k)),
                                                     key=lambda k: -int(k.split("_")[1]))

    def samplers(self):
        return tuple(self.sampler_objects())

    def use_sampler(self, name):
        if name not in self.sampler_objects():
            raise ZooError(f"the diffusion model has no sampler {name!r}; it has {', '.join(self.samplers())}")
        self._sampler = name

    def sampler_in_use(self):
        return self._sampler

    def inpainter(self):
        """The RePaint sampler of the ``inpaint`` signatures and of ``inpaint_numpy``."""
        return RePaint(self)

    def sample_ddpm(self, labels, seed, guidance=None):
        """Ancestral sampling through all T steps (slow; for comparison)."""
        x = schedules.ddpm_sample(self.schedule, self.guided_denoiser(labels, guidance),
                                  self.initial_noise(tf.shape(labels)[0], seed), tf.stack([seed, 1]))
        return self.to_images(x)

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
            *self.inpainter().signatures(noise, maybe_label),
            *(s for sampler in self.sampler_objects().values() for s in sampler.signatures(self, noise, labels)),
        ]

    # Capabilities ----------------------------------------------------------------------
    def sample_numpy(self, labels, seed=0, batch=250):
        c = self.config
        sampler = self.sampler_objects()[self._sampler]
        sample = self.graph(("sample", self._sampler, c.guidance, c.guidance_interval, c.sample_steps),
                            lambda y, seed: sampler.images(self, self.initial_noise(tf.shape(y)[0], seed), y))
        labels = np.asarray(labels, np.int32)
        return np.concatenate([sample(tf.constant(labels[i:i + batch]), tf.constant(seed + i)).numpy()
                               for i in range(0, len(labels), batch)])

    def inpaint_numpy(self, images, mask, labels=None, seed=0, batch=250, with_labels=False):
        return self.inpainter().inpaint_numpy(images, mask, labels, seed, batch, with_labels)

    def inpaint_with_and_without_label_numpy(self, images, mask, labels, seed=0, batch=250):
        return self.inpainter().with_and_without_label_numpy(images, mask, labels, seed, batch)

    def extra_pictures(self, images, labels):
        c = self.config
        noise = self.initial_noise(1, 11)
        x, path = tf.function(lambda: schedules.ddim_sample(
            self.schedule, self.guided_denoiser(tf.constant([labels[0]])), noise, c.sample_steps, trajectory=True))()
        steps = np.concatenate([self.to_images(noise).numpy(), self.to_images(path[:, 0]).numpy()])
        return {"denoising_steps.png": grid(steps, rows=1)}

