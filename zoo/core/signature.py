"""What a model declares for export: its inference functions (``Signature``) and their typed
inputs (``Input``), as plain data.

An ``Input`` carries everything a caller (the SavedModel's in-graph checks, the TFLite parity
check, the ``zoo`` command line, the web page) needs to build or validate a value: dtype,
per-example shape, bounds, an allowed set of values, whether it must be finite. The exporter
reads these fields and never switches on what an input *is*, so a new kind of input (int32
codes of shape [N, 7, 7], a mask) needs no change to ``zoo.export``. The helpers below
(``images``, ``noise``, ``labels``, ...) are conveniences, not a closed vocabulary.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Input:
    """One signature input. ``shape`` excludes the batch dimension; ``batched=False`` means
    a scalar. Bounds are inclusive; ``values``: every element must be one of these."""

    name: str
    dtype: str = "float32"
    shape: tuple = ()
    batched: bool = True
    minimum: float | None = None
    maximum: float | None = None
    values: tuple | None = None
    role: str = ""  # what it is, for readers and tools: images, noise, labels, seed, count, ...
    hint: str = ""  # said after a bounds error: what to do about it

    @property
    def tf_dtype(self):
        return tf.as_dtype(self.dtype)

    @property
    def is_float(self):
        return self.tf_dtype.is_floating

    def spec(self, batch=None, relaxed=False):
        """The TensorSpec: batch ``batch`` (None: any); ``relaxed``: any per-example shape
        too, so the in-graph check (not the signature matcher) reports a wrong shape."""
        if not self.batched:
            return tf.TensorSpec([], self.tf_dtype, name=self.name)
        inner = [None] * len(self.shape) if relaxed else list(self.shape)
        return tf.TensorSpec([batch, *inner], self.tf_dtype, name=self.name)

    def bounds_text(self):
        if self.values is not None:
            return "one of {" + ", ".join(f"{v:g}" for v in self.values) + "}"
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"in [{low}, {high}]"

    def describe(self):
        """The card's description, enough for a client to validate a value before a call."""
        out = {"dtype": self.dtype, "shape": ["N", *self.shape] if self.batched else [], "role": self.role}
        for key in ("minimum", "maximum", "values"):
            if getattr(self, key) is not None:
                out[key] = list(getattr(self, key)) if key == "values" else getattr(self, key)
        if self.is_float:
            out["finite"] = True
        return out

    @classmethod
    def from_description(cls, name, description):
        """The Input a card describes (``describe()``'s inverse): what a client of an export
        validates its values with, without the model."""
        shape = description.get("shape", [])
        values = description.get("values")
        return cls(name, description["dtype"], tuple(shape[1:]), batched=bool(shape),
                   minimum=description.get("minimum"), maximum=description.get("maximum"),
                   values=None if values is None else tuple(values), role=description.get("role", ""))

    def check(self, signature, x):
        """In-graph validation (shape, finiteness, bounds, allowed values); returns ``x`` with
        its static per-example shape restored."""
        where = f"{signature}: input {self.name}"
        if not self.batched:
            checks = [tf.debugging.assert_rank(x, 0, message=f"{where} must be a scalar")]
        else:
            want = "[N, " + ", ".join(map(str, self.shape)) + "]" if self.shape else "[N]"
            checks = [tf.debugging.assert_rank(x, len(self.shape) + 1, message=f"{where} must have shape {want}")]
            with tf.control_dependencies(checks):
                checks.append(tf.debugging.assert_equal(
                    tf.shape(x)[1:], tf.constant(self.shape, tf.int32, shape=[len(self.shape)]),
                    message=f"{where} must have shape {want}"))
        bounds = f"{where} must be {self.bounds_text()}{' ' + self.hint if self.hint else ''}"
        if self.is_float:
            checks.append(tf.debugging.assert_all_finite(x, f"{where} contains NaN or Inf"))
        if self.minimum is not None:
            checks.append(tf.debugging.assert_greater_equal(x, tf.cast(self.minimum, x.dtype), message=bounds))
        if self.maximum is not None:
            checks.append(tf.debugging.assert_less_equal(x, tf.cast(self.maximum, x.dtype), message=bounds))
        if self.values is not None:
            allowed = tf.reduce_any(tf.equal(x[..., None], tf.constant(self.values, x.dtype)), axis=-1)
            checks.append(tf.debugging.assert_equal(tf.reduce_all(allowed), True, message=bounds))
        with tf.control_dependencies(checks):
            x = tf.identity(x)
        return tf.ensure_shape(x, [None, *self.shape]) if self.batched else x

    def validate(self, value, signature=""):
        """The same checks in NumPy, for callers of files that carry none (TFLite): returns
        the value as an array of the right dtype, or a one-line reason it is unacceptable."""
        where = f"{signature + ': ' if signature else ''}input {self.name}"
        kind = ("numbers" if self.batched else "a number") if self.is_float else (
            "integers" if self.batched else "an integer")
        if value is None:
            return None, f"{where} must be {kind}, got None"
        array = np.asarray(value)
        if self.batched and array.ndim >= 1 and not len(array):  # [] is float64 to NumPy: say what is wrong
            return None, f"{where} is empty: give at least one example"
        if array.dtype == bool or not np.issubdtype(array.dtype, np.number if self.is_float else np.integer):
            got = repr(value) if array.size == 1 else f"an array of {array.dtype}"
            return None, f"{where} must be {kind}, got {got}"
        if not self.is_float and array.size:
            limits = np.iinfo(self.dtype)
            worst = array.max() if array.max() > limits.max else array.min()
            if not limits.min <= worst <= limits.max:
                return None, f"{where} must fit in {self.dtype} ([{limits.min}, {limits.max}]), got {worst}"
        want = ["N", *self.shape] if self.batched else []
        fits = all(size == want_size or want_size == -1 for size, want_size in zip(array.shape[1:], self.shape))
        if array.ndim != len(want) or not fits:  # -1: any size (a server's metadata may not say it)
            return None, f"{where} must have shape {want}, got {list(array.shape)}"
        if self.is_float and not np.all(np.isfinite(array)):
            return None, f"{where} contains NaN or Inf"
        low_bad = self.minimum is not None and array.size and array.min() < self.minimum
        high_bad = self.maximum is not None and array.size and array.max() > self.maximum
        value_bad = self.values is not None and not np.isin(array, self.values).all()
        if low_bad or high_bad or value_bad:
            got = f"{array}" if array.ndim == 0 else f"values in [{array.min()}, {array.max()}]"
            return None, f"{where} must be {self.bounds_text()}, got {got}"
        return array.astype(self.dtype), None

    def draw(self, rng, batch, given=None):
        """The value of this input for a call: ``given`` where the caller has one (labels, real
        images, a noise file), else drawn as its role says (``example``) — the one rule every
        caller of a file that takes its randomness as inputs uses."""
        return np.asarray(given) if given is not None else self.example(rng, batch)

    def example(self, rng, batch):
        """A valid input drawn as its role says: uniform within bounds (uniform noise, images),
        standard normal (noise), allowed values, integers in range."""
        if not self.batched:
            value = batch if self.maximum is None else min(batch, self.maximum)
            value = value if self.minimum is None else max(value, self.minimum)
            return np.asarray(value, self.dtype)
        shape = (batch, *self.shape)
        if self.values is not None:
            return rng.choice(np.asarray(self.values), size=shape).astype(self.dtype)
        if self.is_float:
            if self.minimum is not None and self.maximum is not None:
                return rng.uniform(self.minimum, self.maximum, shape).astype(self.dtype)
            return rng.standard_normal(shape).astype(self.dtype)
        low = 0 if self.minimum is None else int(self.minimum)
        span = 10 if self.maximum is None else int(self.maximum) - low + 1
        return (low + np.arange(int(np.prod(shape))) % span).reshape(shape).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Signature:
    """An inference function the exporter turns into a SavedModel signature; ``tflite``:
    also into the TFLite file (only for functions whose randomness is an input). ``lite_fn``:
    what the TFLite file computes instead, when part of ``fn`` is no TFLite op (the card
    records how far it is from the SavedModel's). ``saved_model=False``: a form for the TFLite
    file only (e.g. one that takes as input the noise the SavedModel's draws from a seed).
    ``web=False``: left out of the browser's fixed-batch copies (no page runs it)."""

    name: str
    fn: object  # callable taking the inputs as keyword arguments → dict of output tensors
    inputs: tuple
    tflite: bool = False
    lite_fn: object = None
    saved_model: bool = True  # False: a TFLite-only form (its randomness as inputs)
    web: bool = True  # a TFLite signature the browser page runs: in its fixed-batch copies


