"""Find the commands of the docs' fenced blocks and check them with the real parsers.

A ``bash`` block's lines are joined (``\\`` continuations, multi-line quotes) and cut
into commands at ``;``, ``&&``, ``|``; redirections and leading ``VAR=value``
assignments are dropped. Each command is then checked by the parser of its program:
``tinyclap`` and ``tinyclap-runtime`` by their ``build_parser()``, ``python -m
tinyclap.X`` and ``python script.py`` by the module's own argparse run up to
``parse_args`` (which is stopped there), ``python train.py`` / ``torchrun ... train.py``
/ ``tinyclap train`` by SpeechBrain's ``parse_arguments`` plus the top-level keys of
the hparams file, ``make`` by the Makefile's targets. Programs outside that list must be
named in :data:`OTHER_PROGRAMS`, so a new kind of command is added on purpose.
"""

import argparse
import ast
import importlib
import re
import runpy
import shlex
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import yaml

from tests.helpers.tiny import REPO

DOC_FILES = sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
# a fenced block, with the optional marker line just before it
FENCE = re.compile(
    r"^(?:<!-- docs-test: (?P<mode>\w+) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
SEPARATORS = {";", "&&", "||", "|", "&"}
REDIRECTIONS = {">", ">>", "<", "2>", "&>"}
# programs the docs show that no parser here can check (package managers, shell words)
OTHER_PROGRAMS = {"hf", "pip", "for", "do", "done", "set", "cd", "export"}


@dataclass(frozen=True)
class Block:
    """A fenced code block of a doc file."""

    path: Path
    line: int
    lang: str
    mode: str  # "" (checked by parsing), "parse" or "run"
    body: str

    @property
    def where(self):
        """``file:line`` of the block, for messages."""
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(paths=DOC_FILES):
    """Every fenced block of ``paths``."""
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start("body"))
            yield Block(path, line, m["lang"], m["mode"] or "", m["body"])


def command_lines(body):
    """The logical command lines of a shell block (continuations and quotes joined)."""
    buffer = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        buffer += raw
        try:
            shlex.split(buffer, comments=True)
        except ValueError:  # an open quote: the command goes on
            buffer += "\n"
            continue
        if buffer.strip() and not buffer.strip().startswith("#"):
            yield buffer.strip()
        buffer = ""
    assert not buffer.strip(), f"unterminated command: {buffer!r}"


def commands(line):
    """The simple commands of one line: argv lists, without redirections or assignments."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    current, skip = [], False
    for token in lexer:
        if skip:
            skip = False
        elif token in SEPARATORS:
            if current:
                yield current
            current = []
        elif token in REDIRECTIONS:
            skip = True
        elif not current and re.fullmatch(r"[A-Za-z_]\w*=.*", token):
            continue  # VAR=value before the program
        else:
            current.append(token)
    if current:
        yield current


class _Parsed(Exception):
    """Raised by the patched ``parse_args`` once the arguments are parsed."""


@contextmanager
def _stop_after_parsing():
    """Make every argparse parser stop the program right after a successful parse."""
    originals = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args

    def parse_args(self, args=None, namespace=None):  # as argparse's, without returning
        _, extras = originals[1](self, args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        raise _Parsed

    def parse_known_args(self, args=None, namespace=None):
        originals[1](self, args, namespace)
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_args
    argparse.ArgumentParser.parse_known_args = parse_known_args
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = originals


def _parse(parser, argv, what):
    """Parse ``argv`` with ``parser``; raise AssertionError with argparse's message if it fails."""
    err = StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(StringIO()):
            return parser.parse_args(argv)
    except SystemExit as exit_:
        if exit_.code == 0:  # --help
            return None
        raise AssertionError(f"{what}: {err.getvalue().strip()}") from None


def _run_until_parsed(run, argv, what):
    """Run a script or module as ``__main__`` with ``argv``, stopping once it parsed them."""
    saved, err = sys.argv, StringIO()
    sys.argv = argv
    try:
        with _stop_after_parsing(), redirect_stderr(err), redirect_stdout(StringIO()):
            run()
    except _Parsed:
        return
    except SystemExit as exit_:
        if exit_.code == 0:
            return
        raise AssertionError(f"{what}: {err.getvalue().strip()}") from None
    finally:
        sys.argv = saved
    raise AssertionError(f"{what}: ran without parsing any arguments")


def _uses_argparse(source_path):
    text = Path(source_path).read_text(encoding="utf-8")
    return "argparse" in text or "prepare_cli(" in text  # prepare_cli: the recipes' parser


