"""The ONNX frontend and int8 benchmarks run end to end and report what they measured."""

import pytest

from tinyclap.bench import onnx_frontend as onnx_frontend_bench
from tinyclap.bench import onnx_int8 as onnx_int8_bench

pytest.importorskip("onnxruntime")


def test_frontend_bench_rows_and_table(tmp_path):
    rows = onnx_frontend_bench.bench_config(
        "demo", ["dense", "factored"], tmp_path, repeats=2, batch_sizes=(1, 2)
    )
    assert [r["frontend"] for r in rows] == ["dense", "factored"]
    for row in rows:
        assert row["max_db_error"] < 1e-3
        assert row["ms_b1_min"] <= row["ms_b1"] and row["ms_b2"] > 0
    assert rows[1]["frontend_mmacs"] < rows[0]["frontend_mmacs"] / 5
    table = onnx_frontend_bench.markdown(rows, {"demo / factored": {"all": 1.0}})
    assert "| demo | factored | 17 |" in table and "1.00 / 1.00" in table


def test_op_profile_sums_node_times(tmp_path, tiny_student):
    import torch

    from tinyclap.deploy.onnx import StudentGraph, _export

    encoder = tiny_student.model()
    logmel = encoder.frontend(0.1 * torch.randn(1, 16000))
    path = _export(StudentGraph(encoder.student).eval(), logmel, tmp_path / "s.onnx",
                   "embedding", "logmel")  # fmt: skip
    profile = onnx_int8_bench.op_profile(path, {"logmel": logmel.numpy()}, runs=3)
    assert profile and all(ms >= 0 for ms in profile.values())
    assert list(profile.values()) == sorted(profile.values(), reverse=True)
    assert {"Conv", "FusedConv"} & set(profile)
