"""TF Serving's REST API as data: a predict request's JSON → checked arrays, and arrays → the
response JSON, plus the status and metadata answers — what ``zoo serve`` speaks and what
``zoo.load("http://…")`` sends (https://www.tensorflow.org/tfx/serving/api_rest).

    {"signature_name": "sample", "inputs": {"labels": [3, 1, 4], "seed": 0}}     columnar
    {"signature_name": "reconstruct", "instances": [{"images": IMAGE}, …]}       row

A columnar request answers ``{"outputs": …}``, a row request ``{"predictions": […]}`` (one
entry per example); with one output its name is left out, as TF Serving does. Row format needs
every input batched: a signature with a scalar input (``seed``, ``num``) takes columns only.
No TensorFlow here: the checks are the card's input descriptions (``zoo.core.signature``).
"""

from __future__ import annotations

import numpy as np

from zoo.core.errors import ZooError
from zoo.core.signature import Input

DEFAULT_SIGNATURE = "serving_default"  # what TF Serving calls when a request names none


class BadRequest(ZooError):
    """A client's mistake: answered 400 with its one line."""


def signature_named(request, signatures, default):
    """The signature a request names (``default`` for TF Serving's serving_default)."""
    if not isinstance(request, dict):
        raise BadRequest(f"the request must be a JSON object with inputs or instances, got {type(request).__name__}")
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if name == DEFAULT_SIGNATURE:
        name = default
    if not isinstance(name, str) or name not in signatures:
        raise BadRequest(f"no signature {name!r}; this model has {', '.join(signatures)}")
    return name


def request_arrays(request, signature, inputs, max_batch):
    """(the input arrays by name, checked against the card's descriptions; "row" or "columnar")."""
    extra = set(request) - {"signature_name", "inputs", "instances"}
    if extra:
        raise BadRequest(f"unknown request field(s) {', '.join(sorted(extra))}: give signature_name and inputs "
                         "(columnar) or instances (row)")
    if ("inputs" in request) == ("instances" in request):
        raise BadRequest("give exactly one of inputs (columnar) or instances (row)")
    if "inputs" in request:
        values, layout = _columns(request["inputs"], signature, inputs), "columnar"
    else:
        values, layout = _rows(request["instances"], signature, inputs), "row"
    checked = {}
    for spec in inputs:
        if spec.name not in values:
            raise BadRequest(f"{signature}: input {spec.name} is missing (it takes {_names(inputs)})")
        value, problem = spec.validate(values[spec.name], signature)
        if problem:
            raise BadRequest(problem)
        if spec.batched and len(value) > max_batch:
            raise BadRequest(f"{signature}: input {spec.name} holds {len(value)} examples; at most {max_batch} per "
                             "request: split it")
        checked[spec.name] = value
    sizes = {len(v) for s, v in checked.items() if next(i for i in inputs if i.name == s).batched}
    if len(sizes) > 1:
        raise BadRequest(f"{signature}: the batched inputs hold different numbers of examples "
                         f"({', '.join(f'{k} {len(v)}' for k, v in checked.items() if np.ndim(v))})")
    return checked, layout


def _names(inputs):
    return ", ".join(i.name for i in inputs)


def _columns(columns, signature, inputs):
    if not isinstance(columns, dict):
        if len(inputs) != 1:
            raise BadRequest(f"{signature} takes {_names(inputs)}: give inputs as an object of them")
        columns = {inputs[0].name: columns}
    unknown = set(columns) - {i.name for i in inputs}
    if unknown:
        raise BadRequest(f"{signature} has no input {', '.join(sorted(unknown))}; it takes {_names(inputs)}")
    return columns


def _rows(rows, signature, inputs):
    scalars = [i.name for i in inputs if not i.batched]
    if scalars:
        raise BadRequest(f"{signature} takes the scalar input(s) {', '.join(scalars)}: send it in the columnar format "
                         "(inputs), as TF Serving requires")
    if not isinstance(rows, list) or not rows:
        raise BadRequest("instances must be a non-empty list, one entry per example")
    if len(inputs) == 1 and not all(isinstance(r, dict) for r in rows):
        return {inputs[0].name: rows}
    if not all(isinstance(r, dict) for r in rows):
        raise BadRequest(f"{signature} takes {_names(inputs)}: each instance must be an object of them")
    names = {i.name for i in inputs}
    for row in rows:
        if set(row) != names:
            missing, unknown = names - set(row), set(row) - names
            said = "; ".join(filter(None, [f"missing {', '.join(sorted(missing))}" if missing else "",
                                           f"unknown {', '.join(sorted(unknown))}" if unknown else ""]))
            raise BadRequest(f"{signature}: an instance must hold exactly {_names(inputs)} ({said})")
    return {name: [row[name] for row in rows] for name in names}


def response(outputs, layout):
    """The response JSON of ``outputs`` (name → array) for a request of ``layout``, its values
    still arrays: a serializer that writes NumPy (orjson) takes 2 ms for 64 cGAN digits where
    ``tolist()`` alone took 49 (bench/serving.py)."""
    lists = {k: np.ascontiguousarray(v) for k, v in outputs.items()}
    if layout == "columnar":
        return {"outputs": next(iter(lists.values())) if len(lists) == 1 else lists}
    if len(lists) == 1:
        return {"predictions": next(iter(lists.values()))}
    n = len(next(iter(lists.values())))
    return {"predictions": [{k: v[i] for k, v in lists.items()} for i in range(n)]}


def status(versions):
    """GET /v1/models/NAME[/versions/V]: TF Serving's model status."""
    return {"model_version_status": [{"version": str(v), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}} for v in versions]}


def _tensor_info(name, description):
    dtype = {"float32": "DT_FLOAT", "int32": "DT_INT32"}.get(description["dtype"], description["dtype"])
    dims = [{"size": "-1" if d == "N" else str(d)} for d in description.get("shape", [])]
    return {"dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}


def metadata(name, version, card):
    """GET /v1/models/NAME[/versions/V]/metadata: TF Serving's signature_def answer, from the
    card's input and output descriptions (sizes included: the SavedModel's own specs leave a
    per-example shape open so that its in-graph check can say what is wrong), and the card."""
    defs = {}
    for signature, described in card["signatures"].items():
        defs[signature] = {"inputs": {k: _tensor_info(k, d) for k, d in described["inputs"].items()},
                           "outputs": {k: _tensor_info(k, d) for k, d in described["outputs"].items()},
                           "method_name": "tensorflow/serving/predict"}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": defs}}, "zoo_card": card}


def inputs_of(card, signature):
    return [Input.from_description(n, d) for n, d in card["signatures"][signature]["inputs"].items()]
