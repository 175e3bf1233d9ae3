"""Compare the int8 recipes of an exported student: speed, per-op time and accuracy.

For an exported folder (``tinyclap export``) it writes, in a temporary folder, the
fp32 graphs (``student.onnx``: log-mels in; ``audio_encoder.onnx``: waveform in,
default frontend) and their int8 variants: ``dynamic`` (projection only),
``static`` (QDQ, every convolution, calibrated on ``--calibration_manifest``)
and ``static_pointwise`` (depthwise convolutions left float); times all of them
at batch 1, one thread, in interleaved rounds of one process; measures the max
embedding difference vs fp32 and the zero-shot accuracy on ``--eval_manifest``;
and sums onnxruntime's profiler per-op time of the fp32 and int8 student graphs.

``--configs clap2022,demo`` instead measures speed only, on random-weight
students of :data:`tinyclap.bench.onnx_frontend.CONFIGS` (the MS-CLAP 2022
edge student too, which has no trained demo counterpart).

Example
-------
tinyclap bench onnx_int8 --configs clap2022,demo --repeats 80 --out results/onnx_int8_bench
tinyclap bench onnx_int8 exported/demo --eval_manifest data/synth/test.json
    --calibration_manifest data/synth/valid.json --out results/onnx_int8_bench/demo_student
"""

import collections
import json
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyclap.deploy.onnx import (
    AudioEmbeddingGraph,
    StudentGraph,
    _accuracies,
    _export,
    calibration_windows,
    interleaved_latency_stats,
    onnx_clip_embeddings,
    session,
)
from tinyclap.deploy.quantize import quantize_dynamic_graph, quantize_static_graph
from tinyclap.errors import UsageError

NAME = "onnx_int8"
HELP = "int8 recipes of a student graph: speed, per-op time, accuracy"
RECIPES = ("dynamic", "static", "static_pointwise")


