"""Prepare any folder tree of audio files (searched recursively) as manifests.

For distilling on your own unlabeled, in-domain audio: every file with an
audio extension under ``data_folder`` (hidden files and folders skipped) is a
clip. ``valid`` takes a stable ``valid_fraction`` of the files (chosen from
the relative path, so adding files never moves the old ones), the rest is
``train``; ``all`` lists every file. With ``label_from_folder`` each clip is
labelled with its top-level folder's name in readable form (``dog_bark/x.wav``
and ``dog_bark/night/y.wav`` -> ``dog bark``), for zero-shot evaluation on
your own classes (``--split all``). Ids are the relative paths; entries:
``{"wav", "duration", "relative_path"}`` (+ ``label``). Files whose header
cannot be read are kept and reported (run ``--check_audio``).

Example
-------
python recipes/AudioFolder/audiofolder_prepare.py --data_folder /data/my_audio
"""

import os
from pathlib import Path

from tinyclap.data.label_sets import readable_label
from tinyclap.data.manifests import ManifestBuilder, hash_split, prepare_once

FORMAT_VERSION = 1
EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64")


def find_audio(data_folder, extensions=EXTENSIONS, exclude=()):
    """Sorted audio files under ``data_folder`` (recursive; hidden entries skipped).

    Example
    -------
    >>> find_audio("/nonexistent")
    []
    """
    data_folder = Path(data_folder)
    extensions = {e.lower() for e in extensions}
    exclude = {Path(e).resolve() for e in exclude}
    found = []
    for folder, subfolders, files in os.walk(data_folder):
        subfolders[:] = sorted(
            d
            for d in subfolders
            if not d.startswith(".") and Path(folder, d).resolve() not in exclude
        )
        found += [
            Path(folder, f)
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in extensions
        ]
    return sorted(found)


def prepare_audiofolder(
    data_folder,
    save_folder,
    valid_fraction=0.05,
    label_from_folder=False,
    extensions=EXTENSIONS,
    allow_missing=False,
):
    """Write ``train``, ``valid`` and ``all`` manifests of a folder of audio files.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Root of the folder tree.
    save_folder : str or pathlib.Path
        Where the manifests and ``prepare_report.json`` go (its own files are
        never taken as clips).
    valid_fraction : float
        Fraction of files in ``valid``.
    label_from_folder : bool
        Label every clip with the name of its top-level folder under
        ``data_folder`` (every clip must then be inside one).
    extensions : list of str
        File extensions taken as audio (case-insensitive).
    allow_missing : bool
        Accepted for a uniform interface: the files are found on disk, so
        none can be missing (a file removed during the preparation raises
        :class:`tinyclap.data.manifests.MissingAudioError` unless True).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_audiofolder("/data/my_audio", "/data/my_audio_manifests")  # doctest: +SKIP
    {'all': ..., 'train': ..., 'valid': ...}
    """
    root = Path(data_folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"AudioFolder: {root} is not a folder")
    save = Path(save_folder).resolve()
    files = find_audio(root, extensions, exclude=[save] if save != root else [])
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "valid_fraction": float(valid_fraction),
        "label_from_folder": bool(label_from_folder),
        "extensions": sorted(e.lower() for e in extensions),
        # the file list itself, so that added or removed files prepare again
        "files": [
            [str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files
        ],
    }

    def build():
        builder = ManifestBuilder()
        for path in files:
            relative = path.relative_to(root).as_posix()
            fields = {"relative_path": relative}
            if label_from_folder:
                parts = Path(relative).parts
                if len(parts) < 2:
                    raise ValueError(
                        f"AudioFolder: label_from_folder needs every clip inside a class "
                        f"folder, but {path} is at the top of {root}"
                    )
                fields["label"] = readable_label(parts[0])
            if builder.add("all", relative, path, **fields):
                split = hash_split(relative, valid_fraction)
                builder.manifests[split][relative] = dict(builder.manifests["all"][relative])
        return builder

    return prepare_once("audiofolder", save_folder, options, build, allow_missing)


def add_arguments(parser):
    """The options of `python -m tinyclap.prepare audiofolder` beyond the shared ones."""
    parser.add_argument("--valid_fraction", type=float, default=0.05)
    parser.add_argument("--label_from_folder", action="store_true")
