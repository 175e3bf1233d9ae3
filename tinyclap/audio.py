"""Audio input: read files with soundfile, mix to mono, resample, crop and window.

Every model in tinyclap sees mono float32 waveforms at the model's sample rate.
Training takes random crops of one window; evaluation and inference cover a
clip with deterministic windows (see :func:`split_windows`), so the same file
always gives the same embedding.
"""

import math
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
import torch
import torchaudio.functional as AF

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
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.zeros((8000, 2)), 8000)
    >>> load_audio(f, 16000).shape
    torch.Size([16000])
    """
    source = describe_source(path, manifest_id)
    if not Path(path).is_file():
        raise AudioLoadError(f"audio file not found: {source}")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several error types
        raise AudioLoadError(f"cannot read audio file {source}: {err}") from err
    if data.shape[0] == 0:
        raise AudioLoadError(f"audio file has no samples: {source}")
    if not np.isfinite(data).all():
        raise AudioLoadError(f"audio file holds NaN or Inf samples: {source}")
    wav = torch.from_numpy(data.mean(axis=1))
    if sample_rate is not None:
        wav = resample(wav, file_sr, sample_rate)
    return wav.contiguous()


def pad_to_length(wav, num_samples, mode="zeros"):
    """Right-pad ``wav`` (``[..., T]``) to ``num_samples`` samples.

    ``mode="zeros"`` appends silence (tinyCLAP); ``mode="repeat"`` tiles the
    clip (msclap). Longer inputs are returned unchanged.

    Example
    -------
    >>> pad_to_length(torch.ones(3), 7, mode="repeat").tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    length = wav.shape[-1]
    if length >= num_samples:
        return wav
    if mode == "repeat":
        repeats = -(-num_samples // length)
        return wav.repeat(*([1] * (wav.dim() - 1)), repeats)[..., :num_samples]
    if mode == "zeros":
        return torch.nn.functional.pad(wav, (0, num_samples - length))
    raise ValueError(f"unknown pad mode {mode!r}: use 'zeros' or 'repeat'")


def random_crop(wav, num_samples, generator=None, pad_mode="zeros"):
    """Take one random window of ``num_samples`` (padding short clips first).

    Parameters
    ----------
    wav : torch.Tensor
        ``[T]`` waveform.
    num_samples : int
        Window length.
    generator : torch.Generator, optional
        Source of randomness, for reproducible crops.
    pad_mode : str
        How short clips are padded, see :func:`pad_to_length`.

    Example
    -------
    >>> random_crop(torch.arange(10.0), 4).shape
    torch.Size([4])
    """
    wav = pad_to_length(wav, num_samples, pad_mode)
    excess = wav.shape[-1] - num_samples
    start = 0
    if excess > 0:
        start = int(torch.randint(excess + 1, (1,), generator=generator))
    return wav[..., start : start + num_samples]


def split_windows(wav, num_samples, hop=None, pad_mode="zeros"):
    """Cover a clip with deterministic windows of ``num_samples``.

    Windows start every ``hop`` samples (default: ``num_samples``, no overlap);
    the last window is aligned to the end of the clip so that no window holds
    padding unless the clip is shorter than one window.

    Parameters
    ----------
    wav : torch.Tensor
        ``[T]`` waveform.
    num_samples : int
        Window length.
    hop : int, optional
        Distance between window starts.
    pad_mode : str
        How clips shorter than a window are padded.

    Returns
    -------
    torch.Tensor
        ``[N, num_samples]`` windows, ``N >= 1``.

    Example
    -------
    >>> split_windows(torch.arange(10.0), 4).tolist()[-1]
    [6.0, 7.0, 8.0, 9.0]
    """
    hop = hop or num_samples
    wav = pad_to_length(wav, num_samples, pad_mode)
    length = wav.shape[-1]
    starts = list(range(0, length - num_samples + 1, hop))
    if starts[-1] + num_samples < length:
        starts.append(length - num_samples)
    return torch.stack([wav[s : s + num_samples] for s in starts])


def crop_windows(wav, num_samples, crops=1, hop=None, pad_mode="zeros"):
    """Deterministic crops of a clip: the views a teacher cache stores.

    At least the :func:`split_windows` cover of the clip; when ``crops`` is
    larger, ``crops`` windows whose starts are spread evenly from the first to
    the last possible position, so that training on a random cached crop
    sees varied views of long clips (at most one crop per distinct start).

    Parameters
    ----------
    wav : torch.Tensor
        ``[T]`` waveform.
    num_samples : int
        Window length.
    crops : int
        Minimum number of windows wanted.
    hop, pad_mode
        As in :func:`split_windows`.

    Returns
    -------
    torch.Tensor
        ``[N, num_samples]`` windows.

    Example
    -------
    >>> [w[0].item() for w in crop_windows(torch.arange(10.0), 4, crops=4)]
    [0.0, 2.0, 4.0, 6.0]
    >>> crop_windows(torch.arange(4.0), 4, crops=4).shape  # one position only
    torch.Size([1, 4])
    """
    cover = split_windows(wav, num_samples, hop, pad_mode)
    wav = pad_to_length(wav, num_samples, pad_mode)
    last_start = wav.shape[-1] - num_samples
    count = min(int(crops), last_start + 1)
    if count <= len(cover):
        return cover
    starts = torch.linspace(0, last_start, count).round().long().tolist()
    return torch.stack([wav[s : s + num_samples] for s in starts])
