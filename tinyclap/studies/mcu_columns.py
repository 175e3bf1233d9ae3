"""MCU columns of ``tinyclap report``: int8 flash and TFLM arena of each sweep student.

For each student row, :func:`mcu_figures` reads the figures of an ``--mcu``
export of that run when there is one (``RUN/**/mcu/report.json``, its
``model.bytes`` and ``arena_bytes``), else a previous conversion
(``RUN/mcu/sizes.json``), else -- with ``convert`` (``tinyclap report --mcu``,
needs the ``mcu`` extra) -- converts the student to full int8
(:func:`tinyclap.deploy.mcu.convert.convert_student`, calibrated on the run's
training clips or ``--calibration_manifest``), measures TFLM's arena
(:func:`tinyclap.deploy.mcu.tflm.arena_bytes`) and keeps them in
``RUN/mcu/sizes.json`` + ``RUN/mcu/student_int8.tflite``.

``flash_bytes`` is the int8 ``.tflite`` model (what dominates; an export's
``report.json`` adds the frontend and the label table, a few KB);
``arena_bytes`` the tensor arena TFLM needs for one window.

:func:`within_budget` picks the students that fit a chip
(``--max_arena_kb`` / ``--max_flash_kb``) and, when none does, the closest one.

Example
-------
>>> rows = [{"kind": "student", "model": "a", "arena_bytes": 600 * 1024,
...          "flash_bytes": 900 * 1024, "score": 80.0},
...         {"kind": "student", "model": "b", "arena_bytes": 300 * 1024,
...          "flash_bytes": 800 * 1024, "score": 70.0}]
>>> [r["model"] for r in within_budget(rows, max_arena_kb=512)[0]]
['b']
>>> within_budget(rows, max_arena_kb=256)[1]["model"]
'b'
"""

import json
from pathlib import Path

KB = 1024
SIZES_FILE = "sizes.json"
CALIBRATION_WINDOWS = 32


def _export_report(run_folder):
    """``report.json`` of an ``--mcu`` export under ``run_folder`` (the newest), or None."""
    found = sorted(Path(run_folder).rglob("mcu/report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text(encoding="utf-8")) if found else None


def _convert(checkpoint, calibration_manifest, out_dir):
    """Convert one student checkpoint; returns its sizes record (written to ``out_dir``)."""
    from tinyclap.audio.io import load_audio
    from tinyclap.deploy.mcu.convert import convert_student
    from tinyclap.deploy.mcu.export import calibration_windows, resolve_calibration_manifest
    from tinyclap.deploy.mcu.tflm import arena_bytes
    from tinyclap.students.encoder import load_student

    encoder = load_student(checkpoint).eval()
    manifest = resolve_calibration_manifest(calibration_manifest, None, checkpoint)
    windows, count = calibration_windows(
        lambda path: load_audio(path, encoder.sample_rate), manifest,
        encoder.window_samples, encoder.pad_mode, CALIBRATION_WINDOWS,
    )  # fmt: skip
    import torch

    with torch.no_grad():
        logmels = encoder.frontend(windows).numpy()
    out_dir = Path(out_dir)
    info = convert_student(encoder.student, logmels, out_dir / "student_int8.tflite")
    record = {
        "student_checkpoint": str(checkpoint),
        "flash_bytes": info["bytes"],
        "arena_bytes": arena_bytes(out_dir / "student_int8.tflite"),
        "frames": info["input"]["shape"][1],
        "calibration": {"manifest": str(manifest), "windows": int(count)},
        "source": "tinyclap report --mcu (int8 model bytes, TFLM arena)",
    }
    (out_dir / SIZES_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def mcu_figures(run_folder, checkpoint=None, convert=False, calibration_manifest=None):
    """``{"flash_bytes", "arena_bytes", "mcu_source"}`` of a run's student, or ``{}``.

    Parameters
    ----------
    run_folder : str or Path
        The distillation run's folder.
    checkpoint : str or Path, optional
        Its student checkpoint (needed to convert).
    convert : bool
        Convert the student when no figures are found (``mcu`` extra).
    calibration_manifest : str, optional
        Calibration clips (default: the run's ``train.json``).
    """
    run_folder = Path(run_folder)
    report = _export_report(run_folder)
    if report is not None:
        return {"flash_bytes": report["model"]["bytes"], "arena_bytes": report["arena_bytes"],
                "mcu_source": "export report.json"}  # fmt: skip
    sizes = run_folder / "mcu" / SIZES_FILE
    if sizes.is_file():
        record = json.loads(sizes.read_text(encoding="utf-8"))
    elif convert and checkpoint is not None:
        record = _convert(checkpoint, calibration_manifest, run_folder / "mcu")
    else:
        return {}
    return {"flash_bytes": record["flash_bytes"], "arena_bytes": record["arena_bytes"],
            "mcu_source": "converted"}  # fmt: skip


def _over(row, max_arena_kb, max_flash_kb):
    """How far ``row`` is over the budget: its largest ratio figure / limit (<= 1 fits)."""
    ratios = []
    if max_arena_kb is not None:
        ratios.append(row["arena_bytes"] / (max_arena_kb * KB))
    if max_flash_kb is not None:
        ratios.append(row["flash_bytes"] / (max_flash_kb * KB))
    return max(ratios) if ratios else 0.0


def within_budget(rows, max_arena_kb=None, max_flash_kb=None):
    """``(students that fit, best-scoring first; the closest student when none fits)``.

    Only student rows with MCU figures take part. The closest is the one whose
    largest figure-to-limit ratio is smallest (``None`` when no row has figures).
    """
    measured = [r for r in rows if r.get("kind") == "student" and r.get("arena_bytes") is not None]
    fitting = [r for r in measured if _over(r, max_arena_kb, max_flash_kb) <= 1.0]
    fitting.sort(key=lambda r: (r.get("score") is None, -(r.get("score") or 0.0)))
    closest = min(measured, key=lambda r: _over(r, max_arena_kb, max_flash_kb), default=None)
    return fitting, (None if fitting else closest)


def budget_line(row, max_arena_kb=None, max_flash_kb=None):
    """``"a0.5_N3: arena 300.0 KB, flash 800.0 KB, score 70.0"`` (one line)."""
    score = row.get("score")
    return (f"{row['model']}: arena {row['arena_bytes'] / KB:.1f} KB, flash "
            f"{row['flash_bytes'] / KB:.1f} KB, score {'-' if score is None else round(score, 2)}"
            f" ({_over(row, max_arena_kb, max_flash_kb):.2f}x the tightest limit)")  # fmt: skip
