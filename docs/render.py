"""Renders the numbers README.md and docs/models/*.md show, from the shipped models' cards
(exported/*/model_card.json) and the benchmarks' JSON (bench/results/), between markers

    <!-- render: NAME -->
    ...generated...
    <!-- /render -->

so no figure is retyped and none goes stale: tests/test_docs.py fails when a page and its
sources disagree.

    python docs/render.py           # rewrite the generated blocks
    python docs/render.py --check   # exit 1 if a block is out of date
"""

import argparse
import glob
import json
import os
import re
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "docs/serving.md", "docs/own-data.md", *sorted(os.path.relpath(p, REPOSITORY) for p in glob.glob(
    os.path.join(REPOSITORY, "docs", "models", "*.md")))]
BLOCK = re.compile(r"(<!-- render: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /render -->)", re.S)
MODELS = ("vae", "ae", "dae", "cgan", "diffusion")
WHAT = {"vae": "variational autoencoder: samples, reconstructions, ELBO, anomaly score",
        "ae": "autoencoder: reconstructions, samples from its code mixture, anomaly score",
        "dae": "denoising autoencoder: denoises, samples, anomaly score",
        "cgan": "class-conditional GAN: a digit of each class in one call",
        "diffusion": "class-conditional diffusion: 20 guided DDIM steps, few-step students, inpainting"}


def card(name):
    path = os.path.join(REPOSITORY, "exported", name, "model_card.json")
    with open(path) as f:
        return json.load(f)


def bench(name):
    with open(os.path.join(REPOSITORY, "bench", "results", f"{name}.json")) as f:
        return json.load(f)


def number(value, digits=3):
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 100):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def figure(c, key, prefix=""):
    """"value ± se (real value)" of a card metric."""
    metrics, reference = c["metrics"], c.get("reference", {})
    value = metrics.get(prefix + key)
    if value is None:
        return "—"
    text = number(value)
    if f"{prefix}{key}_se" in metrics:
        text += f" ± {number(metrics[prefix + key + '_se'], 2)}"
    if key in reference:
        text += f" ({number(reference[key])})"
    return text


def folder_megabytes(name):
    total = 0
    for root, _, files in os.walk(os.path.join(REPOSITORY, "exported", name)):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def lite_latency(c):
    """Batch-1 latency of the float32 TFLite generate (or reconstruct), ms."""
    entry = c["tflite"][f"{c['model']}.tflite"]
    for signature in ("generate", "reconstruct", "decode"):
        if signature in entry.get("batch1_latency_ms", {}):
            return f"{entry['batch1_latency_ms'][signature]:.1f} ms ({signature})"
    return "—"


def own_figure(c):
    m = c["metrics"]
    if c["model"] == "vae":
        return f"test −ELBO {number(-m['elbo'])} nats, IWAE {number(m['nll_iw'])}"
    if c["model"] in ("ae", "dae"):
        return (f"PSNR of noisy digits (σ 0.3) {number(c['reference']['psnr_denoised_gaussian'])} → "
                f"{number(m['psnr_denoised_gaussian'])} dB")
    if c["model"] == "cgan":
        return f"classifier accuracy {figure(c, 'classifier_accuracy')}"
    students = c["config"].get("students", [])
    text = f"classifier accuracy {figure(c, 'classifier_accuracy')}"
    for steps in students:
        text += (f"; {steps}-step student FID {figure(c, 'fid', f'student_{steps}_steps_')}, accuracy "
                 f"{number(m[f'student_{steps}_steps_classifier_accuracy'])}")
    return text


