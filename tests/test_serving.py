"""`zoo serve` as a client sees it: its own process on a free loopback port, spoken to over
HTTP with TF Serving's JSON. Every shipped model and signature in both formats answers what
the SavedModel computes in-process; status, versions and metadata are TF Serving's; every bad
request is a 4xx with one line and the next request is served; a new version is served once
it is whole; a killed server restarts ready; zoo.load(URL) works as a local load does."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import REPO, free_ports

from zoo import ZooError
from zoo.apps import pretrained, rest_format

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]  # one server per module, one worker
MODELS = ("vae", "ae", "dae", "cgan", "diffusion")
ZOO = os.path.join(os.path.dirname(sys.executable), "zoo")


def start(*exports, log=None, extra=()):
    """`zoo serve EXPORTS --port P` in a fresh process; (process, base URL) once it answers."""
    (port,) = free_ports(1)
    process = subprocess.Popen([ZOO, "serve", *map(str, exports), "--port", str(port), *extra], stdout=log,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if get(url + "/v2/health/ready")[0] == 200:
                return process, url
        except OSError:
            pass
        assert process.poll() is None, "zoo serve exited"
        time.sleep(0.5)
    process.kill()
    raise AssertionError("zoo serve did not become ready in 180 s")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=300) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = open(tmp_path_factory.mktemp("serve") / "server.log", "w+")
    process, url = start(*MODELS, log=log)
    yield url, log
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    log.close()


def example_inputs(card, signature, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {i.name: i.example(rng, n) for i in rest_format.inputs_of(card, signature)}


def in_process(folder, signature, values):
    import tensorflow as tf

    fn = folder.saved_model().signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in values.items()}).items()}


@pytest.mark.parametrize("name", MODELS)
def test_every_signature_answers_what_the_saved_model_computes_in_both_formats(server, name):
    url, _ = server
    folder = pretrained.find(name)
    for signature in folder.card["signatures"]:
        values = example_inputs(folder.card, signature)
        expected = in_process(folder, signature, values)
        status, answer = post(f"{url}/v1/models/{name}:predict", {"signature_name": signature, "inputs": {
            k: v.tolist() for k, v in values.items()}})
        assert status == 200, (signature, answer)
        got = answer["outputs"] if len(expected) > 1 else {next(iter(expected)): answer["outputs"]}
        for k, v in expected.items():
            assert np.abs(np.asarray(got[k], v.dtype) - v).max() <= 1e-6, (name, signature, k)
        if all(np.ndim(v) for v in values.values()):  # the row format: every input batched
            rows = [{k: v[i].tolist() for k, v in values.items()} for i in range(3)]
            status, answer = post(f"{url}/v1/models/{name}:predict", {"signature_name": signature, "instances": rows})
            assert status == 200 and len(answer["predictions"]) == 3, (signature, answer)
            for k, v in expected.items():
                column = [p[k] if len(expected) > 1 else p for p in answer["predictions"]]
                assert np.abs(np.asarray(column, v.dtype) - v).max() <= 1e-6, (name, signature, k)


def test_status_versions_and_metadata_are_tf_servings(server):
    url, log = server
    log.flush()
    log.seek(0)
    printed = re.search(r"curl -d '(.*)' (http://\S+)", log.read())  # the line zoo serve prints on start
    assert printed and post(printed[2], printed[1].encode())[0] == 200
    ok = {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert get(f"{url}/v1/models/diffusion") == (200, {"model_version_status": [ok], "name": "diffusion",
                                                        "ready": True})
    assert get(f"{url}/v1/models/diffusion/versions/2")[1]["model_version_status"] == [ok]
    status, meta = get(f"{url}/v1/models/cgan/metadata")
    assert status == 200 and meta["model_spec"] == {"name": "cgan", "signature_name": "", "version": "1"}
    noise = meta["metadata"]["signature_def"]["signature_def"]["generate"]["inputs"]["noise"]
    assert noise["dtype"] == "DT_FLOAT" and [d["size"] for d in noise["tensor_shape"]["dim"]] == ["-1", "64"]
    status, answer = post(f"{url}/v1/models/cgan/versions/1:predict", {"signature_name": "sample",
                                                                       "inputs": {"labels": [7], "seed": 3}})
    assert status == 200 and np.asarray(answer["outputs"]).shape == (1, 28, 28, 1)
    status, answer = post(f"{url}/v1/models/cgan:predict", {"inputs": {"noise": [[0.0] * 64], "labels": [2]}})
    assert status == 200  # no signature_name: serving_default, the card's first (generate)


BAD = [  # (body, the words of its one-line answer, status)
    (b"{not json", "the body is not JSON", 400),
    ({"signature_name": "sample", "inputs": {"labels": [1], "seed": 0}, "instances": [{"labels": 1}]},
     "exactly one of inputs", 400),
    ({"signature_name": "sample", "inputs": {"labels": [1]}}, "input seed is missing", 400),
    ({"signature_name": "sample", "inputs": {"labels": [1], "seed": 0, "steps": 4}}, "has no input steps", 400),
    ({"signature_name": "sample", "inputs": {"labels": ["one"], "seed": 0}}, "input labels must be integers", 400),
    ({"signature_name": "sample", "inputs": {"labels": [[1]], "seed": 0}}, "input labels must have shape ['N']", 400),
    ({"signature_name": "sample", "inputs": {"labels": [12], "seed": 0}}, "input labels must be in [0, 9]", 400),
    ({"signature_name": "generate", "inputs": {"noise": [[float("nan")] * 64], "labels": [1]}},
     "input noise contains NaN or Inf", 400),
    ({"signature_name": "sample", "instances": [{"labels": 1, "seed": 0}]}, "send it in the columnar format", 400),
    ({"signature_name": "sample", "inputs": {"labels": [1] * 300, "seed": 0}}, "at most 256 per request", 400),
    ({"signature_name": "nope", "inputs": {}}, "no signature 'nope'; this model has generate, sample", 400),
]


def test_a_bad_request_gets_one_line_and_the_server_keeps_serving(server):
    url, log = server
    for body, words, code in BAD:
        status, answer = post(f"{url}/v1/models/cgan:predict", body)
        assert status == code and words in answer["error"] and "\n" not in answer["error"], (body, answer)
    assert post(f"{url}/v1/models/vae:predict", {"signature_name": "sample", "inputs": {"num": 10**6, "seed": 0}})[
        1]["error"] == "sample: input num must be in [1, 4096], got 1000000"
    assert post(f"{url}/v1/models/vae:predict", {"signature_name": "sample", "inputs": {"num": 4000, "seed": 0}})[
        1]["error"] == "sample: input num is 4000; at most 256 per request (zoo serve --max-batch)"
    assert post(f"{url}/v1/models/gan:predict", {"inputs": {}}) == (404, {
        "error": "no model 'gan' is served; these are: vae, ae, dae, cgan, diffusion"})
    assert post(f"{url}/v1/models/cgan/versions/9:predict", {"inputs": {}}) == (404, {
        "error": "cgan has versions [1], not 9"})
    # a 52 MB body is refused from its header, before it is read (a client still sending it sees
    # the connection close, as from any server that refuses a body)
    big = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    big.sendall(b"POST /v1/models/cgan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 52000000\r\n\r\n[0,0,")
    big.settimeout(30)
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
            reply.lower().split(b"content-length:")[1].split(b"\r\n")[0]):
        part = big.recv(65536)  # headers and body may come in separate packets
        if not part:
            break
        reply += part
    reply = reply.decode()
    big.close()
    assert reply.startswith("HTTP/1.1 413") and "at most 32 MB" in reply, reply
    # a slow client (half a body, then silence) does not hold up the others
    slow = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    slow.sendall(b"POST /v1/models/cgan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inp")
    status, answer = post(f"{url}/v1/models/cgan:predict", {"signature_name": "sample",
                                                            "inputs": {"labels": [1], "seed": 0}})
    slow.close()  # and then it leaves: the server, still reading its body, logs one line for it
    assert status == 200 and np.asarray(answer["outputs"]).shape == (1, 28, 28, 1)
    for _ in range(100):
        log.flush()
        log.seek(0)
        written = log.read()
        if "the client left before its body was in" in written:
            break
        time.sleep(0.1)
    assert "the client left before its body was in" in written
    assert "Traceback" not in written  # a client's mistake is one log line


def digest(folder):
    return {os.path.relpath(os.path.join(r, f), folder): hashlib.sha256(open(os.path.join(r, f), "rb").read()).hexdigest()
            for r, _, files in os.walk(folder) for f in files}


def test_a_new_version_is_served_once_whole_and_a_killed_server_restarts_ready(tmp_path):
    folder = tmp_path / "cgan"
    subprocess.run(["cp", "-r", os.path.join(REPO, "exported", "cgan"), str(folder)], check=True)
    process, url = start(folder)
    try:
        half = folder / "serving" / ".incoming-2"  # a version being written: not a number yet
        subprocess.run(["cp", "-r", str(folder / "serving" / "1"), str(half)], check=True)
        time.sleep(3)
        assert [s["version"] for s in get(f"{url}/v1/models/cgan")[1]["model_version_status"]] == ["1"]
        os.rename(half, folder / "serving" / "2")  # as the exporter moves a finished version into place
        deadline = time.time() + 60
        while get(f"{url}/v1/models/cgan")[1]["model_version_status"][-1]["version"] != "2":
            assert time.time() < deadline, "version 2 was not served within 60 s"
            time.sleep(0.5)
        body = {"signature_name": "sample", "inputs": {"labels": [3], "seed": 0}}
        assert post(f"{url}/v1/models/cgan/versions/1:predict", body)[0] == 200
        assert post(f"{url}/v1/models/cgan:predict", body)[1] == post(f"{url}/v1/models/cgan/versions/2:predict",
                                                                      body)[1]
        before = digest(folder)
        process.kill()  # kill -9
        process.wait(timeout=30)
        process, url = start(folder)
        assert post(f"{url}/v1/models/cgan:predict", body)[0] == 200 and digest(folder) == before
    finally:
        process.kill()


def test_zoo_load_of_a_url_gives_the_local_methods_over_rest(server):
    url, _ = server
    for name in MODELS:
        local, served = pretrained.load(name), pretrained.load(f"{url}/v1/models/{name}")
        draw = {"labels": [3, 1, 4]} if local.conditional else {"num": 3}
        digits = local.sample(**draw, seed=5)
        assert np.array_equal(served.sample(**draw, seed=5), digits), name
        for method in ("reconstruct", "anomaly_score", "encode", "elbo"):
            if method in local.signatures():
                assert np.allclose(getattr(served, method)(digits), getattr(local, method)(digits), atol=1e-6), method
    diffusion = pretrained.load(f"{url}/v1/models/diffusion")
    assert diffusion.sample(labels=[1], steps=4).shape == (1, 28, 28, 1)
    mask = np.ones_like(digits)
    mask[:, 14:] = 0
    filled, labels = diffusion.inpaint(digits * mask, mask, return_labels=True)
    assert filled.shape == digits.shape and labels.shape == (3,)
    with pytest.raises(ZooError, match=r"sample: input labels must be in \[0, 9\]"):
        diffusion.sample(labels=[12])  # checked before it is sent: the card came with the metadata
    with pytest.raises(ZooError, match="cannot reach"):
        pretrained.load("http://127.0.0.1:1/v1/models/cgan")


def test_zoo_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path):
    for args, words in ((["nowhere"], "'nowhere' is neither a shipped model"), (["cgan", "--port", "0"], "--port"),
                        ([os.path.join(REPO, "exported", "cgan"), "cgan"], "two exports are named cgan")):
        out = subprocess.run([ZOO, "serve", *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def documented_bodies():
    """(model, body text, the outputs it answers) of each row of docs/serving.md's table."""
    text = open(os.path.join(REPO, "docs", "serving.md")).read()
    model = None
    for line in text.splitlines():
        heading = re.match(r"\*\*(\w+)\*\* \(`POST /v1/models/\1:predict", line)
        model = heading[1] if heading else model
        row = re.match(r"\| `\w+` \| `(\{.*\})` \| (.*) \|$", line)
        if row:
            yield model, row[1], row[2]


