"""Latent-space pruning: keep K of the D shared dimensions of a student.

tinyCLAP observes that the projection dominates a small student's size (the
2048 -> 1024 -> 1024 head is ~3.15M of a 4.4M-parameter student) and that the
shared latent space can be pruned. Here:

1. **Rank** the D dimensions by their mean absolute value over the
   distillation set, in L2-normalised embeddings: the student's (default),
   the teacher's (read from the teacher-embedding cache), or at random (a
   control).
2. **Mask** (ablation): zero the dropped dimensions, nothing shrinks, nothing
   is trained. For cosine similarity this is the same as comparing audio and
   text on the kept dimensions only.
3. **Shrink**: build a student whose projection outputs K dimensions, by
   slicing ``linear1``'s rows, the K x K block of ``linear2`` and the
   LayerNorm's affine parameters, so the parameters really go away. This is an
   approximation before finetuning: ``linear2`` no longer sees the dropped
   dimensions, and the LayerNorm now normalises over K dimensions, not D (the
   prune stage reports the mean cosine between shrunk and masked embeddings).
4. **Finetune** the projection only, against the teacher's embeddings
   restricted to the same K dimensions and re-normalised.

A pruned student records ``kept_dims``; every zero-shot use slices the teacher's
text embeddings to them (:func:`restrict_embeddings`).
"""

import torch
import torch.nn.functional as F

from tinyclap.nn.latent import mask_embeddings, restrict_embeddings
from tinyclap.nn.projection import Projection
from tinyclap.nn.specs import build, spec_of
from tinyclap.students import StudentAudioEncoder

__all__ = ["MaskedAudioEncoder", "restrict_embeddings", "shrink_encoder", "shrink_student"]


def shrink_student(student, kept_dims):
    """A copy of ``student`` whose projection outputs only ``kept_dims``.

    Parameters
    ----------
    student : torch.nn.Module
        The full student (D outputs): a :class:`PhiNetStudent`, or any student
        with a ``projection`` (:class:`tinyclap.nn.projection.Projection`) and
        an ``embedding_dim`` constructor argument.
    kept_dims : list of int
        The K dimensions to keep, in output order.

    Returns
    -------
    torch.nn.Module
        The same class rebuilt with ``embedding_dim=K``: same backbone
        weights; projection ``head -> K -> K``.

    Example
    -------
    >>> from tinyclap.students import PhiNetStudent
    >>> s = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64,
    ...                   head_channels=32, embedding_dim=16)
    >>> shrink_student(s, [3, 1, 7]).projection.linear2.weight.shape
    torch.Size([3, 3])
    """
    kept = torch.as_tensor(kept_dims, dtype=torch.long)
    spec = spec_of(student)
    if not isinstance(getattr(student, "projection", None), Projection) or (
        "embedding_dim" not in spec["kwargs"]
    ):
        raise ValueError(
            f"cannot prune a {type(student).__name__}: pruning needs a student with a "
            "`projection` (tinyclap.nn.projection.Projection) and an `embedding_dim` argument"
        )
    dim = int(spec["kwargs"]["embedding_dim"])
    if kept.unique().numel() != kept.numel() or kept.max() >= dim:
        raise ValueError(f"kept_dims must be distinct indices below {dim}")
    small = build({**spec, "kwargs": {**spec["kwargs"], "embedding_dim": len(kept)}})
    others = {k: v for k, v in student.state_dict().items() if not k.startswith("projection.")}
    missing, unexpected = small.load_state_dict(others, strict=False)
    if unexpected or any(not k.startswith("projection.") for k in missing):
        raise ValueError(f"shrunk student does not match: {missing} {unexpected}")
    full = student.projection
    with torch.no_grad():
        small.projection.linear1.weight.copy_(full.linear1.weight[kept])
        small.projection.linear2.weight.copy_(full.linear2.weight[kept][:, kept])
        small.projection.layer_norm.weight.copy_(full.layer_norm.weight[kept])
        small.projection.layer_norm.bias.copy_(full.layer_norm.bias[kept])
    return small


def shrink_encoder(encoder, kept_dims):
    """A :class:`StudentAudioEncoder` with a shrunk student and ``kept_dims`` set.

    ``kept_dims`` are indices into the teacher's space: if ``encoder`` is
    already pruned, they index its own outputs and are mapped back.
    """
    base_dims = encoder.kept_dims or list(range(encoder.embedding_dim))
    return StudentAudioEncoder(
        shrink_student(encoder.student, kept_dims),
        encoder.frontend_config,
        encoder.clip_seconds,
        kept_dims=[base_dims[i] for i in kept_dims],
        pad_mode=encoder.pad_mode,
    )


class MaskedAudioEncoder(torch.nn.Module):
    """Mask-only pruning: the student's embeddings with dropped dims zeroed.

    Parameters
    ----------
    encoder : StudentAudioEncoder
        An unpruned student.
    kept_dims : list of int
        Dimensions kept.
    """

    masked = True

    def __init__(self, encoder, kept_dims):
        super().__init__()
        self.encoder = encoder
        self.kept_dims = [int(i) for i in kept_dims]
        self.sample_rate = encoder.sample_rate
        self.window_samples = encoder.window_samples
        self.embedding_dim = encoder.embedding_dim
        self.pad_mode = encoder.pad_mode

    @torch.no_grad()
    def embed_audio(self, wavs):
        """Masked, re-normalised ``[B, D]`` embeddings of waveforms ``[B, T]``."""
        self.eval()
        student = self.encoder.student
        device = next(student.parameters()).device
        raw = student(self.encoder.frontend(wavs.to(device)))
        return F.normalize(mask_embeddings(raw, self.kept_dims), dim=-1)


def expected_shrunk_params(full_params, head_channels, dim, k):
    """Parameter count after shrinking a ``head -> D -> D`` projection to K.

    ``linear1`` loses ``head * (D - K)``, ``linear2`` loses ``D**2 - K**2`` and
    the LayerNorm ``2 * (D - K)``.

    Example
    -------
    >>> expected_shrunk_params(1000, 10, 8, 4)
    904
    """
    return full_params - head_channels * (dim - k) - (dim * dim - k * k) - 2 * (dim - k)
