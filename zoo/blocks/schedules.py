"""Noise schedules and samplers for diffusion models, kept apart from the networks (as in
diffusers): the same trained denoiser serves DDPM ancestral sampling, DDIM and inpainting.

Notation (Ho et al. 2020): q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), t = 0 … T−1.
A denoiser is ``fn(x_t, t) -> ε̂`` (t an int32 vector); v-prediction is converted to ε
by the model before it reaches a sampler.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError

SCHEDULES = ("cosine", "linear")


def alpha_bars(kind="cosine", steps=1000):
    """ᾱ_t for t = 0 … steps−1, float64. Cosine: Nichol & Dhariwal 2021 (s = 0.008, β ≤ 0.999);
    linear: β from 1e-4 to 0.02 (Ho et al. 2020), rescaled to the number of steps."""
    if kind not in SCHEDULES:
        raise ZooError(f"unknown schedule {kind!r}; choose from {', '.join(SCHEDULES)}")
    if steps < 2:
        raise ZooError(f"a schedule needs at least 2 steps, got {steps}")
    if kind == "linear":
        scale = 1000 / steps
        betas = np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64)
    else:
        s = 0.008
        f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.array([min(1 - f(t + 1) / f(t), 0.999) for t in range(steps)], np.float64)
    return np.cumprod(1.0 - betas)


class Schedule:
    def __init__(self, kind="cosine", steps=1000):
        self.kind, self.steps = kind, steps
        self.alpha_bar_np = alpha_bars(kind, steps)
        self.alpha_bar = tf.constant(self.alpha_bar_np, tf.float32)
        # in float64 first: 1 − ᾱ_0 ≈ 4e-5 would lose three digits in float32
        self.snr_table = tf.constant(self.alpha_bar_np / (1.0 - self.alpha_bar_np), tf.float32)

    def gather(self, t):
        """ᾱ_t broadcast over NHWC images."""
        return tf.gather(self.alpha_bar, t)[:, None, None, None]

    def q_sample(self, x0, t, noise):
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        ab = self.gather(t)
        return tf.sqrt(ab) * x0 + tf.sqrt(1.0 - ab) * noise

    def snr(self, t):
        """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t), [N]."""
        return tf.gather(self.snr_table, t)

    def v_target(self, x0, t, noise):
        """v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 (Salimans & Ho 2022)."""
        ab = self.gather(t)
        return tf.sqrt(ab) * noise - tf.sqrt(1.0 - ab) * x0

    def eps_from_v(self, x_t, t, v):
        ab = self.gather(t)
        return tf.sqrt(ab) * v + tf.sqrt(1.0 - ab) * x_t

    def ddim_timesteps(self, num_steps):
        """Evenly spaced, descending: T−1 … 0 in ``num_steps`` steps."""
        if num_steps < 1 or num_steps > self.steps:
            raise ZooError(f"sampling steps must be in 1..{self.steps}, got {num_steps}")
        return np.round(np.linspace(self.steps - 1, 0, num_steps)).astype(np.int32)

    def halving_timesteps(self, num_steps):
        """The grid of progressive distillation (Salimans & Ho 2022): t_i = i·T/N − 1 for
        i = N … 1, each step down to the next and the last to x_0, so the grid of N/2 steps is
        every other point of N's. (``ddim_timesteps`` ends at t = 0, a step that barely moves.)"""
        if num_steps < 1 or num_steps > self.steps:
            raise ZooError(f"sampling steps must be in 1..{self.steps}, got {num_steps}")
        return np.array([round(i * self.steps / num_steps) - 1 for i in range(num_steps, 0, -1)], np.int32)

    def alpha_sigma(self, t):
        """(√ᾱ_t, √(1 − ᾱ_t)) broadcast over NHWC images; t < 0 means x_0 itself: (1, 0)."""
        ab = tf.where(t[:, None, None, None] >= 0, self.gather(tf.maximum(t, 0)), 1.0)
        return tf.sqrt(ab), tf.sqrt(1.0 - ab)

    # One sampler step each -------------------------------------------------------------
    def predict_x0(self, x_t, t, eps):
        ab = self.gather(t)
        x0 = tf.clip_by_value((x_t - tf.sqrt(1.0 - ab) * eps) / tf.sqrt(ab), -1.0, 1.0)
        eps = (x_t - tf.sqrt(ab) * x0) / tf.sqrt(1.0 - ab)  # consistent with the clipped x0
        return x0, eps

    def ddim_step(self, x_t, t, t_prev, eps, eta=0.0, noise=None):
        """x_t → x_{t_prev} (Song et al. 2021); t_prev < 0 means "to x_0"."""
        x0, eps = self.predict_x0(x_t, t, eps)
        ab = self.gather(t)
        ab_prev = tf.where(t_prev[:, None, None, None] >= 0, self.gather(tf.maximum(t_prev, 0)), 1.0)
        sigma = eta * tf.sqrt((1 - ab_prev) / (1 - ab)) * tf.sqrt(1 - ab / ab_prev)
        x_prev = tf.sqrt(ab_prev) * x0 + tf.sqrt(tf.maximum(1 - ab_prev - sigma**2, 0.0)) * eps
        if noise is not None:
            x_prev += sigma * noise
        return x_prev

    def ddpm_step(self, x_t, t, eps, noise):
        """Ancestral step x_t → x_{t−1} with the posterior variance β̃_t (Ho et al. 2020)."""
        x0, _ = self.predict_x0(x_t, t, eps)
        ab = self.gather(t)
        ab_prev = tf.where(t[:, None, None, None] > 0, self.gather(tf.maximum(t - 1, 0)), 1.0)
        beta = 1 - ab / ab_prev
        mean = (tf.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (tf.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)) * x_t
        var = beta * (1 - ab_prev) / (1 - ab)
        return mean + tf.where(t[:, None, None, None] > 0, tf.sqrt(var) * noise, 0.0)


