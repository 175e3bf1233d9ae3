"""Prepare MACS (captions of TAU Urban Acoustic Scenes 2019 clips) as manifests.

``MACS.yaml`` lists ``files:`` entries ``{filename, annotations: [{annotator_id,
sentence, tags}]}`` over 3930 ten-second clips of the *TAU Urban Acoustic
Scenes 2019, Development* dataset, whose audio sits in
``TAU-urban-acoustic-scenes-2019-development/audio/`` (``audio_folder``
overrides this). MACS has no official split: ``valid`` takes a stable
``valid_fraction`` of recordings (all segments of one recording, e.g.
``airport-barcelona-0``, stay together), the rest is ``train``. Entries:
``{"wav", "duration", "caption", "captions", "tags", "label"}`` where
``label`` is the readable scene (``public square``). Missing clips are
an error, or with ``allow_missing`` dropped and counted in
``prepare_report.json``.

Example
-------
python recipes/MACS/macs_prepare.py --data_folder /data/MACS
"""

from pathlib import Path

import yaml

from tinyclap.data.label_sets import readable_label
from tinyclap.data.manifests import (
    ManifestBuilder,
    hash_split,
    metadata_stamp,
    prepare_once,
)

FORMAT_VERSION = 1
AUDIO_FOLDER = Path("TAU-urban-acoustic-scenes-2019-development") / "audio"


def recording_key(filename):
    """The recording a TAU 2019 segment comes from (scene-city-location).

    Example
    -------
    >>> recording_key("public_square-helsinki-111-3230-a.wav")
    'public_square-helsinki-111'
    """
    return "-".join(Path(filename).stem.split("-")[:3])


def prepare_macs(
    data_folder, save_folder, audio_folder=None, valid_fraction=0.1, allow_missing=False
):
    """Write MACS manifests (``train`` and ``valid``).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Folder holding ``MACS.yaml`` (and, by default, the TAU 2019 audio).
    save_folder : str or pathlib.Path
        See :mod:`tinyclap.prepare`.
    audio_folder : str or pathlib.Path, optional
        Folder of the TAU 2019 development wavs (default
        ``data_folder/TAU-urban-acoustic-scenes-2019-development/audio``).
    valid_fraction : float
        Fraction of recordings in ``valid``.
    allow_missing : bool
        See :mod:`tinyclap.prepare` (shared by every preparation).

    Returns
    -------
    dict
        ``{split: manifest_path}`` (see :mod:`tinyclap.prepare`).

    Example
    -------
    >>> prepare_macs("/data/MACS", "/data/macs")  # doctest: +SKIP
    {'train': ..., 'valid': ...}
    """
    root = Path(data_folder).resolve()
    annotations = root / "MACS.yaml"
    if not annotations.is_file():
        raise FileNotFoundError(f"MACS: MACS.yaml not found in {root}; see recipes/MACS/README.md")
    audio = Path(audio_folder).resolve() if audio_folder else root / AUDIO_FOLDER
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(root),
        "audio_folder": str(audio),
        "valid_fraction": float(valid_fraction),
        "metadata": metadata_stamp(annotations),
    }

    def build():
        builder = ManifestBuilder()
        with open(annotations, encoding="utf-8") as f:
            files = yaml.safe_load(f)["files"]
        for item in files:
            filename = item["filename"]
            notes = item.get("annotations") or []
            captions = [n["sentence"].strip() for n in notes if n.get("sentence")]
            tags = sorted({t for n in notes for t in (n.get("tags") or [])})
            builder.add(
                hash_split(recording_key(filename), valid_fraction),
                Path(filename).stem,
                audio / filename,
                caption=captions[0] if captions else "",
                captions=captions,
                tags=tags,
                label=readable_label(filename.split("-")[0]),
            )
        return builder

    return prepare_once("macs", save_folder, options, build, allow_missing)


def add_arguments(parser):
    """The options of `python -m tinyclap.prepare macs` beyond the shared ones."""
    parser.add_argument("--audio_folder", default=None, help="TAU 2019 development audio/")
    parser.add_argument("--valid_fraction", type=float, default=0.1)
