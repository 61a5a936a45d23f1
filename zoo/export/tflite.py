"""TFLite files: conversion (float32 and quantized variants, fixed batch sizes for the web),
running them with LiteRT (``ai-edge-litert``), comparing and timing them.

Variants (``VARIANTS``): ``float32``; ``float16`` (weights stored in float16); ``int8_dynamic``
(dynamic-range: int8 weights, float activations); ``int8`` (full integer: int8 weights and
activations, calibrated on a representative dataset; float inputs and outputs). Whether a
variant is good enough is not decided here: the exporter measures each one's quality.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import tempfile
import time
import types
import warnings

import numpy as np
import tensorflow as tf

from zoo.core.errors import ZooError, error_line
from zoo.core.quiet import silenced_stderr

# variant → file-name suffix
VARIANTS = {"float32": "", "float16": "_fp16", "int8_dynamic": "_int8_dynamic", "int8": "_int8"}


def file_name(model_name, variant="float32", batch=None):
    return f"{model_name}{VARIANTS[variant]}{'' if batch is None else f'_b{batch}'}.tflite"


CALIBRATION_EXAMPLES = 240  # divisible by every web batch: each file of a variant sees the same examples


def representative_dataset(signatures, images=None, seed=0, batch=1):
    """For full-integer calibration: the same ``CALIBRATION_EXAMPLES`` examples per signature
    whatever the file's fixed ``batch`` (so its copies get the same quantisation ranges), each
    input drawn as its role says — real ``images`` (training images) for image inputs, the
    inputs' own examples (standard normal noise, uniform choices, labels in range, masks)
    otherwise."""
    rng = np.random.default_rng(seed)
    examples = {}
    for sig in signatures:
        real = images is not None
        examples[sig.name] = {i.name: i.draw(rng, CALIBRATION_EXAMPLES, images[rng.integers(
            len(images), size=CALIBRATION_EXAMPLES)].astype(np.float32) if i.role == "images" and real else None)
            for i in sig.inputs}
    return Representative(examples, batch)


class Representative:
    """The converter's representative dataset: calling it yields (signature, inputs) pairs,
    ``batch`` examples at a time. Plain arrays, so it can be saved for a child process."""

    def __init__(self, examples, batch=1):
        self.examples, self.batch = examples, batch

    def __call__(self):
        for start in range(0, CALIBRATION_EXAMPLES - self.batch + 1, self.batch):
            for name, values in self.examples.items():
                yield name, {k: v[start:start + self.batch] for k, v in values.items()}

    def save(self, path):
        np.savez(path, batch=self.batch, **{f"{sig}/{k}": v for sig, values in self.examples.items()
                                           for k, v in values.items()})

    @classmethod
    def load(cls, path):
        examples, batch = {}, 1
        with np.load(path) as f:
            for key in f.files:
                if key == "batch":
                    batch = int(f[key])
                else:
                    sig, name = key.split("/", 1)
                    examples.setdefault(sig, {})[name] = f[key]
        return cls(examples, batch)


def convert(saved_model_dir, signature_names, path, variant="float32", representative=None):
    """Convert the SavedModel's ``signature_names`` into one TFLite file, in this process;
    raises on failure. ``Conversion`` does the same in a child process."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(signature_names))
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    data = converter.convert()
    with open(path, "wb") as f:
        f.write(data)


def conversion_error_line(error):
    """A failed conversion in one line. The converter's message ends in an MLIR dump (its last
    line read "}) : () -> ()" for an op TFLite lacks), so the cause is its first ``error:``
    after the location, with the TF Select ops it names; else the message's last line."""
    lines = str(error).splitlines()
    causes = [line.split("error:", 1)[1] for line in lines if "error:" in line]
    if not causes:
        return error_line(error, last=True)
    cause = (causes[0].rsplit("): ", 1)[-1] if "loc(" in causes[0] else causes[0]).strip()
    select = next((line.strip() for line in lines if line.startswith("TF Select ops:")), "")
    return (f"{cause} ({select})" if select else cause)[:300]