def static_like(x, like):
    """``x`` with ``like``'s static shape, when it has one. A while loop's result loses the static
    batch: a file converted for a fixed batch would declare its output [-1, …], and LiteRT.js,
    which sizes outputs from the declaration, returns one image instead of the batch. (An
    EnsureShape is dropped by the converter; a Reshape to a constant shape is not.)"""
    return tf.reshape(x, like.shape.as_list()) if like.shape.is_fully_defined() else x


def ddim_sample(schedule, denoise, x_T, num_steps, eta=0.0, seed=None, known=None, trajectory=False, times=None):
    """DDIM from x_T in ``num_steps`` steps, in one graph (a tf.while_loop).

    ``seed``: stateless seed for η > 0 and for re-noising known pixels. ``known``: optional
    (x0_known, mask) for RePaint-style inpainting: where mask = 1 the known pixels, noised
    to the current step, replace the sample after every step. ``trajectory``: also return
    the sample after each step, [num_steps, N, H, W, C]. ``times``: the grid (default
    ``ddim_timesteps``; a distilled student's is ``halving_timesteps``).
    """
    times = tf.constant(schedule.ddim_timesteps(num_steps) if times is None else np.asarray(times, np.int32))
    prev = tf.concat([times[1:], [-1]], 0)
    n = tf.shape(x_T)[0]
    seed = tf.zeros([2], tf.int32) if seed is None else tf.cast(seed, tf.int32)

    def step(i, x):
        t = tf.fill([n], times[i])
        t_prev = tf.fill([n], prev[i])
        step_seed = tf.random.experimental.stateless_fold_in(seed, i)
        noise = tf.random.stateless_normal(tf.shape(x), step_seed) if eta > 0 else None
        x_next = schedule.ddim_step(x, t, t_prev, denoise(x, t), eta, noise)
        if known is not None:
            x0_known, mask = known
            renoise = tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(step_seed, 1))
            noised = tf.where(t_prev[:, None, None, None] >= 0,
                              schedule.q_sample(x0_known, tf.maximum(t_prev, 0), renoise), x0_known)
            x_next = mask * noised + (1.0 - mask) * x_next
        return tf.ensure_shape(x_next, x.shape)  # keep a static batch size static in the loop

    def more(i, *_):
        return i < num_steps

    if not trajectory:  # no TensorArray in the loop: TFLite cannot lower one
        _, x = tf.while_loop(more, lambda i, x: (i + 1, step(i, x)), (tf.constant(0), x_T),
                             maximum_iterations=num_steps)
        return static_like(x, x_T)

    def body(i, x, history):
        x_next = step(i, x)
        return i + 1, x_next, history.write(i, x_next)

    history = tf.TensorArray(tf.float32, size=num_steps)
    _, x, history = tf.while_loop(more, body, (tf.constant(0), x_T, history), maximum_iterations=num_steps)
    return x, history.stack()