def check_module(module, args):
    """``python -m MODULE ARGS``: the module's own parser accepts ARGS."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"no module {module}"
    # never run a module that would not stop at an argument parser
    assert spec.origin and _uses_argparse(spec.origin), f"{module}: no argparse parser to check"
    _run_until_parsed(lambda: runpy.run_module(module, run_name="__main__"), [module, *args],
                      f"python -m {module}")  # fmt: skip


def check_script(script, args):
    """``python SCRIPT ARGS`` (a repository script): its parser accepts ARGS."""
    path = REPO / script
    assert path.is_file(), f"no script {script}"
    text = path.read_text(encoding="utf-8")
    if not _uses_argparse(path):  # a thin script calling a library main (recipes)
        imported = re.findall(r"^from (tinyclap[\w.]*) import (?:main|cli)$", text, re.MULTILINE)
        assert imported, f"{script}: no parser to check"
        assert _uses_argparse(importlib.util.find_spec(imported[0]).origin)
    _run_until_parsed(lambda: runpy.run_path(str(path), run_name="__main__"), [script, *args],
                      f"python {script}")  # fmt: skip


def hparams_keys(path):
    """Top-level keys of an hparams file (read as text: its tags need no objects)."""
    return set(re.findall(r"^([A-Za-z_]\w*)\s*:", path.read_text(encoding="utf-8"), re.MULTILINE))


def check_train(args):
    """``python train.py HPARAMS ARGS``: a real hparams file, real run options, real keys."""
    import speechbrain as sb

    args = [a for a in args if a != "--check_audio"]  # tinyclap.stages.run pops it
    assert args and args[0].endswith(".yaml"), f"train.py needs an hparams file: {args}"
    hparams = REPO / args[0]
    assert hparams.is_file(), f"no hparams file {args[0]}"
    err = StringIO()
    try:
        with redirect_stderr(err):
            _, _, overrides = sb.parse_arguments(args)
    except SystemExit:
        raise AssertionError(f"train.py {' '.join(args)}: {err.getvalue().strip()}") from None
    given = yaml.safe_load(overrides) or {}
    unknown = set(given) - hparams_keys(hparams)
    assert not unknown, f"{args[0]} has no keys {sorted(unknown)}"


def check_tinyclap(args):
    """``tinyclap ARGS``: the real parser (``demo`` included); ``train`` and ``sweep --`` go further."""
    from tinyclap.cli.main import build_parser

    train_args = None
    if args[:1] == ["sweep"] and "--" in args:  # as tinyclap.cli.main.main splits it
        cut = args.index("--")
        args, train_args = args[:cut], args[cut + 1 :]
    parsed = _parse(build_parser(), args, "tinyclap " + " ".join(args))
    if parsed is None:
        return
    if parsed.command == "train":
        check_train(parsed.train_args)
    if train_args is not None:
        check_train(train_args)


def check_runtime(args):
    """``tinyclap-runtime ARGS``: the torch-free command's parser."""
    from tinyclap.runtime.cli import build_parser

    _parse(build_parser(), args, "tinyclap-runtime " + " ".join(args))


def makefile_targets():
    """Targets of the Makefile."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w.-]+):", text, re.MULTILINE))


def check_command(argv):
    """Check one command of a docs block; return the kind of check made."""
    program, args = Path(argv[0]).name, argv[1:]
    if program == "tinyclap":
        check_tinyclap(args)
    elif program == "tinyclap-runtime":
        check_runtime(args)
    elif program == "torchrun":
        assert "train.py" in args, f"torchrun without train.py: {argv}"
        check_train(args[args.index("train.py") + 1 :])
    elif program == "make":
        missing = set(args) - makefile_targets()
        assert not missing, f"no Makefile targets {sorted(missing)}"
    elif program in ("python", "python3"):
        if args[:2] == ["-m", "venv"]:
            return "venv"
        if args[:1] == ["-m"]:
            check_module(args[1], args[2:])
        elif args[:1] == ["-c"]:
            compile(args[1], "<python -c>", "exec")
        elif args[:1] == ["train.py"]:
            check_train(args[1:])
        else:
            check_script(args[0], args[1:])
    else:
        assert program in OTHER_PROGRAMS, f"unknown program {program!r} (add it on purpose)"
        return "other"
    return program


def python_imports(source):
    """``(module, name)`` of every ``tinyclap`` import of a Python snippet (name None: a module)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinyclap"):
            yield from ((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, None) for a in node.names if a.name.startswith("tinyclap"))
