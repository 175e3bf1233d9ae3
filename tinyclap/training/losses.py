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
    >>> _ = torch.manual_seed(0)
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


# --- Embedding-as-target transfer (EAsT): regression losses ------------------
# ``L_reg(student feature, target)`` of :mod:`tinyclap.stages.transfer`. ``fitnet`` and
# ``cosine`` compare the target with the student feature mapped by a learned
# linear regressor (built by the transfer stage); ``dcor`` needs no regressor.


def fitnet_loss(prediction, target):
    """FitNet regression: squared L2 distance to the (detached) target, batch mean.

    The squared error is summed over the feature dimension (FitNets'
    ``||u - v||^2``), not averaged, so that the loss does not shrink with the
    target's dimension: for L2-normalised teacher embeddings it is O(1)
    whatever their size.

    Parameters
    ----------
    prediction : torch.Tensor
        ``[B, k]`` student features after the regressor.
    target : torch.Tensor
        ``[B, k]`` (compressed) teacher embeddings.

    Example
    -------
    >>> fitnet_loss(torch.ones(2, 3), torch.zeros(2, 3)).item()
    3.0
    """
    target = target.detach().to(prediction.dtype)
    return (prediction - target).pow(2).sum(-1).mean()


def cosine_loss(prediction, target):
    """``1 - mean(cos(prediction, target))`` with the target detached.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> e = torch.randn(4, 8)
    >>> round(cosine_loss(e, 3 * e).item(), 4), round(cosine_loss(e, -e).item(), 4)
    (0.0, 2.0)
    """
    target = target.detach().to(prediction.dtype)
    return 1.0 - F.cosine_similarity(prediction, target, dim=-1).mean()


def _centred_distances(x):
    """Double-centred Euclidean distance matrix ``[B, B]`` of the rows of ``x``.

    The square root is taken only where the squared distance is positive, so the
    gradient is defined on the diagonal and for duplicate rows.
    """
    x = x.flatten(1).float()
    squared = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(-1)
    positive = squared > 0
    distances = torch.where(positive, squared.clamp_min(1e-12).sqrt(), torch.zeros_like(squared))
    return (
        distances
        - distances.mean(0, keepdim=True)
        - distances.mean(1, keepdim=True)
        + distances.mean()
    )


def distance_correlation(x, y, eps=1e-9):
    """Squared sample distance correlation ``dCor^2(x, y)`` over a batch.

    ``A`` and ``B`` are the double-centred pairwise Euclidean distance matrices
    of the rows of ``x`` and ``y`` (Szekely et al. 2007, the V-statistic), and
    ``dCor^2 = <A, B> / sqrt(<A, A> <B, B>)`` with the Frobenius inner product.
    It lies in [0, 1]; it is 1 when ``y`` is a scaled rotation / isometric
    embedding of ``x`` (in 1-D: any affine map), 0 in the limit of independent
    samples (the V-statistic is biased upwards on small batches), and it does not
    need ``x`` and ``y`` to have the same dimension.

    Parameters
    ----------
    x, y : torch.Tensor
        ``[B, dx]`` and ``[B, dy]`` (rows are paired samples).
    eps : float
        Guards the division: a constant batch (or ``B = 1``) gives ``dCor^2 = 0``
        and no gradient.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 1)
    >>> round(distance_correlation(x, 3 * x + 2).item(), 4)
    1.0
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"need paired batches, got {x.shape[0]} and {y.shape[0]} rows")
    a, b = _centred_distances(x), _centred_distances(y)
    return (a * b).sum() / ((a * a).sum() * (b * b).sum()).clamp_min(eps).sqrt()


def dcor_loss(prediction, target):
    """Distance-correlation loss ``1 - dCor^2(prediction, target)``, target detached.

    No regressor is needed: the two sides may have different dimensions.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(32, 5)
    >>> abs(dcor_loss(x, torch.cat([x, torch.zeros(32, 7)], 1)).item()) < 1e-5
    True
    """
    return 1.0 - distance_correlation(prediction, target.detach())


# name -> (loss, whether the student side needs a learned linear regressor)
REGRESSION_LOSSES = {
    "fitnet": (fitnet_loss, True),
    "cosine": (cosine_loss, True),
    "dcor": (dcor_loss, False),
}


def regression_loss(name):
    """The ``L_reg`` named ``name`` and whether it needs a regressor.

    Example
    -------
    >>> regression_loss("dcor")[1]
    False
    """
    if name not in REGRESSION_LOSSES:
        known = ", ".join(sorted(REGRESSION_LOSSES))
        raise ValueError(f"unknown reg_loss {name!r}; known: {known}")
    return REGRESSION_LOSSES[name]
