"""TensorFlow's start-up lines kept off the user's screen.

TensorFlow prints its C++ start-up notes (oneDNN, "Could not find cuda drivers", the CPU
instruction list, and "failed call to cuInit" on a machine without a GPU) before its logging
reads TF_CPP_MIN_LOG_LEVEL, so that setting cannot hide them: every zoo command began with
eight such lines. ``install()`` makes the first ``import tensorflow`` (from anywhere: zoo,
Keras, a user's code after ``import zoo``) run with the process's stderr pointed at
/dev/null, devices found included; a failed import still raises its Python exception.
``ZOO_DEBUG=1`` keeps everything on screen.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys

# Diffusion's SavedModel holds functions whose gradients are not saved; loading it warns four
# times that asking for them would fail. Nothing zoo loads asks (fine-tuning rebuilds the Keras
# model from the stored weights: zoo.apps.pretrained.keras_model).
UNASKED = ("unsaved custom gradients",)


@contextlib.contextmanager
def silenced_stderr():
    """File descriptor 2 (what C++ libraries write to) pointed at /dev/null for the block."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with silenced_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # CUDA's probe (cuInit) prints here, not at import


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _DropUnasked(logging.Filter):
    def filter(self, record):
        return not any(text in record.getMessage() for text in UNASKED)


def install():
    """Quiet the first TensorFlow import of this process (nothing if it has happened)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # what TensorFlow logs after start-up: warnings up
    logging.getLogger("absl").addFilter(_DropUnasked())
    if os.environ.get("ZOO_DEBUG") or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())