def ddpm_sample(schedule, denoise, x_T, seed):
    """Ancestral sampling through all T steps, in one graph."""
    n = tf.shape(x_T)[0]
    seed = tf.cast(seed, tf.int32)

    def body(i, x):
        t = tf.fill([n], schedule.steps - 1 - i)
        noise = tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(seed, i))
        return i + 1, tf.ensure_shape(schedule.ddpm_step(x, t, denoise(x, t), noise), x.shape)

    _, x = tf.while_loop(lambda i, _: i < schedule.steps, body, (tf.constant(0), x_T),
                         maximum_iterations=schedule.steps)
    return static_like(x, x_T)


# DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095, Algorithm 2) ------------------------------
def dpm_solver_coefficients(schedule, times):
    """Per step i (t_i → t_{i+1}, the last to x_0) the constants of DPM-Solver++(2M)'s update
    x_{i+1} = a_i x_i + b_i (c_i x̂0_i + d_i x̂0_{i−1}), float64 [steps] each:
    a = σ_{i+1}/σ_i, b = α_{i+1}(1 − e^{−h_i}) with h_i = λ_{i+1} − λ_i and λ = log(α/σ), and
    the second-order weights c = 1 + 1/(2r), d = −1/(2r), r = h_{i−1}/h_i (their eq. 3.5's
    D_i). The first step and the last (to σ = 0, where h is infinite) are first-order: c = 1, d = 0."""
    times = np.asarray(times, np.int64)
    ab = lambda t: np.where(t >= 0, schedule.alpha_bar_np[np.maximum(t, 0)], 1.0)
    now, after = ab(times), ab(np.concatenate([times[1:], [-1]]))
    alpha, sigma = np.sqrt(after), np.sqrt(1.0 - after)
    lam_now = 0.5 * np.log(now / (1.0 - now))
    with np.errstate(divide="ignore"):
        lam_after = 0.5 * np.log(after / (1.0 - after))  # +inf at x_0
    h = lam_after - lam_now
    a = sigma / np.sqrt(1.0 - now)
    b = alpha * -np.expm1(-h)
    c, d = np.ones(len(times)), np.zeros(len(times))
    for i in range(1, len(times) - 1):
        r = h[i - 1] / h[i]
        c[i], d[i] = 1.0 + 1.0 / (2.0 * r), -1.0 / (2.0 * r)
    return a, b, c, d


