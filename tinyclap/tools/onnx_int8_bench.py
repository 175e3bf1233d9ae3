"""Compare the int8 recipes of an exported student: speed, per-op time and accuracy.

For an exported folder (``tinyclap export``) it writes, in a temporary folder, the
fp32 graphs (``student.onnx``: log-mels in; ``audio_encoder.onnx``: waveform in,
default frontend) and their int8 variants: ``dynamic`` (projection only),
``static`` (QDQ, every convolution, calibrated on ``--calibration_manifest``)
and ``static_pointwise`` (depthwise convolutions left float); times all of them
at batch 1, one thread, in interleaved rounds of one process; measures the max
embedding difference vs fp32 and the zero-shot accuracy on ``--eval_manifest``;
and sums onnxruntime's profiler per-op time of the fp32 and int8 student graphs::

    python -m tinyclap.tools.onnx_int8_bench exported/demo --eval_manifest
        data/synth/test.json --calibration_manifest data/synth/valid.json
        --out results/onnx_frontend
"""

import argparse
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
    _accuracy,
    _export,
    calibration_windows,
    interleaved_latency,
    onnx_clip_embeddings,
    session,
)
from tinyclap.deploy.quantize import quantize_dynamic_graph, quantize_static_graph

RECIPES = ("dynamic", "static", "static_pointwise")


def op_profile(path, feed, threads=1, runs=20):
    """Milliseconds per run spent in each op type (onnxruntime profiler), largest first."""
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
    totals = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    return dict(totals.most_common())


def run(folder, eval_manifest, calibration_manifest, threads=1, repeats=60, windows=64):
    """The measurements (a dict) described in the module docstring."""
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder), run_opts={"device": "cpu"})
    frontend, student = clf.mods.frontend, clf.mods.student
    calib = calibration_windows(clf, calibration_manifest, windows)
    calib_logmel = frontend(calib).detach()
    gen = torch.Generator().manual_seed(0)
    check = 0.1 * torch.randn(8, clf.window_samples, generator=gen)
    report = {"folder": str(folder), "threads": threads, "calibration_windows": len(calib)}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        tmp = Path(tmp)
        graphs = {
            "audio_encoder": _export(AudioEmbeddingGraph(frontend, student).eval(), check[:2],
                                     tmp / "audio_encoder.onnx", "embedding"),
            "student": _export(StudentGraph(student).eval(), frontend(check[:2]),
                               tmp / "student.onnx", "embedding", "logmel"),
        }  # fmt: skip
        feeds = {"audio_encoder": {"waveform": check.numpy()},
                 "student": {"logmel": frontend(check).numpy()}}  # fmt: skip
        calibration = {"audio_encoder": calib.numpy(), "student": calib_logmel.numpy()}
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
        latency = interleaved_latency(fns, threads, repeats=repeats, rounds=10)
        for key, ms in latency.items():
            rows[key]["ms_b1"] = ms
            fp32 = latency[f"{rows[key]['graph']}/fp32"]
            rows[key]["speedup_vs_fp32"] = fp32 / ms
        if eval_manifest is not None:
            for recipe in ("fp32", *RECIPES):
                sess = sessions[("audio_encoder", recipe)]
                rows[f"audio_encoder/{recipe}"]["accuracy"] = _accuracy(
                    clf, eval_manifest,
                    lambda wavs, sess=sess: onnx_clip_embeddings(
                        sess, wavs, clf.window_samples, pad_mode=clf.pad_mode),
                )  # fmt: skip
        one = {"logmel": feeds["student"]["logmel"][:1]}
        report["op_profile_ms"] = {
            recipe: op_profile(paths[("student", recipe)], one, threads)
            for recipe in ("fp32", "static", "static_pointwise")
        }
    report["rows"] = list(rows.values())
    return report


def markdown(report):
    """The results tables (markdown)."""
    lines = [
        "| graph | int8 recipe | ms (b1) | speed-up vs fp32 | max abs emb diff vs fp32 "
        "| zero-shot accuracy | MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        acc = f"{100 * row['accuracy']:.2f}%" if "accuracy" in row else ""
        lines.append(
            f"| {row['graph']} | {row['recipe']} | {row['ms_b1']:.2f} "
            f"| {row['speedup_vs_fp32']:.2f} | {row['max_abs_diff_vs_fp32']:.1e} | {acc} "
            f"| {row['bytes'] / 1e6:.2f} |"
        )
    profile = report["op_profile_ms"]
    ops = sorted({op for p in profile.values() for op in p},
                 key=lambda op: -max(p.get(op, 0) for p in profile.values()))[:10]  # fmt: skip
    lines += ["", "Per-op time of the student graph (onnxruntime profiler, ms per run):", ""]
    lines.append("| op | " + " | ".join(profile) + " |")
    lines.append("|---|" + "---:|" * len(profile))
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(f"{p.get(op, 0):.2f}" for p in profile.values())
                     + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Run the comparison; print the tables; write ``int8.md`` / ``int8.json`` to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder written by tinyclap export")
    parser.add_argument("--eval_manifest", help="labelled manifest for zero-shot accuracy")
    parser.add_argument("--calibration_manifest", required=True, help="clips for calibration")
    parser.add_argument("--calibration_windows", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--out", help="folder for int8.md and int8.json")
    args = parser.parse_args(argv)
    report = run(args.folder, args.eval_manifest, args.calibration_manifest, args.threads,
                 args.repeats, args.calibration_windows)  # fmt: skip
    table = markdown(report)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "int8.md").write_text(table, encoding="utf-8")
        (out / "int8.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
