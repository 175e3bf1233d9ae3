"""Student checkpoints: round trips and load errors."""

import argparse

import pytest
import torch

from tests.helpers.tiny import FRONTEND
from tinyclap.students.encoder import StudentAudioEncoder, load_student, save_student
from tinyclap.students.phinet import PhiNetStudent


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


def test_corrupt_student_checkpoint_is_not_reported_as_a_teacher(tmp_path, mini_teacher):
    from tinyclap.bench.models import load_model
    from tinyclap.students.encoder import is_student_checkpoint
    from tinyclap.students.official import load_any_student

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
    assert not is_student_checkpoint(mini_teacher.path)
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {}, "args": argparse.Namespace(a=1)}, pickled)
    assert not is_student_checkpoint(pickled) and not is_student_checkpoint(tmp_path / "none")
