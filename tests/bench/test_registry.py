"""Every bench and study has the registry's shape and is a ``tinyclap`` subcommand."""

import json

from tinyclap.bench.registry import BENCHES, benches, results_folder
from tinyclap.cli.main import build_parser, main, studies
from tinyclap.cli.registry import REQUIRED
from tinyclap.studies.entry import STUDIES


def _commands(parser, name):
    (action,) = [a for a in parser._actions if getattr(a, "dest", None) == name]
    return action.choices


def test_every_bench_and_study_is_a_subcommand():
    found = benches()
    assert len(found) == len(BENCHES)  # one NAME per module
    assert all(all(hasattr(m, attr) for attr in (*REQUIRED, "table")) for m in found.values())
    top = _commands(build_parser(), "command")
    assert set(_commands(top["bench"], "bench")) == set(found)
    assert set(_commands(top["study"], "study")) == set(studies()) and len(studies()) == len(
        STUDIES
    )
    assert {"sweep", "report", "demo"} <= set(top)


def test_save_writes_the_committed_folder_of_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "model", "--alpha", "0.25", "--num_layers", "2", "--head_channels",
                 "16", "--embedding_dim", "8", "--repeats", "1", "--batch_sizes", "1",
                 "--save"]) == 0  # fmt: skip
    folder = tmp_path / results_folder("model")
    record = json.loads((folder / "results.json").read_text())
    assert record["command"].endswith("--save") and record["machine"]["cpu"]
    table = (folder / "table.md").read_text()
    assert table.startswith("Command: `tinyclap bench model") and "phinet a0.25" in table
    assert capsys.readouterr().out.startswith("CPU: ")
