"""Every command the docs and the README show is checked against the real code.

See :mod:`tests.docs.commands` for how commands are found and checked. Python
blocks must compile and their ``tinyclap`` imports must resolve; blocks marked
``<!-- docs-test: run -->`` are run through the real entry point.
"""

import importlib
from contextlib import redirect_stdout
from io import StringIO

import pytest

from tests.docs.commands import (
    DOC_FILES,
    blocks,
    check_command,
    check_train,
    command_lines,
    commands,
    python_imports,
)

SHELL = ("bash", "sh", "shell")
SHELL_BLOCKS = [b for b in blocks() if b.lang in SHELL]
PYTHON_BLOCKS = [b for b in blocks() if b.lang == "python"]


def test_the_docs_show_commands_of_every_kind():
    # guards the extraction itself: a broken fence regex would check nothing
    kinds = {check_kind for b in SHELL_BLOCKS for check_kind in _kinds(b)}
    assert {"tinyclap", "tinyclap-runtime", "python", "make", "torchrun"} <= kinds
    assert len(SHELL_BLOCKS) >= 30 and len(PYTHON_BLOCKS) >= 8


def _kinds(block):
    for line in command_lines(block.body):
        for argv in commands(line):
            yield argv[0].rsplit("/", 1)[-1]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.where)
def test_shell_commands_parse(block):
    checked = 0
    for line in command_lines(block.body):
        for argv in commands(line):
            try:
                check_command(argv)
            except AssertionError as err:
                raise AssertionError(f"{block.where}: {' '.join(argv)}\n  {err}") from None
            checked += 1
    assert checked, f"{block.where}: a shell block without a command"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.where)
def test_python_blocks_compile_and_import(block):
    compile(block.body, block.where, "exec")
    for module, name in python_imports(block.body):
        imported = importlib.import_module(module)
        assert name is None or hasattr(imported, name), f"{block.where}: {module}.{name}"


RUN_BLOCKS = [b for b in blocks() if b.mode == "run"]


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=lambda b: b.where)
def test_run_blocks_run(block):
    from tinyclap.cli.main import main

    for line in command_lines(block.body):
        for argv in commands(line):
            assert argv[0] == "tinyclap", f"{block.where}: only tinyclap commands are run here"
            out = StringIO()
            with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
                main(argv[1:])  # all are --help: argparse exits 0 after printing
            assert exit_.value.code == 0
            assert out.getvalue().startswith("usage: tinyclap"), out.getvalue()[:200]


def test_run_blocks_exist():
    assert RUN_BLOCKS, "no <!-- docs-test: run --> block left in the docs"


# The checks must be able to fail: each bad command below is refused.
@pytest.mark.parametrize(
    "line",
    [
        "tinyclap classify --labels a,b --model m",  # no file to classify
        "tinyclap export s.ckpt --out d --int8_mode static",  # no such option
        "tinyclap bench deploy --no_such_option 1",
        "tinyclap sweep --grid alpha=1 -- hparams/distill.yaml --alhpa 2",  # misspelt key
        "tinyclap-runtime classify --labels a,b",  # no file to classify
        "python train.py hparams/nope.yaml",
        "python train.py hparams/prune.yaml --alpha 1.5",  # not a prune.yaml key
        "torchrun --nproc_per_node=2 train.py hparams/distill.yaml --batchsize 3",
        "python -m tinyclap.bench.onnx_frontend --no_such_option",
        "python recipes/AudioFolder/audiofolder_prepare.py --no_such_option x",
        "make no-such-target",
        "curl https://example.org",  # an unknown program
    ],
)
def test_bad_commands_are_refused(line):
    (argv,) = commands(line)
    with pytest.raises(AssertionError):
        check_command(argv)


def test_line_joining_and_splitting():
    body = 'a --x 1 \\\n  --y "two\nlines"  # comment\n# only a comment\nb && c > out.txt; D=1 e\n'
    lines = list(command_lines(body))
    assert lines == ['a --x 1    --y "two\nlines"  # comment', "b && c > out.txt; D=1 e"]
    assert list(commands(lines[0])) == [["a", "--x", "1", "--y", "two\nlines"]]
    assert list(commands(lines[1])) == [["b"], ["c"], ["e"]]


def test_train_overrides_are_checked_against_the_hparams_keys():
    check_train(["hparams/distill.yaml", "--alpha", "1.5", "--device", "cuda", "--debug"])
    with pytest.raises(AssertionError, match="no keys"):
        check_train(["hparams/evaluate.yaml", "--alpha", "1.5"])


def test_doc_files_are_found():
    names = {p.name for p in DOC_FILES}
    assert {"README.md", "getting-started.md", "classify.md"} <= names
