"""Milliseconds per generated image of a shipped model's TFLite ``generate*`` signatures at each
batch size and thread count, as the export's quality stage runs them (one interpreter per
batch size, every tensor kept: ``tflite.interpreter``): the first call at that batch and the
calls after it, and whether the images equal those of the first batch and thread count. JSON,
``ms_per_image[signature][threads][batch]``.

    python bench/tflite_batch.py [--model diffusion] [--variant float32] [--images 100]
        [--batches 1 2 5 10 100] [--threads 1 2]
"""

import argparse
import os
import time

import numpy as np
from common import report

EXPORTED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exported")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="diffusion")
    p.add_argument("--variant", default="float32")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 5, 10, 100])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    args = p.parse_args()
    from zoo.export import tflite
    from zoo.export.card import machine

    path = os.path.join(EXPORTED, args.model, tflite.file_name(args.model, args.variant))
    names = [s for s in tflite.File(path).signature_names() if s.startswith("generate")]
    rng = np.random.default_rng(0)
    results = {}
    for name in names:
        runner = tflite.interpreter(path).get_signature_runner(name)
        details = runner.get_input_details()
        inputs = {k: (np.arange(args.images) % 10).astype(np.int32) if v["dtype"] == np.int32
                  else rng.standard_normal((args.images, *v["shape"][1:])).astype(np.float32)
                  for k, v in details.items()}
        first_images, rows = None, {}
        for threads, batch in ((t, b) for t in args.threads for b in args.batches):
            lite = tflite.File(path, threads)
            started = time.perf_counter()
            parts = [lite(name, **{k: v[:batch] for k, v in inputs.items()})["images"]]
            first = time.perf_counter() - started
            started = time.perf_counter()
            parts += [lite(name, **{k: v[i:i + batch] for k, v in inputs.items()})["images"]
                      for i in range(batch, args.images, batch)]
            rest = time.perf_counter() - started
            images = np.concatenate(parts)
            first_images = images if first_images is None else first_images
            rows.setdefault(threads, {})[batch] = {
                "first_call_ms_per_image": round(1e3 * first / batch, 1),
                "ms_per_image_after": round(1e3 * rest / max(1, args.images - batch), 1),
                "ms_per_image_all": round(1e3 * (first + rest) / args.images, 1),
                "max_abs_difference_to_first": float(np.abs(images - first_images).max())}
        results[name] = rows
    report("tflite_batch", {"file": os.path.relpath(path), "images": args.images, "cpu": machine(),
                            "ms_per_image": results})


if __name__ == "__main__":
    main()
