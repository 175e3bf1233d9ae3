"""Prepare Clotho v2 (audio captioning, Freesound clips of 15-30 s) as manifests.

Reads ``clotho_captions_{development,validation,evaluation}.csv``
(``file_name,caption_1,...,caption_5``) and the audio of each subset from
``{development,validation,evaluation}/`` (or ``clotho_audio_<subset>/``).
Splits: ``train`` (development), ``valid`` (validation), ``test``
(evaluation). Entries: ``{"wav", "duration", "caption", "captions",
"subset"}``. Clips missing on disk are an error, or with ``allow_missing`` dropped and
counted in ``prepare_report.json``.

Example
-------
python recipes/Clotho/clotho_prepare.py --data_folder /data/Clotho
"""

import csv
from pathlib import Path

from tinyclap.data.manifests import ManifestBuilder, metadata_stamp, prepare_once

FORMAT_VERSION = 1
SUBSETS = {"development": "train", "validation": "valid", "evaluation": "test"}


def _audio_folder(root, subset):
    for folder in (root / subset, root / f"clotho_audio_{subset}"):
        if folder.is_dir():
            return folder
    return root / subset


def prepare_clotho(data_folder, save_folder, allow_missing=False):
    """Write Clotho v2 manifests (``train``, ``valid``, ``test``).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Folder holding the caption csv files and the audio folders.
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
    >>> prepare_clotho("/data/Clotho", "/data/clotho")  # doctest: +SKIP
    {'test': ..., 'train': ..., 'valid': ...}
    """
    root = Path(data_folder).resolve()
    csvs = {s: root / f"clotho_captions_{s}.csv" for s in SUBSETS}
    csvs = {s: p for s, p in csvs.items() if p.is_file()}
    if not csvs:
        raise FileNotFoundError(
            f"Clotho: no clotho_captions_<subset>.csv in {root}; see recipes/Clotho/README.md"
        )
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "metadata": metadata_stamp(*csvs.values()),
    }

    def build():
        builder = ManifestBuilder()
        for subset, csv_path in csvs.items():
            folder = _audio_folder(root, subset)
            with open(csv_path, newline="", encoding="utf-8-sig") as f:
                for row in csv.DictReader(f):
                    captions = [
                        row[k].strip() for k in sorted(row) if k.startswith("caption_") and row[k]
                    ]
                    builder.add(
                        SUBSETS[subset],
                        f"{subset}/{row['file_name']}",
                        folder / row["file_name"],
                        caption=captions[0] if captions else "",
                        captions=captions,
                        subset=subset,
                    )
        return builder

    return prepare_once("clotho", save_folder, options, build, allow_missing)
