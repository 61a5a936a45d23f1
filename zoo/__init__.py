"""zoo: a Keras 3 / TensorFlow model zoo of generative image models.

The package face: it defines nothing. It names what a user reaches for (``zoo.load``,
``zoo.ZooError``), and imports nothing heavy: ``zoo.load`` is looked up on first use, so that
``import zoo`` and ``zoo --help`` take no TensorFlow start-up (0.1 s; 3 s with it). The models
register with Keras when their modules load (``zoo.models.base.model_class`` loads them all).
"""

from zoo.core import quiet
from zoo.core.errors import ZooError, error_line
from zoo.core.version import VERSION as __version__

quiet.install()  # before anything imports TensorFlow

__all__ = ["ZooError", "error_line", "load", "__version__"]


def __getattr__(name):  # PEP 562: the names that need TensorFlow, imported when first used
    if name == "load":
        from zoo.apps.pretrained import load

        return load
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
