"""MCU figures of students: int8 flash and TFLM-measured arena; int8 vs fp32 of exports.

Sizes: the PhiNet students of :mod:`tinyclap.bench.deploy` (paper a1.5 t0 6 N7
head 2048, a0.75 t0 4 N4 head 2048, edge a0.75 t0 4 N5 head 512; MS-CLAP 2022's
5 s window at 44.1 kHz, 690 x 64 log-mels, 1024-d latent) with random weights
(arena and flash do not depend on them), each converted to full int8
(:func:`tinyclap.deploy.mcu.convert.convert_student`) with calibration windows of
real clips (``--calibration_manifest``); the edge student again on shorter inputs
(``--frames``: the arena grows with the frames of one inference) and at smaller
widths (``--alphas``). Each row says whether it fits a 512 KB arena and 2 MB flash.

Trained students: ``--export DIR`` reads ``DIR/mcu/report.json`` of
``tinyclap export ... --mcu --eval_manifest ...`` (fp32 vs int8 zero-shot accuracy
on the same windows, per-clip cosine, flash, arena): nothing is recomputed.

Example
-------
tinyclap bench mcu --calibration_manifest data/synth/train.json --export exported/demo --save
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from tinyclap.audio.features import CLAP2022_FRONTEND, LogMel
from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import split_windows
from tinyclap.data.pipelines import read_manifest
from tinyclap.errors import UsageError

NAME = "mcu"
HELP = "int8 flash and TFLM arena of students; int8 vs fp32 accuracy of --mcu exports"

KB = 1024
ARENA_BUDGET = 512 * KB
FLASH_BUDGET = 2048 * KB

STUDENTS = [  # (name, alpha, beta, t_zero, num_layers, head_channels), as bench.deploy
    ("paper a1.5 b0.75 t0 6 N7 head 2048", 1.5, 0.75, 6, 7, 2048),
    ("a0.75 b0.75 t0 4 N4 head 2048", 0.75, 0.75, 4, 4, 2048),
    ("edge a0.75 b0.75 t0 4 N5 head 512", 0.75, 0.75, 4, 5, 512),
]


def calibration_logmels(manifest, count, frontend_config=CLAP2022_FRONTEND, seconds=5.0):
    """Log-mels ``[N, frames, 64]``: first windows of ``count`` clips spread over a manifest."""
    frontend = LogMel(**frontend_config).eval()
    entries = list(read_manifest(manifest).values())
    if not entries:
        raise UsageError(f"--calibration_manifest {manifest} lists no clips")
    picks = np.unique(np.linspace(0, len(entries) - 1, min(count, len(entries))).astype(int))
    samples = int(seconds * frontend.sample_rate)
    wavs = [split_windows(load_audio(entries[i]["wav"], frontend.sample_rate), samples)[0]
            for i in picks]  # fmt: skip
    with torch.no_grad():
        return frontend(torch.stack(wavs)).numpy()


def fitted_calibration(calibration, frames):
    """``calibration`` cut (or tiled) to ``frames`` frames: windows of that many frames."""
    reps = -(-int(frames) // calibration.shape[1])
    return np.concatenate([calibration] * reps, axis=1)[:, : int(frames)]


def measure(name, alpha, beta, t_zero, num_layers, head, calibration, frames=None):
    """One student's int8 model bytes, TFLM arena and MACs for ``frames`` input frames.

    Example
    -------
    >>> row = measure("tiny", 0.25, 0.75, 4, 2, 16,
    ...               np.random.randn(2, 40, 64))  # doctest: +SKIP
    >>> row["arena_bytes"] > 0, row["fits_2MB_flash"]  # doctest: +SKIP
    (True, True)
    """
    from tinyclap.deploy.mcu.convert import convert_student
    from tinyclap.deploy.mcu.tflm import arena_bytes
    from tinyclap.nn.complexity import count_macs
    from tinyclap.students.phinet import PhiNetStudent

    frames = calibration.shape[1] if frames is None else int(frames)
    torch.manual_seed(0)
    student = PhiNetStudent(alpha, beta, t_zero, num_layers, n_frames=frames, n_mels=64,
                            head_channels=head, embedding_dim=1024).eval()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "student_int8.tflite"
        info = convert_student(student, fitted_calibration(calibration, frames), path)
        arena = arena_bytes(path)
    return {
        "student": name,
        "frames": frames,
        "params": sum(p.numel() for p in student.parameters()),
        "macs": count_macs(student, (1, frames, 64)),
        "model_bytes": info["bytes"],
        "arena_bytes": arena,
        "fits_512KB_arena": arena <= ARENA_BUDGET,
        "fits_2MB_flash": info["bytes"] <= FLASH_BUDGET,
    }


def export_row(folder):
    """The figures of ``folder/mcu/report.json`` (an ``--mcu`` export) as one row."""
    path = Path(folder) / "mcu" / "report.json"
    if not path.is_file():
        raise UsageError(
            f"--export {folder}: no {path}; make it with tinyclap export STUDENT --out "
            f"{folder} --mcu --eval_manifest TEST.json"
        )
    report = json.loads(path.read_text(encoding="utf-8"))
    acc = report.get("accuracy") or {}
    pct = {k: None if report.get(k) is None else round(100 * report[k], 2)
           for k in ("fp32_accuracy", "int8_accuracy")}  # fmt: skip
    return {
        "export": str(folder),
        "student_checkpoint": report.get("student_checkpoint"),
        "eval_manifest": acc.get("manifest"),
        "clips": acc.get("num_clips"),
        "fp32_accuracy_pct": pct["fp32_accuracy"],
        "int8_accuracy_pct": pct["int8_accuracy"],
        "int8_minus_fp32_points": None
        if None in pct.values()
        else round(pct["int8_accuracy"] - pct["fp32_accuracy"], 2),
        "agreement_pct": None if "agreement" not in acc else round(100 * acc["agreement"], 2),
        "cosine_mean": None if "cosine_mean" not in acc else round(acc["cosine_mean"], 4),
        "cosine_min": None if "cosine_min" not in acc else round(acc["cosine_min"], 4),
        "frames": report["model"]["input"]["shape"][1],
        "macs": report.get("macs"),
        "flash_bytes": report["flash_bytes"],
        "model_bytes": report["model"]["bytes"],
        "arena_bytes": report["arena_bytes"],
        "ram_bytes": report["ram_bytes"],
        "calibration": report.get("calibration"),
        "command": report.get("command"),
    }


def add_arguments(p):
    """The options of ``tinyclap bench mcu``."""
    p.add_argument(
        "--calibration_manifest",
        help="real clips (train.json) calibrating the size rows (none without it)",
    )
    p.add_argument("--calibration", type=int, default=32, help="calibration windows")
    p.add_argument("--students", nargs="*", help="subset of the size students (name prefixes)")
    p.add_argument("--frames", type=int, nargs="*", default=[345, 172, 86],
                   help="shorter inputs for the edge student")  # fmt: skip
    p.add_argument("--alphas", type=float, nargs="*", default=[0.5],
                   help="smaller widths for the edge student (690 frames)")  # fmt: skip
    p.add_argument("--export", nargs="*", default=[],
                   help="exported folders holding mcu/report.json (export --mcu)")  # fmt: skip


def run(args):
    """Measure the size rows, read the export rows; returns the record."""
    if not args.calibration_manifest and not args.export:
        raise UsageError("bench mcu: give --calibration_manifest (size rows) and/or --export DIR")
    exports = [export_row(folder) for folder in args.export]
    rows = []
    if args.calibration_manifest:
        calibration = calibration_logmels(args.calibration_manifest, args.calibration)
        wanted = args.students
        specs = [s for s in STUDENTS if not wanted or any(s[0].startswith(n) for n in wanted)]
        for spec in specs:
            rows.append(measure(*spec, calibration))
            print(json.dumps(rows[-1]), flush=True)
        edge = [s for s in STUDENTS if s[0].startswith("edge")][0]
        for frames in args.frames:
            rows.append(measure(*edge, calibration, frames=frames))
            print(json.dumps(rows[-1]), flush=True)
        for alpha in args.alphas:
            name = edge[0].replace("a0.75", f"a{alpha:g}", 1)
            rows.append(measure(name, alpha, *edge[2:], calibration))
            print(json.dumps(rows[-1]), flush=True)
    return {
        "calibration_manifest": args.calibration_manifest,
        "calibration_windows": args.calibration if args.calibration_manifest else None,
        "budgets": {"arena_bytes": ARENA_BUDGET, "flash_bytes": FLASH_BUDGET},
        "rows": rows,
        "exports": exports,
    }


EXPORT_COLUMNS = ("export", "clips", "fp32_accuracy_pct", "int8_accuracy_pct",
                  "int8_minus_fp32_points", "agreement_pct", "cosine_mean", "cosine_min",
                  "frames", "flash_bytes", "arena_bytes")  # fmt: skip


def _yes(flag):
    return "yes" if flag else "no"


def markdown(record):
    """The size table and the trained-export table of a record.

    Example
    -------
    >>> print(markdown({"rows": [], "exports": [{"export": "e", "clips": 2,
    ...     "fp32_accuracy_pct": 50.0, "int8_accuracy_pct": 50.0, "int8_minus_fp32_points": 0.0,
    ...     "agreement_pct": 100.0, "cosine_mean": 0.99, "cosine_min": 0.98, "frames": 9,
    ...     "flash_bytes": 10, "arena_bytes": 20}]}).splitlines()[-1])
    | e | 2 | 50.0 | 50.0 | 0.0 | 100.0 | 0.99 | 0.98 | 9 | 10 | 20 |
    """
    lines = []
    if record.get("rows"):
        lines += ["| student | frames | params | MACs | int8 model (flash) | TFLM arena | "
                  "512 KB arena | 2 MB flash |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
        for r in record["rows"]:
            lines.append(f"| {r['student']} | {r['frames']} | {r['params']:,} | "
                         f"{r['macs'] / 1e6:.1f}M | {r['model_bytes']:,} | {r['arena_bytes']:,} | "
                         f"{_yes(r['fits_512KB_arena'])} | "
                         f"{_yes(r['fits_2MB_flash'])} |")  # fmt: skip
    if record.get("exports"):
        lines += ["", "| export | clips | fp32 acc % | int8 acc % (TFLM) | int8 - fp32 (points) | "
                  "agreement % | cosine mean | cosine min | frames | flash bytes | arena bytes |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in record["exports"]:
            cells = [r[k] for k in EXPORT_COLUMNS]
            lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines).strip("\n")


def table(record, command):
    """The bench's tables under the command that made them."""
    return f"Command: `{command}`\n\n" + markdown(record)
