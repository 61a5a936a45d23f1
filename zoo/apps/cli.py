"""The ``zoo`` command line (also ``python -m zoo``), on any export folder:

    zoo sample DIR [--labels 0-9|3,1,4] [--num N] [--seed S] [--tflite [VARIANT]] [-o grid.png]
    zoo info DIR
    zoo evaluate DIR [--tflite VARIANT] [--version V]
    zoo web [EXPORTED_DIR]

Bad paths, a folder that is not an export, labels out of range, an unknown variant: one
line each, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

import numpy as np

from zoo.core.config import FlagParser
from zoo.core.errors import ZooError
from zoo.export import card as cards
from zoo.export.folder import ExportFolder


def parse_labels(text):
    """"0-9" → 0 … 9; "3,1,4" → 3, 1, 4; "0-2,7" → 0, 1, 2, 7."""
    labels = []
    for part in text.split(","):
        span = re.fullmatch(r"\s*(\d+)-(\d+)\s*", part)
        try:
            labels.extend(range(int(span[1]), int(span[2]) + 1) if span else [int(part)])
        except ValueError:
            raise ZooError(f"--labels must be class ids like 0-9 or 3,1,4, got {text!r}") from None
    if not labels:
        raise ZooError(f"--labels must name at least one class, got {text!r}")
    return np.asarray(labels, np.int32)


def _grid_rows(n, labels):
    if labels is not None and len(set(labels.tolist())) > 1:
        return len(set(labels.tolist())) if n % len(set(labels.tolist())) == 0 else max(1, int(math.sqrt(n)))
    return max(1, int(math.sqrt(n)))


# sample ---------------------------------------------------------------------------------------
def sample(args):
    from zoo.core import images

    export = ExportFolder(args.dir)
    sig = "generate" if args.tflite is not None else "sample"
    inputs = export.tflite_inputs(sig, args.tflite) if args.tflite is not None else export.saved_model_inputs(sig)
    conditional = any(i.role == "labels" for i in inputs)
    if conditional:
        labels = parse_labels(args.labels or "0-9")
        num = args.num or len(labels)
        labels = np.resize(labels, num)
        label_input = next(i for i in inputs if i.role == "labels")
        _, problem = label_input.validate(labels, sig)
        if problem:
            raise ZooError(problem.replace(f"{sig}: input labels", "--labels"))
    else:
        if args.labels is not None:
            raise ZooError(f"{export.name} draws without labels; drop --labels")
        labels, num = None, args.num or 16
    if num < 1 or num > 4096:
        raise ZooError(f"--num must be in [1, 4096], got {num}")
    if args.tflite is not None:
        rng = np.random.default_rng(args.seed)
        given = {"labels": labels, "noise": _load_noise(args.noise) if args.noise else None}
        values = {i.name: i.draw(rng, num, given.get(i.role)) for i in inputs}
        out = export.run_tflite(sig, values, args.tflite)["images"]
    else:
        import tensorflow as tf

        fn = export.saved_model(args.version).signatures["sample"]
        out = (fn(labels=tf.constant(labels), seed=tf.constant(args.seed)) if conditional
               else fn(num=tf.constant(num, tf.int32), seed=tf.constant(args.seed)))["images"].numpy()
    path = args.output or f"{export.name}_samples.png"
    images.save_png(images.grid(out, rows=_grid_rows(len(out), labels)), path)
    source = f"TFLite {args.tflite}" if args.tflite is not None else f"SavedModel version {export.versions()[-1]}"
    print(f"zoo: {len(out)} {export.name} samples from the {source} → {path}")


def _load_noise(path):
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        raise ZooError(f"--noise {path!r} is not a readable .npy file ({e})") from None


# info ------------------------------------------------------------------------------------------
def info(args):
    export = ExportFolder(args.dir)
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
    from zoo.export import quality

    export = ExportFolder(args.dir)
    card = export.version_card(args.version) if args.tflite is None else export.card
    d = card["data"]
    splits = data.splits(d["name"])
    settings = EvaluationSettings(seed=card.get("evaluation", {}).get("seed", 0) if args.seed is None else args.seed,
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
    from zoo.apps import web as zoo_web

    zoo_web.serve(args.dir, port=args.port, open_browser=False)


def main(argv=None):
    p = FlagParser(prog="zoo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="samples of an export as a PNG grid")
    s.add_argument("dir", help="an export folder, e.g. exported/cgan")
    s.add_argument("--labels", help="classes for a conditional model: 0-9, or 3,1,4 (default 0-9)")
    s.add_argument("--num", type=int, help="how many images (default: one per label, or 16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tflite", nargs="?", const="float32", metavar="VARIANT",
                   help="sample with the TFLite file (float32, float16, int8_dynamic, int8) instead of the SavedModel")
    s.add_argument("--noise", help="with --tflite: the generator's noise input from a .npy file")
    s.add_argument("--version", type=int, help="SavedModel version (default: the latest)")
    s.add_argument("-o", "--output", help="PNG file (default: <model>_samples.png)")
    i = sub.add_parser("info", help="the model card, as a person reads it")
    i.add_argument("dir")
    e = sub.add_parser("evaluate", help="recompute an export's feature metrics on the test split")
    e.add_argument("dir")
    e.add_argument("--tflite", metavar="VARIANT", help="evaluate this TFLite variant instead of the SavedModel")
    e.add_argument("--version", type=int, help="SavedModel version (default: the latest)")
    e.add_argument("--seed", type=int, help="default: the card's evaluation seed")
    e.add_argument("--samples", type=int, help="generated samples (default: as the card)")
    w = sub.add_parser("web", help="serve the browser page (LiteRT.js) for an exported/ folder")
    w.add_argument("dir", nargs="?", default="exported")
    w.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    try:
        {"sample": sample, "info": info, "evaluate": evaluate, "web": web}[args.command](args)
    except ZooError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
