"""``tinyclap export``, ``push`` and ``classify`` (wired by :mod:`tinyclap.tools.cli`).

Example
-------
tinyclap export runs/demo/student/student.ckpt --out exported/demo --eval_manifest M.json
tinyclap classify dog.wav rain.flac --labels "dog barking,rain,siren" --model exported/demo --top 2
tinyclap push exported/demo user/tinyclap-demo --dry_run
"""

import json
import os
import sys

MODEL_ENV = "TINYCLAP_MODEL"


def export(args):
    """Write a hub-ready folder (and, with ``--onnx``, ONNX graphs); print where."""
    from tinyclap.deploy.export import export_student

    info = export_student(
        args.student,
        args.out,
        teacher=args.teacher,
        teacher_checkpoint=args.teacher_checkpoint,
        eval_manifest=args.eval_manifest,
        template=args.prompt_template,
        label_sets=args.label_sets,
        text_encoder=not args.no_text_encoder,
        repo_id=args.repo_id,
        text_student=args.text_student,
        threads=args.threads,
        command=args.invocation,
    )
    if args.onnx:
        from tinyclap.deploy.onnx import export_onnx

        onnx_info = export_onnx(
            args.out,
            labels=args.onnx_labels,
            quantize_int8=args.quantize,
            eval_manifest=args.eval_manifest,
            threads=args.threads,
            repeats=args.repeats,
            trust_remote_code=True,  # the folder just written from the user's own checkpoint
        )
        info["onnx"] = onnx_info
    summary = {"out": str(args.out), "params": info["profile"]["params"]}
    if "exported_eval" in info:
        summary["zs_accuracy"] = info["exported_eval"]["accuracy"]
    print(json.dumps(summary))
    return 0


def push(args):
    """Upload an exported folder to the hub; print the commit URL (or, dry, the files)."""
    from tinyclap.deploy.export import push_folder

    result = push_folder(
        args.folder,
        args.repo_id,
        token=args.token,
        private=args.private,
        commit_message=args.message,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        print(f"would upload {len(result)} files from {args.folder} to {args.repo_id}:")
        for name in result:
            print(f"  {name}")
        return 0
    print(result)
    return 0


def classify(args):
    """Zero-shot classification of audio files; one line (or a JSON record) per file."""
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    source = args.model or os.environ.get(MODEL_ENV)
    if not source:
        print(
            f"tinyclap classify: no model: pass --model FOLDER_OR_REPO_ID or set {MODEL_ENV}",
            file=sys.stderr,
        )
        return 2
    classifier = ZeroShotAudioClassifier.from_hparams(
        source=source, savedir=args.savedir, trust_remote_code=args.trust_remote_code
    )
    names = classifier.labels_of(args.labels)
    top = max(1, min(int(args.top), len(names)))
    records = []
    for path in args.files:
        scores = classifier.classify_file(path, args.labels)[0][0]
        best = scores.topk(top)
        records.append(
            {
                "file": path,
                "top": [
                    {"label": names[i], "score": round(float(s), 4)}
                    for s, i in zip(best.values.tolist(), best.indices.tolist())
                ],
            }
        )
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            ranked = ", ".join(f"{t['label']} ({t['score']:.3f})" for t in record["top"])
            print(f"{record['file']}: {ranked}")
    return 0


def add_hub_commands(sub):
    """Register ``export``, ``push`` and ``classify`` on the ``tinyclap`` subparsers."""
    e = sub.add_parser(
        "export",
        help="write a hub-ready folder for a trained student",
        description="Write hyperparams.yaml, student.ckpt, label tables, text encoder and a "
        "model card (README.md) for a student checkpoint (tinyclap or official tinyCLAP).",
    )
    e.add_argument("student", help="student.ckpt (recipe) or an official tinyCLAP checkpoint")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--teacher", help="teacher name (default: mini, from the student file)")
    e.add_argument("--teacher_checkpoint", help="teacher checkpoint (default: the recorded one)")
    e.add_argument("--eval_manifest", help="labelled manifest measured with the exported folder")
    e.add_argument("--prompt_template", default="this is the sound of {label}")
    e.add_argument("--label_sets", nargs="+", help="bundled label sets (default: all)")
    e.add_argument("--no_text_encoder", action="store_true", help="bundled label sets only")
    e.add_argument(
        "--text_student",
        default="auto",
        help="free-form text encoder: a text_student.ckpt (hparams/distill_text.yaml), 'auto' "
        "(one beside the student or in ../text_student/) or 'none' (the teacher's text side)",
    )
    e.add_argument("--repo_id", help="hub repo id shown in the model card")
    e.add_argument("--threads", type=int, default=1, help="CPU threads for latency")
    e.add_argument("--repeats", type=int, default=50, help="timed calls per ONNX latency figure")
    e.add_argument("--onnx", action="store_true", help="also write ONNX graphs (onnx/)")
    e.add_argument(
        "--onnx_labels",
        help="a label set name or 'a,b,c': also write a graph ending in these class scores",
    )
    e.add_argument("--quantize", action="store_true", help="also write int8 (dynamic) graphs")
    e.set_defaults(func=export)

    p = sub.add_parser("push", help="upload an exported folder to the Hugging Face hub")
    p.add_argument("folder", help="a folder written by tinyclap export")
    p.add_argument("repo_id", help="user/name on the hub")
    p.add_argument("--token", help="hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--message", help="commit message")
    p.add_argument(
        "--dry_run", action="store_true", help="print the files that would be uploaded, and stop"
    )
    p.set_defaults(func=push)

    c = sub.add_parser("classify", help="zero-shot classification of audio files")
    c.add_argument("files", nargs="+", help="audio files (any format soundfile reads, any rate)")
    c.add_argument(
        "--labels", required=True, help="'dog,rain,siren' or a bundled set (esc50, us8k, ...)"
    )
    c.add_argument("--model", help=f"exported folder or hub repo id (default: ${MODEL_ENV})")
    c.add_argument("--savedir", help="where hub files are collected (default: the hub cache)")
    c.add_argument("--top", type=int, default=3, help="labels shown per file")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="build whatever the model's hyperparams.yaml names (e.g. your own student class); "
        "only for models you trust",
    )
    c.set_defaults(func=classify)
