"""Parity of tinyclap.audio.features.LogMel with msclap's torchlibrosa frontend (Cnn14)."""

import math

import pytest
import torch

from tests.helpers.numerics import logmel_error_bound
from tinyclap.audio.features import LogMel

stft = pytest.importorskip("torchlibrosa.stft")
pytestmark = pytest.mark.numerics


def _torchlibrosa_logmel(
    sr=44100, n_fft=1024, hop=320, n_mels=64, fmin=50, fmax=14000, dtype=torch.float32
):
    """The Cnn14 frontend of msclap, returning ``[B, frames, mels]``."""
    spectrogram = stft.Spectrogram(
        n_fft=n_fft,
        hop_length=hop,
        win_length=n_fft,
        window="hann",
        center=True,
        pad_mode="reflect",
        freeze_parameters=True,
    ).to(dtype)
    logmel = stft.LogmelFilterBank(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        ref=1.0,
        amin=1e-10,
        top_db=None,
        freeze_parameters=True,
    ).to(dtype)

    def frontend(wavs):
        with torch.no_grad():
            out = logmel(spectrogram(wavs.to(dtype)))  # [B, 1, frames, mels]
        assert out.dim() == 4 and out.shape[1] == 1
        return out[:, 0]

    return frontend


@pytest.fixture(scope="module")
def clap_logmel():
    return LogMel().eval()


def _noise(batch, samples, seed, scale=0.1):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, samples, generator=gen)


def _sine_plus_noise(samples, sr, freq=1000.0, seed=1, amp=0.1, noise=0.1):
    t = torch.arange(samples, dtype=torch.float64) / sr
    sine = amp * torch.sin(2 * math.pi * freq * t).float()
    return (sine + _noise(1, samples, seed, scale=noise)[0]).unsqueeze(0)


def _check_parity(frontend, wavs, **settings):
    """``frontend(wavs)`` equals torchlibrosa's float64 log-mels within float32 DFT rounding.

    The bound (tests/helpers/numerics.py) is derived per cell from a float32 DFT's
    error model, not measured on one CPU; a wrong window, hop or filterbank breaks it
    (test_the_bound_fails_a_broken_frontend). Returns the float32 output.
    """
    ours = frontend(wavs)
    exact = _torchlibrosa_logmel(dtype=torch.float64, **settings)(wavs)
    assert ours.shape == exact.shape
    assert torch.isfinite(ours).all()
    excess = (ours.double() - exact).abs() - logmel_error_bound(frontend, wavs)
    assert float(excess.max()) <= 0, f"exceeds the float32 bound by {float(excess.max()):.3g} dB"
    return ours


def test_defaults_are_clap_2022(clap_logmel):
    m = clap_logmel
    assert (m.sample_rate, m.n_fft, m.hop_length, m.win_length, m.n_mels) == (
        44100,
        1024,
        320,
        1024,
        64,
    )
    assert (m.f_min, m.f_max, m.amin, m.ref) == (50.0, 14000.0, 1e-10, 1.0)
    assert m.mel_fb.shape == (513, 64)
    assert "n_mels=64" in repr(m)


@pytest.mark.parametrize("seconds", [5, 1])
def test_parity_random_audio(clap_logmel, seconds):
    wavs = _noise(2, seconds * 44100, seed=seconds)
    ours = _check_parity(clap_logmel, wavs)
    assert ours.shape == (2, clap_logmel.num_frames(wavs.shape[-1]), 64)


@pytest.mark.parametrize("seconds", [5, 1])
def test_parity_sine_plus_noise(clap_logmel, seconds):
    wavs = _sine_plus_noise(seconds * 44100, 44100)
    ours = _check_parity(clap_logmel, wavs)
    # The tone dominates: the loudest band is the one whose filter peaks at 1 kHz.
    tone_bin = round(1000.0 * clap_logmel.n_fft / 44100)
    expected_band = clap_logmel.mel_fb[tone_bin].argmax().item()
    assert abs(ours[0].mean(0).argmax().item() - expected_band) <= 1


def _loud_tone():
    return _sine_plus_noise(44100, 44100, amp=0.5, noise=0.01)


