"""Aggregate a sweep into one table and one Pareto plot.

``tinyclap report RESULTS_DIR [--teacher CKPT] [--out DIR]`` reads every
``results.json`` of a distillation run under ``RESULTS_DIR`` (e.g. the output
root of ``tinyclap sweep``), profiles each run's student checkpoint with
:func:`tinyclap.nn.complexity.profile_models` -- so latencies are measured now, on
this machine, with the stated number of threads -- and writes to ``--out``:

- ``table.md`` and ``table.csv``: one row per student (PhiNet knobs,
  parameters in total / backbone / projection, MACs per clip, median CPU ms at
  batch 1 and 16, peak memory, zero-shot accuracy per dataset, Pareto flags),
  sorted by MACs, and the teacher's row for reference;
- ``pareto.png``: accuracy against MACs and against parameters (log scale),
  Pareto-optimal students filled and connected, the teacher as a star;
- ``README.md``: the commands that made the sweep and the report, the column
  definitions, the machine and its load, and the text of ``--notes FILE``.

MCU columns (:mod:`tinyclap.studies.mcu_columns`): ``int8 flash`` and ``TFLM
arena`` bytes of each student, read from an ``--mcu`` export of its run or, with
``--mcu``, converted now (the ``mcu`` extra). ``--max_arena_kb`` /
``--max_flash_kb`` ask for the best student that fits a chip (a ``fits`` column,
and the pick printed; none fitting is an error naming the closest), and
``--pareto_x arena`` draws the Pareto front against arena bytes.

A student is *Pareto-optimal* (for a cost: MACs or parameters) when no other
student costs at most as much and scores at least as well, one of the two
strictly (:func:`pareto_front`). With several datasets the score is the mean
accuracy; the teacher never takes part.

Example
-------
tinyclap report runs/sweep --teacher runs/demo/teacher/teacher.ckpt --out results/sweep
tinyclap report runs/sweep --mcu --max_arena_kb 512 --max_flash_kb 1024 --pareto_x arena
"""

import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

from tinyclap.nn.complexity import format_markdown_table, profile_models
from tinyclap.runtime.machine import machine_info
from tinyclap.studies.entry import module_main
from tinyclap.studies.mcu_columns import budget_line, mcu_figures, within_budget
from tinyclap.studies.sweep import MANIFEST, format_value, read_top_level

NAME = "report"
HELP = "table + Pareto plot of a sweep"

__all__ = [
    "accuracy_columns",
    "collect_rows",
    "mark_pareto",
    "pareto_front",
    "plot_pareto",
    "write_report",
]

COSTS = {
    "macs": "MACs per clip",
    "params": "parameters",
    "arena": "TFLM arena bytes",
    "flash": "int8 flash bytes",
}
COST_KEYS = {"macs": "macs", "params": "params", "arena": "arena_bytes", "flash": "flash_bytes"}
PROFILE_KEYS = (
    "params",
    "backbone_params",
    "projection_params",
    "macs",
    "ms_b1",
    "ms_b16",
    "peak_mem_mb",
)


def pareto_front(costs, scores):
    """Which points are Pareto-optimal: lowest cost, highest score.

    A point is dominated when another point has a cost ``<=`` and a score
    ``>=`` its own, one of the two strictly. Points with a missing (``None``)
    cost or score are never on the front and never dominate.

    Parameters
    ----------
    costs, scores : sequence of float or None
        One value per point.

    Returns
    -------
    list of bool
        ``True`` for the non-dominated points (exact ties are all kept).

    Examples
    --------
    >>> pareto_front([1, 2, 2, 3, 4, 1], [50, 60, 55, 60, 80, 40])
    [True, True, False, False, True, False]
    """
    if len(costs) != len(scores):
        raise ValueError(f"{len(costs)} costs but {len(scores)} scores")
    valid = [c is not None and s is not None for c, s in zip(costs, scores)]
    front = []
    for i, (cost, score) in enumerate(zip(costs, scores)):
        if not valid[i]:
            front.append(False)
            continue
        dominated = any(
            valid[j]
            and costs[j] <= cost
            and scores[j] >= score
            and (costs[j] < cost or scores[j] > score)
            for j in range(len(costs))
            if j != i
        )
        front.append(not dominated)
    return front


