"""Checkpoint round trips and load errors for teachers and students."""

import pytest
import torch

from tinyclap.students.encoder import StudentAudioEncoder, load_student, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers import TeacherLoadError, load_teacher
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}


@pytest.fixture(scope="module")
def mini_teacher_file(tmp_path_factory):
    torch.manual_seed(0)
    model = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16)
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    save_mini_teacher(path, model, FRONTEND, 1.0)
    return path, model


def test_mini_teacher_round_trip(mini_teacher_file):
    path, model = mini_teacher_file
    teacher = load_teacher("mini", checkpoint=path)
    assert (teacher.sample_rate, teacher.clip_seconds, teacher.window_samples) == (
        16000,
        1.0,
        16000,
    )
    assert teacher.embedding_dim == 16 and len(teacher.fingerprint) == 64
    wavs = torch.randn(3, 16000)
    emb = teacher.embed_audio(wavs)
    model.eval()
    expected = torch.nn.functional.normalize(model.encode_audio(teacher.frontend(wavs)), dim=-1)
    assert torch.allclose(emb, expected, atol=1e-6)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    text = teacher.embed_text(["this is the sound of rain", "a dog barks"])
    assert text.shape == (2, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert load_teacher(str(path)).fingerprint == teacher.fingerprint  # path form


def test_teacher_with_wrong_keys_lists_them(mini_teacher_file, tmp_path):
    path, _ = mini_teacher_file
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["extra.weight"] = torch.zeros(1)
    del payload["state_dict"]["logit_scale"]
    bad = tmp_path / "bad.ckpt"
    torch.save(payload, bad)
    with pytest.raises(TeacherLoadError) as err:
        load_teacher("mini", checkpoint=bad)
    assert "missing: ['logit_scale']" in str(err.value)
    assert "unexpected: ['extra.weight']" in str(err.value)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("mini", {}, "needs checkpoint=PATH"),
        ("msclap-2022", {"checkpoint": "no/such/CLAP_weights_2022.pth"}, "checkpoint not found"),
        ("no/such/file.ckpt", {}, "unknown teacher"),
    ],
)
def test_teacher_errors_are_clear(name, kwargs, message):
    with pytest.raises(TeacherLoadError, match=message):
        load_teacher(name, **kwargs)


def test_teacher_rejects_foreign_and_corrupt_files(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(TeacherLoadError, match="not a tinyclap mini-teacher"):
        load_teacher(str(foreign))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherLoadError, match="cannot read teacher checkpoint"):
        load_teacher(str(corrupt))


def test_student_round_trip(tmp_path):
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    encoder = StudentAudioEncoder(student, FRONTEND, 1.0).eval()
    path = tmp_path / "student.ckpt"
    save_student(path, encoder, teacher="t.ckpt")
    loaded = load_student(path)
    wavs = torch.randn(2, 16000)
    assert torch.equal(loaded.embed_audio(wavs), encoder.embed_audio(wavs))
    assert loaded.student.config == student.config
    assert loaded.teacher == "t.ckpt" and loaded.window_samples == 16000


def test_student_with_wrong_keys_lists_them(tmp_path):
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    path = tmp_path / "student.ckpt"
    save_student(path, StudentAudioEncoder(student, FRONTEND, 1.0))
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop("projection.linear1.weight")
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"missing: \['projection.linear1.weight'\]"):
        load_student(path)


def test_profiled_audio_tower_is_the_audio_side_only(mini_teacher_file):
    path, model = mini_teacher_file
    tower = load_teacher("mini", checkpoint=path).audio_encoder()
    assert sum(p.numel() for p in tower.parameters()) == model.audio_params()


def test_corrupt_student_checkpoint_is_not_reported_as_a_teacher(tmp_path, mini_teacher_file):
    from tinyclap.students.encoder import is_student_checkpoint
    from tinyclap.students.official import load_any_student
    from tinyclap.tools.cli import load_model

    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    path = tmp_path / "student.ckpt"
    save_student(path, StudentAudioEncoder(student, FRONTEND, 1.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted copy
    for load in (is_student_checkpoint, load_any_student, load_model):
        with pytest.raises(ValueError) as err:
            load(path)
        message = str(err.value)
        assert message.startswith(f"corrupt or unreadable checkpoint {path}: ")
        assert "teacher" not in message and "official" not in message
    # readable torch files of other formats are simply not student checkpoints
    assert not is_student_checkpoint(mini_teacher_file[0])
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {}, "args": __import__("argparse").Namespace(a=1)}, pickled)
    assert not is_student_checkpoint(pickled) and not is_student_checkpoint(tmp_path / "none")
