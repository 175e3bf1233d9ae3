"""Shared helpers for dataset preparation scripts: skip-if-prepared and manifests.

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

import json
import os
import tempfile
from pathlib import Path

OPTIONS_FILENAME = "prepare_options.json"


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
