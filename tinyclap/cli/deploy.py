"""``tinyclap export``, ``push`` and ``classify`` (wired by :mod:`tinyclap.cli.main`).

Example
-------
tinyclap export runs/demo/student/student.ckpt --out exported/demo --eval_manifest M.json
tinyclap classify dog.wav rain.flac --labels "dog barking,rain,siren" --model exported/demo --top 2
tinyclap classify street.wav --labels us8k --model exported/demo --timeline --hop 0.5 --plot t.png
tinyclap push exported/demo user/tinyclap-demo --dry_run
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tinyclap.errors import UsageError

MODEL_ENV = "TINYCLAP_MODEL"
TIMELINE_OPTIONS = ("hop", "min_duration", "windows", "plot", "csv")


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
    if write_onnx(args):
        from tinyclap.deploy.onnx import export_onnx

        onnx_info = export_onnx(
            args.out,
            labels=args.onnx_labels,
            quantize_int8=args.quantize,
            eval_manifest=args.eval_manifest,
            threads=args.threads,
            repeats=args.repeats,
            trust_remote_code=True,  # the folder just written from the user's own checkpoint
            int8_mode=args.int8,
            calibration_manifest=args.calibration_manifest,
            frontend_kind=args.onnx_frontend,
        )
        info["onnx"] = onnx_info
    summary = {"out": str(args.out), "params": info["profile"]["params"]}
    if "exported_eval" in info:
        summary["zs_accuracy"] = info["exported_eval"]["accuracy"]
    if getattr(args, "mcu", False):
        from tinyclap.deploy.mcu.export import export_mcu

        mcu = export_mcu(args.out, args.student, eval_manifest=args.eval_manifest,
                         calibration_manifest=args.calibration_manifest,
                         calibration_windows_max=args.mcu_calibration, labels=args.mcu_labels,
                         fp16_labels=args.mcu_fp16_labels, command=args.invocation)  # fmt: skip
        summary["mcu"] = {k: mcu[k] for k in ("flash_bytes", "arena_bytes", "fp32_accuracy",
                                              "int8_accuracy")}  # fmt: skip
    print(json.dumps(summary))
    if getattr(args, "web", False):
        return web(argparse.Namespace(folder=args.out, out=None, npm_cache=None))
    return 0


def web(args):
    """``tinyclap web FOLDER``: the static page of an exported folder; print its files."""
    from tinyclap.deploy.web.ortweb import OrtWebError
    from tinyclap.deploy.web.site import WebBuildError, build_site

    try:
        site = build_site(args.folder, args.out, args.npm_cache)
    except (WebBuildError, OrtWebError, FileNotFoundError, ValueError) as err:
        print(f"tinyclap web: {err}", file=sys.stderr)
        return 2
    print(json.dumps(site))
    print(f"serve it: python -m http.server -d {site['out']} (then open http://localhost:8000/)",
          file=sys.stderr)  # fmt: skip
    return 0


def write_onnx(args):
    """Whether ``tinyclap export`` writes the ONNX graphs.

    ``--onnx`` always; by default too when ``onnx`` and ``onnxruntime`` are
    installed (``onnx/student.onnx`` is what the fast inference path and the
    torch-free runtime run); never with ``--no_onnx``.
    """
    import importlib.util

    if getattr(args, "no_onnx", False) and not args.onnx:
        return False
    available = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
    return bool(args.onnx or available)


def expand_audio_paths(paths):
    """Files of ``paths`` with folders expanded to their audio files (sorted, recursive)."""
    from tinyclap.runtime.audio import audio_files

    return audio_files(paths)


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

    if misplaced_timeline_options(args):
        raise UsageError(f"classify: {misplaced_timeline_options(args)}")
    source = args.model or os.environ.get(MODEL_ENV)
    if not source:
        raise UsageError(f"classify: no model: pass --model FOLDER_OR_REPO_ID or set {MODEL_ENV}")
    classifier = ZeroShotAudioClassifier.from_hparams(
        source=source, savedir=args.savedir, trust_remote_code=args.trust_remote_code,
        trust_unverified=args.trust_unverified, backend=getattr(args, "backend", "auto"),
        precision=getattr(args, "precision", "auto"),
    )  # fmt: skip
    note = classifier.label_plan(args.labels).note  # prototypes, or the default set
    if note:
        print(f"tinyclap classify: note: {note}", file=sys.stderr)
    if getattr(args, "timeline", False):
        return classify_timelines(classifier, args)
    names = classifier.labels_of(args.labels)
    top = max(1, min(int(args.top), len(names)))
    records = []
    files = expand_audio_paths(args.files)
    start, cpu = time.perf_counter(), time.process_time()
    all_scores = classifier.classify_files(files, args.labels, getattr(args, "batch_size", 16))[0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    decisions = _decisions(classifier, all_scores, names, args)
    for path, scores, decision in zip(files, all_scores, decisions):
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
        records[-1].update(decision)
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            ranked = ", ".join(f"{t['label']} ({t['score']:.3f})" for t in record["top"])
            print(f"{record['file']}: {_decision_text(record)}{ranked}")
    noun = "file" if len(files) == 1 else "files"
    print(f"{len(files)} {noun} in {seconds:.2f} s ({len(files) / max(seconds, 1e-9):.1f} files/s, "
          f"{cpu:.2f} s of CPU, backend {_backend_text(classifier)})", file=sys.stderr)  # fmt: skip
    return 0


def _backend_text(classifier):
    """``onnxruntime int8``, ``onnxruntime fp32`` or ``pytorch``."""
    if classifier.backend == "onnxruntime":
        return f"onnxruntime {classifier.precision}"
    return classifier.backend


def misplaced_timeline_options(args):
    """A message naming timeline options given without ``--timeline`` (else ``""``)."""
    if getattr(args, "timeline", False):
        return ""
    used = [f"--{k}" for k in TIMELINE_OPTIONS if getattr(args, k, None) not in (None, False, 0)]
    if used:
        return f"{', '.join(used)} only apply with --timeline"
    decisions = getattr(args, "open_set", False) or getattr(args, "multi_label", False)
    if getattr(args, "threshold", None) is not None and not decisions:
        return "--threshold only applies with --timeline, --open_set or --multi_label"
    return ""


def _output_path(path, audio_file, several):
    """``path``, or with several input files ``path`` with the audio file's stem inserted."""
    path = Path(path)
    return path.with_name(f"{path.stem}_{Path(audio_file).stem}{path.suffix}") if several else path


