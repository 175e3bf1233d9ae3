"""Open set and multi-label on the embedded default: the tables of ``results/open_set``.

With the demo student, exported and used through its folder:

* **open set**: the label list is Synth without ``--outside`` classes; the
  rejection threshold on the best cosine is calibrated on the valid split
  (``tinyclap calibrate``: its clips of the outside classes are the "none of
  these" examples; also the known-only quantile rule), written to the
  folder's ``open_set.json``, read back, and evaluated on the test split:
  accuracy and false rejections on clips of listed classes, rejection rate
  on clips of the outside classes, precision / recall / F1;
* **multi-label**: all 24 classes, per-class thresholds calibrated on the valid
  split (a quarter of its clips are two-class mixtures), evaluated on 240
  fresh two-class mixtures (:func:`tinyclap.prepare.synth.prepare_synth_mixtures`)
  and on the single-class test split, against top-1 and top-2 baselines.

Example
-------
python -m tinyclap.studies.open_set --demo runs/demo --out results/open_set
"""

import json
import sys
from pathlib import Path

import torch

from tinyclap.data.label_sets import SYNTH_CLASSES
from tinyclap.deploy.calibration import (
    calibrate_classifier,
    manifest_scores,
    write_calibration,
)
from tinyclap.runtime.machine import machine_info
from tinyclap.studies.entry import module_main
from tinyclap.zeroshot.open_set import (
    REJECTED,
    calibrate_rejection,
    multilabel_decisions,
    multilabel_metrics,
    open_set_metrics,
    reject_decisions,
)

NAME = "open_set"
HELP = "open-set rejection and multi-label thresholds on the embedded default"


def _targets(clip_classes, names):
    return torch.tensor([[n in c for n in names] for c in clip_classes], dtype=torch.bool)


def _topk(scores, k):
    out = torch.zeros_like(scores, dtype=torch.bool)
    out.scatter_(1, scores.topk(k, dim=1).indices, True)
    return out


def open_set_study(clf, folder, data, outside, known_accept):
    """Calibrate on valid (written to the folder and read back), evaluate on test."""
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    known = [c for c in SYNTH_CLASSES if c not in outside]
    calibration = calibrate_classifier(clf, data / "valid.json", known)
    write_calibration(folder, calibration)
    reloaded = ZeroShotAudioClassifier.from_hparams(source=str(folder), run_opts={"device": "cpu"})
    assert reloaded.calibration == calibration  # the round trip the tests check too
    valid_scores, valid_classes, _ = manifest_scores(reloaded, data / "valid.json", known)
    valid_known = torch.tensor([bool(set(c) & set(known)) for c in valid_classes])
    quantile = calibrate_rejection(valid_scores.max(-1).values[valid_known], None, known_accept)
    scores, clip_classes, names = manifest_scores(reloaded, data / "test.json", known)
    targets = torch.tensor([names.index(c[0]) if c[0] in names else REJECTED for c in clip_classes])
    rows = []
    for rule, threshold in (
        ("no rejection (closed set)", -2.0),
        (f"quantile: accept {known_accept:.0%} of known valid clips", quantile["threshold"]),
        ("balanced on valid (known + outside clips)", calibration["reject_threshold"]),
    ):
        metrics = open_set_metrics(reject_decisions(scores, threshold), targets)
        rows.append({"rule": rule, "threshold": threshold, **metrics})
    # the folder's own decision path gives the same decisions as the balanced row
    wavs = [reloaded.load_audio(e) for e in _wavs(data / "test.json")]
    folder_index = reloaded.classify_open_set(wavs, known)[2]
    balanced = reject_decisions(scores, calibration["reject_threshold"])
    return rows, {
        "calibration": {k: calibration[k] for k in ("reject_threshold", "rejection")},
        "quantile": quantile,
        "folder_decisions_match": bool(torch.equal(folder_index.cpu(), balanced)),
        "known_classes": known,
        "outside_classes": list(outside),
    }


def _wavs(manifest):
    return [e["wav"] for e in json.loads(Path(manifest).read_text()).values()]


