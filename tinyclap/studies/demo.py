"""The embedded end-to-end demo behind ``make demo``.

Runs the real recipe stages, each as its own ``python train.py ...`` command:

1. generate the Synth dataset and train the mini CLAP teacher
   (``hparams/train_teacher.yaml``), evaluated zero-shot on the test split;
2. distil a PhiNet student from it, finetune the projection, evaluate it
   (``hparams/distill.yaml``);

then profiles both audio encoders (parameters, MACs per clip, median CPU
latency at batch 1), prints a table and writes ``results/demo/summary.json``
with the plots.

Re-running skips the stages that finished with the same command (their
``results.json`` records it), resumes an interrupted one from its checkpoints,
and redoes the profiling. ``wall_seconds`` is the demo's own time: every
attempt at each stage (kept in ``<runs>/demo_time.json``) plus the profiling;
a rerun that finds every stage finished keeps the ``wall_seconds`` of the
summary it replaces. ``last_run_seconds`` is the time of the latest
invocation alone. A stage that is killed or fails stops the demo with a
message naming it (exit status non-zero, no traceback).

Example
-------
python -m tinyclap.studies.demo --runs runs/demo --results results/demo
"""

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tinyclap.nn.complexity import format_table, profile_audio_encoder
from tinyclap.runtime.machine import machine_info
from tinyclap.stages.run import stage_command
from tinyclap.students.encoder import load_student
from tinyclap.studies.entry import module_main
from tinyclap.studies.training_curves import plot_training_curves
from tinyclap.teachers import load_teacher

NAME = "demo"
HELP = "the embedded end-to-end demo: teacher, student, profile (make demo)"
SUMMARY_FIELDS = ("params", "macs", "cpu_ms_per_clip", "zs_accuracy", "command")


class StageFailed(RuntimeError):
    """A stage's ``train.py`` process was killed or exited with an error.

    Parameters
    ----------
    command : str
        The stage's command line, as printed.
    returncode : int
        The process's exit status; ``-N`` when it was killed by signal ``N``.
    """

    def __init__(self, command, returncode):
        self.command, self.returncode = command, returncode
        super().__init__(f"{command}: {describe_exit(returncode)}")

    @property
    def exit_status(self):
        """The demo's own exit status: the stage's, or ``128 + N`` for signal ``N``."""
        return 128 - self.returncode if self.returncode < 0 else self.returncode or 1


