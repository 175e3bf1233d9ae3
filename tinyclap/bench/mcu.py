"""MCU figures of the deploy-bench students: int8 flash and TFLM-measured arena.

For the PhiNet students of :mod:`tinyclap.bench.deploy` (paper a1.5 t0 6
N7 head 2048, a0.75 t0 4 N4 head 2048, edge a0.75 t0 4 N5 head 512; MS-CLAP
2022's 5 s window at 44.1 kHz, 690 x 64 log-mels, 1024-d latent) with random
weights (arena and flash do not depend on them), each converted to full int8
(:func:`tinyclap.deploy.mcu.convert.convert_student`) with calibration windows
of real clips (``--calibration_manifest``), and the edge student again on
shorter inputs (``--frames``): the arena grows with the frames of one inference.

Example
-------
python -m tinyclap.bench.mcu --calibration_manifest data/synth/train.json --out results/mcu
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from tinyclap.audio.features import CLAP2022_FRONTEND, LogMel
from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import split_windows
from tinyclap.data.pipelines import read_manifest

STUDENTS = [  # (name, alpha, beta, t_zero, num_layers, head_channels), as bench.deploy
    ("paper a1.5 b0.75 t0 6 N7 head 2048", 1.5, 0.75, 6, 7, 2048),
    ("a0.75 b0.75 t0 4 N4 head 2048", 0.75, 0.75, 4, 4, 2048),
    ("edge a0.75 b0.75 t0 4 N5 head 512", 0.75, 0.75, 4, 5, 512),
]


def calibration_logmels(manifest, count, frontend_config=CLAP2022_FRONTEND, seconds=5.0):
    """Log-mels ``[N, frames, 64]``: first windows of ``count`` clips spread over a manifest."""
    frontend = LogMel(**frontend_config).eval()
    entries = list(read_manifest(manifest).values())
    picks = np.unique(np.linspace(0, len(entries) - 1, min(count, len(entries))).astype(int))
    samples = int(seconds * frontend.sample_rate)
    wavs = [split_windows(load_audio(entries[i]["wav"], frontend.sample_rate), samples)[0]
            for i in picks]  # fmt: skip
    with torch.no_grad():
        return frontend(torch.stack(wavs)).numpy()


def measure(name, alpha, beta, t_zero, num_layers, head, calibration, frames=None):
    """One student's int8 model bytes, TFLM arena and MACs for ``frames`` input frames."""
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
        info = convert_student(student, calibration[:, :frames], path)
        arena = arena_bytes(path)
    return {
        "student": name,
        "frames": frames,
        "params": sum(p.numel() for p in student.parameters()),
        "macs": count_macs(student, (1, frames, 64)),
        "model_bytes": info["bytes"],
        "arena_bytes": arena,
        "fits_512KB_arena": arena <= 512 * 1024,
        "fits_2MB_flash": info["bytes"] <= 2048 * 1024,
    }


def main(argv=None):
    """Measure, print a table, write ``OUT/bench.json``."""
    from tinyclap.runtime.machine import cpu_line, machine_info

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calibration_manifest", required=True, help="real clips (train.json)")
    p.add_argument("--calibration", type=int, default=32, help="calibration windows")
    p.add_argument("--frames", type=int, nargs="*", default=[345, 172, 86],
                   help="shorter inputs for the edge student")  # fmt: skip
    p.add_argument("--students", nargs="*", help="subset of names (prefix match)")
    p.add_argument("--out", default="results/mcu")
    args = p.parse_args(argv)
    calibration = calibration_logmels(args.calibration_manifest, args.calibration)
    rows = []
    for spec in STUDENTS:
        if args.students and not any(spec[0].startswith(s) for s in args.students):
            continue
        rows.append(measure(*spec, calibration))
        print(json.dumps(rows[-1]), flush=True)
    edge = [s for s in STUDENTS if s[0].startswith("edge")][0]
    for frames in args.frames:
        rows.append(measure(*edge, calibration, frames=frames))
        print(json.dumps(rows[-1]), flush=True)
    print(cpu_line())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python -m tinyclap.bench.mcu " + " ".join(argv or []),
        "calibration_manifest": args.calibration_manifest,
        "rows": rows,
        "machine": machine_info(),
    }
    (out / "bench.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