def _convert_in_child(saved_model_dir, signature_names, path, variant, examples, stderr_path):
    """A ``Conversion``'s child: the converter's own output goes to ``stderr_path`` (not the
    user's terminal); a failure ends with its cause in one line there
    (``conversion_error_line``) and exit status 3."""
    with open(os.devnull, "w") as devnull, open(stderr_path, "w") as stderr:
        os.dup2(devnull.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
    try:
        convert(saved_model_dir, signature_names, path, variant, Representative.load(examples) if examples else None)
    except Exception as e:  # noqa: BLE001 - any converter failure is one line for the parent
        print(conversion_error_line(e), file=sys.stderr, flush=True)
        sys.exit(3)


_FORKSERVER = []


def _children():
    """Where ``Conversion`` children come from: a fork server that imported TensorFlow once
    (``multiprocessing``'s forkserver, preloading this module): a fresh interpreter per
    conversion spent ~7 s of CPU importing TensorFlow first (docs/history.md, "Measurements
    behind the code"). Forked from a server that never ran TensorFlow
    (not from this process, whose runtime threads a fork would not carry over). The server
    starts with TensorFlow's C++ logging off, as every child then is."""
    if not _FORKSERVER:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        before = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        try:
            with _main_module_hidden():
                multiprocessing.forkserver.ensure_running()
        finally:
            if before is None:
                del os.environ["TF_CPP_MIN_LOG_LEVEL"]
            else:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = before
        _FORKSERVER.append(context)
    return _FORKSERVER[0]


@contextlib.contextmanager
def _main_module_hidden():
    """``multiprocessing`` imports the parent's ``__main__`` script again in the server and in
    each child (its "safe importing of the main module" rule): a user's script that exports at
    its top level, without ``if __name__ == "__main__"``, would run again there. A conversion
    needs nothing from it, so it is hidden while the server and the children start."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Conversion:
    """One conversion in a child process, started at once; ``wait()`` returns when the file is
    written and raises RuntimeError (one line) when the converter failed or crashed.

    A crash costs one file, not the run that trained the model: TF 2.21's full-integer
    calibrator crashed the whole process (segmentation fault in ``_feed_tensors``) on the
    diffusion U-Net's DDIM loop. And children let conversions run side by side: the converter
    is single-threaded, and the diffusion export's four browser files took 154 s one after the
    other on 2 cores (two U-Nets in each graph)."""

    def __init__(self, saved_model_dir, signature_names, path, variant="float32", representative=None):
        self._tmp, self._outcome = tempfile.TemporaryDirectory(), None
        examples = ""
        if representative is not None and variant == "int8":
            examples = os.path.join(self._tmp.name, "representative.npz")
            representative.save(examples)
        self._stderr = os.path.join(self._tmp.name, "stderr")
        self._child = _children().Process(
            target=_convert_in_child, args=(saved_model_dir, list(signature_names), path, variant, examples,
                                            self._stderr), daemon=True)
        with _main_module_hidden():
            self._child.start()

    @property
    def running(self):
        return self._outcome is None and self._child.exitcode is None

    def cancel(self):
        """Stop the child (an export that failed or was interrupted) and remove its files."""
        if self.running:
            self._child.kill()
        try:
            self.wait()
        except RuntimeError:
            pass

    def wait(self):
        if self._outcome is None:
            try:
                self._child.join()
                code = self._child.exitcode
                lines = []
                if os.path.exists(self._stderr):
                    with open(self._stderr) as f:
                        lines = f.read().strip().splitlines()
            finally:
                self._child.close()
                self._tmp.cleanup()
            if code == 3:
                self._outcome = lines[-1] if lines else "the converter failed"
            elif code != 0:
                self._outcome = f"the converter crashed ({f'signal {-code}' if code < 0 else f'exit status {code}'})"
            else:
                self._outcome = ""
        if self._outcome:
            raise RuntimeError(self._outcome)


def interpreter(path, threads=None):
    """A LiteRT interpreter for ``path`` that keeps every tensor in its own memory, on
    ``threads`` threads (None: LiteRT's default, one).

    Why: ai-edge-litert 2.3.0's XNNPACK delegate can compute a WHILE loop's body (the
    diffusion model's DDIM and RePaint loops) from stale memory on the first call of a fresh
    interpreter, and again on the first call at a larger batch, when the file's batch is
    dynamic: the tiny test model's ``generate`` came out wrong (0.28 from the right images) on
    7 of 80 such calls, a default-size one on 12 of 40; 0 of 160 each with
    ``experimental_preserve_all_tensors`` (and 0 of 20 without XNNPACK, 0 of 20 for a
    fixed-batch copy). The zoo's models are small, so keeping all tensors costs little memory
    (batch-1 latency: ~20-60% more for diffusion's ``generate``); whoever runs a dynamic-batch
    file with a loop should do the same (README, "On device")."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # "intended for debugging purposes only": here it is the fix
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        return Interpreter(model_path=path, num_threads=threads, experimental_preserve_all_tensors=True)


class File:
    """A TFLite file with one interpreter per signature (on ``threads`` threads: None, one),
    reused across calls."""

    def __init__(self, path, threads=None):
        self.path, self.threads = path, threads
        self._runners = {}

    def runner(self, signature):
        if signature not in self._runners:
            self._runners[signature] = interpreter(self.path, self.threads).get_signature_runner(signature)
        return self._runners[signature]

    def signature_names(self):
        return list(interpreter(self.path).get_signature_list())

    def __call__(self, signature, **inputs):
        """The outputs (NumPy) of one call; the runner resizes inputs to their batch."""
        first = signature not in self._runners
        with silenced_stderr() if first else contextlib.nullcontext():  # LiteRT's "INFO: Created ... XNNPACK
            outputs = self.runner(signature)(**inputs)                  # delegate for CPU." on a first call
        return {k: np.asarray(v) for k, v in outputs.items()}

    def batched(self, signature, output, inputs, batch=250):
        """``signature`` over inputs (name → array, split along the batch), one output."""
        n = len(next(iter(inputs.values())))
        return np.concatenate([self(signature, **{k: v[i:i + batch] for k, v in inputs.items()})[output]
                               for i in range(0, n, batch)])


def largest_difference(a, b, relative=False):
    """Max |a − b| over every output; ``relative``: over max(1, max |b|)."""
    worst = 0.0
    for k in b:
        diff = float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))))
        if not np.isfinite(diff):  # max(worst, nan) would quietly report 0.0 (it did, for a NaN file)
            raise ZooError(f"its output {k} contains NaN or Inf")
        worst = max(worst, diff / (max(1.0, float(np.max(np.abs(b[k])))) if relative else 1.0))
    return worst


def compare_files(path, reference_path, signatures, batch=4, seed=0):
    """Max abs difference between two TFLite files on one fixed input per signature."""
    rng = np.random.default_rng(seed)
    a, b = File(path), File(reference_path)
    result = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, batch) for i in sig.inputs}
        result[sig.name] = largest_difference(a(sig.name, **inputs), b(sig.name, **inputs))
    return result


def latency_ms(path, signatures, repeats=5, seed=0):
    """Median milliseconds of one batch-1 call of each signature (LiteRT, XNNPACK, one thread) on this machine."""
    rng = np.random.default_rng(seed)
    lite = File(path)
    result = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, 1) for i in sig.inputs}
        lite(sig.name, **inputs)  # allocation and warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            lite(sig.name, **inputs)
            times.append(time.perf_counter() - start)
        result[sig.name] = round(1e3 * float(np.median(times)), 3)
    return result
