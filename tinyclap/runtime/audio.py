"""Audio for the torch-free runtime: read, mix to mono, resample, cut into windows.

numpy twins of :func:`tinyclap.audio.io.load_audio`,
:func:`tinyclap.audio.io.resample` (torchaudio's default band-limited sinc:
Hann window, 6 zero crossings, rolloff 0.99) and
:func:`tinyclap.audio.windows.split_windows`, so that the runtime sees the same
windows as the PyTorch path (the tests compare them).
"""

import math
from pathlib import Path

import numpy as np
import soundfile as sf

# Largest reduced (orig x target) rate product resampled with the sinc kernel (as audio.io).
MAX_SINC_KERNEL = 1_000_000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


class RuntimeAudioError(RuntimeError):
    """An audio file could not be read or holds no usable signal (the file is named)."""


def sinc_kernel(orig_sr, target_sr, lowpass_filter_width=6, rolloff=0.99):
    """Resampling kernel ``[target/g, K]`` (torchaudio's ``sinc_interp_hann``) and its width.

    Example
    -------
    >>> kernel, width = sinc_kernel(2, 1)
    >>> kernel.shape, width
    ((1, 28), 13)
    """
    g = math.gcd(int(orig_sr), int(target_sr))
    orig, new = int(orig_sr) // g, int(target_sr) // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None] / orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx) * base
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(t == 0, 1.0, np.sin(t) / t)
    return kernel * window * (base / orig), width


def resample(wav, orig_sr, target_sr):
    """Resample a mono ``[T]`` float32 signal as ``torchaudio.functional.resample`` does.

    Example
    -------
    >>> resample(np.zeros(16000, np.float32), 16000, 8000).shape
    (8000,)
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return np.asarray(wav, dtype=np.float32)
    g = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // g, target_sr // g
    if orig * new > MAX_SINC_KERNEL:
        raise RuntimeAudioError(
            f"resampling {orig_sr} Hz to {target_sr} Hz needs a {orig}x{new} sinc kernel; "
            "the runtime does not do such rate pairs: convert the file first (e.g. sox/ffmpeg)"
        )
    kernel, width = sinc_kernel(orig_sr, target_sr)
    kernel = kernel.astype(np.float32)
    length = len(wav)
    padded = np.pad(np.asarray(wav, dtype=np.float32), (width, width + orig))
    view = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]
    out = (view @ kernel.T).reshape(-1)
    return np.ascontiguousarray(out[: math.ceil(new * length / orig)], dtype=np.float32)


def read_mono(path, source=None, error=RuntimeAudioError):
    """``(mono float32 [T], the file's rate)`` of ``path``, channels averaged, checked.

    The one reader of whole files, shared with the full install's
    :func:`tinyclap.audio.io.load_audio` (which passes its own error type and a
    ``source`` naming the manifest entry).

    Parameters
    ----------
    path : str or Path
        The audio file (any format soundfile reads).
    source : str, optional
        How to name the file in errors (default: its path).
    error : type
        The exception raised.

    Raises
    ------
    error
        A missing, unreadable or empty file, or NaN/Inf samples.

    Example
    -------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.ones((800, 2)), 8000)
    >>> wav, rate = read_mono(f)
    >>> wav.shape, rate
    ((800,), 8000)
    """
    source = path if source is None else source
    if not Path(path).is_file():
        raise error(f"audio file not found: {source}")
    return decode_mono(str(path), f"audio file {source}", error)


def decode_mono(file, what, error=RuntimeAudioError):
    """``(mono float32 [T], rate)`` of a path or file-like object, channels averaged, checked.

    The checks every reader shares (whole files here, shard members in
    :func:`tinyclap.data.shards.decode_audio`); ``what`` names the audio in errors.

    Example
    -------
    >>> import io
    >>> decode_mono(io.BytesIO(b"not audio"), "audio of x")
    Traceback (most recent call last):
    ...
    tinyclap.runtime.audio.RuntimeAudioError: cannot read audio of x: ...
    """
    try:
        data, rate = sf.read(file, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several error types
        raise error(f"cannot read {what}: {err}") from err
    if data.shape[0] == 0:
        raise error(f"{what} has no samples")
    if not np.isfinite(data).all():
        raise error(f"{what} holds NaN or Inf samples")
    return data.mean(axis=1), rate


def load_audio(path, sample_rate=None):
    """Read ``path`` as mono float32 ``[T]`` at ``sample_rate`` (channels averaged).

    Raises
    ------
    RuntimeAudioError
        A missing, unreadable or empty file, or NaN/Inf samples.

    Example
    -------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.zeros((8000, 2)), 8000)
    >>> load_audio(f, 16000).shape
    (16000,)
    """
    wav, file_sr = read_mono(path)
    if sample_rate is not None:
        wav = resample(wav, file_sr, sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def pad_to_length(wav, num_samples, mode="zeros"):
    """Right-pad ``[T]`` to ``num_samples`` (``zeros``, ``repeat`` or ``repeatpad``).

    Example
    -------
    >>> pad_to_length(np.ones(3), 7, mode="repeatpad").tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    """
    length = wav.shape[-1]
    if length >= num_samples:
        return wav
    if mode == "repeat":
        return np.tile(wav, -(-num_samples // length))[:num_samples]
    if mode == "repeatpad":
        wav, mode = np.tile(wav, num_samples // length), "zeros"
    if mode == "zeros":
        return np.pad(wav, (0, num_samples - wav.shape[-1]))
    raise ValueError(f"unknown pad mode {mode!r}: use 'zeros', 'repeat' or 'repeatpad'")


def split_windows(wav, num_samples, hop=None, pad_mode="zeros"):
    """Deterministic windows ``[N, num_samples]`` covering ``[T]``; the last one end-aligned.

    Example
    -------
    >>> split_windows(np.arange(10.0), 4)[:, 0].tolist()
    [0.0, 4.0, 6.0]
    """
    hop = hop or num_samples
    wav = pad_to_length(np.asarray(wav), num_samples, pad_mode)
    length = wav.shape[-1]
    starts = list(range(0, length - num_samples + 1, hop))
    if starts[-1] + num_samples < length:
        starts.append(length - num_samples)
    return np.stack([wav[s : s + num_samples] for s in starts])


def audio_files(paths):
    """Files of ``paths``, folders expanded (recursively, sorted) to their audio files.

    Example
    -------
    >>> audio_files([])
    []
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            found.append(path)
    return [str(p) for p in found]