def filled(body, card):
    """The body with each "<3 × …>" replaced by values of that input's description."""
    request = json.loads(body)
    inputs = {i.name: i for i in rest_format.inputs_of(card, request["signature_name"])}
    rng = np.random.default_rng(0)
    request["inputs"] = {k: inputs[k].example(rng, 3).tolist() if isinstance(v, str) and v.startswith("<3") else v
                         for k, v in request["inputs"].items()}
    return request


def test_every_documented_body_gets_the_documented_response(server):
    url, _ = server
    rows = list(documented_bodies())
    assert {m for m, _, _ in rows} == set(MODELS) and len(rows) >= 30
    for model, body, outputs in rows:
        status, answer = post(f"{url}/v1/models/{model}:predict", filled(body, pretrained.find(model).card))
        assert status == 200, (model, body, answer)
        got = answer["outputs"] if isinstance(answer["outputs"], dict) else {"": answer["outputs"]}
        said = {k: [int(d) for d in v.split(", ") if d] for k, v in re.findall(r"(\w+) \[([\d, ]*)\]", outputs)}
        shapes = {k: list(np.shape(v)) for k, v in got.items()}
        assert sorted(shapes.values()) == sorted(said.values()), (model, body, shapes, said)


def test_every_curl_line_of_the_docs_works_as_printed(server):
    """README.md's and docs/serving.md's `curl -d '…' HOST:PORT/…` lines, sent to this server."""
    url, _ = server
    lines = [line for page in ("README.md", os.path.join("docs", "serving.md"))
             for line in open(os.path.join(REPO, page)).read().splitlines() if line.startswith("curl -d '")]
    assert len(lines) >= 2, lines
    for line in lines:
        body, target = re.fullmatch(r"curl -d '(.*)' (?:http://)?[\w.]+:\d+(/\S+)", line).groups()
        status, answer = post(url + target, body.encode())
        assert status == 200 and "outputs" in answer, (line, answer)