def multi_label_study(clf, data, mixtures):
    """Per-class thresholds (valid) vs top-1 / top-2, on mixtures and single-class clips."""
    names = list(SYNTH_CLASSES)
    calibration = calibrate_classifier(clf, data / "valid.json", "synth")
    limits = [calibration["label_thresholds"][n] for n in names]
    shared = calibration["shared_label_threshold"]
    rows = []
    sets = (("two-class mixtures", mixtures), ("single-class test", data / "test.json"))
    for set_name, manifest in sets:
        scores, clip_classes, _ = manifest_scores(clf, manifest, "synth")
        targets = _targets(clip_classes, names)
        for rule, predicted in (
            ("top-1", _topk(scores, 1)),
            ("top-2", _topk(scores, 2)),
            (
                f"shared threshold ({shared:.3f})",
                multilabel_decisions(scores, [shared] * len(names)),
            ),
            ("per-class thresholds", multilabel_decisions(scores, limits)),
        ):
            rows.append({"clips": set_name, "rule": rule, **multilabel_metrics(predicted, targets)})
    return rows, {"label_thresholds": calibration["label_thresholds"], "shared": shared}


def write_report(out, open_rows, open_info, ml_rows, ml_info, info):
    """``table.md`` and ``results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    n_known, n_out = open_rows[0]["num_known"], open_rows[0]["num_unknown"]
    lines = [
        f"## Open set: {len(open_info['known_classes'])} listed classes; "
        f"outside the list: {', '.join(open_info['outside_classes'])}",
        "",
        f"Test split: {n_known} clips of listed classes, {n_out} of outside classes. "
        "Threshold on the best cosine, calibrated on the valid split.",
        "",
        "| rule | threshold | known accuracy | known wrongly rejected | outside rejected "
        "| precision | recall | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in open_rows:
        threshold = "-" if r["threshold"] < -1 else f"{r['threshold']:.4f}"
        lines.append(
            f"| {r['rule']} | {threshold} | {pct(r['known_accuracy'])} | {pct(r['known_rejected'])}"
            f" | {pct(r['unknown_rejection'])} | {pct(r['precision'])} | {pct(r['recall'])}"
            f" | {pct(r['f1'])} |"
        )
    lines += [
        "",
        "## Multi-label: 24 classes, thresholds per class calibrated on the valid split",
        "",
        "| clips | rule | precision | recall | F1 (micro) | F1 (macro) | exact match "
        "| labels per clip |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ml_rows:
        lines.append(
            f"| {r['clips']} ({r['num_clips']}) | {r['rule']} | {pct(r['precision'])} "
            f"| {pct(r['recall'])} | {pct(r['f1'])} | {pct(r['macro_f1'])} "
            f"| {pct(r['exact_match'])} | {r['labels_per_clip']:.2f} |"
        )
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {**info, "machine": machine_info(), "open_set": open_rows, "open_set_info": open_info,
               "multi_label": ml_rows, "multi_label_info": ml_info}  # fmt: skip
    (out / "results.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def add_arguments(parser):
    """The options of ``tinyclap study open_set``."""
    parser.add_argument("--demo", default="runs/demo", help="the demo's runs folder")
    parser.add_argument("--data_folder", default="data/synth")
    parser.add_argument(
        "--outside",
        default="cat meowing,helicopter,church bell,water dripping",
        help="Synth classes left out of the open-set label list",
    )
    parser.add_argument("--known_accept", type=float, default=0.95)
    parser.add_argument("--mixtures_per_class", type=int, default=10)
    parser.add_argument("--work", default="runs/open_set", help="the exported folder")
    parser.add_argument("--out", default="results/open_set")


def run(args):
    """Run both studies and write the report."""
    from tinyclap.prepare.synth import prepare_synth_mixtures
    from tinyclap.studies.fewshot import export_run

    torch.set_num_threads(1)
    data, work = Path(args.data_folder), Path(args.work)
    outside = [c.strip() for c in args.outside.split(",") if c.strip()]
    mixtures = prepare_synth_mixtures(data, n_per_class=args.mixtures_per_class)
    folder = work / "exported_demo"
    clf = export_run(args.demo, folder)
    open_rows, open_info = open_set_study(clf, folder, data, outside, args.known_accept)
    ml_rows, ml_info = multi_label_study(clf, data, mixtures)
    results = json.loads((Path(args.demo) / "student" / "results.json").read_text())
    info = {
        "command": args.invocation,
        "student_command": results.get("command"),
        "student_zs_accuracy": results.get("zs_accuracy"),
        "mixtures": str(mixtures),
    }
    write_report(Path(args.out), open_rows, open_info, ml_rows, ml_info, info)
    print((Path(args.out) / "table.md").read_text())


def main(argv=None):
    """``python -m tinyclap.studies.open_set``: the same as ``tinyclap study open_set``."""
    return module_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
