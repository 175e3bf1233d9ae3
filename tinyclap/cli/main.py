"""The ``tinyclap`` command line, and the policy every tinyclap command follows.

Subcommands
-----------
``tinyclap train HPARAMS [--key value ...]``
    Same as ``python train.py HPARAMS ...`` (:mod:`tinyclap.stages.run`).
``tinyclap export STUDENT --out DIR`` / ``push DIR REPO_ID`` / ``classify FILE... --labels L``
    Share and use students (:mod:`tinyclap.cli.deploy`).
``tinyclap adapt --examples DIR --model SRC --out DIR2`` / ``calibrate DIR --manifest M``
    Few-shot classes and open-set thresholds (:mod:`tinyclap.cli.adapt`).
``tinyclap shard SOURCE --out DIR`` / ``shard --dataset NAME --data_folder PATH --out DIR``
    Webdataset shards + ``shards.json`` for distillation at scale (:mod:`tinyclap.cli.shard`).
``tinyclap bench NAME [options] [--out DIR | --save] [--json]``
    One benchmark per module of :data:`tinyclap.bench.registry.BENCHES` (``model``,
    ``distill``, ``cache``, ``data``, ``deploy``, ``onnx_frontend``, ``onnx_int8``,
    ``runtime``, ``timeline_memory``, ``shards``): prints the CPU line and a markdown table;
    ``--out DIR`` also writes ``DIR/results.json`` + ``DIR/table.md``; ``--save``
    writes them to the committed folder ``results/NAME_bench/``. ``tinyclap bench``
    alone is ``tinyclap bench model`` (the PhiNet grid).
``tinyclap study NAME [options]``
    One study per module of :data:`tinyclap.studies.entry.STUDIES` (``demo``,
    ``sweep``, ``report``, ``fewshot``, ``open_set``, ``text_student``,
    ``transfer_compare``); each writes ``results/NAME/`` by default (``--out``).
    ``tinyclap sweep``, ``tinyclap report`` and ``tinyclap demo`` are the same as
    ``tinyclap study sweep`` etc.

Policy (``tinyclap`` and ``tinyclap-runtime``)
----------------------------------------------
Exit status
    0: done; 1: bad input (a missing, unreadable or corrupt file or folder, a bad
    value, an unreachable model) or a failed run; 2: usage (unknown or missing
    options, options that do not go together: argparse's status); 130: interrupted.
    A study that runs other commands (``demo``, ``sweep``) exits with their
    failure's status.
Errors
    One line on stderr, ``tinyclap: error: MESSAGE`` (``tinyclap-runtime: error:``),
    naming the file, folder or option at fault; no traceback unless ``--verbose``
    (before or after the subcommand). An exception of another type is a bug and
    keeps its traceback.
Options
    Words joined by underscores, as SpeechBrain's ``train.py`` overrides:
    ``--batch_size``, ``--dry_run``, ``--no_onnx``. No abbreviations and no dashed
    spellings are accepted (``--dry-run`` is a usage error that names
    ``--dry_run``).
Working directory
    Commands read the paths they are given and write under their ``--out``
    (relative paths are relative to the working directory). The hparams files ship
    in the package, so ``hparams/<stage>.yaml`` (or just the stage name) resolves
    from anywhere, and ``demo``, ``sweep`` and ``transfer_compare`` start each stage
    as ``python -m tinyclap.stages.run`` (:func:`tinyclap.stages.run.resolve_hparams`).

Example
-------
tinyclap bench model --alpha 0.75 1.5 --num_layers 5 7 --clip_seconds 5 --sample_rate 44100
tinyclap bench cache --clips 32 --rounds 2 --save
tinyclap study fewshot --demo runs/demo --out results/fewshot
"""

import argparse
import shlex
import sys
import traceback
from pathlib import Path

from tinyclap.bench.registry import benches, results_folder
from tinyclap.cli.adapt import add_adapt_commands
from tinyclap.cli.deploy import add_hub_commands
from tinyclap.cli.registry import add_commands, load
from tinyclap.cli.shard import add_shard_command
from tinyclap.errors import UsageError
from tinyclap.studies.entry import STUDIES, split_rest

