"""Crops and windows of mono waveforms: how clips meet a model's fixed window.

Training takes random crops of one window; evaluation and inference cover a
clip with deterministic windows (see :func:`split_windows`), so the same file
always gives the same embedding.
"""

import torch


def pad_to_length(wav, num_samples, mode="zeros"):
    """Right-pad ``wav`` (``[..., T]``) to ``num_samples`` samples.

    ``mode="zeros"`` appends silence (tinyCLAP); ``mode="repeat"`` tiles the
    clip (msclap); ``mode="repeatpad"`` repeats the whole clip as many times as
    fits, then appends silence (``ClapFeatureExtractor``'s ``repeatpad``, the
    LAION CLAP default). Longer inputs are returned unchanged.

    Example
    -------
    >>> pad_to_length(torch.ones(3), 7, mode="repeat").tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    >>> pad_to_length(torch.ones(3), 7, mode="repeatpad").tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    """
    length = wav.shape[-1]
    if length >= num_samples:
        return wav
    if mode == "repeat":
        repeats = -(-num_samples // length)
        return wav.repeat(*([1] * (wav.dim() - 1)), repeats)[..., :num_samples]
    if mode == "repeatpad":
        wav = wav.repeat(*([1] * (wav.dim() - 1)), num_samples // length)
        mode = "zeros"
    if mode == "zeros":
        return torch.nn.functional.pad(wav, (0, num_samples - wav.shape[-1]))
    raise ValueError(f"unknown pad mode {mode!r}: use 'zeros', 'repeat' or 'repeatpad'")


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
