"""``tinyclap export --mcu``: an exported folder's student for a microcontroller.

:func:`export_mcu` writes ``FOLDER/mcu/`` beside an export
(:func:`tinyclap.deploy.export.export_student`): the int8 ``.tflite``
calibrated on real clips, its C array, the C frontend, the label table, and
``report.json`` / ``README.md`` with flash, measured arena, MACs and the
zero-shot accuracy of the fp32 student and of the int8 model run by TFLM's own
interpreter, on the same windows (the log-mels of the student's frontend), and
``main.cc``, the TFLM program joining frontend, model and label table.

Example
-------
>>> report = export_mcu("exported/demo", "runs/demo/student/student.ckpt",
...                     eval_manifest="data/synth/test.json")  # doctest: +SKIP
>>> report["arena_bytes"], report["int8_accuracy"]  # doctest: +SKIP
(158144, 0.96875)
"""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows
from tinyclap.data.pipelines import manifest_classes, read_manifest

MCU_DIR = "mcu"
TFLITE_FILE = "student_int8.tflite"
DEFAULT_CALIBRATION_WINDOWS = 64


class CalibrationFilesError(ValueError):
    """Unreadable files in a calibration manifest (named and counted)."""


def resolve_calibration_manifest(calibration_manifest, eval_manifest, student_checkpoint):
    """The calibration clips: the option, else ``train.json`` of the student's data.

    Looked for, in turn: ``calibration_manifest``; ``train.json`` beside
    ``eval_manifest``; ``train.json`` in the ``manifest_folder`` or
    ``data_folder`` of the student's run (its ``hyperparams.yaml``).
    """
    if calibration_manifest is not None:
        return Path(calibration_manifest)
    candidates = []
    if eval_manifest is not None:
        candidates.append(Path(eval_manifest).with_name("train.json"))
    run_hparams = Path(student_checkpoint).parent / "hyperparams.yaml"
    if run_hparams.is_file():
        for line in run_hparams.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            value = value.split("#")[0].strip()
            if key in ("manifest_folder", "data_folder") and value not in ("", "null"):
                candidates.append(Path(value) / "train.json")
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError(
        "no calibration clips for int8: pass --calibration_manifest TRAIN.json (real training "
        f"clips); looked for {', '.join(map(str, candidates)) or 'train.json beside the run'}"
    )


