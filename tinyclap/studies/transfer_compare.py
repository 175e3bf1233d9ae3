"""Compare EAsT variants over seeds: run ``train.py hparams/transfer.yaml``, tabulate.

``python -m tinyclap.studies.transfer_compare --seeds 1 2 3 --output_root runs/transfer_cmp
--out results/transfer_compare -- --teacher_checkpoint T [--key value ...]`` runs every
variant of :data:`VARIANTS` once per seed (the same student, epochs, folds and,
for a given seed, the same labelled subset and initialisation), each into
``<output_root>/<variant>/seed<seed>``. Finished runs are skipped, so an
interrupted comparison resumes, but only if made with the same settings
(variant options, seed and the extra arguments, recorded in
``compare_settings.json`` next to ``results.json``); otherwise the run is
made again (its finished folds are reused only if their settings match too,
see :mod:`tinyclap.stages.transfer`). It then writes
``table.md``, ``table.csv`` and ``results.json`` (with the exact command) to
``--out``: per variant, the accuracy of each seed (mean over the evaluated
folds), their mean and standard deviation, and the mean paired difference to
cross-entropy only (same seed).
"""

import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tinyclap.runtime.machine import machine_info
from tinyclap.stages.run import stage_command
from tinyclap.studies.entry import module_main

NAME = "transfer_compare"
HELP = "EAsT variants over seeds: train.py hparams/transfer.yaml, tabulated"
REST = "train_args"  # after --: overrides for every train.py run

# name -> (description, overrides of hparams/transfer.yaml)
VARIANTS = {
    "ce": ("CE only", ["--transfer_lambda", "0"]),
    "fitnet": ("EAsT FitNet, no compression", ["--reg_loss", "fitnet", "--compression", "none"]),
    "dcor": ("EAsT dCor, no compression", ["--reg_loss", "dcor", "--compression", "none"]),
    "pca_dcor": ("EAsT dCor, PCA k", ["--reg_loss", "dcor", "--compression", "pca"]),
    "learned_dcor": ("EAsT dCor, learned k", ["--reg_loss", "dcor", "--compression", "learned"]),
}


SETTINGS = "compare_settings.json"


def run_settings(name, seed, extra):
    """What makes a (variant, seed) run: the variant's options, the seed, the extra args."""
    return {"variant": name, "options": list(VARIANTS[name][1]), "seed": int(seed),
            "extra": [str(a) for a in extra]}  # fmt: skip


