"""The embedded end-to-end demo behind ``make demo``.

Runs the real recipe stages, each as its own ``python train.py ...`` command:

1. generate the Synth dataset and train the mini CLAP teacher
   (``hparams/train_teacher.yaml``), evaluated zero-shot on the test split;
2. distil a PhiNet student from it, finetune the projection, evaluate it
   (``hparams/distill.yaml``);

then profiles both audio encoders (parameters, MACs per clip, median CPU
latency at batch 1), prints a table and writes ``results/demo/summary.json``
with the plots. Re-running resumes from the stages' checkpoints.

Example
-------
python -m tinyclap.tools.demo --runs runs/demo --results results/demo
"""

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from tinyclap.nn.complexity import format_table, profile_audio_encoder
from tinyclap.students.encoder import load_student
from tinyclap.teachers import load_teacher
from tinyclap.tools.training_curves import plot_training_curves

SUMMARY_FIELDS = ("params", "macs", "cpu_ms_per_clip", "zs_accuracy", "command")


def run_stage(args):
    """Run ``python train.py ARGS``; return the command line and its results."""
    command = [sys.executable, "train.py", *args]
    printable = "python " + shlex.join(command[1:])
    print(f"\n>>> {printable}", flush=True)
    subprocess.run(command, check=True)
    output_folder = Path(args[args.index("--output_folder") + 1])
    results = json.loads((output_folder / "results.json").read_text(encoding="utf-8"))
    return printable, results, output_folder


def profile(encoder, threads):
    """Params, MACs and CPU latency of an encoder with ``audio_encoder()``."""
    return profile_audio_encoder(
        encoder.audio_encoder(), encoder.frontend, encoder.window_samples, threads=threads
    )


def main(argv=None):
    """Run the demo and write the summary; return the summary dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs/demo", help="checkpoints and logs")
    parser.add_argument("--results", default="results/demo", help="summary and plots")
    parser.add_argument("--data_folder", default="data/synth")
    parser.add_argument("--threads", type=int, default=1, help="threads for latency")
    parser.add_argument("--extra", default="", help="overrides for every stage, e.g. '--n_train 4'")
    parser.add_argument("--teacher_args", default="", help="overrides for the teacher")
    parser.add_argument("--student_args", default="", help="overrides for distillation")
    args = parser.parse_args(argv)
    start = time.time()
    runs, results = Path(args.runs), Path(args.results)
    common = ["--data_folder", args.data_folder, *shlex.split(args.extra)]
    teacher_ckpt = str(runs / "teacher" / "teacher.ckpt")

    teacher_cmd, teacher_res, teacher_dir = run_stage(
        [
            "hparams/train_teacher.yaml",
            "--output_folder",
            str(runs / "teacher"),
            "--teacher_checkpoint",
            teacher_ckpt,
            *common,
            *shlex.split(args.teacher_args),
        ]
    )
    student_cmd, student_res, student_dir = run_stage(
        [
            "hparams/distill.yaml",
            "--output_folder",
            str(runs / "student"),
            "--teacher_checkpoint",
            teacher_ckpt,
            "--cache_folder",
            str(runs / "cache"),
            *common,
            *shlex.split(args.student_args),
        ]
    )

    print("\n>>> profiling (batch 1, CPU, median latency)", flush=True)
    teacher = load_teacher("mini", checkpoint=teacher_ckpt)
    student = load_student(student_res["student_checkpoint"])
    rows = []
    for name, encoder, res, cmd in (
        ("teacher", teacher, teacher_res, teacher_cmd),
        ("student", student, student_res, student_cmd),
    ):
        rows.append(
            {
                "model": name,
                **profile(encoder, args.threads),
                "zs_accuracy": res["zs_accuracy"],
                "command": cmd,
            }
        )
    teacher_row, student_row = rows
    summary = {
        "teacher": {k: teacher_row[k] for k in SUMMARY_FIELDS},
        "student": {k: student_row[k] for k in SUMMARY_FIELDS},
        "student_config": student_res["student_config"],
        "compression": teacher_row["params"] / student_row["params"],
        "accuracy_retention": student_row["zs_accuracy"] / max(teacher_row["zs_accuracy"], 1e-9),
        "clip_seconds": teacher.clip_seconds,
        "latency_threads": args.threads,
        "wall_seconds": round(time.time() - start, 1),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "command": "make demo",
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        shutil.copy(folder / "zeroshot_test" / "confusion.png", results / f"{name}_confusion.png")
        shutil.copy(folder / "zeroshot_test" / "metrics.json", results / f"{name}_metrics.json")
    plot_training_curves(
        {"teacher": teacher_dir / "train_log.txt", "student": student_dir / "train_log.txt"},
        results / "training_curves.png",
    )
    columns = ["model", "params", "macs", "cpu_ms_per_clip", "zs_accuracy"]
    print("\n" + format_table(rows, columns))
    print(
        f"\nstudent: {summary['compression']:.1f}x fewer parameters, keeps "
        f"{100 * summary['accuracy_retention']:.1f}% of the teacher's zero-shot accuracy; "
        f"demo wall time {summary['wall_seconds'] / 60:.1f} min.\n"
        f"summary: {results / 'summary.json'}"
    )
    return summary


if __name__ == "__main__":
    main()