def classify_timelines(classifier, args):
    """``classify --timeline``: events (and per-window scores) of each file, streamed."""
    files = expand_audio_paths(args.files)
    several = len(files) > 1
    records = []
    for path in files:
        timeline = classifier.classify_file(
            path,
            args.labels,
            timeline=True,
            hop=args.hop,
            batch_size=args.batch_size,
            threshold=args.threshold,
            min_duration=args.min_duration,
            progress=sys.stderr.isatty(),
        )
        if args.plot:
            timeline.plot(_output_path(args.plot, path, several))
        if args.csv:
            timeline.to_csv(_output_path(args.csv, path, several))
        if args.json:
            records.append(timeline.to_dict())
            continue
        print(
            f"{path}: {timeline.duration:.2f} s, {len(timeline.starts)} windows of "
            f"{timeline.window_samples / timeline.sample_rate:g} s every "
            f"{timeline.hop_samples / timeline.sample_rate:g} s"
        )
        print(timeline.format_table(windows=args.windows or args.verbose))
    if args.json:
        print(json.dumps(records, indent=2))
    return 0


def _decisions(classifier, scores, names, args):
    """``--open_set`` / ``--multi_label`` decisions of every file's scores ``[N, C]``.

    One record per file (calibrated thresholds, or ``--threshold``); the
    thresholds are resolved once for the whole batch.
    """
    from tinyclap.runtime.decisions import multi_label_decisions, open_set_decisions

    scores = scores.cpu().numpy()
    records = [{} for _ in range(len(scores))]
    if getattr(args, "open_set", False):
        labels = open_set_decisions(scores, names, classifier.calibration, args.threshold)[2]
        for record, label in zip(records, labels):
            record["open_set"] = label
    if getattr(args, "multi_label", False):
        present = multi_label_decisions(scores, names, classifier.calibration, args.threshold)[1]
        for record, labels in zip(records, present):
            record["labels"] = labels
    return records


