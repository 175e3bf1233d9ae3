"""Embeddings are deterministic: across calls, batch compositions and save/load."""

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.audio.io import load_audio
from tinyclap.students.encoder import StudentAudioEncoder, load_student, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers import load_teacher
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP
from tinyclap.zeroshot.scoring import encode_clips

pytestmark = pytest.mark.numerics

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}


def _student():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=101, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    return StudentAudioEncoder(student, FRONTEND, 2.0).eval()


def _windows(count=16):
    gen = torch.Generator().manual_seed(1)
    return 0.2 * torch.randn(count, 32000, generator=gen)


def _check(encoder):
    windows = _windows()
    batch = encoder.embed_audio(windows)
    assert torch.equal(batch, encoder.embed_audio(windows))  # bit-identical across calls
    singles = torch.cat([encoder.embed_audio(w[None]) for w in windows])
    assert (batch - singles).abs().max() <= 1e-5  # batch of 16 vs batches of 1
    return batch


def test_student_is_deterministic_and_survives_save_load(tmp_path):
    encoder = _student()
    batch = _check(encoder)
    save_student(tmp_path / "s.ckpt", encoder)
    assert torch.equal(load_student(tmp_path / "s.ckpt").embed_audio(_windows()), batch)


def test_mini_teacher_is_deterministic_and_survives_save_load(tmp_path):
    torch.manual_seed(0)
    model = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16)
    save_mini_teacher(tmp_path / "t.ckpt", model, FRONTEND, 2.0)
    teacher = load_teacher("mini", checkpoint=tmp_path / "t.ckpt")
    batch = _check(teacher)
    again = load_teacher("mini", checkpoint=tmp_path / "t.ckpt")
    assert torch.equal(again.embed_audio(_windows()), batch)


def test_same_file_same_clip_embedding(tmp_path):
    """A file read twice, alone or among other clips, gives the same clip embedding."""
    encoder = _student()
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate([0.7, 2.0, 5.3]):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, 0.2 * rng.standard_normal(int(seconds * 22050)), 22050)
        paths.append(path)
    wavs = [load_audio(p, 16000) for p in paths]
    together = encode_clips(encoder, wavs)
    alone = torch.cat([encode_clips(encoder, [load_audio(p, 16000)]) for p in paths])
    assert (together - alone).abs().max() <= 1e-5
    assert torch.equal(encode_clips(encoder, wavs), together)
