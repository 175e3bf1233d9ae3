"""``tinyclap report``'s MCU columns: export figures read, students converted, chip budgets."""

import csv
import json

import pytest

from tests.studies.test_sweep import _fake_run
from tinyclap.cli.main import main

KB = 1024
# (name, alpha, num_layers, accuracy, int8 model bytes, TFLM arena bytes) of four runs;
# the figures stand for the mcu/report.json of an `--mcu` export of each run
RUNS = [("small", 0.25, 2, 0.40, 300 * KB, 200 * KB), ("mid", 0.5, 3, 0.60, 700 * KB, 450 * KB),
        ("big", 1.0, 3, 0.70, 1500 * KB, 900 * KB), ("odd", 0.25, 3, 0.30, 400 * KB, 600 * KB)]  # fmt: skip


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    for name, alpha, layers, acc, flash, arena in RUNS:
        _fake_run(root, name, alpha, layers, acc)
        report = root / name / "exported" / "mcu" / "report.json"
        report.parent.mkdir(parents=True)
        report.write_text(json.dumps({"model": {"bytes": flash}, "arena_bytes": arena,
                                      "flash_bytes": flash + 9000}))  # fmt: skip
    return root


def _rows(out):
    with open(out / "table.csv", newline="") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def test_budget_picks_the_best_student_that_fits(sweep_root, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(sweep_root), "--out", str(out), "--repeats", "1",
                 "--max_arena_kb", "512", "--max_flash_kb", "1024",
                 "--pareto_x", "arena", "macs"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    # mid (60 %) and small (40 %) fit 512 KB / 1 MB; big is larger, odd's arena is over
    assert "best student within the budget: mid: arena 450.0 KB, flash 700.0 KB" in printed
    rows = _rows(out)
    assert {k: rows[k]["arena_bytes"] for k in rows} == {n: str(a) for n, *_, a in RUNS}
    assert rows["big"]["flash_bytes"] == str(1500 * KB)  # the model, not the export's total
    # arena front: small (cheapest), mid, big (each more accurate); odd is dominated by mid
    assert [rows[k]["pareto_arena"] for k in ("small", "mid", "big", "odd")] == [
        "True", "True", "True", "False"]  # fmt: skip
    table = (out / "table.md").read_text()
    assert "int8 flash" in table and "TFLM arena" in table and "| fits" in table
    fits = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "| yes " in fits["mid"] and "| no " in fits["odd"] and "| no " in fits["big"]
    assert "Budget: arena <= 512.0 KB, flash <= 1024.0 KB" in (out / "README.md").read_text()
    assert (out / "pareto.png").stat().st_size > 10_000


def test_a_budget_no_student_meets_names_the_closest(sweep_root, tmp_path, capsys):
    status = main(["report", str(sweep_root), "--out", str(tmp_path), "--repeats", "1",
                   "--max_arena_kb", "128"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    # small's arena, 200 KB, is the nearest to 128 KB (1.56x); one line, no traceback
    assert err[-1].startswith("tinyclap: error: report: no student fits --max_arena_kb 128; ")
    assert "closest: small: arena 200.0 KB" in err[-1] and "1.56x" in err[-1]


def test_a_budget_without_mcu_figures_says_how_to_get_them(tmp_path, capsys):
    _fake_run(tmp_path / "sweep", "only", 0.25, 2, 0.5)
    status = main(["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "r"),
                   "--repeats", "1", "--max_flash_kb", "1024"])  # fmt: skip
    assert status == 1 and "pass --mcu" in capsys.readouterr().err


def test_mcu_converts_a_student_with_tflm_figures(tmp_path, synth_tree, capsys):
    pytest.importorskip("litert_torch")
    pytest.importorskip("tflite_micro")
    from tinyclap.deploy.mcu.tflm import arena_bytes

    root = tmp_path / "sweep"
    _fake_run(root, "one", 0.25, 2, 0.5)
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out), "--repeats", "1", "--mcu",
                 "--calibration_manifest", str(synth_tree["manifests"]["train"])]) == 0  # fmt: skip
    tflite = root / "one" / "mcu" / "student_int8.tflite"
    sizes = json.loads((root / "one" / "mcu" / "sizes.json").read_text())
    row = _rows(out)["one"]
    assert int(row["flash_bytes"]) == sizes["flash_bytes"] == tflite.stat().st_size
    assert int(row["arena_bytes"]) == sizes["arena_bytes"] == arena_bytes(tflite)
    assert sizes["calibration"]["windows"] > 0
