"""The text-student report: figures from a real (random-weight) text student and teacher."""

import json

import pytest
import torch

from tinyclap.stages.distill_text import train_tokenizer
from tinyclap.students.text import TextStudent, save_text_student
from tinyclap.studies.text_student import main, text_tower_params
from tinyclap.teachers import load_teacher

CORPUS = [f"{t} {w}" for t in ("this is the sound of", "a", "the") for w in
          ("dog barking", "rain", "siren", "wind", "engine idling", "bees buzzing")]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory, mini_teacher, tiny_student, synth_tree):
    root = tmp_path_factory.mktemp("text_report")
    teacher = load_teacher("mini", checkpoint=mini_teacher.path)
    tokenizer = train_tokenizer(CORPUS, root / "tok", vocab_size=30, max_length=16)
    torch.manual_seed(0)
    student = TextStudent(tokenizer.vocab_size, 16, d_model=16, num_layers=1, num_heads=2,
                          ff_dim=32, max_length=16)  # fmt: skip
    path = root / "text_student.ckpt"
    save_text_student(path, student, tokenizer, teacher=str(mini_teacher.path),
                      teacher_fingerprint=teacher.fingerprint,
                      extra={"heldout_phrases": ["a cat purring", "rain on a roof"]})  # fmt: skip
    record = main([
        "--text_student", str(path), "--audio", str(tiny_student.path),
        "--manifest", str(synth_tree["manifests"]["test"]), "--out", str(root / "out"),
        "--rounds", "3", "--no_onnx",
    ])  # fmt: skip
    return {"root": root, "record": record, "teacher": teacher, "student": student}


def test_report_figures_are_consistent(report):
    record = report["record"]
    zs = record["zero_shot"]
    assert set(zs) == {"labels", "paraphrased labels"}  # Synth: every class has a paraphrase
    for row in zs.values():
        assert 0 <= row["student_text_accuracy"] <= 1 and 0 <= row["teacher_text_accuracy"] <= 1
        assert row["accuracy_ratio"] == pytest.approx(
            row["student_text_accuracy"] / max(row["teacher_text_accuracy"], 1e-9), abs=1e-3
        )
    assert record["params"]["text_student"] == sum(
        p.numel() for p in report["student"].parameters()
    )
    assert record["params"]["teacher_text_tower"] == text_tower_params(report["teacher"])
    assert record["params"]["teacher_text_tower"] > 20_000_000  # MiniLM + projection
    assert record["size_ratio"] == pytest.approx(
        record["params"]["text_student"] / record["params"]["teacher_text_tower"], abs=1e-5
    )
    assert record["heldout_phrases"] == 2 and -1 <= record["heldout_cos"] <= 1
    assert set(record["ms_per_label"]) == {"teacher text tower", "text student"}


def test_report_files_carry_the_command(report):
    out = report["root"] / "out"
    written = json.loads((out / "results.json").read_text())
    assert written["command"].startswith("python -m tinyclap.studies.text_student")
    assert written["command"] in (out / "README.md").read_text()
    assert "accuracy ratio" in (out / "table.md").read_text()