def accuracy_columns(record, dataset="test"):
    """Zero-shot accuracies of a ``results.json`` record, in percent.

    ``zs_accuracy`` is a fraction (one test set, named ``dataset``) or a
    ``{dataset: fraction}`` mapping (one column each).

    Examples
    --------
    >>> accuracy_columns({"zs_accuracy": 0.9208}, "synth")
    {'acc_synth': 92.08}
    >>> accuracy_columns({"zs_accuracy": {"esc50": 0.77, "us8k": 0.697}})
    {'acc_esc50': 77.0, 'acc_us8k': 69.7}
    >>> accuracy_columns({})
    {}
    """
    value = record.get("zs_accuracy")
    if value is None:
        return {}
    if isinstance(value, dict):
        return {f"acc_{k}": round(100.0 * float(v), 4) for k, v in value.items()}
    return {f"acc_{dataset}": round(100.0 * float(value), 4)}


def _score(row, acc_keys):
    """Mean accuracy over the datasets a row has (``None`` if none)."""
    values = [row[k] for k in acc_keys if row.get(k) is not None]
    return statistics.fmean(values) if values else None


def mark_pareto(rows, acc_keys):
    """Set ``score`` and ``pareto_COST`` (macs, params, arena, flash) on student rows.

    Parameters
    ----------
    rows : list of dict
        Rows with ``kind`` (``student`` or ``teacher``), costs and accuracies;
        modified in place (teacher rows get ``False`` flags).
    acc_keys : list of str
        Accuracy columns averaged into the score.

    Examples
    --------
    >>> rows = [{"kind": "student", "macs": 1, "params": 9, "acc_x": 50.0},
    ...         {"kind": "student", "macs": 2, "params": 5, "acc_x": 60.0},
    ...         {"kind": "teacher", "macs": 9, "params": 99, "acc_x": 90.0}]
    >>> _ = mark_pareto(rows, ["acc_x"])
    >>> [(r["pareto_macs"], r["pareto_params"]) for r in rows]
    [(True, False), (True, True), (False, False)]
    """
    students = [r for r in rows if r.get("kind") == "student"]
    for row in rows:
        row["score"] = _score(row, acc_keys)
    for cost in COSTS:
        key = COST_KEYS[cost]
        flags = pareto_front([r.get(key) for r in students], [r["score"] for r in students])
        for row in rows:
            row[f"pareto_{cost}"] = False
        for row, flag in zip(students, flags):
            row[f"pareto_{cost}"] = flag
    return rows


def _dataset_of(run_folder):
    """The ``dataset`` hparam of a run (from its saved ``hyperparams.yaml``)."""
    path = Path(run_folder) / "hyperparams.yaml"
    if path.is_file():
        return read_top_level(path, ["dataset"]).get("dataset", "test")
    return "test"


def _find_file(recorded, run_folder):
    """``recorded`` as given (relative to the cwd) or, else, its name in ``run_folder``."""
    for candidate in (Path(recorded), Path(run_folder) / Path(recorded).name):
        if candidate.is_file():
            return candidate
    return None


def _student_row(results_path, results_dir):
    """Row of one distillation run and its loaded student (``None`` if no checkpoint)."""
    record = json.loads(results_path.read_text(encoding="utf-8"))
    folder = results_path.parent
    config = record.get("student_config", {})
    row = {
        "kind": "student",
        "model": folder.relative_to(results_dir).as_posix() if folder != results_dir else ".",
        "alpha": format_value(config["alpha"]) if "alpha" in config else None,
        "beta": format_value(config["beta"]) if "beta" in config else None,
        "t_zero": format_value(config["t_zero"]) if "t_zero" in config else None,
        "num_layers": config.get("num_layers"),
        "params": record.get("params"),
        "train_seconds": record.get("train_seconds"),
        "command": record.get("command", ""),
        **accuracy_columns(record, _dataset_of(folder)),
    }
    checkpoint = _find_file(record.get("student_checkpoint", "student.ckpt"), folder)
    if checkpoint is None:
        print(f"[report] {row['model']}: no student checkpoint, not profiled", file=sys.stderr)
        return row, None
    from tinyclap.students.encoder import load_student

    row["checkpoint"] = str(checkpoint)
    row["run_folder"] = str(folder)
    return row, load_student(checkpoint)


