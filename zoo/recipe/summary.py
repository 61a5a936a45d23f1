"""The end-of-run report a recipe prints: what was made and where, the figures that matter for
the model beside the shipped model's, and the next command. Every figure is in the card
(``zoo info <export>``); the report does not repeat the table."""

from __future__ import annotations

import json
import os

from zoo.apps import pretrained
from zoo.export import card as cards


def _shown(path):
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def _figure(card, key):
    metrics, reference = card.get("metrics", {}), card.get("reference", {})
    if not isinstance(metrics.get(key), (int, float)):
        return "—"
    text = cards.number(metrics[key]) + (f" ± {metrics[f'{key}_se']:.2g}" if f"{key}_se" in metrics else "")
    return text + (f" (real {cards.number(reference[key])})" if key in reference else "")


def _measured_otherwise(card, shipped, key):
    """How the shipped model's ``key`` was measured, where it was measured otherwise than this run's
    (its CAS on 4,000 samples for 10 epochs, this run's on 1,000 for 40): the two are not comparable."""
    mine, theirs = (c.get("evaluation", {}).get(key) for c in (card, shipped))
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return ""
    differ = [f"{value:,} {what}" for what, value in theirs.items() if what in ("samples", "epochs", "digits")
              and mine.get(what) != value]
    return f" [measured on {', '.join(differ)}]" if differ else ""


def _shipped_card(name, card):
    """The shipped model's card, when it was trained on the same data (else nothing to compare)."""
    folder = pretrained.shipped_folder()
    path = os.path.join(folder, name, "model_card.json") if folder else ""
    if not os.path.isfile(path):
        return None, None
    with open(path) as f:
        shipped = json.load(f)
    same = shipped.get("data", {}).get("name") == card.get("data", {}).get("name")
    return (shipped, os.path.join(folder, name)) if same else (None, None)


def summary(model_class, card, written, run_dir, preset=None):
    name, seconds = model_class.zoo_name, card["provenance"]["seconds"]
    export = os.path.dirname(os.path.dirname(written["saved_model"]))
    print(f"\n=== {name}: done in {seconds['total']:.0f} s (training {seconds['training']:.0f} s, evaluation "
          f"{seconds['evaluation']:.0f} s, export {seconds['export']:.0f} s) ===")
    lite = [f for f, e in card.get("tflite", {}).items() if e.get("kept", True)]
    print(f"  export      {_shown(export)}  (model_card.json, SavedModel version {card['version']}"
          + (f", {', '.join(lite)}" if lite else "") + (", web/" if card.get("web") else "") + ")")
    print(f"  run folder  {_shown(run_dir)}  (checkpoints, TensorBoard logs, history.csv, previews)")
    if preset == "tiny":
        print("  the tiny preset checks that every stage runs in seconds: its model is not trained and its "
              "figures mean nothing")
    shipped, shipped_at = _shipped_card(name, card)
    keys = model_class.headline_of(card.get("metrics", {}))
    if keys:
        rows = [("", "this run", f"shipped ({_shown(shipped_at)})" if shipped else "")]
        rows += [(k, _figure(card, k), _figure(shipped, k) + _measured_otherwise(card, shipped, k) if shipped else "")
                 for k in keys]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        print()
        for key, mine, theirs in rows:
            print(f"  {key:<{width[0]}}  {mine:<{width[1]}}  {theirs}".rstrip())
    t = card["training"]
    speed = f"{t['images_per_second']:.0f} images/s" if t["images_per_second"] else "no training left"
    print(f"\n  trained     {t['seconds']:.0f} s at {speed}, {t['strategy']} × {t['replicas']}, {t['mixed_precision']}")
    score = card.get("evaluation", {}).get("anomaly_score")
    if score:  # which score the anomaly_* figures measure, and that the anomaly class did not choose it
        print(f"  anomaly score  {score['chosen']} (chosen on held-out normal images and proxy anomalies)")
    dropped = [(f"{'web/' if section == 'web' else ''}{file}", entry.get("reason", ""))
               for section in ("tflite", "web") for file, entry in card.get(section, {}).items()
               if isinstance(entry, dict) and entry.get("kept") is False]
    for file, reason in dropped:  # a file the export tried and did not ship is a finding
        print(f"  not shipped: {file}: {reason}")
    print(f"\n  every figure: zoo info {_shown(export)}")
    if "sample" in card.get("signatures", {}):
        print(f"  next: zoo sample {_shown(export)} -o {name}.png; in Python zoo.load({_shown(export)!r})")
