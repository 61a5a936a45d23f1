"""zoo: a Keras 3 / TensorFlow model zoo of generative image models.

The package face: it defines nothing. It names what a user reaches for (``zoo.load``,
``zoo.ZooError``) and imports every model once, so that each class registers itself with Keras
and ``keras.saving.load_model("<model>.keras")`` works after ``import zoo`` — the one import
that runs up the layers (docs/design.md, Architecture; tests/test_layers.py).
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides the
# messages users need; keep warnings and errors. Set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo.apps.pretrained import load  # noqa: E402
from zoo.core.errors import ZooError, error_line  # noqa: E402
from zoo.core.version import VERSION as __version__  # noqa: E402
from zoo.models import autoencoder, cgan, classifier, diffusion, vae  # noqa: E402, F401 - registration

__all__ = ["ZooError", "error_line", "load", "__version__"]
