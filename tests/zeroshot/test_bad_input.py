"""Awkward but valid audio: odd sample rates, very short and very long clips."""

import numpy as np
import soundfile as sf
import torch

from tinyclap.audio.io import load_audio, resample
from tinyclap.students.encoder import StudentAudioEncoder
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.zeroshot.scoring import encode_clips


def _student():
    torch.manual_seed(0)
    student = PhiNetStudent(0.25, 0.75, 4, 2, n_frames=101, n_mels=64, head_channels=16,
                            embedding_dim=8)  # fmt: skip
    return StudentAudioEncoder(student, {"sample_rate": 16000, "f_max": 8000.0}, 2.0).eval()


def test_odd_sample_rate_resamples_without_a_huge_kernel(tmp_path):
    """96001 Hz -> 16 kHz: coprime rates (torchaudio's kernel would be ~6 GB)."""
    rate, seconds, freq = 96001, 1.0, 440.0
    t = np.arange(int(rate * seconds)) / rate
    sf.write(tmp_path / "odd.wav", 0.5 * np.sin(2 * np.pi * freq * t), rate, subtype="FLOAT")
    wav = load_audio(tmp_path / "odd.wav", 16000)
    assert abs(len(wav) - 16000 * seconds) <= 1
    reference = 0.5 * np.sin(2 * np.pi * freq * np.arange(len(wav)) / 16000)
    inner = slice(200, -200)  # away from the filter's edge effects
    assert np.abs(wav.numpy()[inner] - reference[inner]).max() < 1e-2


def test_common_rates_keep_torchaudios_filter():
    """The msclap-identical sinc filter is used for every usual rate pair."""
    import torchaudio.functional as AF

    wav = torch.randn(11025)
    for orig, target in [(11025, 16000), (44100, 16000), (48000, 44100), (8000, 44100)]:
        assert torch.equal(resample(wav, orig, target), AF.resample(wav, orig, target))


def test_clip_shorter_than_10_ms(tmp_path):
    sf.write(tmp_path / "click.wav", np.full(100, 0.5), 16000)  # 6 ms
    wav = load_audio(tmp_path / "click.wav", 16000)
    assert len(wav) == 100
    emb = encode_clips(_student(), [wav])
    assert emb.shape == (1, 8) and torch.isfinite(emb).all()


def test_clip_longer_than_10_min(tmp_path):
    rng = np.random.default_rng(0)
    samples = 8000 * 630  # 10.5 min at 8 kHz
    sf.write(tmp_path / "long.wav", 0.1 * rng.standard_normal(samples), 8000, subtype="PCM_16")
    wav = load_audio(tmp_path / "long.wav", 16000)
    assert len(wav) == 2 * samples
    clips, per_window = encode_clips(_student(), [wav], per_window=True)
    assert per_window[0].shape == (315, 8)  # 630 s / 2 s windows
    assert torch.isfinite(clips).all()
