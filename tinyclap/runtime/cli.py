"""``tinyclap-runtime``: zero-shot classification without torch.

Example
-------
tinyclap-runtime classify dog.wav clips/ --model exported/demo --labels esc50 --top 2
tinyclap-runtime classify clips/ --model exported/demo --labels "rain,siren" --json
tinyclap-runtime classify a.wav --model exported/adapted --labels adapted --open_set --multi_label
"""

import argparse
import json
import os
import sys
import time

MODEL_ENV = "TINYCLAP_MODEL"
# numpy's BLAS thread pools: spinning threads slow the small products down on a busy CPU
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def classify(args):
    """Classify files and folders; one line (or a JSON record) per file, files/s on stderr."""
    from tinyclap.runtime.classifier import MissingTextEncoderError, RuntimeClassifier

    if args.threshold is not None and not (args.open_set or args.multi_label):
        print("tinyclap-runtime: --threshold only applies with --open_set or --multi_label",
              file=sys.stderr)  # fmt: skip
        return 2
    source = args.model or os.environ.get(MODEL_ENV)
    if not source:
        print(f"tinyclap-runtime: no model: pass --model FOLDER or set {MODEL_ENV}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        clf = RuntimeClassifier.from_folder(source, threads=args.threads,
                                            batch_size=args.batch_size,
                                            trust_unverified=args.trust_unverified)  # fmt: skip
        note = clf.label_plan(args.labels).note
        if note:
            print(f"tinyclap-runtime: note: {note}", file=sys.stderr)
        records, speed = clf.classify_folder(args.files, args.labels, args.top, args.files_per_call,
                                             open_set=args.open_set, multi_label=args.multi_label,
                                             threshold=args.threshold)  # fmt: skip
    except (FileNotFoundError, MissingTextEncoderError, ValueError, RuntimeError) as err:
        print(f"tinyclap-runtime: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            ranked = ", ".join(f"{t['label']} ({t['score']:.3f})" for t in record["top"])
            print(f"{record['file']}: {decision_text(record)}{ranked}")
    print(f"{speed['files']} files in {speed['seconds']:.2f} s: {speed['files_per_s']:.1f} "
          f"files/s ({speed['cpu_seconds']:.2f} s of CPU)", file=sys.stderr)  # fmt: skip
    return 0


def decision_text(record):
    """``[label or none of these] [{labels}] `` of a record's decisions (as ``tinyclap classify``).

    Example
    -------
    >>> decision_text({"open_set": None, "labels": ["rain", "wind"]})
    '[none of these] [{rain, wind}] '
    """
    parts = []
    if "open_set" in record:
        parts.append(record["open_set"] or "none of these")
    if "labels" in record:
        parts.append("{" + ", ".join(record["labels"]) + "}")
    return " ".join(f"[{p}]" for p in parts) + (" " if parts else "")


def build_parser():
    """The ``tinyclap-runtime`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tinyclap-runtime",
        description="Zero-shot audio classification with an exported tinyclap folder "
        "(onnx/student.onnx + label tables, onnx/text_encoder.onnx for free-form labels, "
        "open_set.json for 'none of these'), without torch.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="zero-shot classification of audio files and folders")
    c.add_argument("files", nargs="+", help="audio files or folders (any format soundfile reads)")
    c.add_argument("--labels",
                   help="a bundled or adapted set (esc50, us8k, adapted...) or 'a,b,c' (any "
                   "words with a folder exported with a text student; names of an adapted "
                   "set's prototype classes take the prototype); default: the folder's "
                   "adapted set")  # fmt: skip
    c.add_argument("--model", help=f"exported folder (default: ${MODEL_ENV})")
    c.add_argument("--top", type=int, default=3, help="labels shown per file")
    c.add_argument("--open_set", action="store_true",
                   help="say 'none of these' below the folder's calibrated threshold "
                   "(open_set.json of tinyclap calibrate)")  # fmt: skip
    c.add_argument("--multi_label", action="store_true",
                   help="every label at or above its calibrated threshold "
                   "(open_set.json)")  # fmt: skip
    c.add_argument("--threshold", type=float,
                   help="with --open_set/--multi_label: this threshold instead of the "
                   "calibrated one(s)")  # fmt: skip
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--trust_unverified", action="store_true",
                   help="load files that the folder's export.json records no SHA-256 for "
                   "(an earlier export, or hashes removed); only for folders you "
                   "trust")  # fmt: skip
    c.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    c.add_argument("--batch_size", type=int, default=1, help="windows per onnxruntime call")
    c.add_argument("--files_per_call", type=int, default=16, help="files embedded together")
    c.set_defaults(func=classify)
    return parser


def main(argv=None):
    """Entry point of ``tinyclap-runtime``; returns the exit status."""
    start = time.perf_counter()
    for name in BLAS_THREADS:  # before numpy loads: the frontend's small matmuls need no pool
        os.environ.setdefault(name, "1")
    args = build_parser().parse_args(argv)
    status = args.func(args)
    if os.environ.get("TINYCLAP_RUNTIME_TIMING"):
        print(f"wall {time.perf_counter() - start:.3f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
