"""Speed and memory of the metric math on synthetic features (JSON output).

- FID of two 10,000 × 2,048 feature sets: zoo's eigenvalue route vs scipy.linalg.sqrtm.
- Precision/recall/density/coverage of 10,000 vs 10,000 × 2,048: zoo's batched TensorFlow
  pass vs a straightforward NumPy implementation of the full distance matrices.
- The same at 50,000 vs 50,000 in a child process, reporting its peak memory (--large).

    python bench/metrics.py [--n 10000] [--dim 2048] [--large]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.linalg
from common import report

from zoo.metrics import core


def features(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return (rng.normal(size=(n, dim)) @ mixing + shift).astype(np.float32)


def fid_sqrtm(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def neighbourhood_numpy(real, fake, k_pr=3, k_dc=5):
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def dist(x, y):
        return np.sqrt(np.maximum((x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2 * x @ y.T, 0))

    drr, dff, drf = dist(real, real), dist(fake, fake), dist(real, fake)
    r3, r5 = np.partition(drr, k_pr, axis=1)[:, k_pr], np.partition(drr, k_dc, axis=1)[:, k_dc]
    f3 = np.partition(dff, k_pr, axis=1)[:, k_pr]
    return {"precision": float((drf <= r3[:, None]).any(0).mean()), "recall": float((drf <= f3[None]).any(1).mean()),
            "density": float((drf <= r5[:, None]).sum() / (k_dc * len(fake))),
            "coverage": float((drf.min(1) <= r5).mean())}


def clock(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def large(n, dim):
    real, fake = features(n, dim, 0), features(n, dim, 1, 0.1)
    result, seconds = clock(lambda: core.neighbourhood_metrics(real, fake))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"n": n, "seconds": seconds, "peak_rss_gb": peak_gb, **result}))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--large", action="store_true", help="also run 50,000 vs 50,000 in a child process")
    p.add_argument("--child-large", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_large:
        return large(args.child_large, args.dim)

    a, b = features(args.n, args.dim, 0), features(args.n, args.dim, 1, 0.1)
    fid_zoo, t_zoo = clock(lambda: core.frechet_distance(a, b))
    fid_ref, t_ref = clock(lambda: fid_sqrtm(a, b))
    # The matrix-square-root part alone (both routes share the covariance computation).
    s1, s2 = np.cov(a.astype(np.float64), rowvar=False), np.cov(b.astype(np.float64), rowvar=False)
    _, t_trace_zoo = clock(lambda: core.trace_sqrt_product(s1, s2))
    _, t_trace_ref = clock(lambda: np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    nn_zoo, t_nn = clock(lambda: core.neighbourhood_metrics(a, b))
    nn_ref, t_nn_ref = clock(lambda: neighbourhood_numpy(a, b))
    results = {
        "n": args.n, "dim": args.dim,
        "fid": {"zoo_seconds": t_zoo, "sqrtm_seconds": t_ref, "speedup": t_ref / t_zoo,
                "trace_sqrt_zoo_seconds": t_trace_zoo, "trace_sqrt_sqrtm_seconds": t_trace_ref,
                "trace_sqrt_speedup": t_trace_ref / t_trace_zoo,
                "zoo_value": fid_zoo, "sqrtm_value": fid_ref, "relative_difference": abs(fid_zoo - fid_ref) / fid_ref},
        "precision_recall_density_coverage": {
            "zoo_seconds": t_nn, "numpy_full_matrices_seconds": t_nn_ref, "speedup": t_nn_ref / t_nn,
            "zoo": nn_zoo, "numpy": nn_ref},
    }
    if args.large:
        child = subprocess.run([sys.executable, __file__, "--child-large", "50000", "--dim", str(args.dim)],
                               capture_output=True, text=True)
        results["large_50k"] = json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else child.stderr[-500:]
    report("metrics", results)


if __name__ == "__main__":
    main()
