"""SavedModels of a model's signatures and the parity checks against them: the endpoints with
and without in-graph input checks, writing only what they use, and the fixed inputs and
differences by which a TFLite file or another SavedModel is held to one."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from zoo.export import tflite


def checked(sig):
    """The serving endpoint of ``sig``: every input checked in the graph (``Input.check``)."""
    def serve(*args):
        checked = {i.name: i.check(sig.name, x) for i, x in zip(sig.inputs, args)}
        return sig.fn(**checked)

    return tf.function(serve, input_signature=[i.spec(relaxed=True) for i in sig.inputs])


def unchecked(sig, batch=None):
    """What goes to TFLite: no Assert ops (not TFLite built-ins), ``lite_fn`` where the
    signature has one; ``batch``: a fixed batch size (LiteRT.js needs static shapes)."""
    fn = sig.lite_fn or sig.fn

    def serve(*args):
        return fn(**{i.name: x for i, x in zip(sig.inputs, args)})

    return tf.function(serve, input_signature=[i.spec(batch=batch) for i in sig.inputs])


def write_saved_model_of(signatures, path, make_fn, weights=()):
    """The endpoints and the variables they use (and ``weights``), nothing else: tracking the
    whole Keras model made the saver trace every layer and its gradients (289 traces against 15,
    twice the write time; docs/design.md, "Exported artifacts"), and serving never
    differentiates. Each endpoint is traced once, here, and saved as that trace (handed a
    ``tf.function``, the saver traces it again). The endpoints are attributes too, called with
    positional inputs (``loaded.decode(latent)``); the first one is also ``serving_default``."""
    traces = {sig.name: make_fn(sig).get_concrete_function() for sig in signatures}
    root = tf.Module()
    for name, trace in traces.items():
        setattr(root, name, trace)
    used = {}
    for trace in traces.values():
        used.update({id(v): v for v in trace.variables})
    root.endpoint_variables = list(used.values())
    # the TensorFlow variables behind Keras' (the same objects the endpoints captured), so each
    # weight is written once; the Keras wrappers themselves would be written a second time
    root.model_weights = [getattr(w, "value", w) for w in weights]
    tf.saved_model.save(root, path, signatures={**traces, "serving_default": traces[signatures[0].name]},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def next_version(serving_dir):
    versions = [int(v) for v in os.listdir(serving_dir) if v.isdigit()] if os.path.isdir(serving_dir) else []
    return max(versions, default=0) + 1


def on_cpu():
    """Where the SavedModel side of a parity check runs: the CPU, in exact float32 like the
    TFLite interpreter. On a GPU, TensorFlow computes float32 matrix products and convolutions
    in TensorFloat-32 (10-bit mantissa) by default: on an H100 every recipe's export failed
    its parity check by 4e-4 to 8e-3 against tolerances of 1e-4 (docs/history.md)."""
    return tf.device("/CPU:0")


def reference_outputs(reference, signatures, batch=4, seed=0):
    """One fixed input per signature and what a loaded SavedModel (``reference``) computes
    from it: {signature: (inputs, outputs)}, NumPy — one side of a parity check."""
    rng = np.random.default_rng(seed)
    out = {}
    for sig in signatures:
        inputs = {i.name: i.example(rng, batch) for i in sig.inputs}
        with on_cpu():
            expected = reference.signatures[sig.name](**{k: tf.constant(v) for k, v in inputs.items()})
        out[sig.name] = (inputs, {k: v.numpy() for k, v in expected.items()})
    return out


def compare_tflite(tflite_path, references):
    """Max differences between a TFLite file's outputs and ``references``
    (``reference_outputs``), from one run of each: (absolute, relative) dicts, relative over
    max(1, the largest |output|), so a score in the hundreds is held to the same relative
    precision as an image in [0, 1]."""
    lite = tflite.File(tflite_path)
    absolute, relative = {}, {}
    for name, (inputs, expected) in references.items():
        got = lite(name, **inputs)
        absolute[name] = tflite.largest_difference(got, expected)
        relative[name] = tflite.largest_difference(got, expected, relative=True)
    return absolute, relative


def compare_saved_models(saved, references):
    """Max abs difference between a loaded SavedModel's signatures and ``references``
    (``reference_outputs`` of another), on the references' inputs."""
    result = {}
    for name, (inputs, expected) in references.items():
        with on_cpu():
            outputs = saved.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        result[name] = tflite.largest_difference({k: v.numpy() for k, v in outputs.items()}, expected)
    return result


def describe_signatures(serving, signatures, lite_names=()):
    out = {}
    for sig in signatures:
        outputs = serving.signatures[sig.name].structured_outputs
        out[sig.name] = {
            "inputs": {i.name: i.describe() for i in sig.inputs},
            "outputs": {k: {"dtype": v.dtype.name, "shape": ["N" if d is None else d for d in v.shape]}
                        for k, v in outputs.items()},
            "tflite": sig.name in lite_names,
        }
    return out
