"""``tinyclap-runtime``: zero-shot classification without torch.

Example
-------
tinyclap-runtime classify dog.wav clips/ --model exported/demo --labels esc50 --top 2
tinyclap-runtime classify clips/ --model exported/demo --labels "rain,siren" --json
tinyclap-runtime classify a.wav --model exported/adapted --labels adapted --open_set --multi_label

Exit status and errors follow ``tinyclap`` (:mod:`tinyclap.cli.main`): 0 done, 1 bad
input (a missing or unreadable file, folder or model), 2 usage (argparse, options that
do not go together); errors are one line ``tinyclap-runtime: error: ...``, with the
traceback only under ``--verbose``; options use underscores, no abbreviations.
"""

import argparse
import json
import os
import sys
import time
import traceback

PROG = "tinyclap-runtime"
MODEL_ENV = "TINYCLAP_MODEL"
# numpy's BLAS thread pools: spinning threads slow the small products down on a busy CPU
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def classify(args):
    """Classify files and folders; one line (or a JSON record) per file, files/s on stderr."""
    from tinyclap.runtime.classifier import RuntimeClassifier

    if args.threshold is not None and not (args.open_set or args.multi_label):
        raise UsageError("--threshold only applies with --open_set or --multi_label")
    source = args.model or os.environ.get(MODEL_ENV)
    if not source:
        raise UsageError(f"no model: pass --model FOLDER or set {MODEL_ENV}")
    clf = RuntimeClassifier.from_folder(source, threads=args.threads, batch_size=args.batch_size,
                                        trust_unverified=args.trust_unverified,
                                        precision=args.precision)  # fmt: skip
    note = clf.label_plan(args.labels).note
    if note:
        print(f"tinyclap-runtime: note: {note}", file=sys.stderr)
    records, speed = clf.classify_folder(args.files, args.labels, args.top, args.files_per_call,
                                         open_set=args.open_set, multi_label=args.multi_label,
                                         threshold=args.threshold)  # fmt: skip
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            ranked = ", ".join(f"{t['label']} ({t['score']:.3f})" for t in record["top"])
            print(f"{record['file']}: {decision_text(record)}{ranked}")
    print(f"{speed['files']} files in {speed['seconds']:.2f} s: {speed['files_per_s']:.1f} "
          f"files/s ({speed['cpu_seconds']:.2f} s of CPU, {clf.precision} student)",
          file=sys.stderr)  # fmt: skip
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


class UsageError(ValueError):
    """Options that do not go together: exit status 2, as argparse's usage errors."""


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations, its errors headed ``tinyclap-runtime: error:``."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Print the usage and the one-line error; exit 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser():
    """The ``tinyclap-runtime`` argument parser."""
    parser = Parser(
        prog=PROG,
        description="Zero-shot audio classification with an exported tinyclap folder "
        "(onnx/student.onnx + label tables, onnx/text_encoder.onnx for free-form labels, "
        "open_set.json for 'none of these'), without torch.",
    )
    parser.add_argument("--verbose", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="zero-shot classification of audio files and folders")
    c.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # fmt: skip
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
    c.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"],
                   help="student graph: the folder's recorded choice (static int8 where the "
                   "export measured no accuracy loss, else fp32), or insist on one")  # fmt: skip
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
    status = run_command(args)
    if os.environ.get("TINYCLAP_RUNTIME_TIMING"):
        print(f"wall {time.perf_counter() - start:.3f} s", file=sys.stderr)
    return status


def expected_errors():
    """What bad input raises here (missing files, unreadable audio or graphs, bad values)."""
    from tinyclap.runtime.classifier import MissingTextEncoderError

    # OSError: missing files and folders; ValueError: bad values and labels; RuntimeError:
    # libsndfile and onnxruntime failures on unreadable files
    return (OSError, ValueError, RuntimeError, MissingTextEncoderError)


def run_command(args):
    """``args.func(args)``; expected errors as one line (traceback with ``--verbose``).

    Returns
    -------
    int
        0, 1 for bad input, 2 for a :class:`UsageError`, 130 when interrupted.
    """
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not isinstance(err, expected_errors()):
            raise
        if args.verbose:
            traceback.print_exc()
        lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        print(f"{PROG}: error: {lines[0]}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
