"""The ``tinyclap`` command line.

Subcommands
-----------
``tinyclap bench [--alpha ... --num_layers ...]``
    Complexity of a grid of untrained PhiNet students (and, with ``--student``
    / ``--teacher``, of checkpoints): parameters (total, backbone,
    projection), MACs per clip, median CPU latency at batch 1 and 16, peak
    memory of a forward pass.
``tinyclap bench model PATH...``
    The same profile for student (tinyclap or official tinyCLAP) or teacher checkpoints.
``tinyclap bench distill [--clips N --batch_size B --device D]``
    Distillation seconds per epoch with the teacher-embedding cache versus the
    teacher on every batch (MS-CLAP 2022 architecture), and the cache build
    time (:mod:`tinyclap.tools.distill_bench`).
``tinyclap bench cache [--clips N --processes P]``
    Teacher-cache build time, one process versus P processes building shards
    (:mod:`tinyclap.tools.cache_bench`).
``tinyclap bench data [--workers 0 1 2]``
    Training-loader clips/s per worker on mixed-rate FLAC / OGG / 24-bit WAV, with and
    without resampling once at preparation (:mod:`tinyclap.tools.data_bench`).
``tinyclap bench shards [--clips N --workers 1 2]``
    Loader clips/s from shards vs a folder of files, the teacher-field pass on 1 vs 2
    ranks, bytes per clip (:mod:`tinyclap.bench.shards`).
``tinyclap sweep --grid key=v1,v2 ... [--jobs N] -- HPARAMS [--key value ...]``
    One ``python train.py HPARAMS`` run per grid point (:mod:`tinyclap.tools.sweep`).
``tinyclap report RESULTS_DIR [--teacher CKPT] [--out DIR]``
    Table (markdown + CSV) and Pareto plot of a sweep (:mod:`tinyclap.tools.report`).
``tinyclap demo``
    The embedded end-to-end demo (same as ``make demo``).
``tinyclap train HPARAMS [--key value ...]``
    Same as ``python train.py HPARAMS ...``.
``tinyclap export STUDENT --out DIR`` / ``push DIR REPO_ID`` / ``classify FILE... --labels L``
    Share and use students (:mod:`tinyclap.tools.deploy_cli`).
``tinyclap shard SOURCE --out DIR`` / ``shard --dataset NAME --data_folder PATH --out DIR``
    Webdataset shards + ``shards.json`` (:mod:`tinyclap.datasets.sharding`).
``tinyclap adapt --examples DIR --model SRC --out DIR2`` / ``calibrate DIR --manifest M``
    Few-shot classes and open-set thresholds (:mod:`tinyclap.tools.adapt`).

Errors users can meet (missing or corrupt files, unreachable models, bad
options) are printed as ``tinyclap: error: MESSAGE`` with exit status 1;
``tinyclap --verbose ...`` (or ``--verbose`` after the subcommand) also prints
the traceback.

Example
-------
tinyclap bench --alpha 0.75 1.5 --num_layers 5 7 --clip_seconds 5 --sample_rate 44100
tinyclap bench model runs/demo/student/student.ckpt runs/demo/teacher/teacher.ckpt
"""

import argparse
import itertools
import json
import shlex
import sys
import traceback

from tinyclap.bench import shards as shards_bench
from tinyclap.datasets.sharding import add_shard_command
from tinyclap.nn.complexity import format_markdown_table, format_table, profile_models
from tinyclap.students.encoder import (
    StudentAudioEncoder,
    student_frames,
)
from tinyclap.students.official import is_any_student, load_any_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers import MSCLAP_NAMES, load_teacher
from tinyclap.tools import cache_bench, data_bench, deploy_bench, distill_bench
from tinyclap.tools.adapt import add_adapt_commands
from tinyclap.tools.deploy_cli import add_hub_commands

BENCH_HEADERS = {
    "model": "model",
    "params": "params",
    "backbone_params": "backbone",
    "projection_params": "projection",
    "macs": "MACs",
    "peak_mem_mb": "peak MB",
}


def bench_columns(batch_sizes):
    """``(key, header)`` columns of the bench table for the timed batch sizes.

    Examples
    --------
    >>> [header for _, header in bench_columns([1, 16])][-3:]
    ['ms b1', 'ms b16', 'peak MB']
    """
    columns = [(k, h) for k, h in BENCH_HEADERS.items() if k != "peak_mem_mb"]
    columns += [(f"ms_b{int(b)}", f"ms b{int(b)}") for b in batch_sizes]
    return columns + [("peak_mem_mb", BENCH_HEADERS["peak_mem_mb"])]