def calibration_windows(load_audio, manifest, window_samples, pad_mode, max_windows):
    """Up to ``max_windows`` windows ``[N, window_samples]`` spread over a manifest's clips.

    Clips are taken evenly over the manifest (every k-th), the first window of
    each, so the calibration sees every class of a sorted manifest. Every
    chosen file must read: unreadable ones are named and counted
    (:class:`CalibrationFilesError`).
    """
    entries = list(read_manifest(manifest).values())
    if not entries:
        raise ValueError(f"calibration manifest {manifest} lists no clips")
    picks = np.unique(np.linspace(0, len(entries) - 1, min(max_windows, len(entries))).astype(int))
    windows, bad = [], []
    for i in picks:
        path = entries[i]["wav"]
        try:
            wav = load_audio(path).cpu()
        except Exception as exc:  # any unreadable file: collected, reported together
            bad.append(f"{path} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
            continue
        windows.append(split_windows(wav, window_samples, pad_mode=pad_mode)[:1])
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CalibrationFilesError(
            f"calibration manifest {manifest}: {len(bad)} of {len(picks)} files unreadable: {shown}"
        )
    return torch.cat(windows), len(picks)


def _device_labels(classifier, labels, eval_manifest):
    if labels is None:
        labels = manifest_classes(eval_manifest) if eval_manifest is not None else "esc50"
    names = classifier.labels_of(labels)
    return names, classifier.encode_text(labels).cpu().numpy()


def _threshold(classifier, names):
    calibration = classifier.calibration
    if calibration is None or sorted(calibration["labels"]) != sorted(names):
        return None  # no open_set.json, or thresholds of other labels
    return float(calibration["reject_threshold"])


@torch.no_grad()
def evaluate_int8(encoder, model, load_audio, manifest, text, table, names):
    """fp32 vs int8 (TFLM) zero-shot on a labelled manifest, on the same log-mels.

    Window embeddings are L2-normalised, averaged per clip and normalised again
    (as :func:`tinyclap.zeroshot.scoring.clip_embeddings`); fp32 scores use the
    float class embeddings ``text``, int8 the device's int8 ``table`` too.
    """
    from tinyclap.deploy.mcu.c_arrays import label_decisions

    classes = manifest_classes(manifest)
    index = {name: i for i, name in enumerate(names)}
    missing = [c for c in classes if c not in index]
    if missing:
        raise ValueError(f"{manifest}: classes {missing[:3]} are not among the device labels")
    student, frontend = encoder.student.eval(), encoder.frontend.eval()
    fp32, int8, targets = [], [], []
    for entry in read_manifest(manifest).values():
        wav = load_audio(entry["wav"]).cpu()
        logmels = frontend(split_windows(wav, encoder.window_samples, pad_mode=encoder.pad_mode))
        fp32.append(F.normalize(F.normalize(student(logmels), dim=-1).mean(0), dim=0).numpy())
        q = torch.stack([torch.from_numpy(model(lm.numpy())) for lm in logmels])
        int8.append(F.normalize(F.normalize(q, dim=-1).mean(0), dim=0).numpy())
        targets.append(index[entry["label"]])
    fp32, int8, targets = np.stack(fp32), np.stack(int8), np.array(targets)
    cos = np.sum(fp32 * int8, axis=1)
    text = np.asarray(text, dtype=np.float64)
    scores = np.sort(fp32 @ text.T, axis=1)
    pred_fp32 = np.argmax(fp32 @ text.T, axis=1)
    pred_int8_float_labels = np.argmax(int8 @ text.T, axis=1)
    pred_int8 = label_decisions(int8, table)
    return {
        "manifest": str(manifest),
        "num_clips": int(len(targets)),
        "fp32_accuracy": float(np.mean(pred_fp32 == targets)),
        "int8_accuracy": float(np.mean(pred_int8 == targets)),
        "int8_float_labels_accuracy": float(np.mean(pred_int8_float_labels == targets)),
        "agreement": float(np.mean(pred_int8 == pred_fp32)),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "cosines": [round(float(c), 6) for c in cos],
        "fp32_margin": [round(float(m), 6) for m in scores[:, -1] - scores[:, -2]]
        if scores.shape[1] > 1
        else [],
        "predictions": {
            "fp32": pred_fp32.tolist(),
            "int8": pred_int8.tolist(),
            "int8_float_labels": pred_int8_float_labels.tolist(),
        },  # fmt: skip
    }


def export_mcu(
    folder,
    student_checkpoint,
    eval_manifest=None,
    calibration_manifest=None,
    calibration_windows_max=DEFAULT_CALIBRATION_WINDOWS,
    labels=None,
    fp16_labels=False,
    command=None,
):
    """Write ``folder/mcu/`` for the student of an exported folder; returns the report.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`tinyclap.deploy.export.export_student`.
    student_checkpoint : str or Path
        The student it was exported from.
    eval_manifest : str, optional
        Labelled clips for fp32 / int8 accuracy (default: the folder's recorded
        evaluation manifest, ``export.json["exported_eval"]``).
    calibration_manifest : str, optional
        Real clips calibrating int8 (default: see :func:`resolve_calibration_manifest`).
    calibration_windows_max : int
        Calibration windows (one per clip, clips spread over the manifest).
    labels : str or list, optional
        The device's classes (a bundled set or ``"a,b,c"``; default: the
        evaluation manifest's classes, else ESC-50).
    fp16_labels : bool
        fp16 label table instead of int8.
    command : str, optional
        Recorded in the report.
    """
    from tinyclap.deploy.inference import ZeroShotAudioClassifier
    from tinyclap.deploy.mcu.c_arrays import quantize_labels, write_label_table, write_model_array
    from tinyclap.deploy.mcu.convert import convert_student
    from tinyclap.deploy.mcu.frontend_c import (
        frontend_flash_bytes,
        frontend_ram_bytes,
        write_frontend,
    )
    from tinyclap.deploy.mcu.main_cc import write_main
    from tinyclap.deploy.mcu.report import compiled_size, write_report
    from tinyclap.deploy.mcu.tflm import TflmModel
    from tinyclap.nn.complexity import count_macs
    from tinyclap.runtime.frontend import HostLogMel
    from tinyclap.runtime.machine import machine_info
    from tinyclap.students.official import load_any_student

    folder = Path(folder)
    out = folder / MCU_DIR
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    if eval_manifest is None:
        eval_manifest = (info.get("exported_eval") or {}).get("manifest")
    encoder = load_any_student(student_checkpoint).eval()
    # the folder was just written from the caller's own checkpoint: trusted
    classifier = ZeroShotAudioClassifier.from_hparams(source=str(folder), trust_remote_code=True)
    manifest = resolve_calibration_manifest(calibration_manifest, eval_manifest, student_checkpoint)
    windows, num = calibration_windows(classifier.load_audio, manifest, encoder.window_samples,
                                       encoder.pad_mode, int(calibration_windows_max))  # fmt: skip
    with torch.no_grad():
        calibration = encoder.frontend(windows).numpy()
    tflite = out / TFLITE_FILE
    converted = convert_student(encoder.student, calibration, tflite)
    model = TflmModel(tflite)
    write_model_array(tflite, out)
    write_main(out, model.arena_bytes, converted["ops"])
    frontend_files = write_frontend(encoder.frontend_config, encoder.clip_seconds, out)
    names, text = _device_labels(classifier, labels, eval_manifest)
    threshold = _threshold(classifier, names)
    label_info = write_label_table(out / "labels.h", names, text, threshold, fp16=fp16_labels)
    label_info["labels"] = list(names)
    sizes = compiled_size(frontend_files["frontend.c"])
    host = HostLogMel.from_config(encoder.frontend_config)
    tables = frontend_flash_bytes(encoder.frontend_config)
    code = (sizes[0] - tables) if sizes else 4096  # .text includes the const tables here
    report = {
        "command": command or f"export_mcu({str(folder)!r}, {str(student_checkpoint)!r})",
        "student_checkpoint": str(student_checkpoint),
        "student_config": getattr(encoder.student, "config", None),
        "model": converted,
        "arena_bytes": model.arena_bytes,
        "arena_measured_with": "tflite-micro Python interpreter, RecordingMicroAllocator",
        "frontend": {
            **encoder.frontend_config,
            "clip_seconds": encoder.clip_seconds,
            "n_frames": host.num_frames(encoder.window_samples),
        },  # fmt: skip
        "frontend_ram_bytes": frontend_ram_bytes(host),
        "audio_buffer_bytes": 4 * encoder.window_samples,
        "flash": {
            "model": converted["bytes"],
            "labels": label_info["bytes"],
            "frontend_tables": tables,
            "frontend_code": max(int(code), 0),
            "frontend_code_note": "x86-64 gcc -Os .text minus the tables (estimate)"
            if sizes
            else "no C compiler here: 4 KB assumed",
        },
        "macs": count_macs(
            encoder.student, (1, host.num_frames(encoder.window_samples), host.n_mels)
        ),  # fmt: skip
        "labels": label_info,
        "calibration": {
            "manifest": str(manifest),
            "windows": int(num),
            "rule": "first window of clips spread evenly over the manifest",
        },
        "machine": machine_info(),
    }
    report["flash_bytes"] = sum(v for k, v in report["flash"].items() if isinstance(v, int))
    report["ram_bytes"] = report["arena_bytes"] + report["frontend_ram_bytes"]
    report["fp32_accuracy"] = report["int8_accuracy"] = None
    if eval_manifest is not None:
        table = quantize_labels(text) if not fp16_labels else {"int8": text, "scale": 1.0}
        accuracy = evaluate_int8(encoder, model, classifier.load_audio, eval_manifest, text,
                                 table, names)  # fmt: skip
        report["accuracy"] = accuracy
        report["fp32_accuracy"] = accuracy["fp32_accuracy"]
        report["int8_accuracy"] = accuracy["int8_accuracy"]
    return write_report(out, report)
