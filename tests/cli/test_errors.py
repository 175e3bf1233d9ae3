"""One CLI policy: the same exit status and one-line error for the same failure, in both CLIs.

Each row is an argv that must fail: the expected exit status (1 bad input, 2 usage) and
a word the error line must contain (the file, folder or option at fault). The error is
the last stderr line, headed ``tinyclap: error:`` (``tinyclap-runtime: error:``); there
is no traceback, and for bad input (status 1) the error is the only line.
"""

import numpy as np
import pytest
import soundfile as sf

from tinyclap.cli.main import build_parser
from tinyclap.cli.main import main as tinyclap_main
from tinyclap.runtime.cli import build_parser as runtime_parser
from tinyclap.runtime.cli import main as runtime_main


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYCLAP_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)  # relative defaults (runs/, results/) land here, not in the repo
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    corrupt = tmp_path / "student.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    return {"wav": str(wav), "missing": str(tmp_path / "missing"), "corrupt": str(corrupt),
            "tmp": str(tmp_path)}  # fmt: skip


# (argv with {placeholders}, exit status, a word the error names)
TINYCLAP_CASES = [
    ([], 2, "required"),
    (["nosuch"], 2, "nosuch"),
    (["sweep", "--grid", "a=1", "--dry-run"], 2, "--dry_run"),  # dashes: named in underscores
    (["bench", "model", "--repe", "3"], 2, "--repe"),  # no abbreviations
    (["bench", "cache", "--out", "{tmp}", "--save"], 2, "--save"),
    (["bench", "onnx_int8"], 2, "--calibration_manifest"),
    (["sweep", "--grid", "alpha=1"], 2, "after --"),
    (["classify", "{wav}", "--labels", "a,b"], 2, "--model"),
    (["classify", "{wav}"], 2, "--model"),  # labels default to an adapted set; a model is needed
    (["classify", "{wav}", "--labels", "a,b", "--model", "{tmp}", "--hop", "1"], 2, "--hop"),
    (["bench", "model", "{missing}.ckpt"], 1, "missing.ckpt"),
    (["bench", "model", "{corrupt}"], 1, "student.ckpt"),
    (["bench", "runtime", "--runtime_venv", "{missing}"], 1, "--runtime_venv"),
    (["bench", "onnx_frontend", "--configs", "nope"], 1, "--configs"),
    (["bench", "timeline_memory", "--model", "{missing}"], 1, "--model"),
    (["report", "{missing}"], 1, "missing"),
    (["study", "report", "{missing}"], 1, "missing"),
    (["sweep", "--grid", "alpha=1", "--", "{missing}.yaml"], 1, "missing.yaml"),
    (["train", "{missing}.yaml"], 1, "missing.yaml"),
    (["export", "{missing}.ckpt", "--out", "{tmp}/out"], 1, "missing.ckpt"),
    (["classify", "{wav}", "--labels", "a,b", "--model", "{missing}"], 1, "missing"),
    (["study", "fewshot", "--demo", "{missing}"], 1, "missing"),
    (["study", "text_student", "--text_student", "{missing}.ckpt"], 1, "missing.ckpt"),
    (["calibrate", "{missing}", "--manifest", "{missing}.json"], 1, "missing"),
]
RUNTIME_CASES = [
    (["classify", "{wav}", "--labels", "a,b"], 2, "--model"),
    (["classify", "--labels", "a,b", "--model", "{tmp}"], 2, "files"),
    (["classify", "{wav}", "--label", "a,b", "--model", "{tmp}"], 2, "--label a,b"),  # no abbrev
    (
        ["classify", "{wav}", "--labels", "a", "--model", "{tmp}", "--files-per-call", "2"],
        2,
        "--files-per-call",
    ),  # fmt: skip
    (
        ["classify", "{wav}", "--labels", "a", "--model", "{tmp}", "--threshold", "0.5"],
        2,
        "--threshold",
    ),  # fmt: skip
    (["classify", "{wav}", "--labels", "a,b", "--model", "{missing}"], 1, "missing"),
    (["classify", "{missing}.wav", "--labels", "a,b", "--model", "{tmp}"], 1, "{tmp}"),
]


def _run(main, prog, argv, paths, capsys):
    argv = [a.format(**paths) for a in argv]
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse
        status = exit_.code
    err = capsys.readouterr().err
    return status, err, f"{prog}: error: "


@pytest.mark.parametrize("argv, status, named", TINYCLAP_CASES, ids=lambda v: str(v)[:40])
def test_tinyclap_errors(argv, status, named, paths, capsys):
    got, err, head = _run(tinyclap_main, "tinyclap", argv, paths, capsys)
    _check(got, err, head, status, named, paths)


@pytest.mark.parametrize("argv, status, named", RUNTIME_CASES, ids=lambda v: str(v)[:40])
def test_runtime_errors(argv, status, named, paths, capsys):
    got, err, head = _run(runtime_main, "tinyclap-runtime", argv, paths, capsys)
    _check(got, err, head, status, named, paths)


def _check(got, err, head, status, named, paths):
    lines = err.strip().splitlines()
    assert got == status, err
    assert "Traceback" not in err
    assert lines[-1].startswith(head), err
    assert named.format(**paths) in lines[-1] or named in lines[-1], err
    if status == 1:  # bad input: the error line alone (progress lines may precede it)
        assert sum(line.startswith(head) for line in lines) == 1


def test_verbose_adds_the_traceback(paths, capsys):
    assert tinyclap_main(["--verbose", "report", paths["missing"]]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("tinyclap: error:")
    assert tinyclap_main(["report", paths["missing"], "--verbose"]) == 1  # after it, too
    assert "Traceback" in capsys.readouterr().err


def _options(parser):
    """Every option string of ``parser`` and its sub-parsers."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action.choices, dict):  # sub-parsers
            for sub in action.choices.values():
                found |= _options(sub)
    return found


@pytest.mark.parametrize("make", [build_parser, runtime_parser])
def test_options_use_underscores(make):
    options = _options(make())
    assert "--batch_size" in options or "--files_per_call" in options
    dashed = sorted(o for o in options if o.startswith("--") and "-" in o[2:])
    assert dashed == []
    assert all(o in ("-h",) or o.startswith("--") for o in options)
