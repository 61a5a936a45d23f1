"""Sampling latency of an exported VAE: SavedModel `sample` and `decode`, TFLite `decode`,
for batch 1 and 64 (median ms per call).

    python bench/sample_latency.py [--export exported/vae]

Without an export at that path it trains nothing: it exports an untrained VAE of the
default size to a temporary folder (latency does not depend on the weights).
"""

import argparse
import os
import tempfile

from common import report, timed

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter


def latest_version(target):
    serving = os.path.join(target, "serving")
    return os.path.join(serving, str(max(int(v) for v in os.listdir(serving) if v.isdigit())))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--export", default="exported/vae")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    target = args.export
    if not os.path.isdir(os.path.join(target, "serving")):
        from zoo import export
        from zoo.models.vae import VAE, VAEConfig

        out = tempfile.mkdtemp()
        export.export(VAE(VAEConfig()), out, card={"metrics": {}})
        target = os.path.join(out, "vae")
    model = tf.saved_model.load(latest_version(target))
    tflite = os.path.join(target, "vae.tflite")
    results = {"export": target}
    for batch in (1, 64):
        latent = np.random.default_rng(0).normal(size=(batch, 16)).astype(np.float32)
        results[f"saved_model_sample_batch{batch}"] = timed(
            lambda: model.signatures["sample"](num=tf.constant(batch), seed=tf.constant(0)), args.repeats)
        results[f"saved_model_decode_batch{batch}"] = timed(
            lambda: model.signatures["decode"](latent=tf.constant(latent)), args.repeats)
        runner = Interpreter(model_path=tflite).get_signature_runner("decode")
        results[f"tflite_decode_batch{batch}"] = timed(lambda: runner(latent=latent), args.repeats)
    report("sample_latency", results)


if __name__ == "__main__":
    main()
