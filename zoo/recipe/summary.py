"""The end-of-run report a recipe prints."""

from __future__ import annotations

from zoo.export import card as cards


def summary(model_name, card, written):
    """The end-of-run table: the metrics, the files, and where the time went."""
    rows = [("metric", "value ± standard error   (the same for real data)"), *cards.metric_rows(card)]
    if card.get("feature_extractor"):
        rows += [("feature metrics by", str(card["feature_extractor"]))]
    score = card.get("evaluation", {}).get("anomaly_score")
    if score:  # which score the anomaly_* rows measure, and that the anomaly class did not choose it
        rows += [("anomaly score", f"{score['chosen']} (chosen on held-out normal images and proxy anomalies)")]
    rows += [("", ""), ("file", "path")]
    rows += list(written.items())
    # a file the export tried and did not ship is a finding: say which and why, not only in the card
    rows += [(f"{'web/' if section == 'web' else ''}{name}", "not shipped: " + entry.get("reason", ""))
             for section in ("tflite", "web") for name, entry in card.get(section, {}).items()
             if isinstance(entry, dict) and entry.get("kept") is False]
    t, seconds = card["training"], card["provenance"]["seconds"]
    speed = f"{t['images_per_second']:.0f} images/s" if t["images_per_second"] else "no training left"
    rows += [("", ""), ("training", f"{t['seconds']:.0f} s, {speed}, {t['strategy']} × {t['replicas']}, "
                                    f"{t['mixed_precision']}"),
             ("evaluation / export", f"{seconds['evaluation']:.0f} s / {seconds['export']:.0f} s"),
             ("total time", f"{seconds['total']:.0f} s")]
    width = max(len(r[0]) for r in rows)
    print(f"\n=== {model_name}: done ===")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