def describe_exit(returncode):
    """``"was killed by SIGKILL"`` or ``"exited with status 1"``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def printable_command(args):
    """The command line of stage ``args`` as the demo prints it."""
    return "python " + shlex.join(["train.py", *args])


def recorded_command(args):
    """The command of stage ``args`` as its ``results.json`` records it (``sys.argv``)."""
    return " ".join(["train.py", *args])


def output_folder(args):
    """The ``--output_folder`` of stage ``args``."""
    return Path(args[args.index("--output_folder") + 1])


def run_stage(args):
    """Run ``python train.py ARGS``; return the command line and its results.

    Raises
    ------
    StageFailed
        When the process is killed, interrupted or exits with an error.
    """
    command = [*stage_command(), *args]  # python train.py ARGS, from any working directory
    printable = printable_command(args)
    print(f"\n>>> {printable}", flush=True)
    try:
        returncode = subprocess.run(command).returncode
    except KeyboardInterrupt:  # subprocess.run has killed the child
        raise StageFailed(printable, -signal.SIGINT) from None
    if returncode != 0:
        raise StageFailed(printable, returncode)
    folder = output_folder(args)
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    return printable, results, folder


def finished_results(args):
    """The results of stage ``args`` if it already finished with this very command, else None.

    ``results.json`` is the last thing a stage writes; one that is missing,
    unreadable (a run killed while writing it) or written by another command
    does not count.
    """
    path = output_folder(args) / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if results.get("command") == recorded_command(args) else None


def read_json(path):
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path, value):
    """Write ``value`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2), encoding="utf-8")
    tmp.replace(path)


def run_stages(stages, times_path):
    """Run the stages that have not finished; reuse the others' results.

    Parameters
    ----------
    stages : list of (str, list of str)
        ``(name, train.py arguments)`` in order; a stage after one that had
        to run is always run too (it may depend on what changed).
    times_path : Path
        JSON file with the seconds spent on each stage, over all attempts
        (``{name: {"command": ..., "seconds": ...}}``), updated after every
        attempt, including killed ones.

    Returns
    -------
    done : dict
        ``{name: (command, results, output_folder)}``.
    earlier_seconds : float
        Seconds spent on these stages by earlier invocations of the demo.
    ran : list of str
        The stages this invocation ran.
    """
    times = read_json(times_path)
    done, earlier, ran = {}, {}, []
    for name, args in stages:
        command = recorded_command(args)
        previous = times.get(name) if isinstance(times.get(name), dict) else {}
        finished = finished_results(args)
        same = previous.get("command") == command
        earlier[name] = float(previous.get("seconds", 0.0)) if same else 0.0
        if finished is not None and not ran:
            print(f"\n>>> {name}: finished earlier ({output_folder(args)}), not run again")
            done[name] = (printable_command(args), finished, output_folder(args))
            continue
        if finished is not None:  # run again from its results: its earlier time is void
            earlier[name] = 0.0
        ran.append(name)
        start = time.time()
        try:
            done[name] = run_stage(args)
        finally:
            seconds = earlier[name] + time.time() - start
            times[name] = {"command": command, "seconds": round(seconds, 1)}
            write_json(times_path, times)
    return done, sum(earlier.values()), ran


def profile(encoder, threads):
    """Params, MACs and CPU latency of an encoder with ``audio_encoder()``."""
    return profile_audio_encoder(
        encoder.audio_encoder(), encoder.frontend, encoder.window_samples, threads=threads
    )


def add_arguments(parser):
    """The options of ``tinyclap demo`` (``tinyclap study demo``)."""
    parser.add_argument("--runs", default="runs/demo", help="checkpoints and logs")
    parser.add_argument("--results", default="results/demo", help="summary and plots")
    parser.add_argument("--data_folder", default="data/synth")
    parser.add_argument("--threads", type=int, default=1, help="threads for latency")
    parser.add_argument("--extra", default="", help="overrides for every stage, e.g. '--n_train 4'")
    parser.add_argument("--teacher_args", default="", help="overrides for the teacher")
    parser.add_argument("--student_args", default="", help="overrides for distillation")


def run(args):
    """Run the demo and write the summary; return the summary dict.

    A stage that is killed or fails ends the demo with a message naming it
    and ``SystemExit`` (status non-zero), not a traceback.
    """
    try:
        return _main(args)
    except StageFailed as failure:
        print(
            f"\ndemo stopped: this stage {describe_exit(failure.returncode)}:\n"
            f"    {failure.command}\n"
            "Its checkpoints are kept: run `make demo` again to resume it "
            "(if it failed with an error, see the messages above).",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(failure.exit_status) from None


def main(argv=None):
    """``python -m tinyclap.studies.demo``: the same as ``tinyclap demo``."""
    return module_main(sys.modules[__name__], argv)


def _main(args):
    start = time.time()
    runs, results = Path(args.runs), Path(args.results)
    common = ["--data_folder", args.data_folder, *shlex.split(args.extra)]
    teacher_ckpt = str(runs / "teacher" / "teacher.ckpt")
    teacher_args = [
        "hparams/train_teacher.yaml",
        "--output_folder",
        str(runs / "teacher"),
        "--teacher_checkpoint",
        teacher_ckpt,
        *common,
        *shlex.split(args.teacher_args),
    ]
    student_args = [
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
    done, earlier_seconds, ran = run_stages(
        [("teacher", teacher_args), ("student", student_args)], runs / "demo_time.json"
    )
    teacher_cmd, teacher_res, teacher_dir = done["teacher"]
    student_cmd, student_res, student_dir = done["student"]

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
        "wall_seconds": None,  # below
        "last_run_seconds": None,
        "machine": machine_info(),
        "command": "make demo",
    }
    last_run = time.time() - start
    previous = read_json(results / "summary.json")
    same_stages = all(
        (previous.get(name) or {}).get("command") == summary[name]["command"]
        for name in ("teacher", "student")
    )
    if not ran and same_stages and previous.get("wall_seconds") is not None:
        summary["wall_seconds"] = previous["wall_seconds"]  # nothing was trained again
    else:
        summary["wall_seconds"] = round(earlier_seconds + last_run, 1)
    summary["last_run_seconds"] = round(last_run, 1)
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
