"""Restricting latent embeddings to kept dimensions (pruned students)."""

import torch
import torch.nn.functional as F


def mask_embeddings(embeddings, kept_dims):
    """Zero every dimension not in ``kept_dims`` (no re-normalisation).

    Example
    -------
    >>> mask_embeddings(torch.tensor([[1.0, 2.0, 3.0]]), [2, 0]).tolist()
    [[1.0, 0.0, 3.0]]
    """
    mask = torch.zeros(embeddings.shape[-1], dtype=torch.bool, device=embeddings.device)
    mask[torch.as_tensor(kept_dims, device=embeddings.device)] = True
    return embeddings * mask


def restrict_embeddings(embeddings, kept_dims, masked=False):
    """Teacher-space embeddings ``[B, D]`` seen by a pruned student, re-normalised.

    Parameters
    ----------
    embeddings : Tensor
        ``[B, D]`` embeddings in the full latent space.
    kept_dims : list of int or None
        Kept dimensions, in the student's output order (None: unchanged).
    masked : bool
        ``True`` for a mask-only student (output ``[B, D]`` with zeros),
        ``False`` for a shrunk one (output ``[B, K]``).

    Example
    -------
    >>> restrict_embeddings(torch.tensor([[3.0, 0.0, 4.0]]), [2, 0]).tolist()
    [[0.800000011920929, 0.6000000238418579]]
    """
    if kept_dims is None:
        return embeddings
    if masked:
        return F.normalize(mask_embeddings(embeddings, kept_dims), dim=-1)
    return F.normalize(embeddings[:, torch.as_tensor(kept_dims, device=embeddings.device)], dim=-1)