def _teacher_row(checkpoint):
    """Reference row of a teacher checkpoint (accuracy from its run's results.json)."""
    from tinyclap.teachers import load_teacher

    checkpoint = Path(checkpoint)
    row = {"kind": "teacher", "model": f"teacher ({checkpoint})", "checkpoint": str(checkpoint)}
    results = checkpoint.parent / "results.json"
    if results.is_file():
        record = json.loads(results.read_text(encoding="utf-8"))
        row["command"] = record.get("command", "")
        row.update(accuracy_columns(record, _dataset_of(checkpoint.parent)))
    return row, load_teacher(str(checkpoint))


def collect_rows(results_dir, teacher=None, profile=None, threads=1, repeats=20, mcu=False,
                 calibration_manifest=None):  # fmt: skip
    """One row per distillation run under ``results_dir`` (plus the teacher's).

    Parameters
    ----------
    results_dir : str or Path
        Searched recursively for ``results.json`` files of ``distill`` runs
        (other stages are ignored).
    teacher : str or Path, optional
        Teacher checkpoint for the reference row.
    profile : callable, optional
        ``profile(model) -> dict`` of complexity figures, called per model. By
        default all models are profiled together with
        :func:`tinyclap.nn.complexity.profile_models` (``threads``, ``repeats``,
        batch sizes 1 and 16, latency in interleaved rounds).
    threads, repeats : int
        Latency settings of the default profiler.
    mcu : bool
        Convert each student without MCU figures (:func:`mcu_figures`); the
        figures of ``--mcu`` exports and earlier conversions are read anyway.
    calibration_manifest : str, optional
        Calibration clips of those conversions (default: each run's ``train.json``).

    Returns
    -------
    (list of dict, list of str)
        Rows (students sorted by MACs, then parameters, then name; the
        teacher last) with Pareto flags, and the accuracy column keys.
    """
    results_dir = Path(results_dir)
    pairs = []
    for path in sorted(results_dir.rglob("results.json")):
        try:
            stage = json.loads(path.read_text(encoding="utf-8")).get("stage")
        except ValueError:
            print(f"[report] {path}: unreadable, skipped", file=sys.stderr)
            continue
        if stage == "distill":
            pairs.append(_student_row(path, results_dir))
    if teacher is not None:
        pairs.append(_teacher_row(teacher))
    loaded = [(row, model) for row, model in pairs if model is not None]
    print(f"[report] profiling {len(loaded)} models", file=sys.stderr, flush=True)
    if profile is None:
        infos = profile_models([m for _, m in loaded], threads, (1, 16), repeats=repeats)
    else:
        infos = [profile(model) for _, model in loaded]
    for (row, _), info in zip(loaded, infos):
        row.update(info)
    for row, _ in loaded:
        if row["kind"] == "student":
            row.update(mcu_figures(row["run_folder"], row["checkpoint"], mcu, calibration_manifest))

    def order(row):
        macs, params = row.get("macs"), row.get("params")
        return (row["kind"] == "teacher", macs is None, macs or 0, params or 0, row["model"])

    rows = sorted((row for row, _ in pairs), key=order)
    acc_keys = sorted({k for row in rows for k in row if k.startswith("acc_")})
    mark_pareto(rows, acc_keys)
    return rows, acc_keys


def _pareto_label(row):
    """``MACs, params`` / ``MACs`` / ``params`` / ``""`` for the table."""
    flags = (("MACs", "macs"), ("params", "params"), ("arena", "arena"), ("flash", "flash"))
    return ", ".join(name for name, key in flags if row.get(f"pareto_{key}"))


