"""`zoo serve` under load and faults (JSON; bench/results/serving.json, rendered in docs/serving.md).

- load: C concurrent clients (keep-alive connections) for S seconds on the cGAN's `sample`
  (one digit each) and on the VAE's `reconstruct` (16 images each): requests per second, p50
  and p99 latency, errors, the server's resident memory at the start, halfway through each
  load and after it (what grows in a load's second half would be a leak; the first half warms
  up TensorFlow's allocator and the new shapes).
- where the time goes for one HTTP `sample` of 64 cGAN digits: the signature in-process, the
  server's JSON encoding of its answer, the client's decoding, and the rest (HTTP, the server's
  request parsing and checks).
- kill -9 under load, then a restart: seconds until it is ready again; the export folders
  unchanged.

    python bench/serving.py [--clients 32] [--seconds 60]
"""

import argparse
import hashlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from common import report, timed

ZOO = os.path.join(os.path.dirname(sys.executable), "zoo")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port, *models):
    """(process, seconds until ready) of `zoo serve MODELS --port PORT`."""
    started = time.perf_counter()
    process = subprocess.Popen([ZOO, "serve", *models, "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        if process.poll() is not None or time.perf_counter() - started > 300:
            raise SystemExit("zoo serve did not start")
        time.sleep(0.1)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def load(port, path, body, clients, seconds):
    """Latencies (s) and errors of ``clients`` threads posting ``body`` for ``seconds``."""
    data = json.dumps(body).encode()
    latencies, errors, stop = [], [], time.perf_counter() + seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                connection.request("POST", path, data, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                (latencies if response.status == 200 else errors).append(time.perf_counter() - began)
            except OSError as e:
                errors.append(repr(e))
                time.sleep(0.05)  # a server that is down: try again, not spin
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def summary(latencies, errors, seconds):
    ordered = sorted(latencies)
    return {"requests": len(latencies), "errors": len(errors), "requests_per_second": len(latencies) / seconds,
            "p50_ms": 1e3 * statistics.median(ordered), "p99_ms": 1e3 * ordered[int(0.99 * (len(ordered) - 1))]}


def where_the_time_goes(port):
    """One HTTP sample of 64 cGAN digits, against its parts measured apart."""
    import orjson
    import tensorflow as tf

    from zoo.apps import pretrained

    labels = [i % 10 for i in range(64)]
    fn = pretrained.find("cgan").saved_model().signatures["sample"]
    model = timed(lambda: fn(labels=tf.constant(labels, tf.int32), seed=tf.constant(0)))
    answer = {"outputs": fn(labels=tf.constant(labels, tf.int32), seed=tf.constant(0))["images"].numpy()}
    encode = timed(lambda: orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY))  # as zoo serve writes it
    text = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    decode_orjson = timed(lambda: orjson.loads(text))
    decode = timed(lambda: json.loads(text))
    body = json.dumps({"signature_name": "sample", "inputs": {"labels": labels, "seed": 0}}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port)

    def http_call():
        connection.request("POST", "/v1/models/cgan:predict", body, {"Content-Type": "application/json"})
        return json.loads(connection.getresponse().read())

    total = timed(http_call)
    parts = {"model_ms": model["median_ms"], "server_json_encode_ms": encode["median_ms"],
             "client_json_decode_ms": decode["median_ms"]}
    return {"http_ms": total["median_ms"], **parts, "rest_ms": total["median_ms"] - sum(parts.values()),
            "response_bytes": len(text), "float32_bytes": answer["outputs"].nbytes,
            "client_orjson_decode_ms": decode_orjson["median_ms"]}


def digest():
    out = hashlib.sha256()
    for root, _, files in sorted(os.walk(os.path.join(REPO, "exported"))):
        for f in sorted(files):
            out.update(open(os.path.join(root, f), "rb").read())
    return out.hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    args = p.parse_args()
    port, before = free_port(), digest()
    process, ready_s = start(port, "cgan", "vae")
    memory = {"start_mb": rss_mb(process.pid)}
    rng = np.random.default_rng(0)
    loads = {
        "cgan_sample_1_digit": ("/v1/models/cgan:predict", {"signature_name": "sample",
                                                            "inputs": {"labels": [3], "seed": 0}}),
        "vae_reconstruct_16_images": ("/v1/models/vae:predict", {"signature_name": "reconstruct", "inputs": {
            "images": rng.uniform(0, 1, (16, 28, 28, 1)).round(3).tolist()}}),
    }
    results = {}
    for name, (path, body) in loads.items():  # in two halves: memory that still grows in the second is a leak
        first = load(port, path, body, args.clients, args.seconds / 2)
        halfway = rss_mb(process.pid)
        second = load(port, path, body, args.clients, args.seconds / 2)
        results[name] = {**summary(first[0] + second[0], first[1] + second[1], args.seconds),
                         "memory_halfway_mb": halfway, "memory_after_mb": rss_mb(process.pid)}
    memory["end_mb"] = rss_mb(process.pid)
    breakdown = where_the_time_goes(port)
    # kill -9 under load, then a restart
    killer = threading.Timer(2.0, lambda: process.send_signal(signal.SIGKILL))
    killer.start()
    _, errors_at_kill = load(port, *loads["cgan_sample_1_digit"], clients=8, seconds=4)
    process.wait()
    restarted, restart_s = start(port, "cgan", "vae")
    restarted.send_signal(signal.SIGINT)
    restarted.wait(timeout=60)
    report("serving", {"clients": args.clients, "seconds": args.seconds, "load": results, "server_memory": memory,
                       "first_start_ready_s": ready_s, "one_http_sample_of_64_cgan_digits": breakdown,
                       "kill_9_under_load": {"failed_requests_while_down": len(errors_at_kill),
                                             "restart_ready_s": restart_s, "exports_unchanged": digest() == before}})


if __name__ == "__main__":
    main()
