"""Training objectives: unimodal distillation and CLAP's contrastive loss."""

import torch
import torch.nn.functional as F


def distillation_loss(student_emb, teacher_emb):
    """TinyCLAP's unimodal loss: ``-mean(cos(teacher, student))``.

    The teacher side is detached; text never enters, so any audio works as a
    distillation corpus. Minimum -1 (student aligned with teacher).

    Parameters
    ----------
    student_emb, teacher_emb : torch.Tensor
        ``[B, D]`` embeddings (normalised or not).

    Example
    -------
    >>> e = torch.randn(4, 8)
    >>> round(distillation_loss(e, 2 * e).item(), 4)
    -1.0
    """
    teacher = F.normalize(teacher_emb.detach().float(), dim=-1)
    student = F.normalize(student_emb, dim=-1)
    return -(teacher * student).sum(-1).mean()


def contrastive_loss(audio_emb, text_emb, logit_scale, max_scale=100.0):
    """CLAP's symmetric cross-entropy over the batch's audio-text similarities.

    Parameters
    ----------
    audio_emb, text_emb : torch.Tensor
        ``[B, D]`` embeddings of matching pairs (row i with row i).
    logit_scale : torch.Tensor
        Learnable log temperature; ``exp`` is clamped to ``max_scale``.
    max_scale : float
        Upper bound of the temperature-scaled logits' scale.

    Example
    -------
    >>> e = torch.eye(3)
    >>> contrastive_loss(e, e, torch.tensor(4.0)).item() < 0.1
    True
    """
    audio = F.normalize(audio_emb, dim=-1)
    text = F.normalize(text_emb, dim=-1)
    scale = logit_scale.exp().clamp(max=max_scale)
    logits = scale * audio @ text.t()
    targets = torch.arange(len(audio), device=audio.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))