def table_columns(acc_keys, mcu=False, budget=False):
    """``(key, header)`` columns of ``table.md`` (MCU sizes, and ``fits`` of a budget).

    Examples
    --------
    >>> [h for _, h in table_columns(["acc_synth"])][-2:]
    ['synth acc %', 'Pareto']
    >>> [h for _, h in table_columns(["acc_synth"], mcu=True, budget=True)][-5:]
    ['int8 flash', 'TFLM arena', 'fits', 'synth acc %', 'Pareto']
    """
    sizes = [("flash_bytes", "int8 flash"), ("arena_bytes", "TFLM arena")] if mcu else []
    return [
        ("model", "model"),
        ("alpha", "α"),
        ("beta", "β"),
        ("t_zero", "t0"),
        ("num_layers", "N"),
        ("params", "params"),
        ("backbone_params", "backbone"),
        ("projection_params", "projection"),
        ("macs", "MACs"),
        ("ms_b1", "ms b1"),
        ("ms_b16", "ms b16"),
        ("peak_mem_mb", "peak MB"),
        *sizes,
        *([("fits", "fits")] if budget else []),
        *[(k, f"{k[4:]} acc %") for k in acc_keys],
        ("pareto", "Pareto"),
    ]


CSV_KEYS = (
    "kind",
    "model",
    "alpha",
    "beta",
    "t_zero",
    "num_layers",
    *PROFILE_KEYS,
    "threads",
    "flash_bytes",
    "arena_bytes",
)


def plot_pareto(rows, acc_keys, path, costs=("macs", "params")):
    """One panel per cost (default: MACs, parameters), accuracy against it, fronts marked.

    Parameters
    ----------
    rows : list of dict
        From :func:`collect_rows` (with ``score`` and ``pareto_*`` set).
    acc_keys : list of str
        Accuracy columns (their mean is the y axis).
    path : str or Path
        Output image.
    costs : sequence of str
        Keys of :data:`COSTS` (``arena``, ``flash``: the MCU figures).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    students = [r for r in rows if r["kind"] == "student" and r.get("score") is not None]
    teachers = [r for r in rows if r["kind"] == "teacher" and r.get("score") is not None]
    ylabel = "zero-shot accuracy (%)"
    if len(acc_keys) == 1:
        ylabel = f"{acc_keys[0][4:]} zero-shot accuracy (%)"
    elif acc_keys:
        ylabel = f"mean zero-shot accuracy over {len(acc_keys)} datasets (%)"
    fig, axes = plt.subplots(1, len(costs), figsize=(6 * len(costs), 4.8), sharey=True,
                             squeeze=False)  # fmt: skip
    axes = axes[0]
    for ax, cost in zip(axes, costs):
        label, key = COSTS[cost], COST_KEYS[cost]
        pts = [r for r in students if r.get(key) is not None]
        others = [r for r in pts if not r[f"pareto_{cost}"]]
        front = sorted((r for r in pts if r[f"pareto_{cost}"]), key=lambda r: r[key])
        ax.scatter(
            [r[key] for r in others],
            [r["score"] for r in others],
            facecolors="none",
            edgecolors="tab:blue",
            label="student",
        )
        ax.plot(
            [r[key] for r in front],
            [r["score"] for r in front],
            "o-",
            color="tab:blue",
            drawstyle="steps-post",
            label="Pareto-optimal student",
        )
        for r in pts:  # front: label above left; others: below right (fewer overlaps)
            on_front = r[f"pareto_{cost}"]
            ax.annotate(
                r["model"],
                (r[key], r["score"]),
                fontsize=7,
                xytext=(-4, 5) if on_front else (4, -10),
                ha="right" if on_front else "left",
                textcoords="offset points",
            )
        for r in teachers:
            if r.get(key) is not None:
                ax.scatter(
                    [r[key]],
                    [r["score"]],
                    marker="*",
                    s=160,
                    color="tab:red",
                    label="teacher",
                    zorder=3,
                )
                ax.axhline(r["score"], color="tab:red", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))  # 200k, 1M, 20M
        ax.xaxis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_minor_formatter(ticker.EngFormatter(sep=""))
        ax.margins(x=0.15)
        ax.set_xlabel(label + " (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"accuracy vs {label}")
    axes[0].set_ylabel(ylabel)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _machine(threads, repeats):
    """Where and how latency was measured."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        **machine_info(),
        "latency_threads": threads,
        "latency_repeats": repeats,
        "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
        "date": time.strftime("%F %T"),
    }