def dpm_solver_sample(schedule, denoise, x_T, num_steps):
    """DPM-Solver++(2M) from x_T in ``num_steps`` denoiser calls, in one graph (a tf.while_loop
    that TFLite keeps). A multistep solver in the data prediction: each step reuses the step
    before's x̂0, so it is second order at one call per step where DDIM is first order; x̂0 is
    clipped to [-1, 1] as DDIM's is (their "thresholding"). Its grid is ``halving_timesteps``
    (the last call at T/N − 1, then straight to x_0): on DDIM's grid, whose last call is at
    t = 0, the steps in λ change abruptly at the end and the extrapolation lost its order
    (Gaussian data with an exact denoiser, tests/test_samplers.py)."""
    times = schedule.halving_timesteps(num_steps)
    a, b, c, d = (tf.constant(v, tf.float32) for v in dpm_solver_coefficients(schedule, times))
    times = tf.constant(times)
    n = tf.shape(x_T)[0]

    def step(i, x, x0_before):
        t = tf.fill([n], times[i])
        x0, _ = schedule.predict_x0(x, t, denoise(x, t))
        x_next = a[i] * x + b[i] * (c[i] * x0 + d[i] * x0_before)
        return i + 1, tf.ensure_shape(x_next, x.shape), tf.ensure_shape(x0, x.shape)

    _, x, _ = tf.while_loop(lambda i, *_: i < num_steps, step, (tf.constant(0), x_T, tf.zeros_like(x_T)),
                            maximum_iterations=num_steps)
    return static_like(x, x_T)


# Progressive distillation (Salimans & Ho, ICLR 2022) -----------------------------------------
def two_step_target(schedule, denoise, x_t, t, t_mid, t_next):
    """The x_0 a student's one DDIM step t → t_next must predict to land where the teacher's
    two steps t → t_mid → t_next land (their Algorithm 2): x̃ = (x_{t''} − (σ''/σ) x_t) /
    (α'' − (σ''/σ) α), from the teacher's denoiser ``denoise(x, t) → ε̂``; t_next < 0 is x_0
    (then x̃ is the teacher's last x̂_0). Each t a vector; the steps clip x̂_0 as sampling does."""
    x_mid = schedule.ddim_step(x_t, t, t_mid, denoise(x_t, t))
    x_next = schedule.ddim_step(x_mid, t_mid, t_next, denoise(x_mid, t_mid))
    alpha, sigma = schedule.alpha_sigma(t)
    alpha_next, sigma_next = schedule.alpha_sigma(t_next)
    ratio = sigma_next / sigma
    return (x_next - ratio * x_t) / (alpha_next - ratio * alpha)


def v_of_x0(schedule, x_t, t, x0):
    """The v that predicts ``x0`` from x_t: v = (α x_t − x_0) / σ (x_0 = α x_t − σ v)."""
    alpha, sigma = schedule.alpha_sigma(t)
    return (alpha * x_t - x0) / sigma


# RePaint (Lugmayr et al. 2022) --------------------------------------------------------------
def repaint_path(num_steps, resample=1, jump=1):
    """Positions on the DDIM grid (0: x_T at times[0], …, num_steps: x_0) that RePaint visits:
    down one step at a time, and after every ``jump`` steps down, back up ``jump`` steps and
    down again, ``resample − 1`` times, so the fill is re-harmonised with the kept pixels
    (their "jump length" j and "resamplings" r)."""
    if resample < 1 or jump < 1:
        raise ZooError(f"resampling count and jump length must be at least 1, got {resample} and {jump}")
    path, position = [0], 0
    while position < num_steps:
        position += 1
        path.append(position)
        if position % jump == 0 and position < num_steps:
            for _ in range(resample - 1):
                path.extend(range(position - 1, position - jump - 1, -1))  # back up
                path.extend(range(position - jump + 1, position + 1))  # and down again
    return path


def renoise(schedule, x, t_from, t_to, noise):
    """q(x_{t_to} | x_{t_from}) for t_to > t_from: the forward process between two noise levels."""
    ratio = schedule.gather(t_to) / schedule.gather(t_from)
    return tf.sqrt(ratio) * x + tf.sqrt(1.0 - ratio) * noise


def repaint_moves(num_steps, resample=1, jump=1):
    """How many moves (steps down and up) ``repaint_path`` makes."""
    return len(repaint_path(num_steps, resample, jump)) - 1


