"""Streaming reader: the same windows as the whole-file path, in memory that does not grow."""

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.audio.io import AudioLoadError, load_audio
from tinyclap.audio.stream import READ_BLOCK, AudioStream, WindowStream, resample_context
from tinyclap.audio.windows import split_windows

pytestmark = pytest.mark.numerics


def _write(path, seconds, rate, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    sf.write(path, 0.3 * rng.standard_normal((int(seconds * rate), channels)), rate,
             subtype="FLOAT")  # fmt: skip
    return path


# rate pairs: torchaudio sinc down / up, an odd pair (SciPy polyphase), no resampling
@pytest.mark.parametrize(
    "rate,channels,seconds",
    [(44100, 2, 3.3), (22050, 1, 2.01), (8000, 1, 2.5), (16001, 1, 2.2), (16000, 1, 2.2),
     (44100, 1, 0.7)],
)  # fmt: skip
def test_stream_equals_whole_file_load_and_windows(tmp_path, rate, channels, seconds):
    path = _write(tmp_path / "x.wav", seconds, rate, channels)
    whole = load_audio(path, 16000)
    stream = AudioStream(path, 16000, chunk_seconds=0.3)  # many chunk boundaries
    streamed = torch.cat(list(stream))
    assert streamed.shape == whole.shape and stream.num_samples == len(whole)
    assert (streamed - whole).abs().max() <= 1e-6
    for window, hop in [(16000, 8000), (16000, 5000), (5000, 16000)]:
        ws = WindowStream(path, 16000, window, hop, chunk_seconds=0.3)
        items = list(ws)
        expected = split_windows(whole, window, hop)
        assert len(items) == len(expected) == ws.expected_windows()
        got = torch.stack([w for _, w in items])
        assert (got - expected).abs().max() <= 1e-6
        starts = [s for s, _ in items]
        assert starts[0] == 0 and starts == sorted(starts)
        assert all(b - a == hop for a, b in zip(starts[:-2], starts[1:-1]))


def test_resample_context_is_a_whole_number_of_periods():
    assert resample_context(44100, 16000) % 441 == 0
    assert resample_context(8000, 16000) >= 7  # the sinc's reach in input samples
    assert resample_context(96001, 16000) % 96001 == 0


def test_short_file_is_padded_like_split_windows(tmp_path):
    path = _write(tmp_path / "short.wav", 0.3, 16000)
    (start, window), *rest = list(WindowStream(path, 16000, 16000, 8000))
    assert start == 0 and rest == [] and window.shape == (16000,)
    assert torch.equal(window, split_windows(load_audio(path), 16000)[0])
    repeat = next(iter(WindowStream(path, 16000, 16000, pad_mode="repeat")))[1]
    assert torch.equal(repeat[4800:9600], repeat[:4800])


def test_clear_errors(tmp_path):
    with pytest.raises(AudioLoadError, match="not found"):
        WindowStream(tmp_path / "missing.wav", 16000, 100)
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(AudioLoadError, match="junk.wav"):
        WindowStream(tmp_path / "junk.wav", 16000, 100)
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(AudioLoadError, match="no samples"):
        list(WindowStream(tmp_path / "empty.wav", 16000, 100))
    bad = np.zeros(200000, np.float32)
    bad[150000] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN"):
        list(WindowStream(tmp_path / "nan.wav", 16000, 100))
    with pytest.raises(ValueError, match="hop"):
        WindowStream(tmp_path / "nan.wav", 16000, 100, hop=-1)


def _long_file(path, minutes, rate=8000):
    """A long recording written to disk block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(int(minutes * 6)):  # 10 s blocks
            handle.write(0.2 * rng.standard_normal(10 * rate).astype(np.float32))
    return path


def test_memory_does_not_grow_with_the_file(tmp_path):
    """The reader's buffers hold the same few chunks for a 1-minute and a 6-minute file."""
    peaks = {}
    for minutes in (1, 6):
        path = _long_file(tmp_path / f"long{minutes}.wav", minutes)
        stream = WindowStream(path, 16000, 16000, hop=8000)  # 8 kHz file, resampled to 16 kHz
        count = sum(1 for _ in stream)
        assert count == stream.expected_windows() == 2 * 60 * minutes - 1
        peaks[minutes] = stream.peak_samples
    # one 10 s chunk in flight: pending input (chunk + context + one read block, 8 kHz),
    # its resampled output (16 kHz) and the window buffer (a window + a chunk, 16 kHz)
    chunk = 10 * 8000
    bound = (chunk + 2 * resample_context(8000, 16000) + READ_BLOCK) + 2 * 2 * chunk + 16000
    assert max(peaks.values()) <= bound, (peaks, bound)
    assert abs(peaks[6] - peaks[1]) <= 0.05 * peaks[1]  # read-block phase only
    assert peaks[6] < 6 * 60 * 16000 / 10  # under a tenth of the file at 16 kHz
