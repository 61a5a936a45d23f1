"""A model behind TF Serving's REST API, as ``zoo.load("http://host:8080/v1/models/cgan")``
calls it: ``zoo serve``, TF Serving itself or a KServe InferenceService. Its metadata gives the
signatures (``zoo serve`` adds the model card, whose input descriptions let zoo check a value
before sending it; from TF Serving, dtypes and shapes only, and the server's checks answer the
rest); each call is one columnar predict request (zoo.apps.rest_format)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

from zoo.core.errors import ZooError

# A TF Serving endpoint names no roles; the zoo's input names say them.
ROLES = {"labels": "labels", "seed": "seed", "num": "count", "images": "images", "mask": "mask", "noise": "noise"}
DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int64"}
TIMEOUT_S = 600


def is_url(text):
    return isinstance(text, str) and text.startswith(("http://", "https://"))


class RemoteModel:
    def __init__(self, url, version=None):
        self.url = url.rstrip("/").removesuffix(":predict")
        if version is not None:
            self.url += f"/versions/{version}"
        answer = self._request(self.url + "/metadata")
        self.card = answer.get("zoo_card") or card_from_signature_defs(answer, self.url)
        self.max_batch = answer.get("zoo_limits", {}).get("max_batch", 256)

    def _request(self, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            try:
                said = json.load(e).get("error", "")
            except (ValueError, AttributeError):
                said = e.reason
            raise ZooError(f"{url} answered {e.code}: {said}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ZooError(f"cannot reach {url} ({getattr(e, 'reason', e)}): is the server running?") from None

    def __call__(self, signature, values):
        """One predict request: output name → array."""
        body = {"signature_name": signature, "inputs": {k: np.asarray(v).tolist() for k, v in values.items()}}
        outputs = self._request(self.url + ":predict", body)["outputs"]
        names = list(self.card["signatures"][signature]["outputs"])
        outputs = outputs if isinstance(outputs, dict) else {names[0]: outputs}
        return {k: np.asarray(v, self.card["signatures"][signature]["outputs"][k]["dtype"]) for k, v in outputs.items()}


def card_from_signature_defs(answer, url):
    """A card with the signatures of a TF Serving metadata answer (no bounds, no config)."""
    try:
        defs = answer["metadata"]["signature_def"]["signature_def"]
        name = answer["model_spec"]["name"]
    except (KeyError, TypeError):
        raise ZooError(f"{url}/metadata is not a TF Serving metadata answer") from None

    def described(tensor_name, info):
        dims = [int(d["size"]) for d in info.get("tensor_shape", {}).get("dim", [])]
        shape = ["N", *dims[1:]] if dims else []
        return {"dtype": DTYPES.get(info["dtype"], "float32"), "shape": shape, "role": ROLES.get(tensor_name, "")}

    signatures = {s: {"inputs": {k: described(k, v) for k, v in d.get("inputs", {}).items()},
                      "outputs": {k: described(k, v) for k, v in d.get("outputs", {}).items()}}
                  for s, d in defs.items() if s != "__saved_model_init_op"}
    return {"model": name, "signatures": signatures, "config": {}, "data": {}}
