"""Prepare UrbanSound8K (the official ``UrbanSound8K`` download) as SpeechBrain manifests.

Reads ``metadata/UrbanSound8K.csv``
(``slice_file_name,fsID,start,end,salience,fold,classID,class``) and
``audio/fold{1..10}/{fsID}-{classID}-{occurrence}-{slice}.wav``. The files keep
their Freesound formats (8 to 96 kHz, mono or stereo, 8-bit unsigned, 16/24-bit
or float PCM, up to 4 s): :func:`tinyclap.audio.io.load_audio` reads them all.
Each entry is ``{"wav", "duration", "label", "class", "class_id", "fold",
"fs_id", "salience"}``; ``label`` is the readable form (``dog bark``).

By default every clip goes to ``test.json``; ``test_folds`` / ``valid_folds``
select folds (the usual 10-fold protocol), the rest form ``train.json``.

Example
-------
python recipes/US8K/us8k_prepare.py --data_folder /data/UrbanSound8K
"""

import csv
from pathlib import Path

from tinyclap.data.label_sets import US8K_CLASSES, readable_label
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
META_FILE = Path("metadata") / "UrbanSound8K.csv"


def prepare_us8k(data_folder, save_folder, test_folds=None, valid_folds=None, allow_missing=False):
    """Write UrbanSound8K manifests (``test.json``, and ``train``/``valid`` by fold).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        ``UrbanSound8K`` (or the folder containing it).
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    test_folds : list of int, optional
        Folds of the test split; ``None`` (default) puts all 8732 clips there.
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
    >>> prepare_us8k("/data/UrbanSound8K", "/data/us8k", test_folds=[10])  # doctest: +SKIP
    {'test': '/data/us8k/test.json', 'train': '/data/us8k/train.json'}
    """
    root = find_dataset_root(data_folder, META_FILE, "UrbanSound8K", "UrbanSound8K", "US8K")
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
                name, class_id = row["class"], int(row["classID"])
                if US8K_CLASSES[class_id] != name:
                    raise ValueError(f"US8K: {row['slice_file_name']}: class {class_id} != {name}")
                fold = int(row["fold"])
                builder.add(
                    fold_split(fold, options["test_folds"], options["valid_folds"]),
                    Path(row["slice_file_name"]).stem,
                    root / "audio" / f"fold{fold}" / row["slice_file_name"],
                    label=readable_label(name),
                    **{"class": name},
                    class_id=class_id,
                    fold=fold,
                    fs_id=row["fsID"],
                    salience=int(row["salience"]),
                )
        return builder

    return prepare_once("us8k", save_folder, options, build, allow_missing)


add_arguments = add_fold_arguments  # the options of `python -m tinyclap.prepare us8k`
