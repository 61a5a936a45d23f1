"""Sampling latency and throughput of exported models (JSON; median over repeats).

    python bench/sample_latency.py                     # VAE: SavedModel sample/decode, TFLite decode
    python bench/sample_latency.py --model diffusion   # diffusion: in-graph DDIM vs per-step loops

VAE: `sample` and `decode` of the SavedModel and `decode` of the TFLite file, batch 1 and
64; it uses ``--export`` (default exported/vae) when present, otherwise it exports an
untrained VAE of the default size to a temporary folder.

Diffusion (the recipe's U-Net, ``--preset``, untrained: speed does not depend on the
weights), all with classifier-free guidance 3 (two network evaluations per step, batched):
  * 20 DDIM steps, batch 1 and ``--batch``: the in-graph sampler (one tf.function holding a
    tf.while_loop; the same graph as the exported ``generate``) against two per-step Python
    loops over the same network — one calling Keras ``predict`` once per step, one calling
    the exported ``denoise`` signature once per step — and the SavedModel ``generate``;
  * TFLite ``generate`` (the whole 20-step loop in one call), batch 1;
  * images/s of DDIM with 10, 20 and 50 steps and DDPM with 1,000 steps.
"""

import argparse
import os
import tempfile

import numpy as np
import tensorflow as tf
from common import report, timed

from zoo.export import exporter, tflite


def latest_version(target):
    serving = os.path.join(target, "serving")
    return os.path.join(serving, str(max(int(v) for v in os.listdir(serving) if v.isdigit())))


def vae(args):
    target = args.export or "exported/vae"
    if not os.path.isdir(os.path.join(target, "serving")):
        from zoo.models.vae import VAE, VAEConfig

        out = tempfile.mkdtemp()
        exporter.export(VAE(VAEConfig()), out, card={"metrics": {}})
        target = os.path.join(out, "vae")
    model = tf.saved_model.load(latest_version(target))
    tflite_path = os.path.join(target, "vae.tflite")
    results = {"model": "vae", "export": target}
    for batch in (1, 64):
        latent = np.random.default_rng(0).normal(size=(batch, 16)).astype(np.float32)
        results[f"saved_model_sample_batch{batch}"] = timed(
            lambda: model.signatures["sample"](num=tf.constant(batch), seed=tf.constant(0)), args.repeats)
        results[f"saved_model_decode_batch{batch}"] = timed(
            lambda: model.signatures["decode"](latent=tf.constant(latent)), args.repeats)
        runner = tflite.interpreter(tflite_path).get_signature_runner("decode")
        results[f"tflite_decode_batch{batch}"] = timed(lambda: runner(latent=latent), args.repeats)
    return results


# Diffusion --------------------------------------------------------------------------------
def python_loop(model, denoise_fn, noise, labels, steps):
    """A hand-written DDIM loop: NumPy state, one call of ``denoise_fn(x, t, labels) -> ε`` per
    step on the conditional and unconditional halves together, the update in eager TF."""
    s, g = model.schedule, model.config.guidance
    both_labels = np.concatenate([labels, np.full_like(labels, model.config.num_classes)])
    times = s.ddim_timesteps(steps)
    x = noise
    for i, t in enumerate(times):
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        eps = denoise_fn(np.concatenate([x, x]), np.full(2 * len(x), t, np.int32), both_labels)
        cond, uncond = np.split(np.asarray(eps), 2)
        n = len(x)
        x = s.ddim_step(tf.constant(x), tf.fill([n], t), tf.fill([n], t_prev),
                        tf.constant(uncond + g * (cond - uncond))).numpy()
    return model.to_images(x).numpy()


def diffusion(args):
    from zoo.models.diffusion import Diffusion, DiffusionConfig

    preset = {k: v for k, v in Diffusion.presets[args.preset].items() if k in DiffusionConfig.defaults()}
    # classifier-free (no guide network): what the hand-written loops below reproduce
    model = Diffusion(DiffusionConfig(**preset, guidance=3.0, sample_steps=20, guide_channels=()))
    out = tempfile.mkdtemp()
    written, _ = exporter.export(model, out, card={"metrics": {}})
    serving = tf.saved_model.load(written["saved_model"])
    network = model.network_ema
    results = {"model": "diffusion", "preset": args.preset, "network_parameters": network.count_params(),
               "guidance": model.config.guidance, "ddim_steps": 20}

    def by_predict(x, t, labels):
        return network.predict([x, t, labels], batch_size=len(x), verbose=0)

    def by_signature(x, t, labels):
        return serving.signatures["denoise"](noisy_images=tf.constant(x), timesteps=tf.constant(t),
                                             labels=tf.constant(labels))["noise"]

    repeats = max(1, args.repeats // 10)
    for batch in sorted({1, args.batch}):
        labels = np.arange(batch, dtype=np.int32) % 10
        noise = model.initial_noise(batch, 0)
        in_graph = tf.function(lambda: model.generate(noise, tf.constant(labels)))
        row = {"in_graph": timed(in_graph, repeats, warmup=1)}
        row["saved_model_generate"] = timed(
            lambda: serving.signatures["generate"](noise=noise, labels=tf.constant(labels)), repeats, warmup=1)
        for name, fn in (("python_loop_predict", by_predict), ("python_loop_denoise_signature", by_signature)):
            row[name] = timed(lambda: python_loop(model, fn, noise.numpy(), labels, 20), repeats, warmup=1)
            row[f"in_graph_speedup_over_{name}"] = row[name]["median_ms"] / row["in_graph"]["median_ms"]
        results[f"ddim20_batch{batch}"] = row
    runner = tflite.interpreter(written["diffusion.tflite"]).get_signature_runner("generate")
    one = model.initial_noise(1, 0).numpy()
    results["tflite_generate_batch1"] = timed(lambda: runner(noise=one, labels=np.array([3], np.int32)),
                                              repeats, warmup=1)

    labels = tf.constant(np.arange(args.batch, dtype=np.int32) % 10)
    noise = model.initial_noise(args.batch, 0)
    for steps in (10, 20, 50):
        t = timed(tf.function(lambda steps=steps: model.generate(noise, labels, steps=steps)), repeats, warmup=1)
        results[f"ddim{steps}_batch{args.batch}_images_per_second"] = 1e3 * args.batch / t["median_ms"]
    small = labels[:args.ddpm_batch]
    t = timed(tf.function(lambda: model.sample_ddpm(small, tf.constant(0))), 1, warmup=1)
    results[f"ddpm1000_batch{args.ddpm_batch}_images_per_second"] = 1e3 * args.ddpm_batch / t["median_ms"]
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("vae", "diffusion"), default="vae")
    p.add_argument("--export", help="VAE export folder (default exported/vae)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per VAE measurement (diffusion: a tenth)")
    p.add_argument("--preset", default="cpu", choices=("cpu", "full"), help="diffusion: the recipe preset whose U-Net is timed")
    p.add_argument("--batch", type=int, default=64, help="diffusion: the large batch")
    p.add_argument("--ddpm-batch", type=int, default=16, help="diffusion: batch of the 1,000-step DDPM run")
    args = p.parse_args()
    report("sample_latency", vae(args) if args.model == "vae" else diffusion(args))


if __name__ == "__main__":
    main()
