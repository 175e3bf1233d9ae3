"""Prepare TUT Acoustic Scenes 2017 (development and evaluation releases) as manifests.

Both official releases are read from their own folders inside ``data_folder``:

- ``TUT-acoustic-scenes-2017-development/``: ``meta.txt`` (``audio/b020_90_100.wav
  <TAB> beach <TAB> b020``), ``evaluation_setup/fold{1..4}_{train,evaluate,test}.txt``
  and 4680 clips in ``audio/``. A clip's ``fold`` is the fold whose
  ``fold{k}_evaluate.txt`` lists it (each clip is evaluated in exactly one fold).
- ``TUT-acoustic-scenes-2017-evaluation/``: ``meta.txt`` (``audio/1.wav <TAB>
  beach``; labels published after the challenge), or ``evaluation_setup/evaluate.txt``
  when ``meta.txt`` has no labels; 1620 clips in ``audio/``.

Clips are 10 s, 44.1 kHz, stereo, 24-bit. Entries are ``{"wav", "duration",
"label", "scene", "release", "fold" (development), "identifier" (development)}``;
``scene`` is the official name (``cafe/restaurant``), ``label`` the readable
prompt form (``cafe or restaurant``).

``test_set="evaluation"`` tests on the evaluation release and puts the
development clips in ``train`` (``valid`` for ``valid_folds``);
``test_set="development"`` splits the development release by ``test_folds``
(default: all clips to ``test``); ``"auto"`` (default) picks ``evaluation``
when that release is present.

Example
-------
python recipes/TUT17/tut17_prepare.py --data_folder /data/TUT17
"""

from pathlib import Path

from tinyclap.data.label_sets import TUT17_CLASSES, readable_label
from tinyclap.data.manifests import (
    ManifestBuilder,
    add_fold_arguments,
    fold_options,
    fold_split,
    metadata_stamp,
    prepare_once,
)

FORMAT_VERSION = 1
DEV_FOLDER = "TUT-acoustic-scenes-2017-development"
EVAL_FOLDER = "TUT-acoustic-scenes-2017-evaluation"
NUM_DEV_FOLDS = 4


def read_list(path):
    r"""Rows of a tab-separated DCASE list file (blank lines skipped).

    Example
    -------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "meta.txt")
    >>> _ = open(f, "w").write("audio/a.wav\tbeach\ta001\n\n")
    >>> read_list(f)
    [['audio/a.wav', 'beach', 'a001']]
    """
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n").split("\t") for line in f if line.strip()]


def _scene(name, where):
    if name not in TUT17_CLASSES:
        raise ValueError(f"TUT17: unknown scene label {name!r} in {where}")
    return name


def _release_folder(data_folder, name):
    """``data_folder/name``, or ``data_folder`` itself when it is that release; else None."""
    data_folder = Path(data_folder).resolve()
    for folder in (data_folder / name, data_folder):
        has_meta = (folder / "meta.txt").is_file() or (folder / "evaluation_setup").is_dir()
        if folder.name == name and has_meta:
            return folder
    return None


def _eval_labels(folder):
    """``{relative path: scene}`` of the evaluation release, or None without labels."""
    for path in (folder / "meta.txt", folder / "evaluation_setup" / "evaluate.txt"):
        if path.is_file():
            rows = read_list(path)
            if rows and all(len(row) >= 2 and row[1] for row in rows):
                return {row[0]: _scene(row[1], path) for row in rows}
    return None


def _dev_folds(folder):
    """``{relative path: fold}`` from ``fold{k}_evaluate.txt`` (empty without them)."""
    folds = {}
    for k in range(1, NUM_DEV_FOLDS + 1):
        path = folder / "evaluation_setup" / f"fold{k}_evaluate.txt"
        if path.is_file():
            folds.update({row[0]: k for row in read_list(path)})
    return folds


def prepare_tut17(
    data_folder,
    save_folder,
    test_set="auto",
    test_folds=None,
    valid_folds=None,
    allow_missing=False,
):
    """Write TUT Acoustic Scenes 2017 manifests.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Folder holding ``TUT-acoustic-scenes-2017-development`` and/or
        ``TUT-acoustic-scenes-2017-evaluation`` (or one release folder itself).
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    test_set : str
        ``"evaluation"``, ``"development"`` or ``"auto"`` (see the module doc).
    test_folds, valid_folds : list of int, optional
        Development folds (1-4) of the test and validation splits.
    allow_missing : bool
        See :mod:`tinyclap.prepare` (shared by every preparation).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_tut17("/data/TUT17", "/data/tut17")  # doctest: +SKIP
    {'test': '/data/tut17/test.json', 'train': '/data/tut17/train.json'}
    """
    dev = _release_folder(data_folder, DEV_FOLDER)
    evaluation = _release_folder(data_folder, EVAL_FOLDER)
    eval_labels = _eval_labels(evaluation) if evaluation else None
    if test_set == "auto":
        test_set = "evaluation" if eval_labels else "development"
    if test_set not in ("evaluation", "development"):
        raise ValueError(f"TUT17: test_set must be auto, evaluation or development: {test_set!r}")
    if test_set == "evaluation":
        if evaluation is None or eval_labels is None:
            raise FileNotFoundError(
                f"TUT17: no labelled {EVAL_FOLDER} (meta.txt or evaluation_setup/evaluate.txt "
                f"with scene labels) in {data_folder}; see recipes/TUT17/README.md"
            )
        if test_folds is not None:
            raise ValueError("TUT17: test_folds select development folds; use test_set=development")
    elif dev is None:
        raise FileNotFoundError(
            f"TUT17: {DEV_FOLDER}/meta.txt not found in {data_folder}; see recipes/TUT17/README.md"
        )
    folds = fold_options(test_folds, valid_folds)
    stamps = [f / name for f in (dev, evaluation) if f for name in ("meta.txt", "evaluation_setup")]
    options = {
        "format_version": FORMAT_VERSION,
        "development": str(dev) if dev else None,
        "evaluation": str(evaluation) if evaluation and test_set == "evaluation" else None,
        "test_set": test_set,
        "metadata": metadata_stamp(*stamps),
        **folds,
    }

    def build():
        builder = ManifestBuilder()
        if dev is not None:
            dev_folds = _dev_folds(dev)
            for row in read_list(dev / "meta.txt"):
                relative, scene = row[0], _scene(row[1], dev / "meta.txt")
                fold = dev_folds.get(relative, 0)
                if test_set == "evaluation":
                    split = fold_split(fold, [], folds["valid_folds"])
                else:
                    split = fold_split(fold, folds["test_folds"], folds["valid_folds"])
                extra = {"identifier": row[2]} if len(row) > 2 else {}
                builder.add(
                    split,
                    f"tut17dev_{Path(relative).stem}",
                    dev / relative,
                    label=readable_label(scene),
                    scene=scene,
                    release="development",
                    fold=fold,
                    **extra,
                )
        if test_set == "evaluation":
            for relative, scene in eval_labels.items():
                builder.add(
                    "test",
                    f"tut17eval_{Path(relative).stem}",
                    evaluation / relative,
                    label=readable_label(scene),
                    scene=scene,
                    release="evaluation",
                )
        return builder

    return prepare_once("tut17", save_folder, options, build, allow_missing)


def add_arguments(parser):
    """The options of `python -m tinyclap.prepare tut17` beyond the shared ones."""
    parser.add_argument("--test_set", default="auto", choices=("auto", "evaluation", "development"))
    add_fold_arguments(parser)
