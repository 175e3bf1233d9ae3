"""``tinyclap bench mcu``: a size row of a tiny student, and its table."""

import numpy as np
import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("tflite_micro")

from tinyclap.bench.mcu import markdown, measure  # noqa: E402


def test_size_row_of_a_tiny_student_on_a_shorter_input_and_its_table():
    calibration = np.random.default_rng(0).normal(-40, 10, (4, 40, 64)).astype(np.float32)
    row = measure("tiny", 0.25, 0.75, 4, 2, 16, calibration, frames=20)
    assert row["frames"] == 20  # the calibration windows cut to the shorter input
    # the int8 model holds at least one byte per weight (the 16 -> 1024 -> 1024 projection
    # dominates), and less than two per weight plus a 64 KB allowance for the graph
    assert row["params"] < row["model_bytes"] < 2 * row["params"] + 64 * 1024
    assert 0 < row["arena_bytes"] < 512 * 1024 and row["fits_512KB_arena"]
    text = markdown({"rows": [row], "exports": []})
    assert f"| tiny | 20 | {row['params']:,} |" in text
    assert f"| {row['model_bytes']:,} | {row['arena_bytes']:,} | yes | yes |" in text
