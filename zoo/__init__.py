"""zoo: a Keras 3 / TensorFlow model zoo of generative image models."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides the
# messages users need; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


class ZooError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""