def _read_json(path):
    """The JSON object in ``path``, or None (missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_with(folder, settings, command):
    """Whether ``folder`` holds a ``results.json`` made with ``settings``.

    A run written before :data:`SETTINGS` existed counts as made with them if
    its ``results.json`` records the same ``train.py`` command line.
    """
    results = _read_json(Path(folder) / "results.json")
    if results is None:
        return False
    recorded = _read_json(Path(folder) / SETTINGS)
    if recorded is not None:
        return recorded == settings
    return results.get("command") == " ".join(command[1:])


def run_variant(name, seed, root, extra, python=sys.executable):
    """Run one (variant, seed) unless finished with the same settings; return its results.

    Returns
    -------
    dict
        The run's ``results.json``.
    """
    folder = Path(root) / name / f"seed{seed}"
    results = folder / "results.json"
    settings = run_settings(name, seed, extra)
    command = [*stage_command(python), "hparams/transfer.yaml", *VARIANTS[name][1]]
    command += ["--seed", str(seed), "--output_folder", str(folder), *settings["extra"]]
    if not finished_with(folder, settings, command):
        if results.exists():
            print(f"re-running {folder}: its results.json was made with other settings "
                  f"(now {json.dumps(settings)})", flush=True)  # fmt: skip
            (folder / SETTINGS).unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "compare.log", "w", encoding="utf-8") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
        (folder / SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return json.loads(results.read_text(encoding="utf-8"))


def aggregate(records):
    """Rows of the comparison table from ``{variant: {seed: results.json dict}}``.

    Example
    -------
    >>> rec = lambda m: {"accuracy": {"mean": m}, "variant": {}, "params": 1}
    >>> rows = aggregate({"ce": {1: rec(0.5), 2: rec(0.6)}, "dcor": {1: rec(0.6), 2: rec(0.8)}})
    >>> [(r["variant"], r["mean"], r["std"], r["delta_vs_ce"]) for r in rows]
    [('ce', 0.55, 0.0707, 0.0), ('dcor', 0.7, 0.1414, 0.15)]
    """
    base = records.get("ce", {})
    rows = []
    for name, by_seed in records.items():
        seeds = sorted(by_seed)
        accs = [by_seed[s]["accuracy"]["mean"] for s in seeds]
        paired = [
            by_seed[s]["accuracy"]["mean"] - base[s]["accuracy"]["mean"] for s in seeds if s in base
        ]
        first = by_seed[seeds[0]]
        rows.append(
            {
                "variant": name,
                "description": VARIANTS.get(name, (name,))[0],
                **{f"seed{s}": round(a, 4) for s, a in zip(seeds, accs)},
                "mean": round(statistics.fmean(accs), 4),
                "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
                "delta_vs_ce": round(statistics.fmean(paired), 4) if paired else None,
                "wins_vs_ce": sum(d > 0 for d in paired) if paired else None,
                "params": first["params"],
                **{
                    k: first["variant"].get(k)
                    for k in ("transfer_lambda", "reg_loss", "compression", "compression_dim")
                },
            }
        )
    return rows


def _cell(row, key):
    """Text of one table cell ('-' where it does not apply to the row)."""
    ce = row["variant"] == "ce"
    if key == "C":
        return "-" if ce else row["compression"]
    if key == "k":
        return "-" if ce or row["compression"] == "none" else str(row["compression_dim"])
    if key == "L_reg":
        return "-" if ce else row["reg_loss"]
    if key == "delta":
        return "-" if ce else f"{100 * row['delta_vs_ce']:+.1f}"
    return str(row[key])


def markdown_table(rows):
    """The comparison as a markdown table (accuracies in %)."""
    seeds = sorted(k for k in rows[0] if k.startswith("seed"))
    header = ["variant", "lambda", "L_reg", "C", "k", *seeds, "mean ± std", "Δ vs CE (paired)"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---:|---|---|---:|" + "---:|" * (len(seeds) + 2),
    ]
    for row in rows:
        cells = [row["description"], _cell(row, "transfer_lambda"), _cell(row, "L_reg")]
        cells += [_cell(row, "C"), _cell(row, "k")]
        cells += [f"{100 * row[s]:.1f}" for s in seeds]
        cells += [f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}", _cell(row, "delta")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows, out, command, seconds):
    """Write ``table.md``, ``table.csv`` and ``results.json`` (command, rows)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(markdown_table(rows), encoding="utf-8")
    record = {"command": command, "wall_minutes": round(seconds / 60, 1), "rows": rows,
              "machine": machine_info()}  # fmt: skip
    (out / "results.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


def add_arguments(parser):
    """The options of ``tinyclap study transfer_compare`` (``-- ...``: train.py overrides)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--output_root", default="runs/transfer_cmp")
    parser.add_argument("--out", default="results/transfer_compare")


def run(args):
    """Run every variant for every seed, then write the tables; returns the rows."""
    start = time.time()
    records = {}
    for seed in args.seeds:
        for name in args.variants:
            print(f"[{time.time() - start:6.0f}s] {name} seed {seed}", flush=True)
            records.setdefault(name, {})[seed] = run_variant(name, seed, args.output_root,
                                                             args.train_args)  # fmt: skip
    rows = aggregate(records)
    write_tables(rows, args.out, args.invocation, time.time() - start)
    print((Path(args.out) / "table.md").read_text(encoding="utf-8"))
    return rows


def main(argv=None):
    """``python -m tinyclap.studies.transfer_compare``: as ``tinyclap study transfer_compare``."""
    return module_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
