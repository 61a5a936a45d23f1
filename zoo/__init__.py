"""zoo: a Keras 3 / TensorFlow model zoo of generative image models."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides the
# messages users need; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


class ZooError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


def _register_models():
    """Import every model so that ``keras.saving.load_model("<model>.keras")`` works after
    ``import zoo`` (the classes register themselves with Keras; the one upward import of the
    package, on purpose)."""
    from zoo.models import autoencoder, cgan, classifier, diffusion, vae


_register_models()
