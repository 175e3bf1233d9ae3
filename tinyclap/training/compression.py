"""Teacher-embedding compression ``C`` for embedding-as-target transfer (EAsT).

Ding & Lerch (2024) compress a large teacher embedding before using it as a
regression target, to filter out knowledge that is irrelevant to the target
task. This module is *our reading* of that design, not a port of their code:

- ``none``: the teacher embedding as it is (``k = D``);
- ``pca``: the top ``k`` principal components, fitted once (before training)
  on the teacher embeddings of the student's training set; fixed afterwards;
- ``learned``: a trainable linear map ``D -> k`` (on the embedding
  standardised over its entries) with its own linear probe
  ``k -> classes``. It is updated **only** by its own loss ``L_teacher``, the
  cross-entropy of the probe on ``C(teacher embedding)``, trained jointly with
  the student (same batches, same optimizer, disjoint parameters). The student
  receives ``C(teacher embedding)`` detached, so the student's loss never
  reaches ``C``.

Every compression is a module with ``forward(teacher_emb) -> [B, k]``,
``out_dim`` and ``teacher_loss(teacher_emb, labels)`` (``None`` when there is
nothing to train), so the Brain treats them alike.
"""

import torch
import torch.nn.functional as F

COMPRESSIONS = ("none", "pca", "learned")


class NoCompression(torch.nn.Module):
    """Identity: the target is the teacher embedding itself.

    Example
    -------
    >>> NoCompression(8)(torch.ones(2, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, dim):
        super().__init__()
        self.out_dim = int(dim)

    def forward(self, teacher_emb):
        """Return ``teacher_emb`` unchanged."""
        return teacher_emb

    def teacher_loss(self, teacher_emb, labels):
        """Nothing to train: ``None``."""
        return None


class PCACompression(torch.nn.Module):
    """Projection on the top ``k`` principal components of fitting embeddings.

    Parameters
    ----------
    embeddings : torch.Tensor
        ``[N, D]`` teacher embeddings to fit on (``k <= min(N, D)``).
    k : int
        Number of components kept.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> emb = torch.randn(50, 6) * torch.tensor([5.0, 4.0, 3.0, 0.1, 0.1, 0.1])
    >>> pca = PCACompression(emb, 3)
    >>> z = pca(emb)
    >>> z.shape, bool(pca.explained_variance_ratio > 0.99)
    (torch.Size([50, 3]), True)
    """

    def __init__(self, embeddings, k):
        super().__init__()
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        n, dim = embeddings.shape
        _check_k(k, dim)
        if k > n:
            raise ValueError(f"PCA with k={k} components needs at least {k} embeddings, got {n}")
        mean = embeddings.mean(0)
        _, singular, vh = torch.linalg.svd(embeddings - mean, full_matrices=False)
        variance = singular.pow(2)
        self.register_buffer("mean", mean)
        self.register_buffer("components", vh[:k].T.contiguous())  # [D, k]
        self.explained_variance_ratio = float(variance[:k].sum() / variance.sum().clamp_min(1e-12))
        self.out_dim = int(k)

    def forward(self, teacher_emb):
        """``[B, D]`` -> ``[B, k]`` principal-component scores."""
        return (teacher_emb - self.mean) @ self.components

    def teacher_loss(self, teacher_emb, labels):
        """Fitted once, not trained: ``None``."""
        return None


class LearnedCompression(torch.nn.Module):
    """A trainable teacher transformation ``D -> k`` with a linear probe.

    Parameters
    ----------
    dim : int
        Teacher embedding size ``D``.
    k : int
        Compressed size.
    num_classes : int
        Classes of the target task (the probe's outputs).

    Example
    -------
    >>> c = LearnedCompression(16, 4, num_classes=3)
    >>> t, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 0, 1])
    >>> c(t).shape, c.teacher_loss(t, y).ndim
    (torch.Size([5, 4]), 0)
    """

    def __init__(self, dim, k, num_classes):
        super().__init__()
        _check_k(k, dim)
        # Parameter-free standardisation of each embedding (zero mean, unit
        # variance over its D entries): an L2-normalised embedding has entries
        # of size ~1/sqrt(D), which made the linear map learn very slowly.
        self.standardise = torch.nn.LayerNorm(int(dim), elementwise_affine=False)
        self.transform = torch.nn.Linear(int(dim), int(k))
        self.probe = torch.nn.Linear(int(k), int(num_classes))
        self.out_dim = int(k)

    def forward(self, teacher_emb):
        """``[B, D]`` -> ``[B, k]`` compressed embeddings."""
        return self.transform(self.standardise(teacher_emb))

    def teacher_loss(self, teacher_emb, labels):
        """``L_teacher``: cross-entropy of the probe on ``C(teacher_emb)``.

        Only ``transform`` and ``probe`` receive its gradients (the teacher
        embedding is a constant).
        """
        return F.cross_entropy(self.probe(self(teacher_emb.detach())), labels)


def _check_k(k, dim):
    if not 1 <= int(k) <= int(dim):
        raise ValueError(f"compression_dim k={k} must be between 1 and the teacher dim {dim}")


def build_compression(name, dim, k, num_classes, fit_embeddings=None):
    """Build the compression ``name`` for ``dim``-d teacher embeddings.

    Parameters
    ----------
    name : str
        ``none``, ``pca`` or ``learned``.
    dim : int
        Teacher embedding size.
    k : int
        Compressed size (ignored for ``none``).
    num_classes : int
        Classes of the task (the learned compression's probe).
    fit_embeddings : torch.Tensor, optional
        ``[N, D]`` embeddings to fit PCA on (required for ``pca``).

    Example
    -------
    >>> build_compression("learned", 32, 8, 5).out_dim
    8
    >>> build_compression("zip", 32, 8, 5)
    Traceback (most recent call last):
    ...
    ValueError: unknown compression 'zip'; known: none, pca, learned
    """
    if name == "none":
        return NoCompression(dim)
    if name == "pca":
        if fit_embeddings is None:
            raise ValueError("pca compression needs the training set's teacher embeddings")
        return PCACompression(fit_embeddings, k)
    if name == "learned":
        return LearnedCompression(dim, k, num_classes)
    raise ValueError(f"unknown compression {name!r}; known: {', '.join(COMPRESSIONS)}")