# Conveniences for the inputs zoo's models use --------------------------------------------------
def images(shape, name="images"):
    return Input(name, "float32", tuple(shape), minimum=0.0, maximum=1.0, role="images",
                 hint="(scale pixels by 1/255)")


def mask(shape, name="mask"):
    """1 = keep the pixel, 0 = fill it in."""
    return Input(name, "float32", tuple(shape), values=(0.0, 1.0), role="mask")


def noise(name, shape):
    """Standard normal noise (the randomness a TFLite signature takes as input)."""
    return Input(name, "float32", tuple(shape), role="noise")


def uniform_noise(name, shape):
    """Uniform noise in [0, 1] (e.g. to choose a mixture component without a random op)."""
    return Input(name, "float32", tuple(shape), minimum=0.0, maximum=1.0, role="uniform_noise")


def labels(num_classes, name="labels", null_class=False):
    """Class ids in [0, num_classes); ``null_class``: also ``num_classes`` ("no label")."""
    return Input(name, "int32", (), minimum=0, maximum=num_classes if null_class else num_classes - 1,
                 role="labels")


def count(maximum, name="num"):
    return Input(name, "int32", batched=False, minimum=1, maximum=maximum, role="count")


def seed(name="seed"):
    return Input(name, "int32", batched=False, role="seed")


def timesteps(steps, name="timesteps"):
    return Input(name, "int32", (), minimum=0, maximum=steps - 1, role="timesteps")
