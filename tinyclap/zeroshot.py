"""Zero-shot classification: prompts, clip embeddings, metrics and plots.

A class is represented by the teacher's text embedding of a prompt such as
``this is the sound of {label}``; a clip is assigned to the class whose prompt
embedding has the highest cosine similarity with the clip's audio embedding.
Evaluation is deterministic: a clip is cut into all its analysis windows
(:func:`tinyclap.audio.split_windows`) and the window embeddings are averaged.
"""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tinyclap.audio import split_windows
from tinyclap.pruning import restrict_embeddings

DEFAULT_TEMPLATE = "this is the sound of {label}"


def class_prompts(labels, template=DEFAULT_TEMPLATE):
    """Fill ``template`` with each label.

    Example
    -------
    >>> class_prompts(["dog barking", "rain"])
    ['this is the sound of dog barking', 'this is the sound of rain']
    """
    if "{label}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{label}} field")
    return [template.format(label=label) for label in labels]


def prompt_embeddings(teacher, prompts, encoder=None):
    """The teacher's prompt embeddings in ``encoder``'s latent space.

    A pruned student (``encoder.kept_dims`` set) sees only its kept
    dimensions: the text embeddings are sliced (or masked, for a mask-only
    student) and re-normalised, so zero-shot scores stay cosines.

    Parameters
    ----------
    teacher : object
        Has ``embed_text(list[str]) -> [N, D]``.
    prompts : list of str
        One prompt per class.
    encoder : object, optional
        The audio encoder the prompts will be compared with.
    """
    embeddings = teacher.embed_text(list(prompts))
    return restrict_embeddings(
        embeddings, getattr(encoder, "kept_dims", None), getattr(encoder, "masked", False)
    )


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


def confusion_matrix(targets, predictions, num_classes):
    """Counts ``[true, predicted]``.

    Example
    -------
    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predictions)), 1)
    return matrix


def summarise(targets, predictions, labels):
    """Accuracy, balanced accuracy, per-class accuracy and the confusion matrix.

    Example
    -------
    >>> summarise([0, 1, 1], [0, 0, 1], ["a", "b"])["accuracy"]
    0.6666666666666666
    """
    matrix = confusion_matrix(targets, predictions, len(labels))
    support = matrix.sum(1)
    per_class = {
        label: (float(matrix[i, i] / support[i]) if support[i] else None)
        for i, label in enumerate(labels)
    }
    present = [v for v in per_class.values() if v is not None]
    return {
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        "balanced_accuracy": float(np.mean(present)) if present else 0.0,
        "num_clips": int(matrix.sum()),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "labels": list(labels),
    }


def plot_confusion(matrix, labels, path, title=""):
    """Save a row-normalised confusion matrix as a PNG.

    Parameters
    ----------
    matrix : array-like
        Counts ``[true, predicted]``.
    labels : list of str
        Class names.
    path : str or Path
        Output PNG.
    title : str
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=float)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = max(5.0, 0.32 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_report(summary, folder, title=""):
    """Write ``metrics.json`` and ``confusion.png`` of a :func:`summarise` result."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_confusion(summary["confusion_matrix"], summary["labels"], folder / "confusion.png", title)


def ensemble_prompt_embeddings(teacher, labels, templates=DEFAULT_TEMPLATE, encoder=None):
    """Class text embeddings from one prompt template or an ensemble of them.

    With several templates, each class's prompt embeddings are L2-normalised,
    averaged over the templates and normalised again (CLIP-style prompt
    ensembling). One template gives exactly :func:`prompt_embeddings`.

    Parameters
    ----------
    teacher : object
        Has ``embed_text(list[str]) -> [N, D]``.
    labels : list of str
        Class names as they go into the prompts.
    templates : str or list of str
        Template(s) with a ``{label}`` field.
    encoder : object, optional
        The audio encoder (a pruned student sees its kept dimensions only).

    Returns
    -------
    Tensor
        ``[C, D]`` (or ``[C, K]``) L2-normalised class embeddings.

    Example
    -------
    >>> class Toy:
    ...     def embed_text(self, texts):
    ...         return F.normalize(torch.tensor([[len(t), 1.0] for t in texts]), dim=-1)
    >>> ensemble_prompt_embeddings(Toy(), ["a", "bb"], ["{label}", "x {label}"]).shape
    torch.Size([2, 2])
    """
    if isinstance(templates, str):
        templates = [templates]
    templates = list(templates)
    if not templates:
        raise ValueError("prompt_template: give one template or a non-empty list")
    if len(templates) == 1:
        return prompt_embeddings(teacher, class_prompts(labels, templates[0]), encoder)
    embeddings = torch.stack(
        [
            F.normalize(prompt_embeddings(teacher, class_prompts(labels, t), encoder), dim=-1)
            for t in templates
        ]
    )
    return F.normalize(embeddings.mean(0), dim=-1)