def test_loud_tone_error_within_the_float32_dft_bound(clap_logmel):
    # A loud tone over faint noise spans ~90 dB: in the quiet bands a float32 DFT's rounding
    # (relative to the frame's energy) is a large share of the band's power, so no fixed
    # tolerance fits every CPU's kernels. Each cell is held to the bound its float32 DFT
    # rounding allows (tests/helpers/numerics.py), against torchlibrosa in float64.
    wavs = _loud_tone()
    exact = _torchlibrosa_logmel(dtype=torch.float64)(wavs)
    bound = logmel_error_bound(clap_logmel, wavs)
    err = (clap_logmel(wavs).double() - exact).abs()
    assert (err <= bound).all(), float((err - bound).max())
    assert float(bound.median()) < 0.1  # dB: tight where the signal is


@pytest.mark.parametrize("defect", ["hamming window", "hop one sample long", "window 1000"])
def test_the_bound_fails_a_broken_frontend(clap_logmel, defect):
    wavs = _loud_tone()
    exact = _torchlibrosa_logmel(dtype=torch.float64)(wavs)
    if defect == "hamming window":
        broken = LogMel()
        broken.window = torch.hamming_window(1024)
    elif defect == "window 1000":
        broken = LogMel(win_length=1000)
    else:
        broken = LogMel(hop_length=321)
    out = broken(wavs).double()
    frames = min(out.shape[1], exact.shape[1])
    outside = (out[:, :frames] - exact[:, :frames]).abs() > logmel_error_bound(clap_logmel, wavs)[
        :, :frames
    ]
    assert float(outside.float().mean()) > 0.5


def test_parity_16k_config():
    ours_fe = LogMel(sample_rate=16000, n_fft=512, hop_length=160, win_length=512, f_max=8000)
    wavs = torch.cat([_noise(1, 16000, seed=3), _sine_plus_noise(16000, 16000, freq=440.0)])
    ours = _check_parity(ours_fe, wavs, sr=16000, n_fft=512, hop=160, fmax=8000)
    assert ours.shape == (2, 101, 64)


def test_parity_16k_default_fft():
    ours_fe = LogMel(sample_rate=16000, f_max=8000)
    _check_parity(ours_fe, _noise(1, 2 * 16000, seed=4), sr=16000, fmax=8000)


def test_silence_hits_amin_floor(clap_logmel):
    wavs = torch.zeros(1, 44100)
    ours = clap_logmel(wavs)
    assert torch.allclose(ours, torch.full_like(ours, -100.0))
    _check_parity(clap_logmel, wavs)


@pytest.mark.parametrize(
    ("samples", "frames"),
    [(5 * 44100, 690), (44100, 138), (320, 2), (319, 1), (640, 3)],
)
def test_num_frames(clap_logmel, samples, frames):
    assert clap_logmel.num_frames(samples) == frames


@pytest.mark.parametrize("samples", [44100, 5 * 44100, 44100 + 17])
def test_num_frames_matches_forward(clap_logmel, samples):
    out = clap_logmel(torch.zeros(1, samples))
    assert out.shape[1] == clap_logmel.num_frames(samples)


def test_one_dim_input(clap_logmel):
    wav = _noise(1, 44100, seed=5)
    single = clap_logmel(wav[0])
    assert single.shape == (138, 64)
    # one item or a batch of one may take other kernels: each is within the float32 bound
    # of the exact values, so they differ by at most twice that
    bound = logmel_error_bound(clap_logmel, wav)[0]
    assert ((single - clap_logmel(wav)[0]).abs() <= 2 * bound).all()


def test_batch_items_are_independent(clap_logmel):
    wavs = _noise(3, 44100, seed=6)
    batched = clap_logmel(wavs)
    bound = logmel_error_bound(clap_logmel, wavs)
    for i in range(3):  # batched and alone: each within the float32 bound of the exact values
        assert ((batched[i] - clap_logmel(wavs[i : i + 1])[0]).abs() <= 2 * bound[i]).all()


def test_ref_shifts_output():
    wavs = _noise(1, 8000, seed=7)
    base = LogMel(sample_rate=16000, f_max=8000)(wavs)
    shifted = LogMel(sample_rate=16000, f_max=8000, ref=10.0)(wavs)
    # the same power, two float32 log10s of |dB| <= 100 apart: ~13 ulps of 100 (7.6e-6) is 1e-4
    assert torch.allclose(base - shifted, torch.full_like(base, 10.0), atol=1e-4)
