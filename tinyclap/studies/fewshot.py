"""Few-shot classes on the embedded default: table and plot of ``results/fewshot``.

Two studies, k = 1, 2, 5 examples per class drawn from the Synth train split
(single-class clips only), several random draws each, accuracy on the Synth
test split (480 single-class clips, 24 classes):

(a) the demo student (``--demo``): zero-shot text prompts against one
    prototype per class (the normalised mean of the student's embeddings of
    its k examples) and against prototypes mixed with the text embeddings;
(b) a teacher and student trained *without* some classes (``--unseen``, the
    demo run with ``--exclude_classes``): their zero-shot accuracy on those
    classes, then the same label list with the excluded classes added back
    as prototypes of k examples (the other classes keep their text prompts).

Both students are first exported (``tinyclap export``) and used through the
exported folder (:class:`ZeroShotAudioClassifier`); for (b) one draw per k is
also written with :func:`tinyclap.deploy.adapt.adapt_export` and measured from
that folder, to check the library's arithmetic against the real path.

Example
-------
python -m tinyclap.studies.fewshot --demo runs/demo --unseen runs/unseen
    --excluded "cat meowing,helicopter,church bell,water dripping" --out results/fewshot
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyclap.data.label_sets import SYNTH_CLASSES
from tinyclap.data.pipelines import read_manifest
from tinyclap.runtime.machine import machine_info
from tinyclap.studies.entry import module_main
from tinyclap.zeroshot.prototypes import class_prototype, mix_with_text

NAME = "fewshot"
HELP = "few-shot prototypes vs text prompts on the embedded default"


def export_run(run, out):
    """Export ``run/student/student.ckpt`` (Synth label table only) and load the folder."""
    from tinyclap.deploy.export import export_student
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    ckpt = Path(run) / "student" / "student.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt} not found: run the demo first (see --help)")
    export_student(ckpt, out, label_sets=["synth"], threads=1)
    return ZeroShotAudioClassifier.from_hparams(source=str(out), run_opts={"device": "cpu"})


def embed_manifest(classifier, manifest, single_only=True, batch=64, desc="clips"):
    """``(embeddings [N, K], labels, wav paths)`` of a manifest's (single-class) clips."""
    entries = [
        e
        for e in read_manifest(manifest).values()
        if not single_only or len(e.get("labels") or [e["label"]]) == 1
    ]
    rows = []
    for start in tqdm(range(0, len(entries), batch), desc=desc, unit="batch"):
        chunk = entries[start : start + batch]
        rows.append(classifier.encode_audio([classifier.load_audio(e["wav"]) for e in chunk]).cpu())
    return torch.cat(rows), [e["label"] for e in entries], [e["wav"] for e in entries]


def accuracy(clips, table, names, subset=None):
    """Accuracy of argmax-cosine over ``names`` (``subset``: only clips of those classes).

    ``clips`` is :func:`embed_manifest`'s ``(embeddings, labels, paths)``.
    """
    embeddings, labels = clips[0], clips[1]
    predicted = (embeddings @ table.T).argmax(-1).tolist()
    hits = [names[p] == y for p, y in zip(predicted, labels) if subset is None or y in subset]
    return float(np.mean(hits)) if hits else float("nan")


def draw_examples(train_labels, classes, k, rng):
    """``{class: indices of k train clips}`` drawn without replacement."""
    pool = {c: [i for i, y in enumerate(train_labels) if y == c] for c in classes}
    return {c: sorted(rng.choice(pool[c], size=k, replace=False).tolist()) for c in classes}


def _stats(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}


def study_a(clf, train, test, shots, draws, text_weight, seed):
    """Zero-shot vs prototypes vs mixed on all 24 classes."""
    names = list(SYNTH_CLASSES)
    text = clf.encode_text("synth").cpu()
    rows = [{"k": 0, "method": "zero-shot (text)", **_stats([accuracy(test, text, names)])}]
    rng = np.random.default_rng(seed)
    for k in shots:
        proto, mixed = [], []
        for _ in range(draws):
            picked = draw_examples(train[1], names, k, rng)
            table = torch.stack([class_prototype(train[0][picked[c]]) for c in names])
            proto.append(accuracy(test, table, names))
            mixed.append(accuracy(test, mix_with_text(table, text, text_weight), names))
        rows.append({"k": k, "method": "prototype", **_stats(proto)})
        rows.append({"k": k, "method": f"prototype + text (w={text_weight})", **_stats(mixed)})
    return rows


