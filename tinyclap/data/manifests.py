"""Shared helpers for dataset preparation scripts: skip-if-prepared and manifests.

Real-data recipes use :func:`prepare_once` with a :class:`ManifestBuilder`:
the builder collects ``{split: {id: entry}}`` (reading each clip's duration
from its header, and recording the clips listed in the metadata that are
missing on disk), and :func:`prepare_once` writes the manifests, a
``prepare_report.json`` and the options record, or returns at once when the
same options were already prepared.

A clip missing on disk is an error by default (:class:`MissingAudioError`,
naming the first files and their manifest entries), so that an evaluation
never silently runs on fewer clips. With ``allow_missing=True`` they are
dropped, and their number is recorded in ``prepare_report.json``, where a
stage reads it with :func:`preparation_report`.

A preparation script records the options it ran with in
``save_folder/prepare_options.json`` once everything is written
(:func:`mark_prepared`). A later call asks :func:`skip_if_prepared` whether its
outputs exist and were made with the same options, and returns at once if so.
All JSON files are written atomically (temporary file + :func:`os.replace`), so
an interrupted preparation never leaves a half-written file behind.

Example
-------
>>> options = {"seed": 1, "n_train": 10}
>>> if not skip_if_prepared(folder, options, ["train.json"]):  # doctest: +SKIP
...     write_manifest(f"{folder}/train.json", entries)
...     mark_prepared(folder, options)
"""

import argparse
import json
import logging
import os
import tempfile
import zlib
from collections import defaultdict
from pathlib import Path

import soundfile as sf

logger = logging.getLogger(__name__)

OPTIONS_FILENAME = "prepare_options.json"
REPORT_FILENAME = "prepare_report.json"
# missing clips named in the error message and in preparation_report()
NUM_EXAMPLES = 5


class MissingAudioError(FileNotFoundError):
    """Clips listed in a dataset's metadata are missing on disk (and not allowed to be)."""


def _normalise(options):
    """Return ``options`` as it reads back from JSON (tuples to lists, paths to str)."""
    return json.loads(json.dumps(options, sort_keys=True, default=str))