PROG = "tinyclap"
TOP_LEVEL_STUDIES = ("sweep", "report", "demo")  # also `tinyclap study NAME`


class Parser(argparse.ArgumentParser):
    """argparse, with no abbreviations and a hint when an option is spelt with dashes."""

    known_options = set()  # every option string of the command, filled by build_parser

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Print usage and ``PROG: error: MESSAGE`` (with the underscore spelling); exit 2."""
        hints = [w.replace("-", "_").replace("__", "--", 1) for w in message.split()
                 if w.startswith("--") and "-" in w[2:]]  # fmt: skip
        hints = [h for h in hints if h in self.known_options]
        if hints:
            message += f" (options use underscores: {', '.join(hints)})"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")  # `tinyclap`, not `tinyclap x`


def studies():
    """``{NAME: module}`` of every study."""
    return load("tinyclap.studies", STUDIES)


def _verbose_everywhere(parser):
    """``--verbose`` after any subcommand too; every option string into ``known_options``."""
    for action in parser._actions:
        Parser.known_options.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                                     help=argparse.SUPPRESS)  # fmt: skip
                _verbose_everywhere(command)


def build_parser():
    """The argument parser of the ``tinyclap`` command."""
    parser = Parser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--verbose", action="store_true", help="print the traceback of an error too"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="run a stage: tinyclap train HPARAMS.yaml [--key value ...]")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=_train)
    add_hub_commands(sub)  # export, push, classify
    add_adapt_commands(sub)  # adapt, calibrate
    add_shard_command(sub)  # shard SOURCE --out DIR (webdataset shards + shards.json)
    b = sub.add_parser("bench", help="benchmarks: tinyclap bench NAME (results/NAME_bench)",
                       description="Run a benchmark (tinyclap bench NAME --help).")  # fmt: skip
    add_commands(b.add_subparsers(dest="bench", required=True, metavar="NAME"), benches(),
                 results_folder, writer=True)  # fmt: skip
    found = studies()
    s = sub.add_parser("study", help="studies: tinyclap study NAME (results/NAME)",
                       description="Run a study (tinyclap study NAME --help).")  # fmt: skip
    add_commands(s.add_subparsers(dest="study", required=True, metavar="NAME"), found,
                 _study_folder)  # fmt: skip
    add_commands(sub, {name: found[name] for name in TOP_LEVEL_STUDIES}, _study_folder)
    _verbose_everywhere(parser)
    return parser


def _study_folder(name):
    return Path("results") / name


def _train(args):
    from tinyclap.stages.run import main as run_main

    run_main(args.train_args)
    return 0


def _normalise(argv):
    """``bench`` without a bench name is ``bench model``; returns the argv to parse."""
    if argv[:1] == ["bench"]:
        rest = argv[1:]
        named = rest and (rest[0] in benches() or rest[0] in ("-h", "--help"))
        if not named:
            return ["bench", "model", *rest]
    return argv


def _rest_owner(argv):
    """The study module taking ``-- ...`` for this argv, or None."""
    found = studies()
    name = argv[1] if argv[:1] == ["study"] and len(argv) > 1 else argv[0] if argv else None
    if argv[:1] != ["study"] and name not in TOP_LEVEL_STUDIES:
        return None
    module = found.get(name)
    return module if hasattr(module, "REST") else None


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
    argv = _normalise(list(sys.argv[1:] if argv is None else argv))
    owner = _rest_owner(argv)
    own, rest = split_rest(argv) if owner is not None else (argv, None)
    args = build_parser().parse_args(own)
    if owner is not None:
        setattr(args, owner.REST, rest or [])
    args.invocation = f"{PROG} " + shlex.join(argv)
    return run_command(args)


def run_command(args, prog=PROG):
    """``args.func(args)`` under the policy: exit status, one-line errors, ``--verbose``."""
    verbose = getattr(args, "verbose", False)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not isinstance(err, expected_errors()):
            raise  # a bug: keep the traceback
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    return status if isinstance(status, int) else 0


def one_line(err):
    """The error's message on one line (the first, plus how many more there were)."""
    lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    more = f" (+{len(lines) - 1} more lines: --verbose)" if len(lines) > 1 else ""
    return lines[0] + more


if __name__ == "__main__":
    sys.exit(main())