def shipped_models():
    rows = ["| model | what it does | FID ± se (real digits) | precision / recall (real) | FID in a second classifier's "
            "features (real) | its own figure | folder | TFLite batch 1 |", "|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        c = card(name)
        m, ref = c["metrics"], c.get("reference", {})
        pr = f"{number(m['precision'])} / {number(m['recall'])} ({number(ref['precision'])} / {number(ref['recall'])})"
        rows.append(f"| [{name}](docs/models/{'autoencoders' if name in ('ae', 'dae') else name}.md) | {WHAT[name]} | "
                    f"{figure(c, 'fid')} | {pr} | {figure(c, 'independent_fid')} | {own_figure(c)} | "
                    f"{folder_megabytes(name):.1f} MB | {lite_latency(c)} |")
    total = sum(folder_megabytes(n) for n in MODELS)
    rows.append("")
    rows.append(f"All five: {total:.1f} MB. Feature metrics in the zoo MNIST classifier's features, 1,000 samples "
                "against the 1,000 test digits; in brackets the same metric for 1,000 real training digits (the "
                "floor at that sample count); the second classifier is built and trained apart, so a ranking that "
                "holds in both is not one feature space's. Each card's `provenance` says which commit, command and "
                "machine made it.")
    return "\n".join(rows)


def card_metrics(name):
    """Every scalar metric of a shipped card beside its real-data reference."""
    c = card(name)
    rows = ["| metric | value ± se | real data |", "|---|---|---|"]
    for key, value in c["metrics"].items():
        if isinstance(value, (dict, list)) or key.endswith(("_se", "_std")):
            continue
        se = c["metrics"].get(f"{key}_se")
        ref = c.get("reference", {}).get(key)
        rows.append(f"| `{key}` | {number(value)}{f' ± {number(se, 2)}' if se is not None else ''} | "
                    f"{number(ref) if ref is not None else ''} |")
    made = c["provenance"]
    rows.append("")
    rows.append(f"Made by `{as_typed(made['command'])}` at commit `{(made['commit'] or 'unknown')[:12]}` on {made['machine']['cpu']} "
                f"({made['machine']['cores']} cores, {', '.join(made['machine']['cpu_flags'])}), "
                f"{made['precision']}, {made['date']}: " + ", ".join(f"{k} {v:.0f} s" for k, v in made["seconds"].items())
                + ".")
    return "\n".join(rows)


def files(name):
    """The shipped files of a model with their sizes, batch-1 latency and quality."""
    c = card(name)
    rows = ["| file | variant | MB | batch-1 latency (ms) | quality | shipped |", "|---|---|---|---|---|---|"]
    for file, e in c["tflite"].items():
        latency = ", ".join(f"{k} {v:.1f}" for k, v in e.get("batch1_latency_ms", {}).items())
        quality = ", ".join(f"{k} {number(v)}" for k, v in e.get("quality", {}).items())
        size = f"{e['bytes'] / 1e6:.2f}" if "bytes" in e else "—"
        rows.append(f"| `{file}` | {e['variant']} | {size} | {latency} | {quality} | "
                    f"{'yes' if e['kept'] else 'no: ' + e.get('reason', '')} |")
    for file, e in c["web"].items():
        rows.append(f"| `web/{file}` | {e['variant']}, batch {e['batch']} | {e.get('bytes', 0) / 1e6:.2f} | | | "
                    f"{'yes' if e['kept'] else 'no: ' + e.get('reason', '')} |")
    return "\n".join(rows)


def samplers_diffusion():
    """The diffusion model's samplers side by side: guided DDIM and DPM-Solver++(2M) at the same
    steps, the guided teacher on the students' grid, and the students."""
    c = card("diffusion")
    rows = ["| sampler | network calls per digit | accuracy | FID ± se | FID∞ | precision | recall | "
            "TFLite batch 1 |", "|---|---|---|---|---|---|---|---|"]
    latency = c["tflite"]["diffusion.tflite"]["batch1_latency_ms"]
    config, m = c["config"], c["metrics"]
    pattern = r"(ddim|dpm_solver|guided_ddim|student)_\d+_steps_fid"
    found = {key[:-len("_fid")] for key in m if re.fullmatch(pattern, key)}
    order = {"ddim": 0, "dpm_solver": 1, "guided_ddim": 2, "student": 3}

    def place(name):
        kind, steps = name.rsplit("_", 2)[0], int(name.rsplit("_", 2)[1])
        return order[kind], -steps if kind == "student" else steps

    for name in ["guided_ddim", *sorted(found, key=place)]:
        kind, steps = (name, config["sample_steps"]) if name == "guided_ddim" else (
            name.rsplit("_", 2)[0], int(name.rsplit("_", 2)[1]))
        prefix = "" if name == "guided_ddim" else f"{name}_"
        calls = f"{steps}" if kind == "student" else f"{2 * steps} (two U-Nets)"
        signature = "generate" if name == "guided_ddim" else f"generate_{steps}_steps" if kind == "student" else None
        if kind == "dpm_solver" and steps == config.get("dpm_solver_steps"):
            signature = "generate_dpm_solver"
        lat = latency.get(signature)
        rows.append(f"| {name} | {calls} | {number(m[prefix + 'classifier_accuracy'])} | "
                    f"{figure(c, 'fid', prefix)} | {number(m[prefix + 'fid_infinity'])} | "
                    f"{number(m[prefix + 'precision'])} | {number(m[prefix + 'recall'])} | "
                    f"{f'{lat:.1f} ms' if lat else '—'} |")
    return "\n".join(rows)


def networks_diffusion():
    """Each network the diffusion model holds, from a model built as its card's config says:
    its parameters, its role and whether the export stores it."""
    from zoo.core.distribute import float32_policy
    from zoo.models.base import model_class

    c, cls = card("diffusion"), model_class("diffusion")
    with float32_policy():
        model = cls(cls.Config.from_dict({k: v for k, v in c["config"].items() if k in cls.Config.defaults()}))
    roles = model.network_roles()
    rows = ["| network | parameters | what it is | exported |", "|---|---|---|---|"]
    rows += [f"| {name} | {count:,} | {role} | {'yes' if stored else 'no'} |" for name, (count, role, stored) in
             roles.items()]
    stored = sum(count for count, _, kept in roles.values() if kept)
    rows += ["", f"Keras' `count_params()` counts every network held while training: {model.count_params():,}; "
                 f"the export stores {stored:,}."]
    return "\n".join(rows)


# A documented request's values: the small ones written out, a tensor as "<N × shape …>", which
# tests/test_serving.py fills with values of that shape before sending the body.
EXAMPLE_VALUES = {"labels": [3, 1, 4], "seed": 0, "count": 3, "timesteps": [500, 500, 500]}


def placeholder(description, n=3):
    shape = "×".join(str(d) for d in description["shape"][1:])
    bounds = f" in [{number(description['minimum'])}, {number(description['maximum'])}]" if "maximum" in \
        description and description["dtype"].startswith("float") else ""
    values = f" of {{{', '.join(number(v) for v in description['values'])}}}" if "values" in description else ""
    return f"<{n} × {shape} {description['dtype']}{bounds}{values}>" if shape else \
        f"<{n} {description['dtype']}{bounds}{values}>"


def serving_bodies():
    """Every shipped model's signatures: a columnar request body and what it answers."""
    rows = []
    for name in MODELS:
        c = card(name)
        rows += [f"**{name}** (`POST /v1/models/{name}:predict`; serving_default: `{next(iter(c['signatures']))}`)", "",
                 "| signature | request body | response: outputs |", "|---|---|---|"]
        for signature, described in c["signatures"].items():
            inputs = {k: EXAMPLE_VALUES.get(d.get("role"), EXAMPLE_VALUES.get(k)) for k, d in described["inputs"].items()}
            inputs = {k: v if v is not None else placeholder(described["inputs"][k]) for k, v in inputs.items()}
            body = json.dumps({"signature_name": signature, "inputs": inputs}, ensure_ascii=False)
            out = ", ".join(f"{k} [{', '.join('3' if d == 'N' else str(d) for d in o['shape'])}] {o['dtype']}"
                            for k, o in described["outputs"].items())
            rows.append(f"| `{signature}` | `{body}` | {out} |")
        rows.append("")
    return "\n".join(rows[:-1])


def serving_bench():
    """zoo serve under load and faults (bench/results/serving.json)."""
    b = bench("serving")
    rows = [f"{b['clients']} concurrent clients for {b['seconds']:.0f} s on {b['cpus']} CPU cores (the clients on the "
            "same machine):", "", "| requests | per second | p50 | p99 | errors | server memory halfway → after |",
            "|---|---|---|---|---|---|"]
    for what, r in b["load"].items():
        rows.append(f"| {what.replace('_', ' ')} | {r['requests_per_second']:.0f} | {r['p50_ms']:.1f} ms | "
                    f"{r['p99_ms']:.1f} ms | {r['errors']} | {r['memory_halfway_mb']:.0f} → "
                    f"{r['memory_after_mb']:.0f} MB |")
    t, k = b["one_http_sample_of_64_cgan_digits"], b["kill_9_under_load"]
    rows += ["", f"Server memory {b['server_memory']['start_mb']:.0f} MB at the start, "
                 f"{b['server_memory']['end_mb']:.0f} MB at the end. One HTTP `sample` of 64 cGAN digits "
                 f"({t['response_bytes'] / 1e6:.1f} MB of JSON) takes {t['http_ms']:.1f} ms: the signature "
                 f"{t['model_ms']:.1f} ms, the server's JSON encoding {t['server_json_encode_ms']:.1f} ms, the client's "
                 f"decoding (Python's json) {t['client_json_decode_ms']:.1f} ms, the rest (HTTP, parsing, checks) "
                 f"{t['rest_ms']:.1f} ms; decoded with orjson instead, {t['client_orjson_decode_ms']:.1f} ms. The JSON "
                 f"is {t['response_bytes'] / t['float32_bytes']:.1f}× the size of the float32 images. Killed "
                 f"(`kill -9`) under load, it was ready again "
                 f"{k['restart_ready_s']:.1f} s after a restart (first start {b['first_start_ready_s']:.1f} s); the "
                 f"exports {'unchanged' if k['exports_unchanged'] else 'CHANGED'}."]
    return "\n".join(rows)


def own_data_bench():
    """A user's folders at scale (bench/results/own_data.json)."""
    b = bench("own_data")
    d, t, m = b["decode"], b["throughput"], b["memory"]
    small = m["the_same_on_3000_images"]
    rows = ["| | |", "|---|---|"]
    for what, r in d.items():
        n, shape = r["images"], "×".join(map(str, r["image_shape"]))
        rows.append(f"| decoding {n:,} PNGs of {shape} | {n / r['images_per_second_best']:.1f} s "
                    f"({r['images_per_second_best']:,} images/s) |")
    for what, label in (("folder_uint8_arrays", "the same digits from a folder (uint8)"),
                        ("previous_tf_constant_gather", "mnist5k through a tf.constant and tf.gather (before)")):
        rows.append(f"| VAE training, {label} | {t[what]['best_ratio_to_mnist5k']:.2f}× mnist5k's "
                    f"{t['mnist5k_float32_arrays']['best']:,} images/s (best of {len(t[what]['images_per_second'])}) |")
    rows += [f"| {m['images']:,} images of {'×'.join(map(str, m['image_shape']))}: read | {m['read_seconds']:.0f} s, "
             f"{m['uint8_array_mb']:,} MB of uint8 |",
             f"| their peak memory, read, trained and resumed | {m['peak_after_training_and_resume_mb']:,} MB "
             f"({small['peak_after_training_and_resume_mb']:,} MB for the same run on {small['images']:,} images) |",
             f"| resumed weights equal the uninterrupted run's | "
             f"{'yes, bit for bit' if m['resumed_weights_equal_uninterrupted'] else 'NO'} |",
             f"| a tf.constant of {m['tf_constant']['array_mb']:,} MB (not used) | "
             f"{m['tf_constant']['rss_added_by_tf_constant_mb']:,} MB more |"]
    recipe, recipe_small = m.get("tiny_recipe_with_evaluation"), small.get("tiny_recipe_with_evaluation")
    if recipe and recipe_small:
        rows.append(f"| the tiny VAE recipe on them, evaluation and export included | {recipe['peak_mb']:,} MB peak in "
                    f"{recipe['seconds']} s ({recipe_small['peak_mb']:,} MB on {small['images']:,} images) |")
    return "\n".join(rows) + f"\n\nOn {b['cpus']} CPU cores; TensorFlow and Keras alone take {m['peak_after_imports_mb']:,} MB."


def as_typed(command):
    """A card's command as a user types it: without the scratch folders ``recipes/ship.py``
    passed (``--out``, ``--runs-dir``), an ``--init-from`` export named as in exported/."""
    words, shown = command.split(), []
    while words:
        word = words.pop(0)
        if word in ("--out", "--runs-dir") and words:
            words.pop(0)
        elif word == "--init-from" and words:
            path = words.pop(0)
            shown += [word, "exported/" + path.split("/exported/")[1] if "/exported/" in path else path]
        else:
            shown.append(word)
    return " ".join(shown)


def _span(values, form):
    """The smallest and the largest of ``values`` as ``form`` writes them, "a–b" (one where they read alike)."""
    return "–".join(dict.fromkeys((form(min(values)), form(max(values)))))


def recipe_times():
    """The five default runs, stage by stage, against their budgets (bench/default_runs.py), and
    the shipped students' distillation from its card."""
    d = bench("default_runs")
    rows = ["| command | start-up | training | evaluation | export | end to end (budget) |", "|---|---|---|---|---|---|"]
    for name in (m for m in MODELS if m in d["runs"]):
        r, t = d["runs"][name], d["runs"][name]["seconds"]
        rows.append(f"| `python recipes/{name}.py` | {t['start_up']:.0f} s | {t['training']:.0f} s | "
                    f"{t['evaluation']:.0f} s ({r['evaluation_share']:.0%}) | {t['export']:.0f} s | "
                    f"{r['wall_seconds'] / 60:.1f} min ({r['budget_seconds'] / 60:g} min"
                    f"{'' if r['within_budget'] else ': over'}) |")
    made = card("diffusion")["provenance"]
    t = made["seconds"]
    rows.append(f"| `{as_typed(made['command'])}` | {t['start_up']:.0f} s | {t['training']:.0f} s | "
                f"{t['evaluation']:.0f} s | {t['export']:.0f} s | {t['total'] / 60:.1f} min |")
    cpu = d["cpu"]
    rows.append("")
    rows.append(f"Default flags, the built-in data, an empty cache (bench/default_runs.py; every stage's steps are "
                f"in bench/results/default_runs.json); machine: {cpu['cpu']}, {cpu['cores']} cores, "
                f"{', '.join(cpu['cpu_flags'])}. The last row, the shipped students' distillation, is from their card. "
                "Start-up is a run's time outside its training steps: setting up, tracing, the held-out "
                "losses, previews, checkpoints. Without bfloat16 instructions (AVX512_BF16 or AMX) the cGAN and diffusion "
                "train in float32, about 1.3× slower.")
    held = [r for r in d.get("other_diffusion_runs", []) if "onednn_max_cpu_isa" in r]
    if held:
        rows[-1] += (f" Held off AMX (`ONEDNN_MAX_CPU_ISA={held[0]['onednn_max_cpu_isa']}`: a CPU with AVX512_BF16 "
                     f"alone), `python recipes/diffusion.py` took "
                     f"{_span([r['wall_seconds'] / 60 for r in held], '{:.1f}'.format)} min in {len(held)} runs, "
                     f"training at {_span([r['images_per_second'] for r in held], '{:.0f}'.format)} images/s, "
                     f"its evaluation {_span([100 * r['evaluation_share'] for r in held], '{:.0f}'.format)}% of it.")
    return "\n".join(rows)


def bench_summary():
    """The figures the README quotes from bench/results."""
    lines = []
    d = bench("distill")
    goals = d["goals_by_student_steps"]
    lines.append("- `bench/distill.py` — the few-step students against their goals "
                 "(`bench/results/distill.json`):")
    lines.append("")
    lines.append("  | student | accuracy (goal) | FID / teacher's 20-step FID (goal) | TFLite batch-1 latency / "
                 "teacher's (goal) | browser, ms per digit (goal) |")
    lines.append("  |---|---|---|---|---|")
    for steps, g in sorted(goals.items(), key=lambda kv: -int(kv[0])):
        def cell(key, fmt):
            if key not in g:
                return "—"
            value, goal, met = g[key]["value"], g[key]["goal"], g[key]["met"]
            return f"{fmt.format(value)}" + (f" ({'≥' if key == 'accuracy' else '≤'} {fmt.format(goal)}: "
                                            f"{'met' if met else 'missed'})" if goal is not None else "")
        lines.append(f"  | {steps} steps | {cell('accuracy', '{:.3f}')} | {cell('fid_ratio', '{:.2f}')} | "
                     f"{cell('latency_ratio', '{:.3f}')} | {cell('browser_ms_per_digit', '{:.1f}')} |")
    t = d["training_seconds"]
    if t.get("ratio"):
        lines.append("")
        lines.append(f"  Distillation {t['students']:.0f} s of training against the teacher's {t['teacher']:.0f} s "
                     f"({t['ratio']:.2f}×; goal ≤ 1).")
    m = bench("metrics")
    nn = m["precision_recall_density_coverage"]
    lines.append(f"- `bench/metrics.py` — precision/recall/density/coverage of two {m['n']:,} × {m['dim']:,} "
                 f"feature sets: {nn['zoo_seconds']:.1f} s against NumPy's full distance matrices "
                 f"{nn['numpy_full_matrices_seconds']:.1f} s ({nn['speedup']:.1f}×); FID {m['fid']['zoo_seconds']:.1f} s "
                 f"against `scipy.linalg.sqrtm` {m['fid']['sqrtm_seconds']:.1f} s (`bench/results/metrics.json`).")
    return "\n".join(lines)


def diffusion_vs_gan():
    """The diffusion settings against the cGAN in both feature spaces (bench/results/diffusion_vs_gan.json)."""
    d = bench("diffusion_vs_gan")
    rows = ["| samples (1,000) | accuracy | FID ± se | precision | recall | second classifier: FID ± se | precision | "
            "recall |", "|---|---|---|---|---|---|---|---|"]

    def row(name, m):
        return (f"| {name} | {number(m['classifier_accuracy'])} | {number(m['fid'])} ± {number(m['fid_se'], 2)} | "
                f"{number(m['precision'])} | {number(m['recall'])} | {number(m['independent_fid'])} ± "
                f"{number(m['independent_fid_se'], 2)} | {number(m['independent_precision'])} | "
                f"{number(m['independent_recall'])} |")

    for name, m in d["by_setting"].items():
        rows.append(row(name, m))
    rows.append(row("real training digits (the floor)", d["real_data_reference"]))
    per = ["| intra-FID per class | " + " | ".join(str(c) for c in range(10)) + " |", "|---" * 11 + "|"]
    for name in ("cgan", "diffusion g=1.4, 20 steps", "student, 4 steps"):
        v = d["by_setting"][name]["intra_fid_per_class"]
        per.append(f"| {name} | " + " | ".join(f"{v[str(c)]:.0f}" for c in range(10)) + " |")
    return "\n".join(rows + [""] + per)


def anomaly_protocol():
    """The leave-one-digit-out protocol's ROC-AUC per held-out digit (bench/results/anomaly*.json)."""
    runs = [("anomaly", "seed 0"), ("anomaly_vae_seed1", "seed 1")]
    rows = ["| model (run) | chose | " + " | ".join(str(d) for d in range(10)) + " | mean | min | AP | TPR at the "
            "held-out 5% threshold | FPR there | TFLite mean |", "|---" * 17 + "|"]
    for file, seed in runs:
        d = bench(file)
        for name, r in d["models"].items():
            per = r["per_digit"]
            chose = sorted({v["chosen"] for v in per.values()})
            fpr = sum(v["fpr_at_threshold"] for v in per.values()) / len(per)
            rows.append(f"| {name} ({seed}) | `{'`, `'.join(chose)}` | "
                        + " | ".join(f"{per[str(k)]['auc']:.2f}" for k in range(10))
                        + f" | **{r['mean_auc']:.3f}** | **{r['min_auc']:.3f}** | {r['mean_average_precision']:.2f} | "
                        f"{r['mean_tpr_at_5pct_fpr']:.2f} | {fpr:.3f} | {r['mean_auc_tflite']:.3f} |")
    d = bench("anomaly")
    rows.append("")
    rows.append("Mean ROC-AUC of every candidate score, same run (seed 0): " + "; ".join(
        f"{name}: " + ", ".join(f"{c} {v:.3f}" for c, v in r["mean_auc_by_candidate"].items())
        for name, r in d["models"].items()) + f". {d['epochs']} epochs per model and digit.")
    return "\n".join(rows)


RENDERERS = {"diffusion-vs-gan": diffusion_vs_gan, "anomaly-protocol": anomaly_protocol, "recipe-times": recipe_times,
             "bench-summary": bench_summary, "shipped-models": shipped_models, "samplers-diffusion": samplers_diffusion,
             "networks-diffusion": networks_diffusion, "serving-bodies": serving_bodies,
             "serving-bench": serving_bench, "own-data-bench": own_data_bench,
             **{f"card-{n}": (lambda n=n: card_metrics(n)) for n in MODELS},
             **{f"files-{n}": (lambda n=n: files(n)) for n in MODELS}}


def rendered(text):
    """``text`` with every block re-rendered."""
    def fill(match):
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(f"docs/render.py: no renderer for block {name!r}; it has {', '.join(RENDERERS)}")
        return f"{match[1]}{RENDERERS[name]()}\n{match[4]}"

    return BLOCK.sub(fill, text)


def stale_pages():
    """The pages whose generated blocks differ from what their sources give now."""
    out = []
    for page in PAGES:
        with open(os.path.join(REPOSITORY, page)) as f:
            text = f.read()
        if rendered(text) != text:
            out.append(page)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if a page's generated blocks are out of date")
    args = p.parse_args()
    if args.check:
        stale = stale_pages()
        if stale:
            print(f"out of date: {', '.join(stale)}; run python docs/render.py", file=sys.stderr)
        sys.exit(1 if stale else 0)
    pages = {}
    for page in PAGES:  # every page rendered before any is written: a missing source changes nothing
        with open(os.path.join(REPOSITORY, page)) as f:
            pages[page] = rendered(f.read())
    for page, text in pages.items():
        path = os.path.join(REPOSITORY, page)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
