"""Prepare ESC-50 (the official ``ESC-50-master`` download) as SpeechBrain manifests.

Reads ``meta/esc50.csv`` (``filename,fold,target,category,esc10,src_file,take``)
and ``audio/*.wav`` (5 s, 44.1 kHz, mono, 16-bit). Each entry is
``{"wav", "duration", "label", "category", "target", "fold", "esc10"}``:
``category`` is the official class name (``door_wood_knock``), ``label`` its
readable prompt form (``door wood knock``).

By default every clip goes to ``test.json`` (zero-shot evaluation over the
whole benchmark); ``test_folds`` / ``valid_folds`` select folds instead, the
other folds then form ``train.json`` (and ``valid.json``).

Example
-------
python recipes/ESC50/esc50_prepare.py --data_folder /data/ESC-50-master
"""

import csv
from pathlib import Path

from tinyclap.data.label_sets import ESC50_CLASSES, readable_label
from tinyclap.data.manifests import (
    ManifestBuilder,
    add_fold_arguments,
    find_dataset_root,
    fold_options,
    fold_split,
    metadata_stamp,
    prepare_once,
)

FORMAT_VERSION = 1
META_FILE = Path("meta") / "esc50.csv"


def prepare_esc50(data_folder, save_folder, test_folds=None, valid_folds=None, allow_missing=False):
    """Write ESC-50 manifests (``test.json``, and ``train``/``valid`` when folds are chosen).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        ``ESC-50-master`` (or the folder containing it).
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    test_folds : list of int, optional
        Folds of the test split; ``None`` (default) puts all 2000 clips there.
    valid_folds : list of int, optional
        Folds of the validation split (the remaining folds are ``train``).
    allow_missing : bool
        See :mod:`tinyclap.prepare` (shared by every preparation).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_esc50("/data/ESC-50-master", "/data/esc50_manifests")  # doctest: +SKIP
    {'test': '/data/esc50_manifests/test.json'}
    """
    root = find_dataset_root(data_folder, META_FILE, "ESC-50-master", "ESC-50", "ESC50")
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "metadata": metadata_stamp(root / META_FILE),
        **fold_options(test_folds, valid_folds),
    }

    def build():
        builder = ManifestBuilder()
        with open(root / META_FILE, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                category, target = row["category"], int(row["target"])
                if ESC50_CLASSES[target] != category:
                    raise ValueError(f"ESC-50: {row['filename']}: class {target} is not {category}")
                fold = int(row["fold"])
                builder.add(
                    fold_split(fold, options["test_folds"], options["valid_folds"]),
                    Path(row["filename"]).stem,
                    root / "audio" / row["filename"],
                    label=readable_label(category),
                    category=category,
                    target=target,
                    fold=fold,
                    esc10=row["esc10"].strip().lower() == "true",
                )
        return builder

    return prepare_once("esc50", save_folder, options, build, allow_missing)


add_arguments = add_fold_arguments  # the options of `python -m tinyclap.prepare esc50`