def repaint_sample(schedule, denoise, x_T, num_steps, known, resample=1, jump=1, eta=0.0, seed=None, noise=None):
    """Inpainting by RePaint, in one graph: walk ``repaint_path`` over the DDIM grid; a step
    down is a DDIM step (η) followed by pasting in the known pixels noised to the new level
    (``known`` = (x0_known, mask), mask 1 = keep); a step up re-noises the whole sample.
    ``resample = jump = 1`` is plain DDIM with the known pixels pasted in after every step.

    Each move takes one noise tensor (a step down uses it for the kept pixels and for the
    DDIM noise of the others: disjoint pixels): drawn from ``seed``, or — with no random op,
    for TFLite — ``noise`` [N, moves, H, W, C] given as input."""
    times = schedule.ddim_timesteps(num_steps)
    grid = np.concatenate([times, [-1]]).astype(np.int32)
    path = repaint_path(num_steps, resample, jump)
    t_from = tf.constant(grid[path[:-1]])
    t_to = tf.constant(grid[path[1:]])
    moves = len(path) - 1
    n = tf.shape(x_T)[0]
    seed = tf.zeros([2], tf.int32) if seed is None else tf.cast(seed, tf.int32)
    x0_known, mask = known

    def step(i, x):
        t, t_next = tf.fill([n], t_from[i]), tf.fill([n], t_to[i])
        if noise is None:
            z = tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(seed, i))
        else:
            z = tf.reshape(tf.gather(noise, i, axis=1), tf.shape(x))

        def down():
            x_next = schedule.ddim_step(x, t, t_next, denoise(x, t), eta, z if eta > 0 else None)
            noised = tf.where(t_next[:, None, None, None] >= 0,
                              schedule.q_sample(x0_known, tf.maximum(t_next, 0), z), x0_known)
            return mask * noised + (1.0 - mask) * x_next

        def up():
            return renoise(schedule, x, t, t_next, z)

        x_next = tf.cond(t_to[i] < t_from[i], down, up)
        return i + 1, tf.ensure_shape(x_next, x.shape)

    _, x = tf.while_loop(lambda i, _: i < moves, step, (tf.constant(0), x_T), maximum_iterations=moves)
    return static_like(x, x_T)


# Diffusion classifier (Li et al., ICCV 2023) ------------------------------------------------
def classifier_timesteps(steps, total):
    """``steps`` timesteps spread evenly over [0.05 T, 0.95 T]: the levels the classifier
    compares classes at (the ends say little: nearly clean or nearly pure noise)."""
    return np.round(np.linspace(0.05, 0.95, steps) * total).astype(np.int32)


def classify_by_denoising(schedule, denoise, x0, mask, num_classes, timesteps, noise):
    """For each image, the class c minimising Σ_k ‖m ⊙ (ε̂(x_{t_k}, t_k, c) − ε_k)‖²: the label
    under which the denoiser best explains the pixels where ``mask`` is 1, x_{t_k} diffused
    from ``x0`` to each of ``timesteps`` with the fixed noise ``noise[k]`` ([K, H, W, C]; the
    same for every class and image, so the classes are compared on paired noise and no random
    op is needed). ``denoise(x_t, t, labels)`` → ε̂. Returns int32 labels [N]. Every class of
    an image goes in one batch of N · num_classes, one timestep per loop iteration."""
    n = tf.shape(x0)[0]
    rows = tf.repeat(x0, num_classes, axis=0)
    kept = tf.repeat(mask, num_classes, axis=0)
    labels = tf.tile(tf.range(num_classes, dtype=tf.int32), [n])
    levels, noise = tf.constant(timesteps, tf.int32), tf.constant(noise, tf.float32)

    def step(k, errors):
        t = tf.fill([n * num_classes], levels[k])
        eps = tf.zeros_like(rows) + noise[k]
        err = tf.reduce_sum(kept * tf.square(denoise(schedule.q_sample(rows, t, eps), t, labels) - eps),
                            axis=[1, 2, 3])
        return k + 1, errors + tf.reshape(err, [n, num_classes])

    _, errors = tf.while_loop(lambda k, _: k < len(timesteps), step,
                              (tf.constant(0), tf.zeros([n, num_classes], tf.float32)),
                              maximum_iterations=len(timesteps))
    return tf.argmin(errors, axis=1, output_type=tf.int32)
