"""Prepare AudioCaps (captions of AudioSet clips) as SpeechBrain manifests.

AudioCaps publishes only captions and YouTube ids
(``train.csv``, ``val.csv``, ``test.csv`` with ``audiocap_id,youtube_id,
start_time,caption``; train has one caption per clip, val and test five).
The audio has to be downloaded from YouTube by the user, so some clips are
always missing. Like every preparation, a missing clip is an error naming it
(:class:`tinyclap.data.manifests.MissingAudioError`) unless
``allow_missing=True`` (``--allow_missing``): then the missing clips are
dropped, counted per split, logged and listed in ``prepare_report.json``.

Expected audio: ``audio/{train,val,test}/`` (or directly ``audio/``), files
named by ``audio_pattern`` (default ``{youtube_id}_{start_time}.wav``; also
e.g. ``{audiocap_id}.wav`` or ``Y{youtube_id}.wav``). Splits: ``train``,
``valid`` (from ``val.csv``), ``test``. Entries: ``{"wav", "duration",
"caption", "captions", "youtube_id", "start_time", "audiocap_ids"}``.

Example
-------
python recipes/AudioCaps/audiocaps_prepare.py --data_folder /data/AudioCaps
"""

import csv
from pathlib import Path

from tinyclap.data.manifests import ManifestBuilder, metadata_stamp, prepare_once

FORMAT_VERSION = 1
DEFAULT_PATTERN = "{youtube_id}_{start_time}.wav"
SPLITS = {"train": "train", "val": "valid", "test": "test"}


def _csv_path(root, name):
    """``root/name`` or ``root/dataset/name`` (the layout of the AudioCaps repository)."""
    for path in (root / name, root / "dataset" / name):
        if path.is_file():
            return path
    return None


def _clips(csv_path):
    """Rows of one csv grouped by clip: ``{(youtube_id, start): [rows]}``, in file order."""
    clips = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            key = (row["youtube_id"], str(int(float(row["start_time"]))))
            clips.setdefault(key, []).append(row)
    return clips


def prepare_audiocaps(data_folder, save_folder, audio_pattern=DEFAULT_PATTERN, allow_missing=False):
    """Write AudioCaps manifests; missing clips fail, or are dropped and counted.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Folder holding the csv files (or ``dataset/`` with them) and ``audio/``.
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    audio_pattern : str
        File name of a clip, with ``{youtube_id}``, ``{start_time}`` and/or
        ``{audiocap_id}`` (the first caption's id).
    allow_missing : bool
        See :mod:`tinyclap.prepare` (shared by every preparation).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_audiocaps("/data/AudioCaps", "/data/audiocaps")  # doctest: +SKIP
    {'test': ..., 'train': ..., 'valid': ...}
    """
    root = Path(data_folder).resolve()
    csvs = {name: _csv_path(root, f"{name}.csv") for name in SPLITS}
    if not any(csvs.values()):
        raise FileNotFoundError(
            f"AudioCaps: no train.csv / val.csv / test.csv in {root} (or {root}/dataset); "
            "see recipes/AudioCaps/README.md"
        )
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "audio_pattern": audio_pattern,
        "metadata": metadata_stamp(*[p for p in csvs.values() if p]),
    }

    def build():
        builder = ManifestBuilder()
        for name, split in SPLITS.items():
            if csvs[name] is None:
                continue
            folders = [root / "audio" / name, root / "audio"]
            for (youtube_id, start), rows in _clips(csvs[name]).items():
                filename = audio_pattern.format(
                    youtube_id=youtube_id, start_time=start, audiocap_id=rows[0]["audiocap_id"]
                )
                found = [f / filename for f in folders if (f / filename).is_file()]
                captions = [row["caption"].strip() for row in rows]
                builder.add(
                    split,
                    f"{youtube_id}_{start}",
                    (found or [folders[0] / filename])[0],
                    caption=captions[0],
                    captions=captions,
                    youtube_id=youtube_id,
                    start_time=int(start),
                    audiocap_ids=[row["audiocap_id"] for row in rows],
                )
        return builder

    return prepare_once("audiocaps", save_folder, options, build, allow_missing)


def add_arguments(parser):
    """The options of `python -m tinyclap.prepare audiocaps` beyond the shared ones."""
    parser.add_argument("--audio_pattern", default=DEFAULT_PATTERN, help="clip file name")