def op_profile(path, feed, threads=1, runs=30):
    """Milliseconds per run in each op type (onnxruntime profiler), largest first.

    Each node's time is its minimum over ``runs`` runs (steady on a loaded
    machine); the op type's time is the sum over its nodes.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    nodes, op_of = collections.defaultdict(list), {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            nodes[event["name"]].append(event["dur"] / 1000)
            op_of[event["name"]] = event["args"]["op_name"]
    totals = collections.Counter()
    for name, durations in nodes.items():
        totals[op_of[name]] += min(durations)
    return dict(totals.most_common())


def measure(frontend, student, calib, check, threads=1, repeats=60, folder=None):
    """Rows (graph x recipe: ms, speed-up, max diff, bytes), per-op profiles and sessions.

    ``calib`` / ``check``: waveform windows ``[N, window_samples]`` for calibration
    and for the differences; graphs are written to ``folder`` (a temporary one).
    """
    tmp = Path(folder)
    with torch.inference_mode():
        graphs = {
            "audio_encoder": _export(AudioEmbeddingGraph(frontend, student).eval(), check[:2],
                                     tmp / "audio_encoder.onnx", "embedding"),
            "student": _export(StudentGraph(student).eval(), frontend(check[:2]),
                               tmp / "student.onnx", "embedding", "logmel"),
        }  # fmt: skip
        feeds = {"audio_encoder": {"waveform": check.numpy()},
                 "student": {"logmel": frontend(check).numpy()}}  # fmt: skip
        calibration = {"audio_encoder": calib.numpy(), "student": frontend(calib).numpy()}
    paths = {}
    for name, path in tqdm(list(graphs.items()), desc="quantize"):
        paths[(name, "fp32")] = path
        paths[(name, "dynamic")] = quantize_dynamic_graph(path, tmp / f"{name}.dyn.onnx")
        paths[(name, "static")] = quantize_static_graph(
            path, calibration[name], tmp / f"{name}.static.onnx"
        )
        paths[(name, "static_pointwise")] = quantize_static_graph(
            path, calibration[name], tmp / f"{name}.pw.onnx", depthwise=False
        )
    sessions = {key: session(path, threads) for key, path in paths.items()}
    rows = {}
    for (name, recipe), sess in sessions.items():
        out = sess.run(None, feeds[name])[0]
        ref = sessions[(name, "fp32")].run(None, feeds[name])[0]
        rows[f"{name}/{recipe}"] = {
            "graph": name,
            "recipe": recipe,
            "bytes": paths[(name, recipe)].stat().st_size,
            "max_abs_diff_vs_fp32": float(np.abs(out - ref).max()),
        }
    fns = {f"{name}/{recipe}": partial(sess.run, None,
                                       {k: v[:1] for k, v in feeds[name].items()})
           for (name, recipe), sess in sessions.items()}  # fmt: skip
    stats = interleaved_latency_stats(fns, threads, repeats=repeats, rounds=10)
    for stat, latency in stats.items():
        tag = "" if stat == "median" else "_min"
        for key, ms in latency.items():
            rows[key][f"ms_b1{tag}"] = ms
            rows[key][f"speedup_vs_fp32{tag}"] = latency[f"{rows[key]['graph']}/fp32"] / ms
    one = {"logmel": feeds["student"]["logmel"][:1]}
    profiles = {recipe: op_profile(paths[("student", recipe)], one, threads)
                for recipe in ("fp32", "static", "static_pointwise")}  # fmt: skip
    return rows, profiles, sessions


def run_folder(folder, eval_manifest, calibration_manifest, threads=1, repeats=60,
               windows=64):  # fmt: skip
    """The measurements of an exported folder (a dict), accuracy included."""
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder), run_opts={"device": "cpu"})
    calib = calibration_windows(clf, calibration_manifest, windows)
    check = calibration_windows(clf, eval_manifest, 8) if eval_manifest else calib[:8]
    report = {"folder": str(folder), "threads": threads, "calibration_windows": len(calib)}
    with tempfile.TemporaryDirectory() as tmp:
        rows, profiles, sessions = measure(clf.mods.frontend, clf.mods.student, calib, check,
                                           threads, repeats, tmp)  # fmt: skip
        if eval_manifest is not None:  # every clip read once for all recipes
            embedders = {}
            for recipe in ("fp32", *RECIPES):
                sess = sessions[("audio_encoder", recipe)]
                embedders[f"audio_encoder/{recipe}"] = lambda wavs, sess=sess: onnx_clip_embeddings(
                    sess, wavs, clf.window_samples, pad_mode=clf.pad_mode
                )
            for key, accuracy in _accuracies(clf, eval_manifest, embedders).items():
                rows[key]["accuracy"] = accuracy
    return {**report, "rows": list(rows.values()), "op_profile_ms": profiles}


def run_config(name, threads=1, repeats=60):
    """Speed only, for a random-weight student of ``onnx_frontend_bench.CONFIGS[name]``.

    Calibration: 32 windows of noise plus a tone (speed does not depend on the ranges).
    """
    from tinyclap.audio.features import LogMel
    from tinyclap.bench.onnx_frontend import CONFIGS, _signal
    from tinyclap.students.phinet import PhiNetStudent

    config = CONFIGS[name]
    frontend = LogMel(**config["frontend"]).eval()
    samples = int(round(config["seconds"] * frontend.sample_rate))
    torch.manual_seed(0)
    student = PhiNetStudent(n_frames=frontend.num_frames(samples), n_mels=frontend.n_mels,
                            **config["student"]).eval()  # fmt: skip
    calib = torch.cat([_signal(samples, frontend.sample_rate, 8, seed) for seed in range(4)])
    check = _signal(samples, frontend.sample_rate, 8, seed=10)
    with tempfile.TemporaryDirectory() as tmp:
        rows, profiles, _ = measure(frontend, student, calib, check, threads, repeats, tmp)
    for row in rows.values():
        row["config"] = name
    return {"config": name, "threads": threads, "rows": list(rows.values()),
            "op_profile_ms": profiles}  # fmt: skip


def markdown(report):
    """The results tables (markdown)."""
    lines = [
        f"{report.get('config', report.get('folder'))}: median / min ms per call at batch 1, "
        "one thread, interleaved rounds.",
        "",
        "| graph | int8 recipe | ms (b1) | speed-up vs fp32 | max abs emb diff vs fp32 "
        "| zero-shot accuracy | MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        acc = f"{100 * row['accuracy']:.2f}%" if "accuracy" in row else ""
        lines.append(
            f"| {row['graph']} | {row['recipe']} | {row['ms_b1']:.2f} / {row['ms_b1_min']:.2f} "
            f"| {row['speedup_vs_fp32']:.2f} / {row['speedup_vs_fp32_min']:.2f} "
            f"| {row['max_abs_diff_vs_fp32']:.1e} | {acc} | {row['bytes'] / 1e6:.2f} |"
        )
    profile = report["op_profile_ms"]
    ops = sorted({op for p in profile.values() for op in p},
                 key=lambda op: -max(p.get(op, 0) for p in profile.values()))[:10]  # fmt: skip
    lines += [
        "",
        "Per-op time of the student graph (onnxruntime profiler; ms per run, each "
        "node's minimum over 30 runs, summed per op type):",
        "",
    ]
    lines.append("| op | " + " | ".join(profile) + " |")
    lines.append("|---|" + "---:|" * len(profile))
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(f"{p.get(op, 0):.2f}" for p in profile.values())
                     + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def add_arguments(parser):
    """The options of ``tinyclap bench onnx_int8``."""
    parser.add_argument("folder", nargs="?", help="a folder written by tinyclap export")
    parser.add_argument("--configs", help="instead: random students of these frontend-bench "
                        "configs (e.g. clap2022,demo), speed only")  # fmt: skip
    parser.add_argument("--eval_manifest", help="labelled manifest for zero-shot accuracy")
    parser.add_argument("--calibration_manifest", help="clips for calibration (with folder)")
    parser.add_argument("--calibration_windows", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=60)


def run(args):
    """``{"reports": {name: report}}``: one per config, or ``int8`` for an exported folder."""
    from tinyclap.bench.onnx_frontend import CONFIGS

    if args.configs:
        unknown = sorted(set(args.configs.split(",")) - set(CONFIGS))
        if unknown:
            raise ValueError(f"--configs: unknown {', '.join(unknown)} "
                             f"(known: {', '.join(CONFIGS)})")  # fmt: skip
        return {"reports": {f"int8_{name}": run_config(name, args.threads, args.repeats)
                            for name in args.configs.split(",")}}  # fmt: skip
    if not (args.folder and args.calibration_manifest):
        raise UsageError("give an exported folder and --calibration_manifest, or --configs")
    return {"reports": {"int8": run_folder(args.folder, args.eval_manifest,
                                           args.calibration_manifest, args.threads,
                                           args.repeats, args.calibration_windows)}}  # fmt: skip


def table(record, command):
    """:func:`markdown` of every report, headed by the command."""
    parts = [f"Command: `{command}`"]
    parts += [f"## {name}\n\n{markdown(report)}" for name, report in record["reports"].items()]
    return "\n\n".join(parts)