def _decision_text(record):
    parts = []
    if "open_set" in record:
        parts.append(record["open_set"] or "none of these")
    if "labels" in record:
        parts.append("{" + ", ".join(record["labels"]) + "}" if record["labels"] else "{}")
    return " ".join(f"[{p}]" for p in parts) + (" " if parts else "")


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
    e.add_argument("--onnx", action="store_true",
                   help="write ONNX graphs (onnx/); the default when onnx and onnxruntime "
                   "are installed")  # fmt: skip
    e.add_argument("--no_onnx", action="store_true", help="do not write ONNX graphs")
    e.add_argument("--web", action="store_true",
                   help="also write a static web page running the student (DIR/web/)")  # fmt: skip
    e.add_argument(
        "--onnx_labels",
        help="a label set name or 'a,b,c': also write a graph ending in these class scores",
    )
    e.add_argument("--quantize", action="store_true", help="also write int8 graphs (--int8)")
    e.add_argument(
        "--int8",
        choices=["static", "dynamic"],
        help="int8 recipe: static QDQ convolutions (calibrated) + dynamic projection, or "
        "the dynamic projection only (default: static, calibrated on --calibration_manifest "
        "or --eval_manifest; dynamic without either)",
    )
    e.add_argument(
        "--calibration_manifest",
        help="clips calibrating static int8 (default: --eval_manifest; none: dynamic)",
    )
    e.add_argument(
        "--onnx_frontend",
        help="the graphs' log-mel frontend (tinyclap.deploy.onnx_frontends.FRONTENDS)",
    )
    m = e.add_argument_group("microcontroller (needs the mcu extra)")
    m.add_argument("--mcu", action="store_true",
                   help="also write DIR/mcu/: int8 .tflite + C array, C log-mel frontend, "
                   "label table, report.json (flash, TFLM arena, int8/fp32 accuracy)")  # fmt: skip
    m.add_argument("--mcu_calibration", type=int, default=64,
                   help="calibration windows for int8 (one per clip of --calibration_manifest, "
                   "default: train.json of the student's data)")  # fmt: skip
    m.add_argument("--mcu_labels", help="the device's classes: a bundled set or 'a,b,c' "
                   "(default: the --eval_manifest classes, else esc50)")  # fmt: skip
    m.add_argument("--mcu_fp16_labels", action="store_true",
                   help="fp16 label table instead of int8")  # fmt: skip
    e.set_defaults(func=export)

    w = sub.add_parser("web", help="write the static web page of an exported folder (DIR/web/)")
    w.add_argument("folder", help="a folder written by tinyclap export (with its ONNX graphs)")
    w.add_argument("--out", help="the site's folder (default: FOLDER/web)")
    w.add_argument("--npm_cache", help="where the onnxruntime-web tarball is kept")
    w.set_defaults(func=web)

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
    c.add_argument("files", nargs="+",
                   help="audio files or folders (any format soundfile reads)")  # fmt: skip
    c.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "pytorch"],
                   help="auto: onnxruntime + host frontend when the folder has "
                   "onnx/student.onnx and onnxruntime is installed, else PyTorch")  # fmt: skip
    c.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"],
                   help="onnxruntime's student graph: the folder's recorded choice (static "
                   "int8 where the export measured no accuracy loss, else fp32), or insist "
                   "on one")  # fmt: skip
    c.add_argument(
        "--batch_size",
        type=int,
        default=16,
        help="files embedded per model call (with --timeline: windows per call)",
    )
    c.add_argument(
        "--labels",
        help="'dog,rain,siren' or a bundled set (esc50, us8k, ...); names of an adapted "
        "set's prototype classes take the prototype; default: the model's adapted set",
    )
    c.add_argument("--model", help=f"exported folder or hub repo id (default: ${MODEL_ENV})")
    c.add_argument("--savedir", help="where hub files are collected (default: the hub cache)")
    c.add_argument("--top", type=int, default=3, help="labels shown per file")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument(
        "--open_set",
        action="store_true",
        help="say 'none of these' below the model's calibrated threshold (tinyclap calibrate)",
    )
    c.add_argument(
        "--multi_label",
        action="store_true",
        help="every label above its calibrated threshold (tinyclap calibrate)",
    )
    c.add_argument(
        "--threshold",
        type=float,
        help="with --open_set/--multi_label: use this threshold instead of the calibrated one; "
        "with --timeline: windows scoring below it carry no event",
    )
    c.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="build whatever the model's hyperparams.yaml names (e.g. your own student class); "
        "only for models you trust",
    )
    c.add_argument("--trust_unverified", action="store_true",
                   help="load files that the model's export.json records no SHA-256 for (an "
                   "earlier export, or hashes removed); only for models you trust")  # fmt: skip
    t = c.add_argument_group("timelines (long recordings)")
    t.add_argument(
        "--timeline",
        action="store_true",
        help="per-window scores and merged events (label, onset, offset, score), streamed",
    )
    t.add_argument("--hop", type=float, help="seconds between windows (default: half a window)")
    t.add_argument("--min_duration", type=float, default=0.0, help="drop shorter events (s)")
    t.add_argument("--windows", action="store_true", help="also print the per-window table")
    t.add_argument("--plot", help="save a plot of scores and events (PNG/PDF; needs matplotlib)")
    t.add_argument("--csv", help="write the per-window scores as CSV")
    c.set_defaults(func=classify)