def study_b(clf, train, test, excluded, shots, draws, text_weight, seed, folder=None):
    """Classes the teacher never heard: zero-shot, then added back with k examples."""
    names = list(SYNTH_CLASSES)
    text = clf.encode_text("synth").cpu()
    seen = [c for c in names if c not in excluded]
    unseen_idx = [names.index(c) for c in excluded]

    def measure(table):
        return {
            "unseen": accuracy(test, table, names, subset=set(excluded)),
            "seen": accuracy(test, table, names, subset=set(seen)),
            "all": accuracy(test, table, names),
        }

    rows = [{"k": 0, "method": "zero-shot (text)", **measure(text)}]
    rng = np.random.default_rng(seed)
    checks = []
    for k in shots:
        every = "prototype (every class, seen ones too)"
        results = {"prototype": [], f"prototype + text (w={text_weight})": [], every: []}
        for draw in range(draws):
            picked = draw_examples(train[1], excluded, k, rng)
            protos = torch.stack([class_prototype(train[0][picked[c]]) for c in excluded])
            table = text.clone()
            table[unseen_idx] = protos
            results["prototype"].append(measure(table))
            mixed = text.clone()
            mixed[unseen_idx] = mix_with_text(protos, text[unseen_idx], text_weight)
            results[f"prototype + text (w={text_weight})"].append(measure(mixed))
            picked_seen = draw_examples(train[1], seen, k, rng)
            full = torch.stack(
                [class_prototype(train[0][{**picked, **picked_seen}[c]]) for c in names]
            )
            results[every].append(measure(full))
            if folder is not None and draw == 0:
                checks.append(_check_with_adapt(clf, folder, k, picked, train, test, excluded,
                                                seen, results["prototype"][-1]))  # fmt: skip
        for method, values in results.items():
            row = {"k": k, "method": method}
            for part in ("unseen", "seen", "all"):
                row[part] = float(np.mean([v[part] for v in values]))
                row[f"{part}_std"] = float(np.std([v[part] for v in values]))
            rows.append(row)
    return rows, checks


def _check_with_adapt(clf, folder, k, picked, train, test, excluded, seen, expected):
    """Write the draw with ``adapt_export`` (seen classes as text) and measure that folder."""
    from tinyclap.deploy.adapt import adapt_export
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    examples = {c: [train[2][i] for i in picked[c]] for c in excluded}
    out = Path(folder) / f"adapted_k{k}"
    adapt_export(folder / "exported_unseen", examples, out, labels=seen)
    adapted = ZeroShotAudioClassifier.from_hparams(source=str(out), run_opts={"device": "cpu"})
    names = adapted.labels_of("adapted")
    got = accuracy(test, adapted.encode_text("adapted").cpu(), names, subset=set(excluded))
    return {"k": k, "folder": str(out), "unseen_from_folder": got, "unseen": expected["unseen"]}


def _pct(mean, std=None):
    return f"{100 * mean:.1f}%" + ("" if std is None else f" ± {100 * std:.1f}")


