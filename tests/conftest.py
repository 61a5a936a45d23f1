"""Test set-up: two logical CPU devices (for MirroredStrategy on one CPU), fast helpers."""

import os
import socket
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Under pytest-xdist each worker is a TensorFlow process whose intra-op pool would take every
# core: `-n 2` on 2 cores ran 4 spinning threads on 2 cores. One core's share each (the
# processes a test starts inherit it): measured on 2 cores, test_metrics_models.py and
# test_vae.py under -n 2 took 158 and 190 s with the default pools, 123 s with one thread.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    os.environ.setdefault("OMP_NUM_THREADS", _threads)

import numpy as np
import pytest
import tensorflow as tf

# Must run before TensorFlow initialises its devices.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from zoo.core import progress

progress.set_verbosity(0)  # the stages' progress bars are for people, not for test logs

_MIRRORED = []


def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole test run: separate
    instances in one process reuse collective instance keys and then fail with "Shape
    mismatch in the collective instance"."""
    if not _MIRRORED:
        _MIRRORED.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _MIRRORED[0]


# Unit tests of the exporter write the float32 TFLite file only: the variants (and their
# quality measurements) have their own tests and the recipe tests run them with defaults.
FAST_EXPORT = {"variants": ("float32",), "web_batches": ()}

# Recipe flags for the tests that run whole recipes to check a path (other datasets, two
# workers, kill-and-resume) and not the models' quality: every model's tiny preset (small
# networks, one epoch of two steps, 50 samples, no quantized or browser files).
TINY = ["--preset", "tiny", "--verbose", "0"]

# Modules whose module fixture is expensive (an export, a trained model, the browser) mark
# themselves ``pytestmark = pytest.mark.xdist_group(...)``: with setup.cfg's --dist loadgroup
# one pytest-xdist worker runs the whole module, so the fixture is built once, not per worker.

def free_ports(n):
    """``n`` TCP ports on 127.0.0.1 that were free a moment ago (for TF_CONFIG clusters)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code_or_args, cwd=None, timeout=600, env=None, isolated=False):
    """Run Python in a fresh process. ``isolated``: zoo cannot be imported there."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if isinstance(code_or_args, str):
        if isolated:
            code_or_args = ISOLATION + code_or_args
        args = [sys.executable, "-c", code_or_args]
    else:
        args = [sys.executable, *code_or_args]
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


ISOLATION = """
import sys
sys.modules['zoo'] = None  # any `import zoo` now fails, as on a serving machine
try:
    import zoo
except ImportError:
    pass
else:
    raise SystemExit("zoo is importable in the isolated process")
"""


def run_without_zoo(code, **paths):
    """Run ``code`` where zoo cannot be imported, with each NAME in it replaced by
    repr(paths[NAME]); return the JSON it printed after "RESULT"."""
    import json

    for name, value in paths.items():
        code = code.replace(name, repr(str(value)))
    result = run_python(code, cwd="/", isolated=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.split("RESULT", 1)[1])


@pytest.fixture
def rng():
    return np.random.default_rng(0)
