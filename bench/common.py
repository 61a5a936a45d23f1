"""Helpers shared by the benchmarks: timing and JSON output."""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(fn, repeats=20, warmup=3):
    """Median and spread of wall-clock seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "max_ms": 1e3 * max(times), "repeats": repeats}


def report(name, results):
    import platform

    import tensorflow as tf

    print(json.dumps({"benchmark": name, "tensorflow": tf.__version__, "machine": platform.machine(),
                      "cpus": os.cpu_count(), **results}, indent=2))
