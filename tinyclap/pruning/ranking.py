"""Rankings of the D latent dimensions: which K a pruned student keeps.

A ranking maps embeddings ``[N, D]`` (of the distillation set) to an order of
the dimensions, most important first. Add one by adding a function to
:data:`RANKINGS`.
"""

import numpy as np
import torch

RANKINGS = ("student", "teacher", "random")


def rank_dimensions(embeddings, method="student", seed=0):
    """Order the latent dimensions from most to least important.

    Parameters
    ----------
    embeddings : Tensor or ndarray
        ``[N, D]`` L2-normalised embeddings over the distillation set (the
        student's or the teacher's); only the shape is used for ``random``.
    method : str
        ``student`` or ``teacher`` (mean absolute activation, the two differ
        only by which embeddings are passed) or ``random``.
    seed : int
        Seed of the random ranking.

    Returns
    -------
    list of int
        All D indices, most important first.

    Example
    -------
    >>> rank_dimensions(torch.tensor([[0.1, -0.9, 0.4], [0.2, 0.8, -0.5]]))
    [1, 2, 0]
    """
    if method not in RANKINGS:
        raise ValueError(f"unknown ranking {method!r}; use one of {RANKINGS}")
    embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    if method == "random":
        generator = torch.Generator().manual_seed(int(seed))
        return torch.randperm(embeddings.shape[1], generator=generator).tolist()
    scores = embeddings.abs().mean(0)
    return torch.argsort(scores, descending=True, stable=True).tolist()
