"""Clip embeddings for zero-shot scoring: every window of a clip, averaged.

Evaluation is deterministic: a clip is cut into all its analysis windows
(:func:`tinyclap.audio.windows.split_windows`) and the window embeddings are
averaged; a clip is assigned to the class whose prompt embedding has the
highest cosine similarity with its embedding.
"""

import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows


def clip_embeddings(
    embed_audio, wavs, window_samples, batch_size=64, per_window=False, pad_mode="zeros"
):
    """Embed clips of any length by averaging their window embeddings.

    Parameters
    ----------
    embed_audio : callable
        ``[B, window_samples] -> [B, D]`` (L2-normalised).
    wavs : list of Tensor
        Mono clips ``[T_i]``.
    window_samples : int
        Window length.
    batch_size : int
        Windows per forward pass.
    per_window : bool
        Also return the list of per-window embeddings ``[n_i, D]``.
    pad_mode : str
        How clips shorter than a window are padded: the encoder's
        ``pad_mode`` (``zeros``, or ``repeat`` for msclap teachers).

    Returns
    -------
    Tensor or (Tensor, list of Tensor)
        ``[N, D]`` L2-normalised clip embeddings.

    Example
    -------
    >>> embed = lambda w: F.normalize(torch.stack([w.mean(1), w.std(1)], 1), dim=-1)
    >>> clip_embeddings(embed, [torch.ones(10), torch.ones(25)], 10).shape
    torch.Size([2, 2])
    """
    windows = [split_windows(w, window_samples, pad_mode=pad_mode) for w in wavs]
    flat = torch.cat(windows)
    embs = torch.cat([embed_audio(chunk) for chunk in flat.split(batch_size)])
    per_clip = embs.split([len(w) for w in windows])
    clips = F.normalize(torch.stack([e.mean(0) for e in per_clip]), dim=-1)
    return (clips, list(per_clip)) if per_window else clips


def encode_clips(encoder, wavs, batch_size=64, per_window=False):
    """:func:`clip_embeddings` with an encoder's own window and padding.

    ``encoder`` has ``embed_audio``, ``window_samples`` and ``pad_mode``
    (teachers and students alike).
    """
    return clip_embeddings(
        encoder.embed_audio,
        wavs,
        encoder.window_samples,
        batch_size=batch_size,
        per_window=per_window,
        pad_mode=encoder.pad_mode,
    )
