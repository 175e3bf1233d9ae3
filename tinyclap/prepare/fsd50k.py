"""Prepare FSD50K (Freesound sound events, 200 AudioSet classes) as manifests.

Reads ``FSD50K.ground_truth/dev.csv`` (``fname,labels,mids,split`` with split
``train``/``val``) and ``eval.csv`` (``fname,labels,mids``); audio in
``FSD50K.dev_audio/{fname}.wav`` and ``FSD50K.eval_audio/{fname}.wav``
(mono, 44.1 kHz, 16-bit, 0.3-30 s). Splits: ``train``, ``valid`` (dev rows
with split ``val``), ``test`` (eval). Entries: ``{"wav", "duration",
"labels", "mids"}``: FSD50K is multi-label, so there is no single ``label``
(use it for distillation; the loss needs audio only). Missing clips are
an error, or with ``allow_missing`` dropped and counted in
``prepare_report.json``.

Example
-------
python recipes/FSD50K/fsd50k_prepare.py --data_folder /data/FSD50K
"""

import csv
from pathlib import Path

from tinyclap.data.manifests import ManifestBuilder, metadata_stamp, prepare_once

FORMAT_VERSION = 1
GROUND_TRUTH = "FSD50K.ground_truth"
AUDIO = {"dev": "FSD50K.dev_audio", "eval": "FSD50K.eval_audio"}


def prepare_fsd50k(data_folder, save_folder, allow_missing=False):
    """Write FSD50K manifests (``train``, ``valid``, ``test``).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Folder holding ``FSD50K.ground_truth/`` and the audio folders.
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    allow_missing : bool
        See :mod:`tinyclap.prepare` (shared by every preparation).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_fsd50k("/data/FSD50K", "/data/fsd50k")  # doctest: +SKIP
    {'train': ..., 'valid': ..., 'test': ...}
    """
    root = Path(data_folder).resolve()
    csvs = {part: root / GROUND_TRUTH / f"{part}.csv" for part in AUDIO}
    csvs = {part: p for part, p in csvs.items() if p.is_file()}
    if not csvs:
        raise FileNotFoundError(
            f"FSD50K: no {GROUND_TRUTH}/dev.csv or eval.csv in {root}; see recipes/FSD50K/README.md"
        )
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "metadata": metadata_stamp(*csvs.values()),
    }

    def build():
        builder = ManifestBuilder()
        for part, csv_path in csvs.items():
            with open(csv_path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if part == "eval":
                        split = "test"
                    else:
                        split = "valid" if row.get("split", "train") == "val" else "train"
                    builder.add(
                        split,
                        f"{part}_{row['fname']}",
                        root / AUDIO[part] / f"{row['fname']}.wav",
                        labels=row["labels"].split(","),
                        mids=row["mids"].split(","),
                    )
        return builder

    return prepare_once("fsd50k", save_folder, options, build, allow_missing)
