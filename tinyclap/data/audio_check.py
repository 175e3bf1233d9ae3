"""Validation pass over manifests: open every file, report the unreadable ones.

``python train.py hparams/<stage>.yaml --check_audio`` runs
:func:`check_manifests` on every manifest of the run and writes
``<output_folder>/audio_check.json`` (manifest id, file and error of each bad
clip). With the hparam ``skip_bad_audio: true`` a stage first drops the bad
clips from its manifests (:func:`clean_manifests`, with a logged count);
otherwise a bad file stops the loaders with an error naming the file and its
manifest entry.

Example
-------
>>> import tempfile, os, json
>>> import numpy as np, soundfile as sf
>>> folder = tempfile.mkdtemp()
>>> sf.write(os.path.join(folder, "ok.wav"), np.zeros(800), 8000)
>>> _ = open(os.path.join(folder, "bad.wav"), "w").write("not audio")
>>> manifest = os.path.join(folder, "test.json")
>>> json.dump({i: {"wav": os.path.join(folder, f"{i}.wav")} for i in ("ok", "bad")},
...           open(manifest, "w"))
>>> [problem["id"] for problem in check_manifest(manifest)]
['bad']
"""

import hashlib
import json
import logging
from pathlib import Path

from tqdm import tqdm

from tinyclap.audio.io import AudioLoadError, load_audio
from tinyclap.data.pipelines import read_manifest
from tinyclap.data.manifests import write_manifest

logger = logging.getLogger(__name__)

REPORT_FILENAME = "audio_check.json"


def check_manifest(manifest_path, progress=False):
    """Decode every clip of a manifest; return ``[{"id", "wav", "error"}]`` of the bad ones.

    A clip is bad when :func:`tinyclap.audio.io.load_audio` fails on it
    (missing, unreadable, empty, NaN/Inf samples).
    """
    entries = read_manifest(manifest_path)
    problems = []
    items = tqdm(entries.items(), desc=f"checking {Path(manifest_path).name}", disable=not progress)
    for clip_id, entry in items:
        try:
            load_audio(entry["wav"], None, manifest_id=clip_id)
        except AudioLoadError as err:
            problems.append({"id": clip_id, "wav": entry["wav"], "error": str(err)})
    return problems


def manifest_key(manifest_path):
    """Content key of a manifest and of the files it lists (ids, paths, sizes, mtimes).

    Example
    -------
    >>> manifest_key.__name__
    'manifest_key'
    """
    records = []
    for clip_id, entry in sorted(read_manifest(manifest_path).items()):
        try:
            stat = Path(entry["wav"]).stat()
            records.append([clip_id, entry["wav"], stat.st_size, stat.st_mtime_ns])
        except OSError:
            records.append([clip_id, entry["wav"], None, None])
    return hashlib.sha1(json.dumps(records).encode("utf-8")).hexdigest()


def check_manifests(manifests, progress=True):
    """Check several manifests; return the report written to ``audio_check.json``.

    Parameters
    ----------
    manifests : dict
        ``{split: manifest_path}``.
    progress : bool
        Show a progress bar per manifest.

    Returns
    -------
    dict
        ``{"bad_count": int, "checked": int, "splits": {split: {"manifest",
        "key", "checked", "bad": [{"id", "wav", "error"}]}}}``.
    """
    splits = {}
    for split, path in manifests.items():
        bad = check_manifest(path, progress=progress)
        splits[split] = {
            "manifest": str(path),
            "key": manifest_key(path),
            "checked": len(read_manifest(path)),
            "bad": bad,
        }
    return {
        "bad_count": sum(len(s["bad"]) for s in splits.values()),
        "checked": sum(s["checked"] for s in splits.values()),
        "splits": splits,
    }


def format_report(report):
    """Human-readable summary: one line per split, one per bad clip.

    Example
    -------
    >>> print(format_report({"bad_count": 0, "checked": 3, "splits": {}}))
    audio check: 3 clips, 0 unreadable
    """
    lines = [f"audio check: {report['checked']} clips, {report['bad_count']} unreadable"]
    for split, result in report["splits"].items():
        lines.append(f"  {split}: {result['checked']} clips, {len(result['bad'])} unreadable")
        lines += [f"    {bad['id']}: {bad['error']}" for bad in result["bad"]]
    return "\n".join(lines)


def write_report(report, folder):
    """Write ``folder/audio_check.json``; return its path."""
    path = Path(folder) / REPORT_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path


def _cached_report(folder, manifests):
    """The report in ``folder`` if it covers ``manifests`` with unchanged keys."""
    try:
        report = json.loads((Path(folder) / REPORT_FILENAME).read_text("utf-8"))
        recorded = report["splits"]
    except (OSError, ValueError, KeyError):
        return None
    for split, path in manifests.items():
        entry = recorded.get(split)
        if entry is None or entry["manifest"] != str(path) or entry["key"] != manifest_key(path):
            return None
    return report


def clean_manifests(manifests, folder):
    """Drop unreadable clips: ``{split: path}`` of manifests without them.

    Uses ``folder/audio_check.json`` when it covers the same manifests and
    files (otherwise checks them and writes it). Splits with bad clips get a
    cleaned copy ``folder/clean_manifests/<split>.json``; the others keep
    their manifest. The number of skipped clips is logged.
    """
    report = _cached_report(folder, manifests)
    if report is None:
        report = check_manifests(manifests)
        write_report(report, folder)
    cleaned = dict(manifests)
    for split, result in report["splits"].items():
        if split not in manifests or not result["bad"]:
            continue
        bad_ids = {bad["id"] for bad in result["bad"]}
        entries = read_manifest(manifests[split])
        kept = {k: v for k, v in entries.items() if k not in bad_ids}
        cleaned[split] = str(Path(folder) / "clean_manifests" / f"{split}.json")
        write_manifest(cleaned[split], kept)
        logger.warning(
            "skip_bad_audio: skipped %d unreadable clips of %d in split %s (listed in %s)",
            len(bad_ids), len(entries), split, Path(folder) / REPORT_FILENAME,
        )  # fmt: skip
    return cleaned
