"""``tinyclap bench deploy``: rows, ratios and the written table (a quick, short-window run)."""

import json

import pytest

from tinyclap.bench import deploy as deploy_bench
from tinyclap.cli.main import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def test_bench_deploy_quick_json(tmp_path, capsys):
    capsys.readouterr()
    args = ["bench", "deploy", "--quick", "--teachers", "msclap-2022", "--clip_seconds", "0.5",
            "--batch_sizes", "1", "2", "--rounds", "1", "--target_ms", "1", "--json",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["rows"]
    assert result["command"].startswith("tinyclap bench deploy --quick")
    for batch in (1, 2):
        (teacher,) = [r for r in rows if r["role"] == "teacher" and r["batch"] == batch]
        assert teacher["speedup_vs_teacher"] == 1.0 and teacher["params"] > 80e6  # Cnn14
        students = [r for r in rows if r["role"] == "student" and r["batch"] == batch]
        assert {r["path"] for r in students} >= {"pytorch", "runtime", "onnx_single_file",
                                                 "runtime_int8"}  # fmt: skip
        for row in students:
            assert row["ms_per_clip"] == pytest.approx(row["ms_per_call"] / batch, rel=1e-2)
            expected = teacher["ms_per_clip"] / row["ms_per_clip"]
            assert row["speedup_vs_teacher"] == pytest.approx(expected, rel=0.05, abs=0.1)
            assert 0 < row["ms_per_clip_min"] <= row["ms_per_clip"] + 1e-3  # min <= median
    verdict = result["verdict"]["edge"]
    assert verdict["target"] == 150.0
    assert set(verdict) == {"target", "batch_1", "batch_2", "frontend_share"}
    # the frontend's share of the fastest runtime path at batch 1, and the rFFT floor's
    share = verdict["frontend_share"]
    frontends = {r["model"].split(" ")[1]: r["ms_per_clip"] for r in rows
                 if r["role"] == "frontend" and r["batch"] == 1}  # fmt: skip
    runtime = [r for r in rows if r["batch"] == 1 and r["role"] == "student"
               and r["path"] in ("runtime", "runtime_int8")]  # fmt: skip
    fastest = min(runtime, key=lambda r: r["ms_per_clip"])
    assert (share["path"], share["deployed_ms"]) == (fastest["path"], fastest["ms_per_clip"])
    assert share["target"] == 0.25
    assert share["share"] == pytest.approx(frontends["HostLogMel"] / share["deployed_ms"],
                                           abs=1e-3)  # fmt: skip
    assert share["fft_alone_share"] == pytest.approx(frontends["rFFT"] / share["deployed_ms"],
                                                     abs=1e-3)  # fmt: skip
    assert share["meets"] == (share["share"] <= 0.25)
    table = (tmp_path / "table.md").read_text()
    assert (
        table.startswith("Command: `tinyclap bench deploy --quick")
        and "| teacher | batch |" in table
    )
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["rows"] == rows and written["machine"]["cpu"]


def test_interleaved_rounds_calls_every_candidate_every_round():
    calls = []
    medians = deploy_bench.interleaved_rounds(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3, target_ms=0, warmup=1)  # fmt: skip
    assert set(medians) == {"a", "b"} and calls.count("a") == calls.count("b") == 4
