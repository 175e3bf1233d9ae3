"""Audio input: read files with soundfile, mix to mono, resample.

Every model in tinyclap sees mono float32 waveforms at the model's sample rate.
Training takes random crops of one window; evaluation and inference cover a
clip with deterministic windows (see :func:`split_windows`), so the same file
always gives the same embedding.
"""

import math

import scipy.signal
import torch
import torchaudio.functional as AF

from tinyclap.runtime.audio import read_mono

# Largest (orig / gcd) x (target / gcd) resampled with torchaudio's sinc kernel
# (44.1 kHz -> 16 kHz is 441 x 160 = 70,560; 96001 Hz -> 16 kHz would be 1.5e9).
MAX_SINC_KERNEL = 1_000_000


class AudioLoadError(RuntimeError):
    """An audio file could not be read or holds no usable signal.

    The message names the file and, when known, the manifest entry.
    """


def describe_source(path, manifest_id=None):
    """Return ``'FILE'`` or ``'FILE (manifest entry ID)'`` for error messages.

    Example
    -------
    >>> describe_source("a.wav", "clip_1")
    'a.wav (manifest entry clip_1)'
    """
    where = str(path)
    return f"{where} (manifest entry {manifest_id})" if manifest_id else where


def resample(wav, orig_sr, target_sr):
    """Resample a waveform with torchaudio's default band-limited sinc filter.

    This is the filter msclap uses (``torchaudio.transforms.Resample`` defaults:
    Hann-windowed sinc, 6 zero crossings, rolloff 0.99). For unusual rate pairs
    whose reduced ratio would need a huge sinc kernel (e.g. 96001 Hz), SciPy's
    polyphase ``resample_poly`` is used instead.

    Parameters
    ----------
    wav : torch.Tensor
        ``[..., T]`` waveform.
    orig_sr, target_sr : int
        Sample rates in Hz.

    Returns
    -------
    torch.Tensor
        ``[..., T * target_sr / orig_sr]`` waveform.

    Example
    -------
    >>> resample(torch.zeros(16000), 16000, 8000).shape
    torch.Size([8000])
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return wav
    g = math.gcd(orig_sr, target_sr)
    if (orig_sr // g) * (target_sr // g) > MAX_SINC_KERNEL:
        # torchaudio builds a [target/g, orig/g + taps] kernel: for odd rates such as
        # 96001 Hz -> 16 kHz that is gigabytes. Polyphase filtering has no such cost.
        out = scipy.signal.resample_poly(wav.double().numpy(), target_sr // g, orig_sr // g, -1)
        return torch.from_numpy(out).to(wav.dtype)
    return AF.resample(wav, orig_sr, target_sr)


def load_audio(path, sample_rate=None, manifest_id=None):
    """Read an audio file as a mono float32 tensor, resampled to ``sample_rate``.

    Any format libsndfile reads (wav, flac, ogg, ...) and any sample encoding
    (8-bit unsigned, 16/24/32-bit int, float) is accepted. Channels are
    averaged.

    Parameters
    ----------
    path : str or Path
        The audio file.
    sample_rate : int, optional
        Target rate in Hz; ``None`` keeps the file's rate.
    manifest_id : str, optional
        The manifest entry the file belongs to, named in error messages.

    Returns
    -------
    torch.Tensor
        ``[T]`` float32 waveform.

    Raises
    ------
    AudioLoadError
        If the file is missing, unreadable, empty or holds NaN/Inf samples.

    Example
    -------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.zeros((8000, 2)), 8000)
    >>> load_audio(f, 16000).shape
    torch.Size([16000])
    """
    data, file_sr = read_mono(path, describe_source(path, manifest_id), error=AudioLoadError)
    wav = torch.from_numpy(data)
    if sample_rate is not None:
        wav = resample(wav, file_sr, sample_rate)
    return wav.contiguous()
