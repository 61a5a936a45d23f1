"""DPM-Solver++(2M) (zoo.blocks.schedules.dpm_solver_sample) against an independent float64
reference written from Lu et al. 2022's Algorithm 2, and against the exact probability-flow
solution of Gaussian data, where its order shows: it converges as h² where DDIM converges as h."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.blocks import schedules

MU, SCALE = 0.1, 0.25  # x_0 ~ N(MU, SCALE²): inside [-1, 1], so clipping x̂0 changes nothing


@pytest.fixture(scope="module")
def schedule():
    return schedules.Schedule("cosine", 1000)


def exact_x0(alpha_bar, x):
    """E[x_0 | x_t] for Gaussian data: the ideal denoiser's x̂0."""
    return MU + np.sqrt(alpha_bar) * SCALE**2 / (alpha_bar * SCALE**2 + 1 - alpha_bar) * (x - np.sqrt(alpha_bar) * MU)


def ideal_denoiser(schedule):
    def denoise(x, t):
        ab = schedule.gather(t)
        x0 = MU + tf.sqrt(ab) * SCALE**2 / (ab * SCALE**2 + 1 - ab) * (x - tf.sqrt(ab) * MU)
        return (x - tf.sqrt(ab) * x0) / tf.sqrt(1 - ab)
    return denoise


def flow_solution(schedule, x_T):
    """The probability-flow ODE's exact end point: (x_t − √ᾱ μ) / √(ᾱ s² + 1 − ᾱ) is constant."""
    ab = schedule.alpha_bar_np[-1]
    return MU + SCALE * (x_T - np.sqrt(ab) * MU) / np.sqrt(ab * SCALE**2 + 1 - ab)


def reference_dpm_solver(schedule, x_T, steps):
    """Algorithm 2 of Lu et al. 2022 in float64, step by step as written (λ, h, r, D)."""
    ab = np.r_[schedule.alpha_bar_np[schedule.halving_timesteps(steps)], 1.0]
    alpha, sigma = np.sqrt(ab), np.sqrt(1 - ab)
    x, before, h_before = x_T.astype(np.float64), None, None
    for i in range(steps):
        x0 = np.clip(exact_x0(ab[i], x), -1, 1)
        if sigma[i + 1] == 0:  # the last step, to x_0 (λ = ∞, e^{-h} = 0): first order, x̂0 itself
            return x0
        h = np.log(alpha[i + 1] / sigma[i + 1]) - np.log(alpha[i] / sigma[i])
        if before is None:  # the first step: first order
            d = x0
        else:
            r = h_before / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * before
        x = sigma[i + 1] / sigma[i] * x - alpha[i + 1] * (np.exp(-h) - 1) * d
        before, h_before = x0, h
    return x


def test_dpm_solver_matches_the_papers_algorithm(schedule):
    x_T = np.random.default_rng(0).standard_normal((16, 4, 4, 1))
    # One step is x̂0 at t = T − 1, recovered from ε̂ through √ᾱ ≈ 5e-5: float32 rounding of
    # ~1e-7 becomes ~2e-3 there (measured 1.6e-3); later steps scale that first x̂0 down.
    for steps, tolerance in ((1, 3e-3), (2, 3e-4), (10, 2e-4), (20, 2e-4)):
        ours = schedules.dpm_solver_sample(schedule, ideal_denoiser(schedule), tf.constant(x_T, tf.float32), steps)
        np.testing.assert_allclose(ours.numpy(), reference_dpm_solver(schedule, x_T, steps), atol=tolerance)


def test_dpm_solver_is_second_order_where_ddim_is_first(schedule):
    # |x_T| ≤ 3: the exact x_0 stays inside [-1, 1], where the samplers clip x̂0
    x_T = tf.constant(np.clip(np.random.default_rng(1).standard_normal((256, 2, 2, 1)), -3, 3), tf.float32)
    exact = flow_solution(schedule, x_T.numpy())
    denoise = ideal_denoiser(schedule)
    dpm = {n: np.abs(schedules.dpm_solver_sample(schedule, denoise, x_T, n).numpy() - exact).mean()
           for n in (10, 20, 40)}
    ddim = {n: np.abs(schedules.ddim_sample(schedule, denoise, x_T, n,
                                            times=schedule.halving_timesteps(n)).numpy() - exact).mean()
            for n in (10, 20, 40)}
    # measured: DPM-Solver 0.036, 0.0095, 0.0013 at 10, 20, 40 steps; DDIM 0.048, 0.025, 0.013
    assert dpm[10] < ddim[10] and dpm[20] < ddim[20] / 2
    assert dpm[40] / dpm[20] < 0.2 and dpm[20] / dpm[10] < 0.35  # ~h²
    assert ddim[40] / ddim[20] > 0.4  # ~h


def test_dpm_solver_keeps_a_static_batch_for_fixed_batch_files(schedule):
    x = tf.function(lambda: schedules.dpm_solver_sample(schedule, ideal_denoiser(schedule), tf.zeros([3, 4, 4, 1]),
                                                        4))()
    assert x.shape == (3, 4, 4, 1)

