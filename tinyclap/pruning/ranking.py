"""Rankings of the D latent dimensions: which K a pruned student keeps.

A ranking scores the dimensions from embeddings ``[N, D]`` of the
distillation set (L2-normalised): the student's own, or the teacher's cached
ones. :data:`RANKINGS` maps each name to the embeddings it reads and its
scoring function; a new ranking is one entry here (and a test).
"""

from collections import namedtuple

import numpy as np
import torch

Ranking = namedtuple("Ranking", ["source", "score"])
Ranking.__doc__ = (
    """A ranking: ``source`` ("student", "teacher" or None) and ``score(emb, seed)``."""
)


def mean_abs_activation(embeddings, seed=0):
    """Score of each dimension: its mean absolute value (tinyCLAP's criterion)."""
    return embeddings.abs().mean(0)


def random_scores(embeddings, seed=0):
    """A random order of the dimensions (a control) as scores, reproducible from ``seed``.

    The order is ``torch.randperm(D)``: its first index gets the highest score.
    """
    dim = embeddings.shape[1]
    order = torch.randperm(dim, generator=torch.Generator().manual_seed(int(seed)))
    scores = torch.empty(dim)
    scores[order] = torch.arange(dim, 0, -1, dtype=torch.float32)
    return scores


RANKINGS = {
    "student": Ranking("student", mean_abs_activation),
    "teacher": Ranking("teacher", mean_abs_activation),
    "random": Ranking(None, random_scores),
}


def rank_dimensions(embeddings, method="student", seed=0):
    """Order the latent dimensions from most to least important.

    Parameters
    ----------
    embeddings : Tensor or ndarray
        ``[N, D]`` L2-normalised embeddings over the distillation set (the
        ranking's ``source``); only the shape is used for ``random``.
    method : str
        A key of :data:`RANKINGS`: ``student`` or ``teacher`` (mean absolute
        activation of the student's or the teacher's embeddings) or ``random``.
    seed : int
        Seed of the random ranking.

    Returns
    -------
    list of int
        All D indices, most important first (ties keep index order).

    Example
    -------
    >>> rank_dimensions(torch.tensor([[0.1, -0.9, 0.4], [0.2, 0.8, -0.5]]))
    [1, 2, 0]
    """
    if method not in RANKINGS:
        raise ValueError(f"unknown ranking {method!r}; use one of {tuple(RANKINGS)}")
    embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    scores = RANKINGS[method].score(embeddings, seed)
    return torch.argsort(scores, descending=True, stable=True).tolist()
