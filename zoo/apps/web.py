"""``zoo web``: a static page (``web/``) that runs exported TFLite files in the visitor's
browser with LiteRT.js (``@litertjs/core`` from npm: its wasm files are in the package, so
nothing is fetched from a CDN).

The server maps

    /                     web/index.html, /app.js: the page
    /litert/core/…        web/node_modules/@litertjs/core/… (the runtime and its wasm files)
    /litert/wasm-utils/…  web/node_modules/@litertjs/wasm-utils/…
    /models.json          every export under EXPORTED_DIR: its fixed-batch web files by variant and
                          batch, the default variant, the TFLite input descriptions (for validation)
    /models/<model>/<f>   EXPORTED_DIR/<model>/web/<f>
    /digits.json          ten test digits (for the denoising demo)

and sends COOP/COEP headers (LiteRT.js's threaded wasm needs a cross-origin-isolated page).
LiteRT.js takes only files with static input shapes, hence the exporter's fixed-batch copies.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import socketserver
import threading

from zoo.core.errors import ZooError
from zoo.export.folder import ExportFolder

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "web")
TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".tflite": "application/octet-stream", ".map": "application/json",
         ".css": "text/css", ".png": "image/png"}


def web_dir():
    modules = os.path.join(WEB_DIR, "node_modules", "@litertjs", "core")
    if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
        raise ZooError(f"the web page is not here ({WEB_DIR}); `zoo web` runs from a source checkout of zoo")
    if not os.path.isdir(modules):
        raise ZooError(f"LiteRT.js is not installed: run `npm ci` in {WEB_DIR} (node and npm from your system)")
    return WEB_DIR


def page_variant(export):
    """The variant of the export's browser files (the exporter writes them for one variant:
    ``zoo.export.web_files.web_variant``)."""
    return next(e["variant"] for e in export.web_files().values())


def catalog(exported_dir):
    """name → what the page needs of each export that has web files."""
    if not os.path.isdir(exported_dir):
        raise ZooError(f"{exported_dir} is not a folder; give the folder the recipes exported to (default: exported)")
    out = {}
    for name in sorted(os.listdir(exported_dir)):
        folder = os.path.join(exported_dir, name)
        if not os.path.isfile(os.path.join(folder, "model_card.json")):
            continue
        export = ExportFolder(folder)
        if not export.web_files():
            continue
        lite = export.card["tflite"][export.variants()["float32"]]
        in_page = set().union(*(e.get("signatures", lite["signatures"]) for e in export.web_files().values()))
        out[name] = {
            "files": {f: {k: e[k] for k in ("variant", "batch", "bytes")} for f, e in export.web_files().items()},
            "default_variant": page_variant(export),
            "signatures": {n: s for n, s in lite["signatures"].items() if n in in_page},
            "variants": {e.get("variant", "float32"): {k: e.get(k) for k in ("bytes", "batch1_latency_ms", "quality",
                                                                              "kept", "reason")}
                         for e in export.card["tflite"].values()},
            "num_classes": export.card["data"].get("num_classes"),
            "image_shape": export.card["data"]["image_shape"],
            "config": {k: export.card.get("config", {}).get(k) for k in ("sample_steps", "guidance", "noise",
                                                                         "noise_level", "students")},
        }
    if not out:
        raise ZooError(f"{exported_dir} holds no export with web files; run a recipe (it writes exported/<model>/web/)")
    return out


def test_digits(count=10):
    from zoo.core import data

    images, labels = data.mnist5k("test")
    index = [int(i) for i in range(0, len(labels), len(labels) // count)][:count]
    return {"images": images[index].reshape(count, -1).round(4).tolist(), "labels": labels[index].tolist(),
            "shape": list(images.shape[1:])}


class Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, *args, exported_dir, web, models, **kwargs):
        self.exported_dir, self.web, self.models = exported_dir, web, models
        super().__init__(*args, **kwargs)

    def log_message(self, *args):  # quiet: the page reports what happens
        pass

    def _send(self, status, body, kind):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _file(self, path):
        if not os.path.isfile(path):
            return self._send(404, b"not found", "text/plain")
        with open(path, "rb") as f:
            self._send(200, f.read(), TYPES.get(os.path.splitext(path)[1], "application/octet-stream"))

    def do_GET(self):
        path = self.path.split("?")[0]
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        if path in ("/", "/index.html"):
            return self._file(os.path.join(self.web, "index.html"))
        if path == "/app.js":
            return self._file(os.path.join(self.web, "app.js"))
        if path == "/models.json":
            return self._send(200, json.dumps(self.models).encode(), "application/json")
        if path == "/digits.json":
            return self._send(200, json.dumps(test_digits()).encode(), "application/json")
        if parts[:2] == ["litert", "core"] or parts[:2] == ["litert", "wasm-utils"]:
            return self._file(os.path.join(self.web, "node_modules", "@litertjs", parts[1], *parts[2:]))
        if len(parts) == 3 and parts[0] == "models" and parts[1] in self.models and parts[2] in self.models[parts[1]][
                "files"]:
            return self._file(os.path.join(self.exported_dir, parts[1], "web", parts[2]))
        return self._send(404, b"not found", "text/plain")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def make_server(exported_dir="exported", port=8000, host="127.0.0.1"):
    """A server for the page and the exports (``port=0``: any free port); (server, url)."""
    handler = functools.partial(Handler, exported_dir=os.path.abspath(exported_dir), web=web_dir(),
                                models=catalog(exported_dir))
    try:
        server = Server((host, port), handler)
    except OSError as e:
        raise ZooError(f"cannot serve on {host}:{port} ({e.strerror}); pass another --port") from None
    return server, f"http://{host}:{server.server_address[1]}/"


def serve(exported_dir="exported", port=8000, open_browser=False):
    server, url = make_server(exported_dir, port)
    print(f"zoo: serving {', '.join(server.RequestHandlerClass.keywords['models'])} at {url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def serve_in_background(exported_dir, port=0):
    """(server, url) with the server answering in a daemon thread (tests)."""
    server, url = make_server(exported_dir, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url


CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  # without these, Chromium's start-up connections are refused one by one on a closed network
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic")


def headless_page(url, profile_dir, chromium="chromium", driver="chromedriver", timeout=120):
    """Debian's headless Chromium (through selenium, the test extra) on the page at ``url``, once
    LiteRT.js has started: the browser test's and the browser benchmark's one way to open it."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(chromium) or chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which(driver) or driver), options=options)
    browser.set_script_timeout(300)
    browser.get(url)
    WebDriverWait(browser, timeout).until(lambda b: b.execute_script(
        "return window.zoo && (window.zoo.ready || window.zoo.error)"))
    error = browser.execute_script("return window.zoo.error || null")
    if error:
        browser.quit()
        raise ZooError(f"the page could not start LiteRT.js: {error}")
    return browser


# One call of a signature in the page: (model, variant, batch, signature, inputs) → outputs and ms.
RUN_IN_PAGE = """
const [model, variant, batch, signature, inputs, done] = arguments;
window.zoo.run(model, variant, batch, signature, inputs).then(r => done({outputs: r.outputs, ms: r.ms}),
                                                               e => done({error: e.message}));
"""


def run_in_page(browser, model, variant, batch, signature, inputs):
    """``inputs``: name → NumPy array; the page's own validation and LiteRT.js run them."""
    import numpy as np

    payload = {k: {"data": [None if isinstance(x, float) and x != x else x for x in np.asarray(v).ravel().tolist()],
                   "shape": list(np.shape(v))} for k, v in inputs.items()}
    return browser.execute_async_script(RUN_IN_PAGE, model, variant, batch, signature, payload)
