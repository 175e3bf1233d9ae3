"""``tinyclap adapt`` and ``tinyclap calibrate`` (wired by :mod:`tinyclap.cli.main`).

Example
-------
tinyclap adapt --examples my_examples --model exported/demo --out exported/adapted --labels synth
tinyclap calibrate exported/adapted --manifest data/synth/valid.json --labels adapted
tinyclap classify clip.wav --labels adapted --model exported/adapted --open_set
"""

import json

from tinyclap.data.pipelines import manifest_classes


def adapt(args):
    """Write the adapted folder; print a one-line JSON summary."""
    from tinyclap.deploy.adapt import adapt_export

    info = adapt_export(
        args.model,
        args.examples,
        args.out,
        labels=args.labels,
        text_weight=args.text_weight,
        set_name=args.set_name,
        calibrate=args.calibrate,
        unknown_manifest=args.unknown_manifest,
        known_accept=args.known_accept,
        onnx=True if args.onnx else None,
        trust_remote_code=args.trust_remote_code,
        trust_unverified=args.trust_unverified,
        command=args.invocation,
    )
    kinds = [c["kind"] for c in info["adapted"]["classes"].values()]
    summary = {
        "out": str(args.out),
        "set": args.set_name,
        "classes": len(kinds),
        **{kind: kinds.count(kind) for kind in ("text", "prototype", "mixed") if kind in kinds},
    }
    if "calibration" in info:
        summary["reject_threshold"] = info["calibration"]["reject_threshold"]
    print(json.dumps(summary))
    return 0


def calibrate(args):
    """Measure and store open-set / multi-label thresholds of an exported folder."""
    from tinyclap.deploy.calibration import calibrate_classifier, write_calibration
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    classifier = ZeroShotAudioClassifier.from_hparams(
        source=args.folder,
        run_opts={"device": "cpu"},
        trust_remote_code=args.trust_remote_code,
        trust_unverified=args.trust_unverified,
    )
    labels = args.labels
    if labels is None:
        labels = classifier.default_labels or manifest_classes(args.manifest)
    calibration = calibrate_classifier(
        classifier, args.manifest, labels, args.unknown_manifest, args.known_accept
    )
    path = write_calibration(args.folder, calibration)
    rejection = calibration["rejection"]
    print(
        json.dumps(
            {
                "file": str(path),
                "labels": len(calibration["labels"]),
                "reject_threshold": calibration["reject_threshold"],
                "valid_known_accept": round(rejection["known_accept"], 4),
                "valid_unknown_reject": rejection["unknown_reject"],
            }
        )
    )
    return 0


def _calibration_options(parser):
    parser.add_argument(
        "--unknown_manifest", help="validation clips of classes outside the labels (open set)"
    )
    parser.add_argument(
        "--known_accept",
        type=float,
        default=0.95,
        help="without unknown clips: fraction of known validation clips to accept (default 0.95)",
    )
    parser.add_argument(
        "--trust_remote_code", action="store_true", help="load a folder naming code of its own"
    )
    parser.add_argument("--trust_unverified", action="store_true",
                        help="load files its export.json records no SHA-256 for")  # fmt: skip


def add_adapt_commands(sub):
    """Register ``adapt`` and ``calibrate`` on the ``tinyclap`` subparsers."""
    a = sub.add_parser(
        "adapt",
        help="add few-shot classes (a prototype per class) to an exported folder",
        description="Copy an exported folder and add a label set holding a prototype per "
        "class of EXAMPLES (one sub-folder of a few recordings per class) next to text-prompt "
        "classes (--labels).",
    )
    a.add_argument("--examples", required=True, help="folder: <class>/<clip>.wav ...")
    a.add_argument("--model", required=True,
                   help="the exported folder or hub repo id to adapt")  # fmt: skip
    a.add_argument("--out", required=True, help="the new exported folder")
    a.add_argument("--labels", help="text-prompt classes kept in the set: a bundled set or 'a,b'")
    a.add_argument(
        "--text_weight",
        type=float,
        default=0.0,
        help="mix each prototype with its class name's text embedding: "
        "normalise((1-w) prototype + w text) (default 0: prototype only)",
    )
    a.add_argument("--set_name", default="adapted", help="name of the new label set")
    a.add_argument("--calibrate", help="validation manifest: store open-set thresholds too")
    a.add_argument("--onnx", action="store_true", help="rewrite ONNX graphs (default: if present)")
    _calibration_options(a)
    a.set_defaults(func=adapt)

    c = sub.add_parser(
        "calibrate",
        help="store open-set / multi-label thresholds in an exported folder",
        description="Measure the 'none of these' threshold on the best cosine and per-class "
        "multi-label thresholds on a labelled validation manifest; write open_set.json.",
    )
    c.add_argument("folder", help="an exported folder")
    c.add_argument("--manifest", required=True, help="labelled validation manifest")
    c.add_argument(
        "--labels", help="label list (default: the adapted set, else the manifest's classes)"
    )
    _calibration_options(c)
    c.set_defaults(func=calibrate)