def load_model(path, teacher_checkpoint=None, text_model=None):
    """A student checkpoint as a student, anything else as a teacher.

    ``path`` may also be a teacher name (``msclap-2022``, ``msclap-2023``):
    ``teacher_checkpoint`` and ``text_model`` are then its local files
    (otherwise the hub, see :func:`tinyclap.teachers.load_teacher`).

    Student checkpoints are tinyclap ``student.ckpt`` files and official
    tinyCLAP ones (``phinet_alpha_*.ckpt``, see :func:`load_any_student`).

    Returns
    -------
    (str, object)
        ``"student"`` or ``"teacher"``, and the loaded model (with
        ``audio_encoder()``, ``frontend``, ``window_samples``).
    """
    if is_any_student(path):
        return "student", load_any_student(path)
    if str(path) in MSCLAP_NAMES:
        return "teacher", load_teacher(path, checkpoint=teacher_checkpoint, text_model=text_model)
    return "teacher", load_teacher(path)


def _grid_models(args):
    """Yield ``(name, model)`` for every model of the grid-mode ``bench``."""
    for path in args.student:
        yield f"student {path}", load_any_student(path)
    for path in args.teacher:
        yield f"teacher {path}", load_teacher(path)
    frontend = {"sample_rate": args.sample_rate, "n_mels": args.n_mels, "f_max": args.f_max}
    grid = itertools.product(args.alpha, args.beta, args.t_zero, args.num_layers)
    if args.student or args.teacher:
        grid = [] if not args.grid_too else grid
    for alpha, beta, t_zero, num_layers in grid:
        student = PhiNetStudent(
            alpha,
            beta,
            t_zero,
            num_layers,
            n_frames=student_frames(frontend, args.clip_seconds),
            n_mels=args.n_mels,
            head_channels=args.head_channels,
            embedding_dim=args.embedding_dim,
        )
        name = f"phinet a{alpha:g} b{beta:g} t0 {t_zero:g} N{num_layers}"
        yield name, StudentAudioEncoder(student, frontend, args.clip_seconds)


def _model_paths(args):
    """Yield ``(name, model)`` for ``tinyclap bench model PATH...``."""
    for path in args.paths:
        kind, model = load_model(path, args.teacher_checkpoint, args.text_model)
        yield f"{kind} {path}", model


