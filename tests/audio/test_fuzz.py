"""Fuzzing (hypothesis) of the audio loader and the manifest reader.

Whatever bytes a file holds, ``load_audio`` returns a finite mono float32 tensor
or raises :class:`AudioLoadError` naming the file and manifest entry, and
``read_manifest`` returns a manifest or raises ``ValueError`` naming the file;
nothing else escapes. Examples are derandomized, so runs are reproducible.
"""

import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyclap.audio.io import AudioLoadError, load_audio
from tinyclap.data.pipelines import read_manifest

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
# rates seen in real datasets (UrbanSound8K alone has 8 to 96 kHz, and 11.025 / 22.05 / 48 kHz)
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000]
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


def _check_loads_or_clear_error(path, sample_rate=None):
    try:
        wav = load_audio(path, sample_rate, manifest_id="clip-7")
    except AudioLoadError as err:
        assert str(path) in str(err) and "clip-7" in str(err)
        return None
    assert wav.dtype == torch.float32 and wav.dim() == 1 and len(wav) > 0
    assert torch.isfinite(wav).all()
    return wav


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3"]))
def test_arbitrary_bytes(tmp_path, data, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    _check_loads_or_clear_error(path, 16000)


@FUZZ
@given(
    rate=st.sampled_from(RATES),
    channels=st.integers(1, 3),
    frames=st.integers(0, 3000),
    subtype=st.sampled_from(SUBTYPES),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    target=st.sampled_from([None, 16000, 44100]),
)
def test_real_wavs_truncated_or_not(tmp_path, rate, channels, frames, subtype, cut, target):
    signal = np.random.default_rng(frames).uniform(-0.9, 0.9, (frames, channels))
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, subtype=subtype, format="WAV")
    data = buffer.getvalue()
    if cut is not None:  # a truncated download: header and/or samples cut
        data = data[: int(len(data) * cut)]
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    wav = _check_loads_or_clear_error(path, target)
    if cut is None and frames > 0:  # intact files always load, at the right length
        assert wav is not None
        expected = frames if target in (None, rate) else frames * target / rate
        assert abs(len(wav) - expected) <= 1
        if target is None:
            np.testing.assert_allclose(wav.numpy(), signal.mean(1), atol=1e-2)
    if frames == 0:
        assert wav is None  # zero-length audio is an error, not an empty tensor


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@FUZZ
@given(payload=json_values | st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_manifest_reader_json_shapes(tmp_path, payload):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    try:
        manifest = read_manifest(path)
    except ValueError as err:
        assert str(path) in str(err)
        return
    assert isinstance(manifest, dict)
    assert all(isinstance(e, dict) and isinstance(e["wav"], str) for e in manifest.values())


@FUZZ
@given(data=st.binary(max_size=512))
def test_manifest_reader_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "m.json"
    path.write_bytes(data)
    try:
        read_manifest(path)
    except ValueError as err:
        assert str(path) in str(err)


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "none.json")
