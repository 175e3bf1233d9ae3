"""Read SpeechBrain train logs and plot validation curves.

SpeechBrain's ``FileTrainLogger`` writes one line per epoch, e.g.::

    epoch: 3, lr: 1.00e-03 - train loss: 2.10 - valid loss: 2.31, valid zs_acc: 7.1e-01

A log may hold several stages one after the other (distillation, then the
projection finetuning restarts at epoch 1); they are kept in order.
"""

import re
from pathlib import Path

_FIELD = re.compile(r"(train|valid|test) ([\w ]+?): ([-+0-9.eE]+)")
_EPOCH = re.compile(r"^epoch: (\d+)")


def parse_train_log(path):
    """Return one dict per epoch line, e.g. ``{"epoch": 3, "valid_loss": 2.31}``.

    Example
    -------
    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", delete=False)
    >>> line = "epoch: 1, lr: 1e-03 - train loss: 4.1 - valid loss: 3.2, valid zs_acc: 0.5"
    >>> _ = f.write(line + chr(10))
    >>> f.close()
    >>> parse_train_log(f.name)
    [{'epoch': 1, 'train_loss': 4.1, 'valid_loss': 3.2, 'valid_zs_acc': 0.5}]
    >>> os.unlink(f.name)
    """
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _EPOCH.match(line)
        if not match:
            continue
        row = {"epoch": int(match.group(1))}
        for split, name, value in _FIELD.findall(line):
            row[f"{split}_{name.strip().replace(' ', '_')}"] = float(value)
        rows.append(row)
    return rows


def plot_training_curves(logs, path):
    """Plot validation loss and zero-shot accuracy of several runs.

    Parameters
    ----------
    logs : dict
        ``{run name: train_log.txt path}``.
    path : str or Path
        Output PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, log in logs.items():
        rows = parse_train_log(log)
        steps = range(1, len(rows) + 1)
        for ax, key in zip(axes, ("valid_loss", "valid_zs_acc")):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], marker="o", ms=3, label=name)
    axes[0].set_title("validation loss (per stage)")
    axes[1].set_title("validation zero-shot accuracy")
    for ax in axes:
        ax.set_xlabel("epoch (stages in order)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
