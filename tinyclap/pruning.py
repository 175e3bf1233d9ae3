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

import numpy as np
import torch
import torch.nn.functional as F

from tinyclap.students import PhiNetStudent, StudentAudioEncoder

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


def shrink_student(student, kept_dims):
    """A copy of ``student`` whose projection outputs only ``kept_dims``.

    Parameters
    ----------
    student : PhiNetStudent
        The full student (D outputs).
    kept_dims : list of int
        The K dimensions to keep, in output order.

    Returns
    -------
    PhiNetStudent
        Same backbone weights; projection ``head -> K -> K``.

    Example
    -------
    >>> s = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64,
    ...                   head_channels=32, embedding_dim=16)
    >>> shrink_student(s, [3, 1, 7]).projection.linear2.weight.shape
    torch.Size([3, 3])
    """
    kept = torch.as_tensor(kept_dims, dtype=torch.long)
    if kept.unique().numel() != kept.numel() or kept.max() >= student.embedding_dim:
        raise ValueError(f"kept_dims must be distinct indices below {student.embedding_dim}")
    small = PhiNetStudent(**{**student.config, "embedding_dim": len(kept)})
    small.base.load_state_dict(student.base.state_dict())
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


TABLE_COLUMNS = (
    ("ranking", "ranking"),
    ("k", "K"),
    ("params", "params"),
    ("macs", "MACs"),
    ("acc_mask", "zs acc, mask only"),
    ("acc_shrunk", "zs acc, shrunk"),
    ("acc_finetuned", "zs acc, shrunk + finetune"),
    ("cos_shrunk_vs_mask", "cos(shrunk, mask)"),
)


def write_pruning_table(rows, folder, command=""):
    """Write ``pruning_table.md`` and ``pruning_table.csv`` of the K sweep."""
    import csv
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [key for key, _ in TABLE_COLUMNS]
    with open(folder / "pruning_table.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    def cell(key, value):
        if value is None:
            return ""
        if key.startswith("acc"):
            return f"{100 * value:.1f}%"
        if key.startswith("cos"):
            return f"{value:.3f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = [
        "| " + " | ".join(header for _, header in TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(k, row.get(k)) for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    if command:
        text = f"Command: `{command}`\n\n" + text
    (folder / "pruning_table.md").write_text(text, encoding="utf-8")
    return text


def plot_pruning_curve(rows, path, references=None):
    """Zero-shot accuracy against K, one colour per ranking.

    Solid lines: shrink + finetune; dashed: mask only; dotted: shrunk before
    finetuning. ``references`` maps labels (e.g. "unpruned student") to
    accuracies drawn as horizontal lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = dict(zip(RANKINGS, ("tab:blue", "tab:orange", "tab:gray")))
    styles = (("acc_finetuned", "-", "shrink + finetune"), ("acc_mask", "--", "mask only"),
              ("acc_shrunk", ":", "shrunk, no finetune"))  # fmt: skip
    for ranking in dict.fromkeys(r["ranking"] for r in rows):
        points = sorted((r for r in rows if r["ranking"] == ranking), key=lambda r: r["k"])
        ks = [r["k"] for r in points]
        for key, style, label in styles:
            values = [r.get(key) for r in points]
            if all(v is not None for v in values):
                ax.plot(ks, [100 * v for v in values], style, marker="o", ms=3,
                        color=colours.get(ranking), label=f"{ranking}: {label}")  # fmt: skip
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(100 * value, color="black", lw=0.8, ls=("-", "--")[i % 2], label=label)
    ax.set_xscale("log", base=2)
    all_ks = sorted({r["k"] for r in rows})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set_xlabel("K (kept latent dimensions)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
