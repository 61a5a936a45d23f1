"""Diffusion sampling speed on this machine (JSON): the in-graph DDIM sampler (one
tf.function with a tf.while_loop) against a per-step Python loop that calls the same
network with ``predict`` once per step, and images/s for DDIM 10/20/50 steps and DDPM
1,000 steps, all with classifier-free guidance (two network evaluations per step).

    python bench/diffusion_sampling.py [--batch 64] [--ddpm-batch 16]

The network has the recipe's CPU-preset size; speed does not depend on its weights.
"""

import argparse
import time

from common import report

import numpy as np
import tensorflow as tf

from zoo.models.diffusion import Diffusion, DiffusionConfig


def seconds(fn, repeats=3):
    fn()  # trace / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def python_loop(model, noise, labels, steps):
    """The naive sampler: NumPy state, one ``predict`` per network evaluation."""
    s, g, null = model.schedule, model.config.guidance, np.full_like(labels, model.config.num_classes)
    times = s.ddim_timesteps(steps)
    x = noise
    for i, t in enumerate(times):
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        tt = np.full(len(x), t, np.int32)
        cond = model.network_ema.predict([x, tt, labels], verbose=0)
        uncond = model.network_ema.predict([x, tt, null], verbose=0)
        eps = uncond + g * (cond - uncond)
        x = s.ddim_step(tf.constant(x), tf.constant(tt), tf.fill([len(x)], t_prev), tf.constant(eps)).numpy()
    return model.to_images(x).numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ddpm-batch", type=int, default=16)
    args = p.parse_args()
    model = Diffusion(DiffusionConfig(channels=(32, 64, 64)))
    labels = np.arange(args.batch, dtype=np.int32) % 10
    noise = model.initial_noise(args.batch, 0)
    results = {"batch": args.batch, "network_parameters": model.network.count_params(), "guidance": 3.0}
    for steps in (10, 20, 50):
        sampler = tf.function(lambda steps=steps: model.generate(noise, tf.constant(labels), steps=steps))
        t = seconds(sampler)
        results[f"ddim_{steps}_steps"] = {"seconds": t, "images_per_second": args.batch / t}
    loop = seconds(lambda: python_loop(model, noise.numpy(), labels, 20), repeats=1)
    graph = results["ddim_20_steps"]["seconds"]
    results["ddim_20_steps_python_loop"] = {"seconds": loop, "images_per_second": args.batch / loop,
                                            "in_graph_speedup": loop / graph}
    small = tf.constant(labels[:args.ddpm_batch])
    ddpm = tf.function(lambda: model.sample_ddpm(small, tf.constant(0)))
    t = seconds(ddpm, repeats=1)
    results["ddpm_1000_steps"] = {"batch": args.ddpm_batch, "seconds": t, "images_per_second": args.ddpm_batch / t}
    report("diffusion_sampling", results)


if __name__ == "__main__":
    main()
