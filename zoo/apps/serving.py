"""``zoo serve``: exports behind TF Serving's REST API, on KServe's model server.

    zoo serve                              # every shipped model, http://127.0.0.1:8080
    zoo serve cgan runs/vae/<time>/vae --port 8501

KServe (``pip install -e ".[serve]"``) gives the server: uvicorn and its FastAPI app, the
model registry, liveness and readiness (``/``, ``/v2/health/ready``), Prometheus ``/metrics``.
zoo gives the model (``ServedExport``: every SavedModel version of an export, new versions
loaded as they appear) and TF Serving's V1 routes, which KServe's V1 lacks (versions,
metadata, TF Serving's status and row/columnar JSON):

    POST /v1/models/NAME[/versions/V]:predict    zoo.apps.rest_format: the request and response JSON
    GET  /v1/models/NAME[/versions/V]            TF Serving's model_version_status
    GET  /v1/models/NAME[/versions/V]/metadata   signature_def, and the model card

A client's mistake is a 4xx with ``{"error": "one line"}`` and one log line, no traceback; a
request larger than ``--max-body-mb`` or with more than ``--max-batch`` examples is refused
before it runs. On Kubernetes, a KServe InferenceService with the ``tensorflow`` runtime serves
the same ``serving/`` folder with TF Serving itself (docs/serving.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import warnings

import kserve
import orjson
from fastapi import Request
from fastapi.responses import Response
from kserve import model_server
from starlette.requests import ClientDisconnect

from zoo.apps import rest_format
from zoo.apps.rest_format import BadRequest
from zoo.core.errors import ZooError, error_line
from zoo.export.folder import ExportFolder

LOG = logging.getLogger("zoo.serve")
POLL_SECONDS = 1.0  # how often a served folder is looked at for a new version


class NotFound(ZooError):
    """An unknown model or version: 404."""


class TooLarge(ZooError):
    """A body over the limit: 413."""


class ServedExport(kserve.Model):
    """One export folder: its SavedModel versions (the highest answers a request that names
    none) and their cards, whose input descriptions check every request."""

    def __init__(self, folder, max_batch):
        self.folder, self.max_batch = folder, max_batch
        super().__init__(folder.name)
        self.loaded = {}  # version → (SavedModel, card)

    def load(self):
        self.refresh()
        self.ready = bool(self.loaded)
        return self.ready

    def refresh(self):
        """Load the versions that appeared (an export moves a version into place whole:
        zoo/export/exporter.py), forget those that went."""
        import tensorflow as tf

        present = set(self.folder.versions())
        for version in sorted(present - set(self.loaded)):
            started, card = time.perf_counter(), self.folder.version_card(version)
            self.loaded = {**self.loaded, version: (tf.saved_model.load(self.folder.version_dir(version)), card)}
            LOG.info("zoo serve: %s version %s loaded from %s (%.1f s)", self.name, version, self.folder.folder,
                     time.perf_counter() - started)
        if set(self.loaded) - present:
            self.loaded = {v: entry for v, entry in self.loaded.items() if v in present}

    def version(self, version=None):
        if not self.loaded:
            raise NotFound(f"{self.name} has no version loaded")
        version = max(self.loaded) if version is None else version
        if version not in self.loaded:
            raise NotFound(f"{self.name} has versions {sorted(self.loaded)}, not {version}")
        return version, *self.loaded[version]

    def answer(self, request, version=None):
        """The response JSON of a V1 predict request (a dict)."""
        import tensorflow as tf

        version, saved_model, card = self.version(version)
        signature = rest_format.signature_named(request, card["signatures"], next(iter(card["signatures"])))
        inputs = rest_format.inputs_of(card, signature)
        values, layout = rest_format.request_arrays(request, signature, inputs, self.max_batch)
        for spec in inputs:  # a count (sample's num) allocates as a batch does
            if spec.role == "count" and int(values[spec.name]) > self.max_batch:
                raise BadRequest(f"{signature}: input {spec.name} is {int(values[spec.name])}; at most "
                                 f"{self.max_batch} per request (zoo serve --max-batch)")
        try:
            outputs = saved_model.signatures[signature](**{k: tf.constant(v) for k, v in values.items()})
        except tf.errors.InvalidArgumentError as e:  # the signature's own checks
            raise BadRequest(error_line(e)) from None
        return rest_format.response({k: v.numpy() for k, v in outputs.items()}, layout)  # arrays: _json writes them

    def predict(self, payload, headers=None):  # KServe's V2 route reaches here
        raise BadRequest("zoo serve answers TF Serving's V1 protocol: POST /v1/models/NAME:predict")


def _json(body, status=200):
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _parsed(body):
    """The request's JSON: orjson (KServe's own parser), else json, which also reads NaN and
    Infinity, so that the input check can name them."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except ValueError as e:
            raise BadRequest(f"the body is not JSON ({e})") from None