def write_report(out, a_rows, b_rows, checks, info):
    """``table.md``, ``results.json`` and ``plot.png``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "## (a) Demo student, Synth test split (480 clips, 24 classes, chance 4.2%)",
        "",
        "| k | method | accuracy (mean ± std over draws) |",
        "|---:|---|---:|",
    ]
    for r in a_rows:
        std = r["std"] if r["n"] > 1 else None
        lines.append(f"| {r['k'] or '-'} | {r['method']} | {_pct(r['mean'], std)} |")
    lines += [
        "",
        f"## (b) Classes the teacher never heard: {', '.join(info['excluded'])}",
        "",
        "Teacher and student trained without them; test clips of all 24 classes, 24-way "
        "label list (the seen classes keep their text prompts).",
        "",
        "| k | unseen classes' label | unseen-class accuracy | seen-class accuracy | all |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in b_rows:
        cells = [
            _pct(r[p], r.get(f"{p}_std") if r["k"] else None) for p in ("unseen", "seen", "all")
        ]
        lines.append(f"| {r['k'] or '-'} | {r['method']} | " + " | ".join(cells) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {
        **info,
        "machine": machine_info(),
        "study_a": a_rows,
        "study_b": b_rows,
        "adapt_checks": checks,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    _plot(out / "plot.png", a_rows, b_rows, info)


def _plot(path, a_rows, b_rows, info):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, rows, key, title in (
        (axes[0], a_rows, "mean", "(a) demo student, 24 classes"),
        (axes[1], b_rows, "unseen", "(b) classes the teacher never heard"),
    ):
        zero = rows[0][key]
        ax.axhline(100 * zero, color="grey", ls="--", label="zero-shot (text)")
        for method in dict.fromkeys(r["method"] for r in rows[1:]):
            pts = [r for r in rows if r["method"] == method]
            err = [100 * r.get("std" if key == "mean" else "unseen_std", 0) for r in pts]
            ax.errorbar([r["k"] for r in pts], [100 * r[key] for r in pts], yerr=err,
                        marker="o", capsize=3, label=method)  # fmt: skip
        ax.axhline(100 / len(SYNTH_CLASSES), color="black", lw=0.8, ls=":", label="chance")
        ax.set_xticks(info["shots"])
        ax.set_xlabel("examples per class (k)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(parser):
    """The options of ``tinyclap study fewshot``."""
    parser.add_argument("--demo", default="runs/demo", help="the demo's runs folder")
    parser.add_argument("--unseen", default="runs/unseen", help="runs trained without classes")
    parser.add_argument(
        "--excluded",
        default="cat meowing,helicopter,church bell,water dripping",
        help="the classes --unseen was trained without",
    )
    parser.add_argument("--data_folder", default="data/synth")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--draws", type=int, default=10, help="random draws of examples per k")
    parser.add_argument("--text_weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/fewshot", help="exported and adapted folders")
    parser.add_argument("--out", default="results/fewshot")


def run(args):
    """Run both studies and write the report; returns the results dict."""
    torch.set_num_threads(1)
    work, data = Path(args.work), Path(args.data_folder)
    excluded = [c.strip() for c in args.excluded.split(",") if c.strip()]
    info = {
        "command": args.invocation,
        "excluded": excluded,
        "shots": args.shots,
        "draws": args.draws,
        "text_weight": args.text_weight,
        "seed": args.seed,
        "runs": {},
    }
    a_rows = b_rows = checks = None
    for key, run in (("demo", args.demo), ("unseen", args.unseen)):
        results = json.loads((Path(run) / "student" / "results.json").read_text())
        info["runs"][key] = {"run": str(run), "student_command": results.get("command"),
                             "student_zs_accuracy": results.get("zs_accuracy")}  # fmt: skip
        teacher = Path(run) / "teacher" / "results.json"
        if teacher.is_file():
            t = json.loads(teacher.read_text())
            info["runs"][key].update(teacher_command=t.get("command"),
                                     teacher_zs_accuracy=t.get("zs_accuracy"))  # fmt: skip
        clf = export_run(run, work / f"exported_{key}")
        train = embed_manifest(clf, data / "train.json", desc=f"{key}: train")
        test = embed_manifest(clf, data / "test.json", desc=f"{key}: test")
        if key == "demo":
            a_rows = study_a(clf, train, test, args.shots, args.draws, args.text_weight, args.seed)
        else:
            b_rows, checks = study_b(clf, train, test, excluded, args.shots, args.draws,
                                     args.text_weight, args.seed, folder=work)  # fmt: skip
    write_report(Path(args.out), a_rows, b_rows, checks, info)
    print((Path(args.out) / "table.md").read_text())
    return {"study_a": a_rows, "study_b": b_rows, "checks": checks}


def main(argv=None):
    """``python -m tinyclap.studies.fewshot``: the same as ``tinyclap study fewshot``."""
    return module_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