def write_report(rows, acc_keys, out, *, command="", sweep_commands=(), notes=(), machine=None,
                 costs=("macs", "params"), budget=None):  # fmt: skip
    """Write ``table.md``, ``table.csv``, ``pareto.png`` and ``README.md`` to ``out``.

    Parameters
    ----------
    rows, acc_keys
        From :func:`collect_rows`.
    out : str or Path
        Output folder (created).
    command : str
        The report's own command line.
    sweep_commands : sequence of str
        The commands that made the runs (from ``sweep_manifest.json``).
    notes : sequence of str
        Extra paragraphs for ``README.md``.
    machine : dict, optional
        Measurement conditions, listed in ``README.md``.
    costs : sequence of str
        The Pareto plot's x axes (:func:`plot_pareto`).
    budget : dict, optional
        ``{"max_arena_kb", "max_flash_kb"}``: rows get a ``fits`` column.

    Returns
    -------
    str
        The markdown table.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        row["pareto"] = _pareto_label(row)
    mcu = any(r.get("arena_bytes") is not None for r in rows)
    if budget:
        fitting, _ = within_budget(rows, **budget)
        for row in rows:
            measured = row["kind"] == "student" and row.get("arena_bytes") is not None
            row["fits"] = ("yes" if row in fitting else "no") if measured else None
    shown = [{k: (round(v, 2) if k.startswith("acc_") else v) for k, v in r.items()} for r in rows]
    table = format_markdown_table(shown, table_columns(acc_keys, mcu, bool(budget)))
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    keys = [*CSV_KEYS, *acc_keys, "score", *(f"pareto_{c}" for c in COSTS), "train_seconds"]
    keys += ["checkpoint", "command"]
    with open(out / "table.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in keys})
    plot_pareto(rows, acc_keys, out / "pareto.png", costs)
    machine = machine or {}
    threads = machine.get("latency_threads", "?")
    lines = ["# Sweep report", ""]
    if sweep_commands:
        lines += ["Runs made with:", "", "```bash", *sweep_commands, "```", ""]
    if command:
        lines += ["Table and plot made with:", "", "```bash", command, "```", ""]
    lines += [
        table,
        "",
        "![Pareto fronts](pareto.png)",
        "",
        "Columns: parameters of the audio encoder in total, in the backbone (PhiNet "
        "or CNN with its 1x1 head) and in the CLAP projection; MACs of one clip's "
        "log-mels counted with torchinfo (frontend excluded); `ms bB`: median CPU "
        "time of one forward pass of a batch of B waveforms (the whole batch, "
        f"frontend included) over {machine.get('latency_repeats', '?')} runs with "
        f"{threads} torch thread(s), all models timed in interleaved rounds so that "
        "slow phases of the machine hit them alike; `peak MB`: weights plus the peak "
        "tensor memory of one batch-1 forward pass (torch.profiler, "
        "profile_memory=True), in 10^6 bytes; accuracy: zero-shot top-1 on each "
        "dataset's test split, from each run's results.json. Pareto: the student is "
        "Pareto-optimal for that cost (no other student is as cheap and as accurate, "
        "one strictly); the teacher is a reference and not part of the fronts.",
        "",
    ]
    if mcu:
        lines += [
            "MCU columns: `int8 flash` is the full-int8 `.tflite` model (litert-torch PT2E; "
            "the frontend and label table of an export add a few KB), `TFLM arena` the tensor "
            "arena TensorFlow Lite Micro's recording allocator measured for one window; read "
            "from each run's `--mcu` export (`mcu/report.json`) or converted by "
            "`tinyclap report --mcu` (`mcu/sizes.json`).",
            "",
        ]
    if budget:
        limits = ", ".join(f"{k[4:-3]} <= {v} KB" for k, v in budget.items() if v is not None)
        lines += [f"Budget: {limits} (`fits`).", ""]
    if machine:
        lines += ["Measured on: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    lines += [*[n + "\n" for n in notes]]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return table


def _sweep_commands(results_dir):
    """The sweep invocations recorded in ``results_dir/sweep_manifest.json``."""
    path = Path(results_dir) / MANIFEST
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    commands = [inv.get("command", "") for inv in data.get("invocations", [])]
    return list(dict.fromkeys(c for c in commands if c))


def add_arguments(r):
    """The options of ``tinyclap report``."""
    r.add_argument("results_dir")
    r.add_argument("--teacher", help="teacher checkpoint shown as a reference row")
    r.add_argument("--out", help="output folder (default: RESULTS_DIR)")
    r.add_argument("--threads", type=int, default=1, help="torch threads for latency")
    r.add_argument("--repeats", type=int, default=20, help="timed runs per batch size")
    r.add_argument("--notes", help="markdown file appended to README.md (e.g. how runs differ)")
    m = r.add_argument_group("microcontroller (int8 flash, TFLM arena)")
    m.add_argument("--mcu", action="store_true",
                   help="convert each student without MCU figures (the mcu extra)")  # fmt: skip
    m.add_argument("--calibration_manifest",
                   help="calibration clips of --mcu (default: each run's train.json)")  # fmt: skip
    m.add_argument("--max_arena_kb", type=float, help="best student whose TFLM arena fits (KB)")
    m.add_argument("--max_flash_kb", type=float, help="best student whose int8 model fits (KB)")
    m.add_argument("--pareto_x", nargs="+", choices=sorted(COSTS), default=["macs", "params"],
                   help="x axes of pareto.png (one panel each)")  # fmt: skip


def main(argv=None):
    """``python -m tinyclap.studies.report``: the same as ``tinyclap report``."""
    return module_main(sys.modules[__name__], argv)


def run(args):
    """``tinyclap report``: collect, profile, write; print the table."""
    results_dir = Path(args.results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"report: no folder {results_dir}")
    budget = {"max_arena_kb": args.max_arena_kb, "max_flash_kb": args.max_flash_kb}
    budget = budget if any(v is not None for v in budget.values()) else None
    rows, acc_keys = collect_rows(
        results_dir, teacher=args.teacher, threads=args.threads, repeats=args.repeats,
        mcu=args.mcu, calibration_manifest=args.calibration_manifest,
    )  # fmt: skip
    if not any(r["kind"] == "student" for r in rows):
        raise FileNotFoundError(f"report: no distill results.json under {results_dir}")
    needs_mcu = budget or {"arena", "flash"} & set(args.pareto_x)
    if needs_mcu and not any(r.get("arena_bytes") is not None for r in rows):
        raise ValueError(
            f"report: no MCU figures under {results_dir} for --max_arena_kb / --max_flash_kb / "
            "--pareto_x arena: pass --mcu (or export the runs with tinyclap export --mcu)"
        )
    out = Path(args.out or results_dir)
    table = write_report(
        rows,
        acc_keys,
        out,
        command=getattr(args, "invocation", ""),
        sweep_commands=_sweep_commands(results_dir),
        notes=[Path(args.notes).read_text(encoding="utf-8").strip()] if args.notes else [],
        machine=_machine(args.threads, args.repeats),
        costs=args.pareto_x,
        budget=budget,
    )
    print(table)
    print(f"\nwrote {out / 'table.md'}, table.csv, pareto.png, README.md", file=sys.stderr)
    if budget:
        fitting, closest = within_budget(rows, **budget)
        if not fitting:
            raise ValueError(
                "report: no student fits "
                + ", ".join(f"--{k} {v:g}" for k, v in budget.items() if v is not None)
                + "; closest: " + budget_line(closest, **budget)
            )  # fmt: skip
        print("best student within the budget: " + budget_line(fitting[0], **budget))
    return 0
