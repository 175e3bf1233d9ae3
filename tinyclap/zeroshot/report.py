"""Zero-shot metrics (accuracy, balanced accuracy, confusion) and their report files."""

import json
from pathlib import Path

import numpy as np


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
