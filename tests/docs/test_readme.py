"""The README's first screen: short, links that resolve, and its example runs.

The "classify your own files" example is run as written, in a folder where
``exported/demo`` is a folder exported from a tiny random student of a random
mini teacher (the session fixtures) and ``my_recordings/`` holds two WAV files.
"""

import re
import shutil
import sys
from contextlib import redirect_stdout
from io import StringIO

import numpy as np
import pytest
import soundfile as sf

from tests.docs.commands import blocks
from tests.helpers.tiny import REPO

README = REPO / "README.md"
TEXT = README.read_text(encoding="utf-8")


def test_readme_is_a_first_screen():
    assert len(TEXT.splitlines()) <= 250
    assert "make demo" in TEXT and "make test" in TEXT
    assert "bit-identical on the same CPU and library versions" in TEXT
    assert "docs/reproducibility.md" in TEXT


def test_readme_links_resolve():
    # relative links and pictures must name files of the repository (anchors ignored)
    targets = re.findall(r"\]\(([^)\s]+)\)", TEXT)
    local = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith("#")]
    assert len(local) >= 20
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, missing


def _classify_example():
    (block,) = [b for b in blocks([README]) if "my_recordings" in b.body and b.lang == "python"]
    return block.body


@pytest.fixture(scope="module")
def exported_demo(tmp_path_factory, tiny_student):
    from tinyclap.deploy.export import export_student

    out = tmp_path_factory.mktemp("readme") / "exported"
    export_student(tiny_student.path, out, label_sets=["synth"])  # one bundled set: faster
    return out


def test_classify_your_own_files_example_runs(exported_demo, tmp_path, monkeypatch):
    shutil.copytree(exported_demo, tmp_path / "exported" / "demo")
    rng = np.random.default_rng(0)
    for name, seconds, rate in [("a.wav", 1.5, 16000), ("b.wav", 0.7, 22050)]:
        (tmp_path / "my_recordings").mkdir(exist_ok=True)
        sf.write(tmp_path / "my_recordings" / name, 0.1 * rng.standard_normal(int(seconds * rate)),
                 rate)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    source = _classify_example()
    labels = re.search(r"labels = (\[.*?\])", source)[1]
    out = StringIO()
    with redirect_stdout(out):
        exec(compile(source, "README.md", "exec"), {"__name__": "readme", "sys": sys})
    lines = out.getvalue().splitlines()
    # one line per file, its best label one of the listed ones, a cosine in [-1, 1]
    assert [line.split(":")[0] for line in lines] == ["a.wav", "b.wav"]
    for line in lines:
        label, score = re.fullmatch(r"\w+\.wav: (.+) \((-?[\d.]+)\)", line).groups()
        assert label in eval(labels)
        assert -1.0 <= float(score) <= 1.0


def test_classify_your_own_files_command_runs(exported_demo, tmp_path, monkeypatch, capsys):
    from tests.docs.commands import command_lines, commands
    from tinyclap.cli.main import main

    shutil.copytree(exported_demo, tmp_path / "exported" / "demo")
    (tmp_path / "my_recordings").mkdir()
    sf.write(tmp_path / "my_recordings" / "c.wav", np.zeros(8000), 16000)
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in blocks([README]) if b.body.startswith("tinyclap classify my_recordings")]
    ((argv,),) = [list(commands(line)) for line in command_lines(block.body)]
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert "c.wav" in out and any(label in out for label in ("dog barking", "rain", "siren"))
