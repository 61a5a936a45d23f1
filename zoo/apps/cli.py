"""The ``zoo`` command line (also ``python -m zoo``), on a shipped model's name or an export folder:

    zoo sample NAME|DIR [--labels 0-9|3,1,4] [--num N] [--seed S] [--steps K] [--tflite [VARIANT]] [-o grid.png]
    zoo info NAME|DIR
    zoo evaluate NAME|DIR [--tflite VARIANT] [--version V]
    zoo web [EXPORTED_DIR]
    zoo serve [NAME|DIR ...] [--host 127.0.0.1] [--port 8080]

Bad paths, a folder that is not an export, labels out of range, an unknown variant or step
count: one line each, exit status 2. Nothing heavy is imported before a command runs, so
``zoo --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from zoo.core.config import FlagParser, HelpWithDefaults
from zoo.core.errors import ZooError


def parse_labels(text, class_names=()):
    """"0-9" → 0 … 9; "3,1,4" → 3, 1, 4; "0-2,7" → 0, 1, 2, 7; "cat,dog" → their ids (a model
    trained on class folders)."""
    labels = []
    for part in text.split(","):
        span = re.fullmatch(r"\s*(\d+)-(\d+)\s*", part)
        if part.strip() in class_names:
            labels.append(list(class_names).index(part.strip()))
            continue
        try:
            labels.extend(range(int(span[1]), int(span[2]) + 1) if span else [int(part)])
        except ValueError:
            said = f" or class names ({', '.join(class_names)})" if class_names else ""
            raise ZooError(f"--labels must be class ids like 0-9 or 3,1,4{said}, got {text!r}") from None
    if not labels:
        raise ZooError(f"--labels must name at least one class, got {text!r}")
    return labels


def grid_rows(n, labels):
    """Rows of the PNG grid: labels that repeat (``--num`` a multiple of them) make one column
    per label; one image per label makes one row; otherwise about square."""
    import math

    distinct = len(set(labels)) if labels is not None else 0
    if distinct > 1 and n % distinct == 0:
        return n // distinct
    return max(1, round(math.sqrt(n)))


def _export(name_or_dir):
    from zoo.apps import pretrained

    return pretrained.find(name_or_dir)


# sample ---------------------------------------------------------------------------------------
def sample(args):
    import numpy as np

    from zoo.apps import pretrained
    from zoo.core import images

    runtime = "tflite" if args.tflite is not None else "savedmodel"
    model = pretrained.load(args.dir, runtime=runtime, variant=args.tflite, version=args.version)
    conditional = model.conditional
    if args.num is not None and not 1 <= args.num <= pretrained.MAX_BATCH:
        raise ZooError(f"--num must be in [1, {pretrained.MAX_BATCH}], got {args.num}")
    if conditional:
        names = model.card.get("data", {}).get("class_names", ())
        labels = parse_labels(args.labels or f"0-{model.card['data']['num_classes'] - 1}", names)
        labels = np.resize(labels, args.num or len(labels)).tolist()
        try:
            out = model.sample(labels=labels, seed=args.seed, steps=args.steps)
        except ZooError as e:
            raise ZooError(str(e).replace("sample: input labels", "--labels")) from None
    else:
        if args.labels is not None:
            raise ZooError(f"{model.name} draws without labels; drop --labels")
        labels, out = None, model.sample(num=args.num or 16, seed=args.seed, steps=args.steps)
    path = args.output or f"{model.name}_samples.png"
    images.save_png(images.grid(out, rows=grid_rows(len(out), labels)), path)
    how = f", {args.steps} steps" if args.steps else ""
    source = (f"TFLite {model.variant}" if args.tflite is not None
              else f"SavedModel version {args.version or model.folder.versions()[-1]}")
    print(f"zoo: {len(out)} {model.name} samples from the {source}{how} → {path}")


# info ------------------------------------------------------------------------------------------
def info(args):
    from zoo.apps import pretrained
    from zoo.export import card as cards

    export = _export(args.dir)
    c = export.card
    lines = [f"{c['model']} — version {c['version']} of {export.versions()}, exported {c['created']}",
             f"  zoo {c['versions']['zoo']}, TensorFlow {c['versions']['tensorflow']}, Keras {c['versions']['keras']}"]
    made = c.get("provenance")
    if made:
        m, took = made["machine"], made["seconds"]
        lines.append(f"made by: {made.get('command') or 'a Python call of the recipe'} at zoo commit "
                     f"{made.get('commit') or 'unknown'}, seed {made['seed']}, {made['precision']}, {made['date']}")
        lines.append(f"  on {m['cpu']} ({m['cores']} cores; {', '.join(m['cpu_flags']) or 'no AVX2'})"
                     + (f", GPU {', '.join(m['gpus'])}" if m["gpus"] else ""))
        lines.append("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in took.items()))
    d, t = c["data"], c["training"]
    lines.append(f"data: {d['name']} ({d['size']} training images of {d['image_shape']}; evaluated on "
                 f"{d['evaluated_on']['size']} {d['evaluated_on']['split']} images)")
    lines.append(f"training: {t['epochs']} epochs, {t['steps']} steps, {t['seconds']:.0f} s, "
                 f"{t['strategy']} × {t['replicas']}, {t.get('mixed_precision')}")
    lines.append("signatures (SavedModel):")
    for name, s in c["signatures"].items():
        ins = ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in s["inputs"].items())
        outs = ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in s["outputs"].items())
        lines.append(f"  {name}({ins}) → {outs}{'   [also TFLite]' if s.get('tflite') else ''}")
    samplers = export.samplers(c["signatures"])
    if samplers:
        lines.append(f"samplers (zoo sample --steps K, sample(steps=K)): {pretrained.describe_steps(samplers, 'sample')}")
    lines.append(f"metrics (± standard error; real-data reference) by {c.get('feature_extractor')}:")
    lines += [f"  {k:<32} {text}" for k, text in cards.metric_rows(c)]
    lines.append("files:")
    for f in sorted(os.listdir(export.folder)):
        path = os.path.join(export.folder, f)
        if os.path.isfile(path):
            lines.append(f"  {f:<32} {os.path.getsize(path) / 1e6:8.2f} MB")
    if c.get("tflite"):
        lines.append("TFLite variants:")
        for f, e in c["tflite"].items():
            size = f"{e['bytes'] / 1e6:.2f} MB" if "bytes" in e else "—"
            latency = ", ".join(f"{k} {v:.1f} ms" for k, v in e.get("batch1_latency_ms", {}).items())
            quality = ", ".join(f"{k} {cards.number(v)}" for k, v in e.get("quality", {}).items())
            status = "shipped" if e.get("kept", True) else "not shipped"
            lines.append(f"  {f:<30} {e.get('variant', 'float32'):<13} {size:>9}  {latency}  {quality}  {status}"
                         + (f": {e['reason']}" if not e.get("kept", True) else ""))
    if c.get("web"):
        lines.append(f"web files: {', '.join(export.web_files())}")
    print("\n".join(lines))


# evaluate --------------------------------------------------------------------------------------
def evaluate(args):
    """The feature metrics of an export recomputed on the test split: the SavedModel of a
    version (drawing exactly as the recipe's evaluation did, so the same seed gives the card's
    numbers) or a TFLite variant (as the exporter measured it)."""
    from zoo.apps import pretrained
    from zoo.core import data
    from zoo.evaluation import measure
    from zoo.evaluation.settings import EvaluationSettings
    from zoo.export import card as cards
    from zoo.export import quality

    export = _export(args.dir)
    card = export.version_card(args.version) if args.tflite is None else export.card
    d = card["data"]
    read_as = {k: v for k, v in d.get("read_as", {}).items() if k != "split_by"} or None  # a user's own images
    splits = data.splits(d["name"], read_as=read_as)
    used = card.get("feature_extractor")  # a user's domain classifier (a folder) is used again
    settings = EvaluationSettings(extractor=used if used and os.path.isdir(used) else "auto",
                                  seed=card.get("evaluation", {}).get("seed", 0) if args.seed is None else args.seed,
                                  samples=args.samples)
    if args.tflite is not None:
        model = pretrained.keras_model(export)
        how = card["tflite"][export.variants()["float32"]].get("quality_settings", {})
        settings = EvaluationSettings(seed=how.get("seed", settings.seed), samples=args.samples or how.get("samples"))
        measured = quality.TFLiteQuality(model, splits, settings).measure(export.tflite_path(args.tflite))
        expected = card["tflite"][export.variants()[args.tflite]].get("quality", {})
    else:
        if "sample" not in card["signatures"]:
            raise ZooError(f"{export.name} has no sample signature: nothing to evaluate (see `zoo info`)")
        measured = measure.saved_model_metrics(export.saved_model(args.version), card, splits, settings).metrics
        expected = card["metrics"]
    print(f"{'metric':<24} {'now':>12} {'card':>12}")
    for k, v in measured.items():
        if isinstance(v, float):
            print(f"{k:<24} {v:>12.5g} {cards.number(expected.get(k, '—')):>12}")


# web ------------------------------------------------------------------------------------------
def web(args):
    from zoo.apps import pretrained
    from zoo.apps import web as zoo_web

    zoo_web.serve(args.dir or pretrained.shipped_folder() or "exported", port=args.port, open_browser=False)


# serve ----------------------------------------------------------------------------------------
def serve(args):
    try:
        from zoo.apps import serving
    except ImportError as e:
        raise ZooError(f"zoo serve needs KServe ({e.name} is missing): pip install -e \".[serve]\"") from None
    if not 1 <= args.port <= 65535:
        raise ZooError(f"--port must be in [1, 65535], got {args.port}")
    if args.max_batch < 1 or args.max_body_mb < 1:
        raise ZooError("--max-batch and --max-body-mb must be at least 1")
    serving.serve(serving.folders_of(args.exports), host=args.host, port=args.port, max_batch=args.max_batch,
                  max_body_mb=args.max_body_mb)


def main(argv=None):
    p = FlagParser(prog="zoo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="samples of an export as a PNG grid", formatter_class=HelpWithDefaults)
    s.add_argument("dir", help="a shipped model's name (cgan) or an export folder (exported/cgan)")
    s.add_argument("--labels", help="classes for a conditional model: 0-9, or 3,1,4 (default 0-9)")
    s.add_argument("--num", type=int, help="how many images (default: one per label, or 16); with --labels, the "
                   "labels repeat, one column each")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--steps", type=int, help="draw with the sampler of this many network steps (diffusion: 20 "
                   "guided DDIM, the default; 10 DPM-Solver++; 4 or 2 a distilled student; `zoo info` lists them)")
    s.add_argument("--tflite", nargs="?", const="float32", metavar="VARIANT",
                   help="sample with the TFLite file (float32, float16, int8_dynamic, int8, or the file's suffix: "
                        "fp16) instead of the SavedModel")
    s.add_argument("--version", type=int, help="SavedModel version (default: the latest)")
    s.add_argument("-o", "--output", help="PNG file (default: <model>_samples.png)")
    i = sub.add_parser("info", help="the model card, as a person reads it")
    i.add_argument("dir", help="a shipped model's name or an export folder")
    e = sub.add_parser("evaluate", help="recompute an export's feature metrics on the test split")
    e.add_argument("dir", help="a shipped model's name or an export folder")
    e.add_argument("--tflite", metavar="VARIANT", help="evaluate this TFLite variant instead of the SavedModel")
    e.add_argument("--version", type=int, help="SavedModel version (default: the latest)")
    e.add_argument("--seed", type=int, help="default: the card's evaluation seed")
    e.add_argument("--samples", type=int, help="generated samples (default: as the card)")
    w = sub.add_parser("web", help="serve the browser page (LiteRT.js) for an exported/ folder")
    w.add_argument("dir", nargs="?", help="a folder of exports (default: the shipped models)")
    w.add_argument("--port", type=int, default=8000)
    v = sub.add_parser("serve", help="serve exports over TF Serving's REST API (KServe's model server)",
                       formatter_class=HelpWithDefaults)
    v.add_argument("exports", nargs="*", metavar="NAME|DIR", help="shipped names or export folders (default: every "
                   "shipped model)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    v.add_argument("--port", type=int, default=8080)
    v.add_argument("--max-batch", type=int, default=256, help="most examples (or num) one request may ask for")
    v.add_argument("--max-body-mb", type=int, default=32, help="largest request body")
    args = p.parse_args(argv)
    try:
        {"sample": sample, "info": info, "evaluate": evaluate, "web": web, "serve": serve}[args.command](args)
    except ZooError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
