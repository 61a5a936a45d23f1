"""zoo: a Keras 3 / TensorFlow model zoo of generative image models."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides the
# messages users need; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


class ZooError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


def error_line(error, last=False, limit=300):
    """One line of an exception's message for a one-line report (the first, or the ``last``:
    converters put the cause at the end), at most ``limit`` characters; its type if empty."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return (lines[-1] if last else lines[0])[:limit]


def load(name_or_path, runtime="savedmodel", variant="float32", version=None):
    """A trained model in one line: a shipped one by name (``zoo.load("cgan")``) or an export
    folder, its capabilities as methods on NumPy arrays (``zoo.pretrained.Pretrained``)."""
    from zoo import pretrained

    return pretrained.load(name_or_path, runtime, variant, version)


def _register_models():
    """Import every model so that ``keras.saving.load_model("<model>.keras")`` works after
    ``import zoo`` (the classes register themselves with Keras; the one upward import of the
    package, on purpose)."""
    from zoo.models import autoencoder, cgan, classifier, diffusion, vae  # noqa: F401


_register_models()
