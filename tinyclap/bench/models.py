"""Complexity of audio encoders: parameters, MACs per clip, CPU latency, peak memory.

``tinyclap bench model [PATH...]`` profiles student checkpoints (tinyclap
``student.ckpt`` or official tinyCLAP ``phinet_alpha_*.ckpt``) and teachers (a
mini-teacher checkpoint, ``msclap-2022`` / ``msclap-2023`` with their local files,
a transformers CLAP folder); without PATH (or with ``--grid_too``) it profiles a
grid of untrained PhiNet students (``--alpha ... --num_layers ...``). Each row:
parameters (total, backbone, projection), MACs of one clip's log-mels (torchinfo,
frontend excluded), median CPU latency per batch size (frontend included; models
timed in interleaved rounds), peak memory of a batch-1 forward pass.
``tinyclap bench`` alone is ``tinyclap bench model``.

Example
-------
tinyclap bench model --alpha 0.75 1.5 --num_layers 5 7 --clip_seconds 5 --sample_rate 44100
tinyclap bench model runs/demo/student/student.ckpt runs/demo/teacher/teacher.ckpt
"""

import itertools
import sys

from tinyclap.nn.complexity import format_markdown_table, profile_models
from tinyclap.students.encoder import StudentAudioEncoder, student_frames
from tinyclap.students.official import is_any_student, load_any_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers import MSCLAP_NAMES, load_teacher

NAME = "model"
HELP = "params / MACs / CPU latency / peak memory of checkpoints or a PhiNet grid"
HEADERS = {
    "model": "model",
    "params": "params",
    "backbone_params": "backbone",
    "projection_params": "projection",
    "macs": "MACs",
    "peak_mem_mb": "peak MB",
}


def columns(batch_sizes):
    """``(key, header)`` columns of the table for the timed batch sizes.

    Examples
    --------
    >>> [header for _, header in columns([1, 16])][-3:]
    ['ms b1', 'ms b16', 'peak MB']
    """
    shown = [(k, h) for k, h in HEADERS.items() if k != "peak_mem_mb"]
    shown += [(f"ms_b{int(b)}", f"ms b{int(b)}") for b in batch_sizes]
    return shown + [("peak_mem_mb", HEADERS["peak_mem_mb"])]


def load_model(path, teacher_checkpoint=None, text_model=None):
    """A student checkpoint as a student, anything else as a teacher.

    ``path`` may also be a teacher name (``msclap-2022``, ``msclap-2023``):
    ``teacher_checkpoint`` and ``text_model`` are then its local files
    (otherwise the hub, see :func:`tinyclap.teachers.load_teacher`).

    Returns
    -------
    (str, object)
        ``"student"`` or ``"teacher"``, and the loaded model (with
        ``audio_encoder()``, ``frontend``, ``window_samples``).

    Example
    -------
    >>> kind, model = load_model("runs/demo/student/student.ckpt")  # doctest: +SKIP
    """
    if is_any_student(path):
        return "student", load_any_student(path)
    if str(path) in MSCLAP_NAMES:
        return "teacher", load_teacher(path, checkpoint=teacher_checkpoint, text_model=text_model)
    return "teacher", load_teacher(path)


def grid_models(args):
    """Yield ``(name, model)`` for every untrained PhiNet student of the grid."""
    frontend = {"sample_rate": args.sample_rate, "n_mels": args.n_mels, "f_max": args.f_max}
    for alpha, beta, t_zero, num_layers in itertools.product(
        args.alpha, args.beta, args.t_zero, args.num_layers
    ):
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


def named_models(args):
    """``(name, model)`` of the paths (then the grid, if asked or without paths)."""
    named = []
    for path in args.paths:
        kind, model = load_model(path, args.teacher_checkpoint, args.text_model)
        named.append((f"{kind} {path}", model))
    if not args.paths or args.grid_too:
        named += list(grid_models(args))
    return named


def add_arguments(parser):
    """The options of ``tinyclap bench model``."""
    parser.add_argument(
        "paths",
        nargs="*",
        help="student or teacher checkpoints, msclap-2022 / msclap-2023, a CLAP folder "
        "(none: the PhiNet grid)",
    )
    parser.add_argument("--teacher_checkpoint", help="msclap: local CLAP_weights_*.pth")
    parser.add_argument("--text_model", help="msclap: local bert-base-uncased / gpt2 folder")
    parser.add_argument("--grid_too", action="store_true", help="the grid too, after the paths")
    grid = parser.add_argument_group("the PhiNet grid (untrained students)")
    grid.add_argument("--alpha", type=float, nargs="+", default=[0.75])
    grid.add_argument("--beta", type=float, nargs="+", default=[0.75])
    grid.add_argument("--t_zero", type=float, nargs="+", default=[4])
    grid.add_argument("--num_layers", type=int, nargs="+", default=[5])
    grid.add_argument("--head_channels", type=int, default=512)
    grid.add_argument("--embedding_dim", type=int, default=256)
    grid.add_argument("--sample_rate", type=int, default=16000)
    grid.add_argument("--f_max", type=float, default=8000.0)
    grid.add_argument("--n_mels", type=int, default=64)
    grid.add_argument("--clip_seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for latency")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per batch size")
    parser.add_argument(
        "--batch_sizes", type=int, nargs="+", default=[1, 16], help="batch sizes timed"
    )


def run(args):
    """Profile the models; return ``{"rows": [...], "threads", "repeats", "batch_sizes"}``."""
    named = named_models(args)
    print(f"profiling {len(named)} model(s)", file=sys.stderr, flush=True)
    stats = profile_models(
        [model for _, model in named],
        threads=args.threads,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
    )
    rows = [{"model": name, **info} for (name, _), info in zip(named, stats)]
    return {"rows": rows, "threads": args.threads, "repeats": args.repeats,
            "batch_sizes": list(args.batch_sizes)}  # fmt: skip


def table(record, command):
    """The rows as a markdown table, with the command and what each column means.

    Example
    -------
    >>> row = {"model": "m", "params": 10, "backbone_params": 6, "projection_params": 4,
    ...        "macs": 100, "ms_b1": 1.5, "peak_mem_mb": 2.0}
    >>> rec = {"rows": [row], "threads": 1, "repeats": 3, "batch_sizes": [1]}
    >>> print(table(rec, "tinyclap bench model").splitlines()[2])
    | model | params | backbone | projection | MACs | ms b1 | peak MB |
    """
    return "\n".join([
        f"Command: `{command}`",
        "",
        format_markdown_table(record["rows"], columns(record["batch_sizes"])),
        "",
        f"MACs: torchinfo, one clip's log-mels, frontend excluded. ms bB: median of "
        f"{record['repeats']} forward passes of a batch of B clips (whole batch, frontend "
        f"included; models timed in interleaved rounds), CPU, {record['threads']} thread(s). "
        "peak MB: weights + peak tensor memory of one batch-1 forward pass "
        "(torch.profiler, profile_memory=True).",
    ])  # fmt: skip
