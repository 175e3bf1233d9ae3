"""Fixtures of the MCU tests: one ``--mcu`` export of the tiny student, shared by the session.

The export (16 kHz, 1 s windows, 51 x 64 log-mels, tiny Synth calibration) is
made once and only read by the tests (a test that writes copies it first).
"""

import numpy as np
import pytest

from tests.conftest import copy_to


@pytest.fixture(scope="session")
def mcu_export(tmp_path_factory, tiny_student, synth_tree):
    """``{"root", "folder", "student", "report"}`` of an export with ``mcu/``."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("tflite_micro")
    from tinyclap.deploy.export import export_student
    from tinyclap.deploy.mcu.export import export_mcu

    root = tmp_path_factory.mktemp("mcu")
    student = copy_to(tiny_student.path, root / "run")
    test = synth_tree["manifests"]["test"]
    export_student(student, root / "exported", eval_manifest=test)
    report = export_mcu(root / "exported", student, eval_manifest=test,
                        calibration_manifest=synth_tree["manifests"]["train"],
                        calibration_windows_max=16)  # fmt: skip
    return {"root": root, "folder": root / "exported", "student": student, "report": report}


def read_label_table(labels_h, scale):
    """The int8 rows of a generated ``labels.h``, as :func:`quantize_labels` returns them."""
    text = labels_h.read_text()
    rows = [r for r in text.split("tinyclap_label_int8")[1].split("};")[0].splitlines() if "{" in r]
    values = [[int(v) for v in r.strip(" {},").split(",")] for r in rows[1:]]
    return {"int8": np.array(values, np.int8), "scale": scale}
