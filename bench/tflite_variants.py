"""The TFLite variants of every export (JSON and a table): for each model under exported/, each
variant's file size, batch-1 latency with LiteRT (XNNPACK) re-measured here (median of
``--repeats`` calls), the quality figures the exporter measured against the float32 file, and
whether it was kept (or why it was dropped).

    python bench/tflite_variants.py [--exported exported] [--repeats 30]
"""

import argparse
import os

from common import report

from zoo.export import tflite
from zoo.export.folder import ExportFolder


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exported", default="exported")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    results = {}
    for name in sorted(os.listdir(args.exported)):
        if not os.path.isfile(os.path.join(args.exported, name, "model_card.json")):
            continue
        export = ExportFolder(os.path.join(args.exported, name))
        lite_sigs = None
        rows = {}
        for file, entry in export.card.get("tflite", {}).items():
            row = {"variant": entry.get("variant", "float32"), "kept": entry.get("kept", True),
                   "reason": entry.get("reason"), "bytes": entry.get("bytes"), "quality": entry.get("quality"),
                   "max_abs_difference_to_float32": entry.get("max_abs_difference_to_float32")}
            path = os.path.join(export.folder, file)
            if row["kept"] and os.path.isfile(path):
                if lite_sigs is None:
                    from zoo.core.signature import Signature

                    lite_sigs = [Signature(s, None, tuple(export.tflite_inputs(s)))
                                 for s in export.card["tflite"][export.variants()["float32"]]["signatures"]]
                row["batch1_latency_ms"] = tflite.latency_ms(path, lite_sigs, repeats=args.repeats)
            rows[file] = row
        results[name] = rows
        for file, row in rows.items():
            latency = ", ".join(f"{k} {v:.2f} ms" for k, v in (row.get("batch1_latency_ms") or {}).items())
            size = f"{row['bytes'] / 1e6:.2f} MB" if row["bytes"] else "—"
            print(f"{name:10} {row['variant']:13} {size:>9}  {latency:40}  {row['quality'] or ''}  "
                  f"{'kept' if row['kept'] else 'dropped: ' + str(row['reason'])}", flush=True)
    report("tflite_variants", {"exported": args.exported, "models": results})


if __name__ == "__main__":
    main()
