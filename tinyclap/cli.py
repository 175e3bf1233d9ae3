"""The ``tinyclap`` command line.

Subcommands
-----------
``tinyclap bench``
    Parameters, MACs per clip and median CPU latency (batch 1) of students
    (PhiNet settings, or checkpoints) and teachers, as a table.
``tinyclap demo``
    The embedded end-to-end demo (same as ``make demo``).
``tinyclap train HPARAMS [--key value ...]``
    Same as ``python train.py HPARAMS ...``.

Example
-------
tinyclap bench --alpha 0.75 1.5 --num_layers 5 7 --clip_seconds 5 --sample_rate 44100
"""

import argparse
import itertools
import json
import sys

from tinyclap.complexity import format_markdown_table, format_table, profile_audio_encoder
from tinyclap.students import PhiNetStudent, StudentAudioEncoder, load_student, student_frames
from tinyclap.teachers import load_teacher

BENCH_COLUMNS = ["model", "params", "macs", "cpu_ms_per_clip", "p90_ms"]


def _bench_rows(args):
    """Yield ``(name, encoder)`` for every model asked for."""
    for path in args.student:
        yield f"student {path}", load_student(path)
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


def bench(args):
    """Profile the requested models and print a table (or JSON)."""
    rows = []
    for name, encoder in _bench_rows(args):
        stats = profile_audio_encoder(
            encoder.audio_encoder(),
            encoder.frontend,
            encoder.window_samples,
            threads=args.threads,
            repeats=args.repeats,
        )
        rows.append({"model": name, **stats})
        print(f"profiled {name}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(format_markdown_table(rows, [c for c in BENCH_COLUMNS if c in rows[0]]))
    else:
        print(format_table(rows, [c for c in BENCH_COLUMNS if c in rows[0]]))
    return rows


def build_parser():
    """The argument parser of the ``tinyclap`` command."""
    parser = argparse.ArgumentParser(prog="tinyclap", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="params / MACs / CPU latency of models")
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
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--repeats", type=int, default=20)
    b.add_argument("--json", action="store_true")
    b.add_argument("--markdown", action="store_true")
    b.set_defaults(func=bench)

    d = sub.add_parser("demo", help="the embedded end-to-end demo")
    d.add_argument("demo_args", nargs=argparse.REMAINDER)
    d.set_defaults(func=lambda a: __import__("tinyclap.demo").demo.main(a.demo_args))

    t = sub.add_parser("train", help="run a recipe stage (python train.py ...)")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=lambda a: __import__("tinyclap.recipe").recipe.main(a.train_args))
    return parser


def main(argv=None):
    """Entry point of the ``tinyclap`` console script."""
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
