"""Measure the single-file ONNX log-mel frontends (:mod:`tinyclap.deploy.onnx_frontends`).

For each configuration (MS-CLAP 2022's 5 s at 44.1 kHz with the edge student
α0.75 β0.75 t0 4 N4; the demo's 2 s at 16 kHz with the demo student α0.75 β0.75
t0 4 N5) and each frontend option, it exports the waveform -> embedding graph
(random student weights: speed does not depend on them) and the frontend alone,
checks the frontend's log-mels against :class:`tinyclap.audio.features.LogMel`
under onnxruntime (max dB error), and times every graph under onnxruntime (one
thread, batch 1 and 16) in interleaved rounds of one process, with the student
alone (log-mels in) as the floor.

Example
-------
tinyclap bench onnx_frontend --repeats 40 --out results/onnx_frontend_bench
"""

import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyclap.audio.features import LogMel
from tinyclap.deploy.onnx import (
    AudioEmbeddingGraph,
    StudentGraph,
    _export,
    interleaved_latency,
    interleaved_latency_stats,
    session,
)
from tinyclap.deploy.onnx_frontends import DEFAULT_FRONTEND, FRONTENDS, onnx_frontend
from tinyclap.students.phinet import PhiNetStudent

NAME = "onnx_frontend"
HELP = "single-file ONNX log-mel frontends: dB error and ms per window"
CONFIGS = {
    "clap2022": {"frontend": {}, "seconds": 5.0,
                 "student": dict(alpha=0.75, beta=0.75, t_zero=4, num_layers=4,
                                 head_channels=2048, embedding_dim=1024)},
    "demo": {"frontend": {"sample_rate": 16000, "f_max": 8000.0}, "seconds": 2.0,
             "student": dict(alpha=0.75, beta=0.75, t_zero=4, num_layers=5,
                             head_channels=512, embedding_dim=256)},
}  # fmt: skip