def bench(args):
    """Profile the requested models and print a table (or JSON); return the rows."""
    named = list(_model_paths(args) if args.bench_mode == "model" else _grid_models(args))
    print(f"profiling {len(named)} model(s)", file=sys.stderr, flush=True)
    stats = profile_models(
        [model for _, model in named],
        threads=args.threads,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
    )
    rows = [{"model": name, **info} for (name, _), info in zip(named, stats)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = bench_columns(args.batch_sizes)
    print((format_markdown_table if args.markdown else format_table)(rows, columns))
    print(
        f"\nMACs: torchinfo, one clip's log-mels, frontend excluded. ms bB: median of "
        f"{args.repeats} forward passes of a batch of B clips (whole batch, frontend "
        f"included; models timed in interleaved rounds), CPU, {args.threads} thread(s). "
        "peak MB: weights + peak tensor memory of one batch-1 forward pass "
        "(torch.profiler, profile_memory=True)."
    )
    return 0


def _add_profile_options(parser):
    """Options shared by both ``bench`` modes."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads for latency")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per batch size")
    parser.add_argument(
        "--batch_sizes", type=int, nargs="+", default=[1, 16], help="batch sizes timed"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")


def _sweep(args):
    from tinyclap.tools.sweep import main as sweep_main

    return sweep_main(args)


def _report(args):
    from tinyclap.tools.report import main as report_main

    return report_main(args)


def build_parser():
    """The argument parser of the ``tinyclap`` command."""
    parser = argparse.ArgumentParser(prog="tinyclap", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "bench",
        help="params / MACs / CPU latency / peak memory of models",
        description="Profile a grid of untrained PhiNet students, or (bench model PATH...) "
        "student and teacher checkpoints.",
    )
    b.add_argument("--alpha", type=float, nargs="+", default=[0.75])
    b.add_argument("--beta", type=float, nargs="+", default=[0.75])
    b.add_argument("--t_zero", type=float, nargs="+", default=[4])
    b.add_argument("--num_layers", type=int, nargs="+", default=[5])
    b.add_argument("--head_channels", type=int, default=512)
    b.add_argument("--embedding_dim", type=int, default=256)
    b.add_argument("--sample_rate", type=int, default=16000)
    b.add_argument("--f_max", type=float, default=8000.0)
    b.add_argument("--n_mels", type=int, default=64)
    b.add_argument("--clip_seconds", type=float, default=2.0)
    b.add_argument("--student", nargs="*", default=[], help="student checkpoints")
    b.add_argument("--teacher", nargs="*", default=[], help="teacher checkpoints")
    b.add_argument("--grid_too", action="store_true", help="also profile the PhiNet grid")
    _add_profile_options(b)
    b.set_defaults(func=bench, bench_mode="grid")
    bench_sub = b.add_subparsers(dest="bench_mode", required=False)
    m = bench_sub.add_parser("model", help="profile student or teacher checkpoints")
    m.add_argument(
        "paths", nargs="+", help="student or mini-teacher checkpoints, or msclap-2022 / msclap-2023"
    )
    m.add_argument("--teacher_checkpoint", help="msclap: local CLAP_weights_*.pth (else the hub)")
    m.add_argument("--text_model", help="msclap: local bert-base-uncased / gpt2 folder")
    _add_profile_options(m)
    distill_bench.add_parser(bench_sub)
    cache_bench.add_parser(bench_sub)
    data_bench.add_parser(bench_sub)
    deploy_bench.add_parser(bench_sub)  # tinyclap bench deploy
    shards_bench.add_parser(bench_sub)  # tinyclap bench shards (tinyclap.bench.shards)

    s = sub.add_parser(
        "sweep",
        help="run train.py over a hyperparameter grid",
        description="tinyclap sweep --grid alpha=0.75,1.5 num_layers=4,7 [--jobs N] "
        "-- hparams/distill.yaml [--key value ...]",
    )
    s.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2")
    s.add_argument("--output_root", default="runs/sweep", help="one sub-folder per point")
    s.add_argument("--jobs", type=int, default=1, help="points run in parallel")
    s.add_argument("--train_script", default="train.py", help="script run for each point")
    s.add_argument("--dry_run", action="store_true", help="print the points and stop")
    s.set_defaults(func=_sweep, train_args=[])

    r = sub.add_parser(
        "report",
        help="table + Pareto plot of a sweep",
        description="Aggregate every results.json under RESULTS_DIR into table.md, "
        "table.csv and pareto.png.",
    )
    r.add_argument("results_dir")
    r.add_argument("--teacher", help="teacher checkpoint shown as a reference row")
    r.add_argument("--out", help="output folder (default: RESULTS_DIR)")
    r.add_argument("--threads", type=int, default=1, help="torch threads for latency")
    r.add_argument("--repeats", type=int, default=20, help="timed runs per batch size")
    r.add_argument("--notes", help="markdown file appended to README.md (e.g. how runs differ)")
    r.set_defaults(func=_report)

    d = sub.add_parser("demo", help="the embedded end-to-end demo")
    d.add_argument("demo_args", nargs=argparse.REMAINDER)
    d.set_defaults(func=lambda a: __import__("tinyclap.tools.demo").demo.main(a.demo_args))

    t = sub.add_parser("train", help="run a stage: tinyclap train HPARAMS.yaml [--key value ...]")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=lambda a: __import__("tinyclap.stages.run").stages.run.main(a.train_args))

    add_hub_commands(sub)  # export, push, classify
    add_adapt_commands(sub)  # adapt, calibrate
    add_shard_command(sub)  # tinyclap shard SOURCE --out DIR (tinyclap.datasets.sharding)
    parser.add_argument(
        "--verbose", action="store_true", help="print the traceback of an error too"
    )
    for command in [*sub.choices.values(), *bench_sub.choices.values()]:  # after it, too
        command.add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def expected_errors():
    """Exception types users meet (bad paths, files, options, models): no traceback.

    Everything else is a bug and keeps its traceback.
    """
    from tinyclap.audio.io import AudioLoadError
    from tinyclap.deploy.export import HubTokenError
    from tinyclap.deploy.inference import ModelSourceError
    from tinyclap.deploy.safety import UntrustedCodeError
    from tinyclap.teachers.base import TeacherLoadError

    # OSError: missing / unreadable files, network; ValueError: bad values, corrupt
    # files (also ConfigError, SweepManifestError); ImportError: optional packages.
    return (OSError, ValueError, ImportError, TeacherLoadError, AudioLoadError,
            ModelSourceError, HubTokenError, UntrustedCodeError)  # fmt: skip


def main(argv=None):
    """Entry point of the ``tinyclap`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = None
    if argv[:1] == ["sweep"] and "--" in argv:  # the rest belongs to train.py
        cut = argv.index("--")
        argv, train_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    if train_args is not None:
        args.train_args = train_args
    args.invocation = "tinyclap " + shlex.join(argv + (["--", *train_args] if train_args else []))
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print("tinyclap: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not isinstance(err, expected_errors()):
            raise  # a bug: keep the traceback
        if args.verbose:
            traceback.print_exc()
        print(f"tinyclap: error: {err}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