def _write_json_atomic(path, payload):
    """Write ``payload`` as indented JSON to ``path`` through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp_file:
            json.dump(payload, tmp_file, indent=2, default=str)
            tmp_file.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


def skip_if_prepared(save_folder, options, filenames):
    """Tell whether a preparation with ``options`` already produced ``filenames``.

    Parameters
    ----------
    save_folder : str or pathlib.Path
        Folder holding the outputs and ``prepare_options.json``.
    options : dict
        Every option that influences the outputs (JSON-serialisable; tuples
        and paths are compared as lists and strings).
    filenames : list of str
        Output files expected inside ``save_folder``.

    Returns
    -------
    bool
        True only if every file exists and the recorded options equal
        ``options``; False otherwise (including a missing or corrupt record).

    Example
    -------
    >>> skip_if_prepared("/nonexistent", {"seed": 1}, ["train.json"])
    False
    """
    save_folder = Path(save_folder)
    if not all((save_folder / name).is_file() for name in filenames):
        return False
    try:
        recorded = json.loads((save_folder / OPTIONS_FILENAME).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == _normalise(options)


def mark_prepared(save_folder, options):
    """Record ``options`` as those of the last successful preparation.

    Parameters
    ----------
    save_folder : str or pathlib.Path
        Folder of the outputs; ``prepare_options.json`` is written there.
    options : dict
        The options passed to :func:`skip_if_prepared`.

    Example
    -------
    >>> mark_prepared(folder, {"seed": 1})  # doctest: +SKIP
    """
    _write_json_atomic(Path(save_folder) / OPTIONS_FILENAME, _normalise(options))


def write_manifest(path, entries):
    """Write a SpeechBrain JSON manifest (``{id: {field: value}}``) atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination ``.json`` file; parent folders are created.
    entries : dict
        Mapping from example id to its fields (``wav``, ``duration``, ...).

    Example
    -------
    >>> write_manifest("train.json", {"ex0": {"wav": "/d/ex0.wav"}})  # doctest: +SKIP
    """
    _write_json_atomic(path, entries)


def metadata_stamp(*paths):
    """``[name, size, mtime_ns]`` of metadata files, to key preparations on them.

    A re-downloaded or edited metadata file then triggers a new preparation.
    Missing files are recorded as ``[name, None, None]``.

    Example
    -------
    >>> metadata_stamp("/nonexistent/meta.csv")
    [['/nonexistent/meta.csv', None, None]]
    """
    stamps = []
    for path in paths:
        try:
            stat = Path(path).stat()
            stamps.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:
            stamps.append([str(path), None, None])
    return stamps


def manifests_complete(manifest_paths):
    """True when every manifest exists and every ``wav`` it lists is a file.

    Example
    -------
    >>> manifests_complete({"test": "/nonexistent/test.json"})
    False
    """
    for path in manifest_paths.values():
        try:
            entries = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError):
            return False
        if not all(Path(entry["wav"]).is_file() for entry in entries.values()):
            return False
    return True


class ManifestBuilder:
    """Collect manifest entries per split; count missing and unreadable clips.

    :meth:`add` stores ``{"wav", "duration", **fields}`` when the file exists
    (``duration`` from the file header, ``None`` when the header cannot be
    read: such clips stay in the manifest so that ``--check_audio`` reports
    them with their id). Clips missing on disk are not added but counted and
    listed in :meth:`report`.

    Example
    -------
    >>> builder = ManifestBuilder()
    >>> builder.add("test", "clip1", "/nonexistent/clip1.wav", label="dog")
    False
    >>> builder.report()["missing_count"]
    {'test': 1}
    """

    def __init__(self):
        self.manifests = defaultdict(dict)
        self.missing = defaultdict(list)
        self.missing_in_order = []  # {"split", "id", "wav"} in metadata order
        self.unreadable = defaultdict(list)

    def add(self, split, clip_id, path, **fields):
        """Add one clip to ``split``; return False when its file is missing."""
        if clip_id in self.manifests[split]:
            raise ValueError(f"duplicate manifest id {clip_id!r} in split {split!r}")
        path = Path(path)
        if not path.is_file():
            self.missing[split].append({"id": clip_id, "wav": str(path)})
            self.missing_in_order.append({"split": split, "id": clip_id, "wav": str(path)})
            return False
        try:
            info = sf.info(str(path))
            duration = info.frames / info.samplerate
        except Exception as err:  # libsndfile raises several error types
            duration = None
            self.unreadable[split].append({"id": clip_id, "wav": str(path), "error": str(err)})
        self.manifests[split][clip_id] = {"wav": str(path), "duration": duration, **fields}
        return True

    def report(self):
        """Counts per split, the missing and unreadable clips with their ids.

        ``missing_examples`` holds the first :data:`NUM_EXAMPLES` missing clips
        in metadata order (``{"split", "id", "wav"}``).
        """
        splits = sorted(set(self.manifests) | set(self.missing))
        return {
            "missing_examples": self.missing_in_order[:NUM_EXAMPLES],
            "counts": {s: len(self.manifests[s]) for s in splits if self.manifests[s]},
            "missing_count": {s: len(self.missing[s]) for s in splits if self.missing[s]},
            "unreadable_count": {s: len(self.unreadable[s]) for s in splits if self.unreadable[s]},
            "missing": {s: self.missing[s] for s in splits if self.missing[s]},
            "unreadable": {s: self.unreadable[s] for s in splits if self.unreadable[s]},
        }


def _missing_list(report):
    """``[{"split", "id", "wav"}]`` of every missing clip of a builder report."""
    return [
        {"split": split, "id": clip["id"], "wav": clip["wav"]}
        for split, clips in report.get("missing", {}).items()
        for clip in clips
    ]


def _missing_examples(report, count=NUM_EXAMPLES):
    """The first ``count`` missing clips, in metadata order when the report has it."""
    examples = report.get("missing_examples")
    if examples is None or (count > len(examples) and len(_missing_list(report)) > len(examples)):
        examples = _missing_list(report)
    return examples[:count]


def missing_audio_message(name, report, report_path=None):
    """The error message of :class:`MissingAudioError` for a builder ``report``.

    Names the first :data:`NUM_EXAMPLES` missing files with their manifest
    entry and split, and the total count.

    Example
    -------
    >>> builder = ManifestBuilder()
    >>> _ = builder.add("test", "clip1", "/nonexistent/clip1.wav")
    >>> print(missing_audio_message("demo", builder.report()))
    demo: 1 of 1 clips listed in the metadata are missing on disk: /nonexistent/clip1.wav (manifest entry clip1, split test). Restore them, or pass allow_missing=True (--allow_missing) to drop them and record their number in prepare_report.json.
    """  # noqa: E501
    missing = _missing_list(report)
    total = len(missing) + sum(report.get("counts", {}).values())
    shown = "; ".join(
        f"{m['wav']} (manifest entry {m['id']}, split {m['split']})"
        for m in _missing_examples(report)
    )
    more = f"; and {len(missing) - NUM_EXAMPLES} more" if len(missing) > NUM_EXAMPLES else ""
    listed = f" (all listed in {report_path})" if report_path else ""
    return (
        f"{name}: {len(missing)} of {total} clips listed in the metadata are missing on disk"
        f"{listed}: {shown}{more}. Restore them, or pass allow_missing=True "
        "(--allow_missing) to drop them and record their number in prepare_report.json."
    )


def _missing_restored(recorded):
    """True when a clip recorded as missing by an earlier preparation is now on disk."""
    return any(Path(m["wav"]).is_file() for m in _missing_list(recorded))


def prepare_once(name, save_folder, options, build, allow_missing=False):
    """The one skip-if-prepared driver of the real-data recipes.

    Parameters
    ----------
    name : str
        Dataset name, for the log and the report.
    save_folder : str or pathlib.Path
        Where ``{split}.json``, ``prepare_report.json`` and
        ``prepare_options.json`` go.
    options : dict
        Everything the outputs depend on (data folder, metadata stamps,
        fold choices, format version); a different value prepares again.
    build : callable
        ``build() -> ManifestBuilder``, only called when needed.
    allow_missing : bool
        False (default): a clip of the metadata missing on disk raises
        :class:`MissingAudioError`. True: such clips are left out of the
        manifests, logged, and counted in ``prepare_report.json``
        (``missing_files``; read it with :func:`preparation_report`). The
        choice is part of the options, so a folder prepared with
        ``allow_missing=True`` is never reused by a call without it.

    Returns
    -------
    dict
        ``{split: manifest_path}`` of the non-empty splits.

    Raises
    ------
    MissingAudioError
        When clips are missing and ``allow_missing`` is False; the message
        names the first ones (file, manifest id, split) and their number,
        and ``prepare_report.json`` lists them all (no manifest is written).

    Example
    -------
    >>> def build():
    ...     return ManifestBuilder()
    >>> prepare_once("empty", tempfile.mkdtemp(), {"v": 1}, build)
    Traceback (most recent call last):
    ...
    ValueError: empty: no audio found; see the recipe README for the expected layout
    """
    save_folder = Path(save_folder)
    options = {"dataset": name, **options, "allow_missing": bool(allow_missing)}
    try:
        recorded = json.loads((save_folder / REPORT_FILENAME).read_text("utf-8"))
        splits = list(recorded["counts"])
    except (OSError, ValueError, KeyError):
        recorded, splits = {}, None
    if splits:
        paths = {s: str(save_folder / f"{s}.json") for s in splits}
        names = [f"{s}.json" for s in splits] + [REPORT_FILENAME]
        if (
            skip_if_prepared(save_folder, options, names)
            and manifests_complete(paths)
            and not _missing_restored(recorded)
        ):
            logger.info("%s already prepared in %s, skipping", name, save_folder)
            return paths
    (save_folder / OPTIONS_FILENAME).unlink(missing_ok=True)
    builder = build()
    report = {"dataset": name, **builder.report()}
    missing_files = sum(report["missing_count"].values())
    report["missing_files"] = missing_files
    report["allow_missing"] = bool(allow_missing)
    if missing_files and not allow_missing:
        # the full list goes to the report; no manifest is written
        _write_json_atomic(save_folder / REPORT_FILENAME, {**report, "failed": True})
        raise MissingAudioError(missing_audio_message(name, report, save_folder / REPORT_FILENAME))
    if not report["counts"]:
        raise ValueError(f"{name}: no audio found; see the recipe README for the expected layout")
    paths = {}
    for split in report["counts"]:
        paths[split] = str(save_folder / f"{split}.json")
        write_manifest(paths[split], builder.manifests[split])
    _write_json_atomic(save_folder / REPORT_FILENAME, report)
    mark_prepared(save_folder, options)
    counts = ", ".join(f"{s} {n}" for s, n in report["counts"].items())
    logger.info("%s manifests in %s: %s clips", name, save_folder, counts)
    for split, missing in report["missing"].items():
        logger.warning(
            "%s: %d clips of split %s are missing on disk and were dropped (allow_missing; "
            "listed in %s), e.g. %s",
            name, len(missing), split, save_folder / REPORT_FILENAME, missing[0]["wav"],
        )  # fmt: skip
    for split, bad in report["unreadable"].items():
        logger.warning(
            "%s: %d files of split %s have unreadable headers, e.g. %s: %s",
            name, len(bad), split, bad[0]["wav"], bad[0]["error"],
        )  # fmt: skip
    return paths


def write_preparation_report(save_folder, report):
    """Write ``report`` as ``save_folder/prepare_report.json`` (atomically).

    For preparations that do not go through :func:`prepare_once` (the Synth
    set renders its own clips), so that :func:`preparation_report` reads
    every dataset's folder the same way.
    """
    _write_json_atomic(Path(save_folder) / REPORT_FILENAME, report)


def preparation_report(save_folder, num_examples=NUM_EXAMPLES):
    """What a stage records about a preparation: the clips dropped as missing.

    Parameters
    ----------
    save_folder : str or pathlib.Path
        The folder of the manifests (``manifest_folder``, by default the
        dataset's ``data_folder``), holding ``prepare_report.json``.
    num_examples : int
        How many missing clips to list in ``examples``.

    Returns
    -------
    dict
        ``{"missing_files": n, "missing_count": {split: n}, "examples":
        [{"split", "id", "wav"}, ...], "allow_missing": bool}``;
        ``missing_files`` is 0 when nothing was dropped.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``prepare_report.json`` (not prepared there).
    ValueError
        When the report is that of a failed preparation (clips missing
        without ``allow_missing``).

    Example
    -------
    >>> preparation_report("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no prepare_report.json in /nonexistent: the dataset was not prepared there
    """
    path = Path(save_folder) / REPORT_FILENAME
    try:
        report = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no {REPORT_FILENAME} in {save_folder}: the dataset was not prepared there"
        ) from None
    if report.get("failed"):
        raise ValueError(f"{path}: the last preparation failed (clips missing on disk)")
    missing = _missing_list(report)
    return {
        "missing_files": len(missing),
        "missing_count": {s: n for s, n in report.get("missing_count", {}).items() if n},
        "examples": _missing_examples(report, num_examples),
        "allow_missing": bool(report.get("allow_missing", False)),
    }


def fold_split(fold, test_folds=None, valid_folds=None):
    """The split of a clip of a benchmark fold.

    ``test_folds=None`` puts every clip in the test split (zero-shot use of a
    whole benchmark); otherwise clips of ``test_folds`` are ``test``, clips of
    ``valid_folds`` are ``valid`` and the rest ``train``.

    Example
    -------
    >>> fold_split(3), fold_split(3, [5]), fold_split(4, [5], [4]), fold_split(5, [5], [4])
    ('test', 'train', 'valid', 'test')
    """
    if test_folds is None or int(fold) in {int(f) for f in test_folds}:
        return "test"
    if valid_folds is not None and int(fold) in {int(f) for f in valid_folds}:
        return "valid"
    return "train"


def fold_options(test_folds=None, valid_folds=None):
    """Normalised fold choices (sorted int lists or None) for the options record.

    Example
    -------
    >>> fold_options([5, "4"], None)
    {'test_folds': [4, 5], 'valid_folds': None}
    """

    def norm(folds):
        if folds is None:
            return None
        if isinstance(folds, (int, str)):
            folds = [folds]
        return sorted(int(f) for f in folds)

    return {"test_folds": norm(test_folds), "valid_folds": norm(valid_folds)}


def prepare_cli(prepare, argv=None, description=None, add_arguments=None):
    """Command line of a preparation script: ``--data_folder``, ``--save_folder``, extras.

    Parameters
    ----------
    prepare : callable
        ``prepare(data_folder, save_folder, allow_missing=..., **extras) ->
        {split: path}`` (``--allow_missing`` drops clips missing on disk and
        counts them instead of failing).
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    description : str, optional
        Help text.
    add_arguments : callable, optional
        ``add_arguments(parser)`` adds the script's own options; their
        destinations are passed to ``prepare`` as keyword arguments.

    Returns
    -------
    dict
        What ``prepare`` returned (also printed, one split per line).

    Example
    -------
    >>> prepare_cli(lambda d, s, allow_missing: {"test": f"{s}/test.json"}, ["--data_folder", "d"])
    test: d/test.json
    {'test': 'd/test.json'}
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data_folder", required=True, help="the dataset folder (the official download)"
    )
    parser.add_argument(
        "--save_folder", default=None, help="where manifests go (default: data_folder)"
    )
    add_allow_missing_argument(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_folder = args.pop("data_folder")
    save_folder = args.pop("save_folder") or data_folder
    manifests = prepare(data_folder, save_folder, **args)
    for split, path in manifests.items():
        print(f"{split}: {path}")
    return manifests


def add_allow_missing_argument(parser):
    """Add ``--allow_missing`` (a flag) to ``parser``."""
    parser.add_argument(
        "--allow_missing",
        action="store_true",
        help="drop clips listed in the metadata but missing on disk (counted in "
        "prepare_report.json) instead of failing",
    )


def add_fold_arguments(parser):
    """Add ``--test_folds`` and ``--valid_folds`` (lists of ints) to ``parser``."""
    parser.add_argument(
        "--test_folds", type=int, nargs="+", default=None, help="test folds (default: all clips)"
    )
    parser.add_argument("--valid_folds", type=int, nargs="+", default=None, help="validation folds")


def hash_split(key, valid_fraction):
    """``"valid"`` for a stable ``valid_fraction`` of keys, else ``"train"``.

    The choice depends on the key only (CRC-32), so adding files to a corpus
    never moves the existing ones between splits.

    Example
    -------
    >>> [hash_split(f"clip{i}", 0.5) for i in range(4)]
    ['valid', 'train', 'valid', 'train']
    """
    return (
        "valid"
        if zlib.crc32(str(key).encode("utf-8")) % 10000 < valid_fraction * 10000
        else "train"
    )


def find_dataset_root(data_folder, meta_file, subfolder, name, recipe):
    """The folder holding ``meta_file``: ``data_folder`` itself or its ``subfolder``.

    Raises
    ------
    FileNotFoundError
        Naming the file, both places looked at and the recipe README.

    Example
    -------
    >>> find_dataset_root("/nowhere", "meta/esc50.csv", "ESC-50-master", "ESC-50", "ESC50")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ESC-50: meta/esc50.csv not found in /nowhere (nor in its ESC-50-master/); see recipes/ESC50/README.md for the expected layout
    """  # noqa: E501
    data_folder = Path(data_folder).resolve()
    for root in (data_folder, data_folder / subfolder):
        if (root / meta_file).is_file():
            return root
    raise FileNotFoundError(
        f"{name}: {meta_file} not found in {data_folder} (nor in its {subfolder}/); "
        f"see recipes/{recipe}/README.md for the expected layout"
    )
