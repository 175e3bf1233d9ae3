"""Tests of tinyclap.audio.io: reading files, mixing, resampling, clear errors."""

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.audio.io import AudioLoadError, describe_source, load_audio

SR = 16000


def _sine(freq, seconds, sr, amp=0.5):
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_frequency(wav, sr):
    spectrum = np.abs(np.fft.rfft(np.asarray(wav, dtype=np.float64)))
    return np.fft.rfftfreq(len(wav), 1.0 / sr)[np.argmax(spectrum)]


# --------------------------------------------------------------------------- #
# load_audio: formats and encodings
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("fmt", "subtype", "atol"),
    [
        ("WAV", "PCM_U8", 1.0 / 128 + 1e-6),
        ("WAV", "PCM_16", 1.0 / 2**15 + 1e-7),
        ("WAV", "PCM_24", 1.0 / 2**23 + 1e-8),
        ("WAV", "FLOAT", 0.0),
        ("FLAC", "PCM_16", 1.0 / 2**15 + 1e-7),
    ],
)
def test_load_audio_lossless_encodings(tmp_path, fmt, subtype, atol):
    rng = np.random.default_rng(0)
    ref = rng.uniform(-0.9, 0.9, size=4000).astype(np.float32)
    path = tmp_path / f"clip_{subtype}.{fmt.lower()}"
    sf.write(str(path), ref, SR, format=fmt, subtype=subtype)

    wav = load_audio(path)

    assert isinstance(wav, torch.Tensor)
    assert wav.dtype == torch.float32
    assert wav.shape == (4000,)
    assert wav.is_contiguous()
    err = np.abs(wav.numpy() - ref).max()
    assert err <= atol, f"{fmt}/{subtype}: max error {err} > {atol}"
    if atol == 0.0:
        assert torch.equal(wav, torch.from_numpy(ref))


def test_load_audio_pcm_u8_quantisation_is_coarse_but_centered(tmp_path):
    # 8-bit unsigned: silence must read back as 0, not 0.5 (offset binary).
    path = tmp_path / "u8.wav"
    sf.write(str(path), np.zeros(100, dtype=np.float32), SR, subtype="PCM_U8")
    wav = load_audio(path)
    assert torch.equal(wav, torch.zeros(100))


def test_load_audio_ogg_vorbis_loose(tmp_path):
    ref = _sine(440.0, 1.0, SR, amp=0.5)
    path = tmp_path / "tone.ogg"
    sf.write(str(path), ref, SR, format="OGG", subtype="VORBIS")

    wav = load_audio(path)

    # Vorbis is lossy and may trim/pad a few samples: compare loosely.
    assert abs(wav.shape[0] - len(ref)) <= 64
    n = min(wav.shape[0], len(ref))
    assert np.sqrt(np.mean((wav.numpy()[:n] - ref[:n]) ** 2)) < 0.05
    assert abs(_peak_frequency(wav.numpy(), SR) - 440.0) <= 2.0


def test_load_audio_stereo_is_channel_mean(tmp_path):
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.5, 0.5, size=(3000, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, SR, subtype="FLOAT")

    wav = load_audio(path)

    assert wav.shape == (3000,)
    np.testing.assert_allclose(wav.numpy(), stereo.mean(axis=1), rtol=0, atol=1e-7)


def test_load_audio_opposite_channels_cancel(tmp_path):
    left = _sine(300.0, 0.1, SR)
    path = tmp_path / "cancel.wav"
    sf.write(str(path), np.stack([left, -left], axis=1), SR, subtype="FLOAT")
    assert torch.count_nonzero(load_audio(path)) == 0


def test_load_audio_same_rate_is_untouched(tmp_path):
    ref = _sine(1000.0, 0.25, SR)
    path = tmp_path / "same.wav"
    sf.write(str(path), ref, SR, subtype="FLOAT")
    assert torch.equal(load_audio(path, sample_rate=SR), torch.from_numpy(ref))


@pytest.mark.parametrize(("seconds", "expected"), [(1.0, 16000), (0.5, 8000), (2.0, 32000)])
def test_load_audio_resample_length(tmp_path, seconds, expected):
    path = tmp_path / "hi.wav"
    sf.write(str(path), _sine(1000.0, seconds, 44100), 44100, subtype="FLOAT")
    wav = load_audio(path, sample_rate=16000)
    assert wav.shape == (expected,)
    assert wav.dtype == torch.float32


def test_load_audio_resample_preserves_frequency(tmp_path):
    freq = 1000.0
    path = tmp_path / "tone44k.wav"
    sf.write(str(path), _sine(freq, 1.0, 44100, amp=0.5), 44100, subtype="FLOAT")

    wav = load_audio(path, sample_rate=16000).numpy()

    assert abs(_peak_frequency(wav, 16000) - freq) <= 2.0
    # Amplitude is preserved away from the edges (band-limited sinc filter).
    middle = wav[1000:-1000]
    assert 0.45 < np.abs(middle).max() < 0.55
    assert abs(np.sqrt(np.mean(middle**2)) - 0.5 / np.sqrt(2)) < 0.01


def test_load_audio_resample_upsampling(tmp_path):
    path = tmp_path / "lo.wav"
    sf.write(str(path), _sine(500.0, 1.0, 8000), 8000, subtype="FLOAT")
    wav = load_audio(path, sample_rate=16000)
    assert wav.shape == (16000,)
    assert abs(_peak_frequency(wav.numpy(), 16000) - 500.0) <= 2.0


# --------------------------------------------------------------------------- #
# load_audio: errors
# --------------------------------------------------------------------------- #


def test_describe_source():
    assert describe_source("a.wav") == "a.wav"
    assert describe_source("a.wav", "clip_1") == "a.wav (manifest entry clip_1)"


def test_load_audio_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioLoadError) as info:
        load_audio(path, manifest_id="clip_42")
    msg = str(info.value)
    assert str(path) in msg
    assert "clip_42" in msg
    assert "not found" in msg


def test_load_audio_missing_file_without_manifest_id(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioLoadError, match="not found") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert "manifest" not in str(info.value)


def test_load_audio_directory_is_not_a_file(tmp_path):
    with pytest.raises(AudioLoadError, match="not found"):
        load_audio(tmp_path, manifest_id="dir")


def test_load_audio_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    with pytest.raises(AudioLoadError) as info:
        load_audio(path, sample_rate=SR, manifest_id="bad_clip")
    msg = str(info.value)
    assert str(path) in msg
    assert "bad_clip" in msg
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None  # the libsndfile error is chained


def test_load_audio_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioLoadError) as info:
        load_audio(path, manifest_id="empty_clip")
    assert str(path) in str(info.value)
    assert "empty_clip" in str(info.value)


def test_load_audio_valid_header_no_samples(tmp_path):
    path = tmp_path / "zero_frames.wav"
    sf.write(str(path), np.zeros((0, 1), dtype=np.float32), SR, subtype="PCM_16")
    with pytest.raises(AudioLoadError, match="no samples") as info:
        load_audio(path, manifest_id="zero")
    assert str(path) in str(info.value)
    assert "zero" in str(info.value)


def test_load_audio_non_finite_samples(tmp_path):
    data = np.zeros(100, dtype=np.float32)
    data[10] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(str(path), data, SR, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN or Inf") as info:
        load_audio(path, manifest_id="nan_clip")
    assert str(path) in str(info.value)
    assert "nan_clip" in str(info.value)
