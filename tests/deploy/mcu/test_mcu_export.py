"""``tinyclap export --mcu``: int8 TFLite through TFLM's interpreter against the fp32 student.

One export of the session's tiny random-weight student (16 kHz, 1 s windows,
51 x 64 log-mels) calibrated on tiny Synth clips (``mcu_export``, conftest.py),
shared by the tests here and by test_host_build.py.
"""

import ctypes
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from tests.deploy.mcu.conftest import read_label_table
from tests.helpers.dataset_trees import build_esc50

pytest.importorskip("litert_torch")
pytest.importorskip("tflite_micro")

from tinyclap.deploy.export import export_files  # noqa: E402
from tinyclap.deploy.mcu.c_arrays import label_decisions, label_scores  # noqa: E402
from tinyclap.deploy.mcu.convert import UnsupportedOpError, convert_student  # noqa: E402
from tinyclap.deploy.mcu.export import (  # noqa: E402
    CalibrationFilesError,
    evaluate_int8,
    export_mcu,
)
from tinyclap.deploy.mcu.tflm import TflmModel, arena_bytes  # noqa: E402

CC = shutil.which("cc") or shutil.which("gcc")


def test_mcu_folder_holds_every_file(mcu_export):
    mcu = mcu_export["folder"] / "mcu"
    for name in ("student_int8.tflite", "student_int8.cc", "student_int8.h", "frontend.c",
                 "frontend.h", "labels.h", "main.cc", "report.json", "README.md"):  # fmt: skip
        assert (mcu / name).is_file(), name
    report = json.loads((mcu / "report.json").read_text())
    for key in ("flash_bytes", "arena_bytes", "fp32_accuracy", "int8_accuracy", "macs", "fits"):
        assert key in report
    assert report["model"]["input"]["dtype"] == "int8"
    assert report["model"]["output"]["dtype"] == "float32"
    assert "GELU" not in report["model"]["ops"]  # TFLM has no GELU kernel
    assert report["calibration"]["windows"] > 0 and "machine" in report
    # the C array holds the model's bytes
    assert (
        str(len((mcu / "student_int8.tflite").read_bytes()))
        in (mcu / "student_int8.cc").read_text()
    )
    ours, others = export_files(mcu_export["folder"])
    assert others == [] and {"mcu/student_int8.tflite", "mcu/main.cc"} <= set(ours)


def test_arena_is_tflms_own_figure(mcu_export):
    """The arena figure lets TFLM allocate the model; a much smaller arena does not."""
    path = mcu_export["folder"] / "mcu" / "student_int8.tflite"
    report = mcu_export["report"]
    assert arena_bytes(path) == report["arena_bytes"]
    TflmModel(path, arena_size=report["arena_bytes"])
    with pytest.raises(ValueError, match="allocate"):
        TflmModel(path, arena_size=report["arena_bytes"] // 2)
    assert report["flash_bytes"] >= report["model"]["bytes"] + report["flash"]["labels"]
    assert report["ram_bytes"] == report["arena_bytes"] + report["frontend_ram_bytes"]


def test_int8_embeddings_follow_fp32(mcu_export):
    """Per-clip cosine int8 vs fp32, and the decision-level property it implies.

    Bound: int8 quantisation of a student this small (random weights, 8-bit
    activations through ~20 layers) keeps cosine above 0.9 (measured here
    about 0.99); a wrong input scale or a mis-ordered layout gives ~0.
    """
    acc = mcu_export["report"]["accuracy"]
    assert acc["num_clips"] == 24
    assert acc["cosine_min"] > 0.9, acc["cosine_min"]


def test_int8_and_fp32_agree_where_the_margin_allows(mcu_export, tiny_student, tmp_path):
    """On ESC-50-layout data: where fp32's top-1 margin exceeds twice the embedding error,
    int8 must pick the same class (|delta score| <= ||e_int8 - e_fp32|| for unit vectors)."""
    from tinyclap.deploy.inference import ZeroShotAudioClassifier
    from tinyclap.deploy.mcu.c_arrays import quantize_labels
    from tinyclap.prepare.esc50 import prepare_esc50
    from tinyclap.runtime.text import readable_label
    from tinyclap.students.official import load_any_student

    build_esc50(tmp_path / "esc")
    manifests = prepare_esc50(tmp_path / "esc" / "ESC-50-master", tmp_path / "manifests")
    test = manifests["test"] if isinstance(manifests, dict) else tmp_path / "manifests/test.json"
    clf = ZeroShotAudioClassifier.from_hparams(source=str(mcu_export["folder"]),
                                               trust_remote_code=True)  # fmt: skip
    # the bundled ESC-50 prompt table (no text model to run), named as the manifest names them
    names = [readable_label(name) for name in clf.labels_of("esc50")]
    text = clf.encode_text("esc50").numpy()
    model = TflmModel(mcu_export["folder"] / "mcu" / "student_int8.tflite")
    encoder = load_any_student(mcu_export["student"])
    result = evaluate_int8(encoder, model, clf.load_audio, test, text, quantize_labels(text),
                           names)  # fmt: skip
    assert result["num_clips"] > 0 and result["cosine_min"] > 0.9
    cos, margin = np.array(result["cosines"]), np.array(result["fp32_margin"])
    bound = 2 * np.sqrt(np.maximum(2 - 2 * cos, 0)) + 1e-6  # + float rounding of the scores
    safe = margin > bound
    fp32 = np.array(result["predictions"]["fp32"])
    int8 = np.array(result["predictions"]["int8_float_labels"])
    assert np.array_equal(fp32[safe], int8[safe])
    assert 0.0 <= result["int8_accuracy"] <= 1.0 and 0.0 <= result["fp32_accuracy"] <= 1.0


def test_label_table_in_c_matches_numpy(mcu_export, tmp_path):
    """``tinyclap_classify`` of labels.h, compiled, decides as ``label_decisions``."""
    if CC is None:
        pytest.skip("no C compiler")
    mcu = mcu_export["folder"] / "mcu"
    wrapper = tmp_path / "classify.c"
    wrapper.write_text(f'#include "{mcu / "labels.h"}"\n'
                       "int classify(const float *e, float *s) { return tinyclap_classify(e, s); }\n")  # fmt: skip
    lib = tmp_path / "libclassify.so"
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", str(wrapper),
                    "-o", str(lib), "-lm"], check=True, capture_output=True)  # fmt: skip
    classify = ctypes.CDLL(str(lib)).classify
    labels = mcu_export["report"]["labels"]
    table = read_label_table(mcu / "labels.h", labels["scale"])
    rng = np.random.default_rng(0)
    for _ in range(20):
        e = rng.standard_normal(table["int8"].shape[1]).astype(np.float32)
        scores = np.zeros(labels["classes"], np.float32)
        best = classify(e.ctypes.data_as(ctypes.c_void_p), scores.ctypes.data_as(ctypes.c_void_p))
        # float32 C sums vs float64 numpy: 1e-5 on cosines of 16-d unit vectors
        np.testing.assert_allclose(scores, label_scores(e, table), atol=1e-5)
        assert best == label_decisions(e[None], table)[0]