def _signal(samples, sample_rate, batch, seed=0):
    """Noise plus a chirp-like tone mix: a realistic dynamic range for the dB check."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / sample_rate
    tone = 0.3 * torch.sin(2 * torch.pi * (200 + 2000 * t) * t)
    return (0.05 * torch.randn(batch, samples, generator=gen) + tone).float()


def bench_config(name, kinds, folder, threads=1, repeats=30, batch_sizes=(1, 16)):
    """Rows ``{config, frontend, ms_b1, ...}`` for one configuration (see module doc)."""
    config = CONFIGS[name]
    frontend = LogMel(**config["frontend"]).eval()
    samples = int(round(config["seconds"] * frontend.sample_rate))
    frames = frontend.num_frames(samples)
    torch.manual_seed(0)
    student = PhiNetStudent(n_frames=frames, n_mels=frontend.n_mels, **config["student"]).eval()
    wav = _signal(samples, frontend.sample_rate, max(batch_sizes))
    with torch.inference_mode():
        reference = frontend(wav[:2]).numpy()
    folder = Path(folder)
    rows, sessions, frontend_sessions = {}, {}, {}
    for kind in tqdm(kinds, desc=f"export {name}"):
        module = onnx_frontend(frontend, kind).eval()
        path = _export(AudioEmbeddingGraph(frontend, student, kind).eval(), wav[:2],
                       folder / f"{name}_{kind}.onnx", "embedding")  # fmt: skip
        fe_path = _export(module, wav[:2], folder / f"{name}_{kind}_frontend.onnx", "logmel")
        sessions[kind] = session(path, threads)
        frontend_sessions[kind] = session(fe_path, threads)
        logmel = frontend_sessions[kind].run(None, {"waveform": wav[:2].numpy()})[0]
        rows[kind] = {
            "config": name,
            "frontend": kind,
            "frontend_mmacs": module.macs(samples) / 1e6,
            "graph_bytes": path.stat().st_size,
            "frontend_bytes": fe_path.stat().st_size,
            "max_db_error": float(np.abs(logmel - reference).max()),
        }
    student_path = _export(StudentGraph(student), torch.from_numpy(reference),
                           folder / f"{name}_student.onnx", "embedding", "logmel")  # fmt: skip
    student_sess = session(student_path, threads)
    for batch in batch_sizes:
        feed = wav[:batch].numpy()
        with torch.inference_mode():
            logmel_feed = {"logmel": frontend(wav[:batch]).numpy()}
        fns = {"student": partial(student_sess.run, None, logmel_feed)}
        for kind in kinds:
            fns[kind] = partial(sessions[kind].run, None, {"waveform": feed})
            if batch == 1:
                fns[f"{kind}/frontend"] = partial(frontend_sessions[kind].run, None,
                                                  {"waveform": feed})  # fmt: skip
        reps = max(4, repeats // batch * 2) if batch > 1 else repeats
        stats = interleaved_latency_stats(fns, threads, repeats=reps, rounds=min(5, reps))
        for stat, latency in stats.items():
            tag = "" if stat == "median" else "_min"
            for kind in kinds:
                rows[kind][f"ms_b{batch}{tag}"] = latency[kind] / batch  # per window
                rows[kind][f"student_ms_b{batch}{tag}"] = latency["student"] / batch
                if batch == 1:
                    rows[kind][f"frontend_ms_b1{tag}"] = latency[f"{kind}/frontend"]
    return list(rows.values())


def levels_row(name, kind, folder, threads=1, repeats=30):
    """Milliseconds per window at batch 1 of one graph under each onnxruntime optimisation level."""
    path = Path(folder) / f"{name}_{kind}.onnx"
    config = CONFIGS[name]
    frontend = LogMel(**config["frontend"])
    samples = int(round(config["seconds"] * frontend.sample_rate))
    feed = {"waveform": _signal(samples, frontend.sample_rate, 1).numpy()}
    optimized = Path(folder) / f"{name}_{kind}.optimized.onnx"
    sessions = {level: session(path, threads, level) for level in ("basic", "extended", "all")}
    session(path, threads, "all", optimized_path=optimized)
    sessions["saved_optimized"] = session(optimized, threads, "disable")
    fns = {level: partial(sess.run, None, feed) for level, sess in sessions.items()}
    return interleaved_latency(fns, threads, repeats=repeats, stat="min")


def markdown(rows, levels):
    """The results table (markdown)."""
    lines = [
        "Times: median / min ms per window over interleaved rounds (one thread).",
        "",
        "| config | frontend | frontend MMACs | max dB error | graph MB | frontend alone (b1) "
        "| graph (b1) | graph (b16) | graph x vs dense (b1, median / min) "
        "| student alone (b1) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pair(row, key):
        return f"{row[key]:.2f} / {row[key + '_min']:.2f}" if key in row else "-"

    for row in rows:
        dense = next((r for r in rows if r["config"] == row["config"] and
                      r["frontend"] == "dense"), None)  # fmt: skip
        ratio = "-"
        if dense:
            ratio = f"{dense['ms_b1'] / row['ms_b1']:.2f} / "
            ratio += f"{dense['ms_b1_min'] / row['ms_b1_min']:.2f}"
        lines.append(
            f"| {row['config']} | {row['frontend']} | {row['frontend_mmacs']:.0f} "
            f"| {row['max_db_error']:.1e} | {row['graph_bytes'] / 1e6:.2f} "
            f"| {pair(row, 'frontend_ms_b1')} | {pair(row, 'ms_b1')} | {pair(row, 'ms_b16')} "
            f"| {ratio} | {pair(row, 'student_ms_b1')} |"
        )
    for name, latency in levels.items():
        lines.append("")
        lines.append(f"onnxruntime graph optimisation level, {name} (min ms per window, b1):")
        lines.append("")
        lines.append("| " + " | ".join(latency) + " |")
        lines.append("|" + "---:|" * len(latency))
        lines.append("| " + " | ".join(f"{v:.2f}" for v in latency.values()) + " |")
    return "\n".join(lines) + "\n"


def add_arguments(parser):
    """The options of ``tinyclap bench onnx_frontend``."""
    parser.add_argument("--configs", default="clap2022,demo", help="of CONFIGS, comma-separated")
    parser.add_argument("--frontends", default=",".join(FRONTENDS),
                        help="frontend options, comma-separated")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30, help="timed runs at batch 1")
    parser.add_argument("--no_levels", action="store_true",
                        help="skip the optimisation-level comparison")  # fmt: skip


def run(args):
    """Export and time every frontend of every config; return the record."""
    kinds = [k for k in args.frontends.split(",") if k]
    unknown = sorted(set(kinds) - set(FRONTENDS)) + sorted(
        set(args.configs.split(",")) - set(CONFIGS)
    )
    if unknown:
        raise ValueError(
            f"--frontends / --configs: unknown {', '.join(unknown)} "
            f"(frontends: {', '.join(FRONTENDS)}; configs: {', '.join(CONFIGS)})"
        )
    rows, levels = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            rows += bench_config(name, kinds, tmp, args.threads, args.repeats)
            if not args.no_levels and DEFAULT_FRONTEND in kinds:
                levels[f"{name} / {DEFAULT_FRONTEND}"] = levels_row(
                    name, DEFAULT_FRONTEND, tmp, args.threads, args.repeats
                )
    return {"threads": args.threads, "rows": rows, "optimisation_levels": levels}


def table(record, command):
    """:func:`markdown` of the record, headed by its command."""
    return f"Command: `{command}`\n\n" + markdown(record["rows"], record["optimisation_levels"])
