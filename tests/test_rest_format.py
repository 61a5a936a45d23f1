"""TF Serving's REST JSON as zoo reads and writes it (zoo/apps/rest_format.py), without a
server: the row and columnar layouts, their one-line refusals, TF Serving's response shapes,
and a client's card from TF Serving's metadata alone (zoo/apps/remote.py)."""

import numpy as np
import pytest

from zoo.apps import remote, rest_format
from zoo.apps.rest_format import BadRequest
from zoo.core import signature as sig

LABELS, SEED, IMAGES = sig.labels(10), sig.seed(), sig.images((2, 2, 1))
CARD = {"model": "toy", "data": {}, "config": {}, "signatures": {
    "sample": {"inputs": {"labels": LABELS.describe(), "seed": SEED.describe()},
               "outputs": {"images": {"dtype": "float32", "shape": ["N", 2, 2, 1]}}},
    "fill": {"inputs": {"images": IMAGES.describe(), "labels": LABELS.describe()},
             "outputs": {"images": {"dtype": "float32", "shape": ["N", 2, 2, 1]},
                         "labels": {"dtype": "int32", "shape": ["N"]}}}}}


def arrays(request, signature):
    return rest_format.request_arrays(request, signature, rest_format.inputs_of(CARD, signature), max_batch=4)


def test_both_layouts_give_the_same_arrays_and_tf_servings_answers():
    image = np.full((2, 2, 1), 0.5).tolist()
    columns, layout = arrays({"inputs": {"images": [image, image], "labels": [1, 2]}}, "fill")
    rows, row_layout = arrays({"instances": [{"images": image, "labels": 1}, {"images": image, "labels": 2}]}, "fill")
    assert (layout, row_layout) == ("columnar", "row")
    assert all(np.array_equal(columns[k], rows[k]) and columns[k].dtype == rows[k].dtype for k in columns)
    assert columns["images"].dtype == np.float32 and columns["labels"].dtype == np.int32
    outputs = {"images": np.zeros((2, 2, 2, 1), np.float32), "labels": np.array([1, 2], np.int32)}
    assert rest_format.response(outputs, "columnar")["outputs"].keys() == {"images", "labels"}
    assert [p["labels"] for p in rest_format.response(outputs, "row")["predictions"]] == [1, 2]
    only = rest_format.response({"images": outputs["images"]}, "columnar")["outputs"]  # one output: its name left out
    assert np.shape(only) == (2, 2, 2, 1)
    assert np.shape(rest_format.response({"images": outputs["images"]}, "row")["predictions"]) == (2, 2, 2, 1)


@pytest.mark.parametrize("request_, words", [
    ({"inputs": {"labels": [1]}}, "input seed is missing"),
    ({"inputs": {"labels": [1], "seed": 0}, "instances": []}, "exactly one of inputs"),
    ({}, "exactly one of inputs"),
    ({"inputs": {"labels": [1], "seed": 0}, "version": 2}, "unknown request field(s) version"),
    ({"inputs": {"labels": [1], "seed": 0, "num": 2}}, "sample has no input num"),
    ({"instances": [{"labels": 1, "seed": 0}]}, "send it in the columnar format"),
    ({"inputs": {"labels": [1, 2, 3, 4, 5], "seed": 0}}, "holds 5 examples; at most 4 per request"),
    ({"inputs": {"labels": [1.5], "seed": 0}}, "input labels must be integers"),
    ({"inputs": {"labels": [10], "seed": 0}}, "input labels must be in [0, 9], got values in [10, 10]"),
    ({"inputs": {"labels": [1], "seed": 2**40}}, "input seed must fit in int32"),
    ({"inputs": {"labels": [], "seed": 0}}, "input labels is empty"),
])
def test_each_bad_request_is_one_line_naming_what_is_wrong(request_, words):
    with pytest.raises(BadRequest) as e:
        arrays(request_, "sample")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_rows_that_disagree_or_columns_of_different_lengths_are_refused():
    image = np.zeros((2, 2, 1)).tolist()
    with pytest.raises(BadRequest, match="an instance must hold exactly"):
        arrays({"instances": [{"images": image, "labels": 1}, {"images": image}]}, "fill")
    with pytest.raises(BadRequest, match="different numbers of examples"):
        arrays({"inputs": {"images": [image, image], "labels": [1]}}, "fill")
    assert rest_format.signature_named({}, CARD["signatures"], "sample") == "sample"  # serving_default
    with pytest.raises(BadRequest, match="no signature 'nope'; this model has sample, fill"):
        rest_format.signature_named({"signature_name": "nope"}, CARD["signatures"], "sample")


def test_a_client_builds_its_card_from_tf_servings_metadata_alone():
    """What zoo.load(URL) knows of a TF Serving endpoint: the signatures' dtypes and shapes,
    the zoo roles from the inputs' names; a value of the wrong shape is refused before sending."""
    answer = rest_format.metadata("toy", 3, CARD)
    assert answer["model_spec"] == {"name": "toy", "signature_name": "", "version": "3"}
    images = answer["metadata"]["signature_def"]["signature_def"]["fill"]["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT" and [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "2", "2", "1"]
    del answer["zoo_card"]
    card = remote.card_from_signature_defs(answer, "http://x")
    assert card["signatures"]["sample"]["inputs"] == {"labels": {"dtype": "int32", "shape": ["N"], "role": "labels"},
                                                      "seed": {"dtype": "int32", "shape": [], "role": "seed"}}
    spec = rest_format.inputs_of(card, "fill")[0]
    assert spec.validate(np.zeros((1, 2, 2, 1)))[1] is None
    assert "must have shape ['N', 2, 2, 1]" in spec.validate(np.zeros((1, 3, 2, 1)))[1]
    open_shape = sig.Input("x", "float32", (-1, 2))  # a size the server's metadata leaves open
    assert open_shape.validate(np.zeros((1, 5, 2)))[1] is None
