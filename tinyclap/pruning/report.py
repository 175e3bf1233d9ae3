"""The pruning table (CSV + markdown) and the accuracy-vs-K curve."""

from pathlib import Path

from tinyclap.pruning.ranking import RANKINGS

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
    colours = dict(zip(RANKINGS, ("tab:blue", "tab:orange", "tab:gray", "tab:green", "tab:red")))
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