async def _read_body(request, limit):
    size = int(request.headers.get("content-length") or 0)
    if size > limit:
        raise TooLarge(f"the body is {size / 1e6:.1f} MB; at most {limit / 1e6:.0f} MB (zoo serve --max-body-mb)")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the body is over {limit / 1e6:.0f} MB (zoo serve --max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


class Routes:
    """TF Serving's V1 routes over the served exports, added to KServe's app before its own."""

    def __init__(self, served, max_body, max_batch):
        self.served, self.max_body, self.max_batch = served, max_body, max_batch

    def model(self, name):
        if name not in self.served:
            raise NotFound(f"no model {name!r} is served; these are: {', '.join(self.served)}")
        return self.served[name]

    async def predict(self, request: Request, name: str, version: int | None = None):
        started = time.perf_counter()
        try:
            body = await _read_body(request, self.max_body)
            payload = _parsed(body)
            model = self.model(name)
            answer = await asyncio.to_thread(model.answer, payload, version)
            return _json(answer)
        except ClientDisconnect:  # a client's doing, not the server's: one log line, and no one to answer
            LOG.info("zoo serve: %s %s: the client left before its body was in", request.method, request.url.path)
            return _json({"error": "the client left before its body was in"}, 400)
        except (BadRequest, NotFound, TooLarge) as e:
            status = 400 if isinstance(e, BadRequest) else 404 if isinstance(e, NotFound) else 413
            LOG.info("zoo serve: %s %s → %d: %s", request.method, request.url.path, status, e)
            return _json({"error": str(e)}, status)
        except Exception as e:  # noqa: BLE001 - a fault of the server: logged in full, answered in one line
            LOG.exception("zoo serve: %s failed after %.1f s", request.url.path, time.perf_counter() - started)
            return _json({"error": f"internal error: {error_line(e, limit=300)}"}, 500)

    async def predict_version(self, request: Request, name: str, version: int):
        return await self.predict(request, name, version)

    async def status(self, name: str, version: int | None = None):
        try:
            model = self.model(name)
            versions = [model.version(version)[0]] if version is not None else sorted(model.loaded)
        except NotFound as e:
            return _json({"error": str(e)}, 404)
        return _json({**rest_format.status(versions), "name": name, "ready": model.ready})

    async def status_version(self, name: str, version: int):
        return await self.status(name, version)

    async def metadata(self, name: str, version: int | None = None):
        try:
            version, _, card = self.model(name).version(version)
        except NotFound as e:
            return _json({"error": str(e)}, 404)
        return _json({**rest_format.metadata(name, version, card), "zoo_limits": {"max_batch": self.max_batch}})

    async def metadata_version(self, name: str, version: int):
        return await self.metadata(name, version)

    def add_to(self, app):
        base = "/v1/models/{name}"
        app.add_api_route(base + ":predict", self.predict, methods=["POST"])
        app.add_api_route(base + "/versions/{version}:predict", self.predict_version, methods=["POST"])
        app.add_api_route(base + "/metadata", self.metadata, methods=["GET"])
        app.add_api_route(base + "/versions/{version}/metadata", self.metadata_version, methods=["GET"])
        app.add_api_route(base + "/versions/{version}", self.status_version, methods=["GET"])
        app.add_api_route(base, self.status, methods=["GET"])


def _watch(served):
    """Load each new version as it appears, while the old one answers."""
    while True:
        time.sleep(POLL_SECONDS)
        for model in served.values():
            try:
                model.refresh()
            except Exception:  # noqa: BLE001 - a version that cannot be loaded leaves the others serving
                LOG.exception("zoo serve: loading a new version of %s failed", model.name)


def _quiet_logs():
    """KServe logs two timing lines per request, FastAPI a deprecation warning: keep the access
    log and zoo's lines."""
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated")
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")


def bind_to(host):
    """KServe 0.21's REST server binds 0.0.0.0 with no setting for it; zoo serves on 127.0.0.1
    unless told otherwise (a model server open to the network is the user's choice)."""
    class BoundRESTServer(model_server.RESTServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.config.host = host

    model_server.RESTServer = BoundRESTServer


def serve(folders, host="127.0.0.1", port=8080, max_batch=256, max_body_mb=32):
    """Serve the export ``folders`` (ExportFolder each) until interrupted."""
    names = [f.name for f in folders]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ZooError(f"two exports are named {', '.join(twice)}: serve one of each name per server")
    _quiet_logs()
    served = {}
    for folder in folders:
        model = ServedExport(folder, max_batch)
        model.load()
        served[model.name] = model
    Routes(served, max_body_mb * 1_000_000, max_batch).add_to(model_server.app)
    threading.Thread(target=_watch, args=(served,), daemon=True).start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    for name in served:
        print(f"zoo serve: http://{shown}:{port}/v1/models/{name}", flush=True)
    first = next(iter(served.values()))
    print(f"zoo serve: try  curl -d '{example_body(first)}' http://{shown}:{port}/v1/models/{first.name}:predict",
          flush=True)
    bind_to(host)
    kserve.ModelServer(http_port=port, enable_grpc=False, enable_latency_logging=False).start(list(served.values()))


def example_body(model):
    """A columnar request body for a model's sampler (or its first signature), as JSON text."""
    card = model.version()[2]
    signature = "sample" if "sample" in card["signatures"] else next(iter(card["signatures"]))
    inputs = rest_format.inputs_of(card, signature)
    values = {i.name: ([3, 1, 4] if i.role == "labels" else 0 if i.role == "seed" else 4 if i.role == "count"
                       else None) for i in inputs}
    if any(v is None for v in values.values()):
        return orjson.dumps({"signature_name": signature}).decode()
    return orjson.dumps({"signature_name": signature, "inputs": values}).decode()


def folders_of(names_or_paths):
    """The ExportFolders to serve: shipped names or export folders (none: every shipped model)."""
    from zoo.apps import pretrained

    if not names_or_paths:
        names_or_paths = pretrained.shipped_models()
        if not names_or_paths:
            raise ZooError("no shipped models found here: name export folders to serve")
    return [pretrained.find(n) if not os.path.isdir(n) else ExportFolder(n) for n in names_or_paths]