def test_unreadable_calibration_files_are_named_and_counted(mcu_export, synth_tree, tmp_path):
    manifest = json.loads(synth_tree["manifests"]["train"].read_text())
    keys = sorted(manifest)
    for key in keys[:3]:
        bad = tmp_path / f"{key}.wav"
        bad.write_bytes(b"not audio")
        manifest[key] = {**manifest[key], "wav": str(bad)}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(CalibrationFilesError, match=r"3 of \d+ files unreadable: .*not"):
        export_mcu(mcu_export["folder"], mcu_export["student"], calibration_manifest=path,
                   calibration_windows_max=len(manifest))  # fmt: skip


class _SignStudent(torch.nn.Module):
    """A student whose ``head`` uses an op TFLM has no kernel for (``SIGN``)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.head = _Sign()

    def forward(self, x):
        return self.head(self.conv(x[:, None])).mean((-1, -2))


class _Sign(torch.nn.Module):
    def forward(self, x):
        return torch.sign(x)


def test_an_op_tflm_cannot_run_names_the_op_and_the_layer(tmp_path):
    calibration = np.random.default_rng(0).standard_normal((4, 8, 6)).astype(np.float32)
    with pytest.raises(UnsupportedOpError, match=r"no kernel for SIGN in head"):
        convert_student(_SignStudent().eval(), calibration, tmp_path / "x.tflite")


def test_bench_mcu_reads_the_export_report(mcu_export, tmp_path, capsys):
    """``tinyclap bench mcu --export DIR`` tabulates the export's own figures, unchanged."""
    from tinyclap.cli.main import main

    out = tmp_path / "bench"
    assert main(["bench", "mcu", "--export", str(mcu_export["folder"]), "--out", str(out)]) == 0
    (row,) = json.loads((out / "results.json").read_text())["exports"]
    report = mcu_export["report"]
    assert row["arena_bytes"] == report["arena_bytes"]
    assert row["flash_bytes"] == report["flash_bytes"]
    assert row["int8_accuracy_pct"] == round(100 * report["int8_accuracy"], 2)
    assert row["int8_minus_fp32_points"] == round(
        row["int8_accuracy_pct"] - row["fp32_accuracy_pct"], 2
    )
    assert row["frames"] == 51 and row["cosine_min"] <= row["cosine_mean"]
    table = (out / "table.md").read_text()
    assert f"| {row['flash_bytes']} | {row['arena_bytes']} |" in table
    assert capsys.readouterr().out.startswith("CPU: ")
    # a folder without an --mcu export: one line naming the command that makes it
    assert main(["bench", "mcu", "--export", str(tmp_path)]) == 2
    assert "tinyclap export" in capsys.readouterr().err
