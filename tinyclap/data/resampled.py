"""Resample a corpus once, at preparation, so that training epochs do not.

Every epoch reads each clip through :func:`tinyclap.audio.io.load_audio`, which
decodes it (FLAC, OGG, ...) and resamples it to the teacher's rate. With
``resample_to_teacher_rate: true`` the stage instead writes each clip once as a
mono WAV at that rate (float32 samples by default: the very samples
``load_audio`` would return) and trains on manifests pointing at the copies.

A copy is named after its source (path, size, modification time), so an edited
or replaced source gets a new copy, and an existing copy is up to date: running
the preparation again writes nothing. Copies are written to a temporary file and
renamed, so an interrupted run never leaves a torn one. Clips that are already
mono WAV files at the target rate are used as they are.
"""

import hashlib
import json
import os
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from tinyclap.audio.io import load_audio
from tinyclap.data.manifests import write_manifest

REPORT_FILENAME = "resample_report.json"


def copy_path(source, sample_rate, folder):
    """Where the resampled copy of ``source`` goes: keyed on its path, size and mtime.

    Example
    -------
    >>> import tempfile
    >>> src = Path(tempfile.mkdtemp(), "a.flac"); _ = src.write_bytes(b"x")
    >>> copy_path(src, 44100, "/cache").name.startswith("a-")
    True
    """
    source = Path(source).resolve()
    stat = source.stat()
    key = json.dumps([str(source), stat.st_size, stat.st_mtime_ns, int(sample_rate)])
    digest = hashlib.sha1(key.encode()).hexdigest()
    return Path(folder) / digest[:2] / f"{source.stem}-{digest[:12]}.wav"


def needs_copy(path, sample_rate):
    """Whether ``path`` must be converted: not a mono WAV at ``sample_rate``.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> f = str(Path(tempfile.mkdtemp(), "a.wav")); sf.write(f, np.zeros(10), 16000)
    >>> needs_copy(f, 16000), needs_copy(f, 44100)
    (False, True)
    """
    info = sf.info(str(path))
    return not (info.format == "WAV" and info.samplerate == sample_rate and info.channels == 1)


def resample_clip(source, sample_rate, folder, subtype="FLOAT", manifest_id=None):
    """The path training should read for ``source``, and what was done.

    Returns ``(path, status)``: ``status`` is ``"kept"`` (already a mono WAV
    at ``sample_rate``), ``"up_to_date"`` (its copy exists) or ``"written"``.

    Example
    -------
    >>> resample_clip("clip.ogg", 44100, "data/resampled_44100")  # doctest: +SKIP
    ('data/resampled_44100/3f/clip-3f2a...wav', 'written')
    """
    if not needs_copy(source, sample_rate):
        return str(source), "kept"
    target = copy_path(source, sample_rate, folder)
    if target.exists():
        return str(target), "up_to_date"
    wav = load_audio(source, sample_rate, manifest_id=manifest_id)  # the samples epochs would see
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    sf.write(str(tmp), wav.numpy(), sample_rate, subtype=subtype, format="WAV")
    os.replace(tmp, target)
    return str(target), "written"


def resample_manifests(manifests, sample_rate, folder, manifest_folder, subtype="FLOAT",
                       progressbar=True):  # fmt: skip
    """Resampled copies of every clip of ``manifests`` and the manifests that read them.

    Parameters
    ----------
    manifests : dict
        ``{split: manifest_path}``.
    sample_rate : int
        The teacher's rate, in Hz.
    folder : str or Path
        Where the copies go (shared by runs: copies are made once).
    manifest_folder : str or Path
        Where the new manifests (same entries, ``wav`` replaced) and
        ``resample_report.json`` go.
    subtype : str
        soundfile subtype of the copies: ``FLOAT`` (exactly the samples
        ``load_audio`` returns; 4 bytes a sample) or ``PCM_16`` (half the disk,
        quantised at 16 bits).
    progressbar : bool
        Show a tqdm bar per split.

    Returns
    -------
    dict
        ``{split: new_manifest_path}``.

    Example
    -------
    >>> resample_manifests({"train": "train.json"}, 44100, "data/resampled_44100Hz",
    ...                    "runs/x/resampled_manifests")  # doctest: +SKIP
    {'train': 'runs/x/resampled_manifests/train.json'}
    """
    out, report = {}, {"sample_rate": int(sample_rate), "folder": str(folder), "splits": {}}
    for split, path in manifests.items():
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        counts = {"written": 0, "up_to_date": 0, "kept": 0}
        for clip_id, entry in tqdm(entries.items(), desc=f"resample {split}", unit="clip",
                                   disable=not progressbar):  # fmt: skip
            entry["wav"], status = resample_clip(entry["wav"], sample_rate, folder, subtype,
                                                 manifest_id=clip_id)  # fmt: skip
            counts[status] += 1
        out[split] = str(Path(manifest_folder) / f"{split}.json")
        write_manifest(out[split], entries)
        report["splits"][split] = counts
    report_path = Path(manifest_folder) / REPORT_FILENAME
    tmp = report_path.with_name(f".{REPORT_FILENAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    os.replace(tmp, report_path)  # processes of one run may write it together
    return out


def resample_report(manifest_folder):
    """The report :func:`resample_manifests` wrote there, or ``None``.

    Example
    -------
    >>> resample_report("/nonexistent") is None
    True
    """
    path = Path(manifest_folder) / REPORT_FILENAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
