"""Open-set and multi-label thresholds of an exported folder (``open_set.json``).

:func:`calibrate_classifier` measures the thresholds of
:mod:`tinyclap.zeroshot.open_set` with a loaded classifier on a labelled
validation manifest; :func:`write_calibration` stores them in an exported
folder as plain JSON (readable without torch) and records its SHA-256 in
``export.json["calibration"]``, which :meth:`ZeroShotAudioClassifier.from_hparams`
checks before using it. The file::

    {"format": "tinyclap-open-set", "labels": [...], "label_spec": "adapted",
     "reject_threshold": 0.41, "rejection": {...how it was chosen...},
     "label_thresholds": {"siren": 0.52, ...}, "shared_label_threshold": 0.47,
     "manifest": "...", "unknown_manifest": null, "num_clips": 240}

Clips of a manifest whose classes are all outside the label list are the
"none of these" examples of the rejection threshold; a Synth mixture's
``labels`` give its multi-label targets.
"""

import json
import logging
from pathlib import Path

import torch

from tinyclap.data.pipelines import read_manifest
from tinyclap.deploy.safety import sha256_file, verify_sha256

# The file's format and the decision rules live in the torch-free runtime (the
# lowest layer), so the full install and tinyclap-runtime decide alike.
from tinyclap.runtime.decisions import (  # noqa: F401  (re-exported)
    CALIBRATION_FILE,
    CALIBRATION_FORMAT,
    MissingCalibrationError,
    check_calibration,
    label_thresholds,
    multi_label_decisions,
    open_set_decisions,
    rejection_threshold,
)
from tinyclap.runtime.integrity import require_recorded
from tinyclap.zeroshot.open_set import calibrate_label_thresholds, calibrate_rejection

logger = logging.getLogger(__name__)


def clip_labels(entry):
    """The classes a manifest entry holds (``labels``, else ``[label]``).

    Example
    -------
    >>> clip_labels({"label": "rain", "labels": ["rain", "wind"]}), clip_labels({"label": "x"})
    (['rain', 'wind'], ['x'])
    """
    labels = entry.get("labels") or [entry.get("label")]
    return [str(label) for label in labels if label is not None]


def manifest_scores(classifier, manifest, labels, batch_clips=32):
    """Cosine scores ``[N, C]`` of every clip of ``manifest`` and their class lists.

    Returns
    -------
    (Tensor, list of list of str, list of str)
        Scores, each clip's classes, the label list's class names.
    """
    names = classifier.labels_of(labels)
    entries = list(read_manifest(manifest).values())
    rows = []
    for start in range(0, len(entries), batch_clips):
        wavs = [classifier.load_audio(e["wav"]) for e in entries[start : start + batch_clips]]
        rows.append(classifier.classify_batch(wavs, labels)[0].cpu())
    scores = torch.cat(rows) if rows else torch.zeros(0, len(names))
    return scores, [clip_labels(e) for e in entries], names


def calibrate_classifier(classifier, manifest, labels, unknown_manifest=None, known_accept=0.95):
    """Rejection and per-class thresholds of ``classifier`` for ``labels`` on a validation manifest.

    Parameters
    ----------
    classifier : ZeroShotAudioClassifier
        A loaded exported folder.
    manifest : str or Path
        Labelled validation clips (``label``, optionally ``labels``).
    labels : str or list of str
        The label list the thresholds are for (a set name such as ``synth``
        or ``adapted``, ``"a,b,c"``, or a list).
    unknown_manifest : str or Path, optional
        Validation clips of classes outside ``labels`` ("none of these").
    known_accept : float
        Fraction of known validation clips to accept when there are no
        unknown ones (see :func:`tinyclap.zeroshot.open_set.calibrate_rejection`).

    Returns
    -------
    dict
        The content of ``open_set.json``.

    Example
    -------
    >>> cal = calibrate_classifier(clf, "data/synth/valid.json", "synth")  # doctest: +SKIP
    >>> sorted(cal)[:3]  # doctest: +SKIP
    ['format', 'label_spec', 'label_thresholds']
    """
    scores, clip_classes, names = manifest_scores(classifier, manifest, labels)
    if unknown_manifest is not None:
        extra, extra_classes, _ = manifest_scores(classifier, unknown_manifest, labels)
        scores, clip_classes = torch.cat([scores, extra]), clip_classes + extra_classes
    known_set = set(names)
    known = torch.tensor([bool(known_set & set(c)) for c in clip_classes], dtype=torch.bool)
    best = scores.max(dim=-1).values if len(scores) else torch.zeros(0)
    rejection = calibrate_rejection(best[known], best[~known], known_accept)
    targets = torch.tensor([[n in c for n in names] for c in clip_classes], dtype=torch.bool)
    per_class, shared = calibrate_label_thresholds(scores, targets.reshape(len(scores), len(names)))
    return {
        "format": CALIBRATION_FORMAT,
        "labels": list(names),
        "label_spec": labels if isinstance(labels, str) else list(names),
        "reject_threshold": rejection["threshold"],
        "rejection": rejection,
        "label_thresholds": dict(zip(names, per_class)),
        "shared_label_threshold": shared,
        "manifest": str(manifest),
        "unknown_manifest": None if unknown_manifest is None else str(unknown_manifest),
        "num_clips": int(len(scores)),
    }


def write_calibration(folder, calibration):
    """Write ``open_set.json`` into an exported folder and record its SHA-256 in ``export.json``.

    Example
    -------
    >>> write_calibration("exported/demo", cal)  # doctest: +SKIP
    PosixPath('exported/demo/open_set.json')
    """
    folder = Path(folder)
    check_calibration(calibration)
    path = folder / CALIBRATION_FILE
    path.write_text(json.dumps(calibration, indent=2), encoding="utf-8")
    info_path = folder / "export.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        info["calibration"] = {
            "file": CALIBRATION_FILE,
            "sha256": sha256_file(path),
            "labels": len(calibration["labels"]),
            "reject_threshold": calibration["reject_threshold"],
        }
        info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path


def read_calibration(path, recorded=None, name=None, trust_unverified=False):
    """Read an ``open_set.json``, checked against the SHA-256 ``recorded`` in ``export.json``.

    Parameters
    ----------
    path : str or Path
        The file.
    recorded : dict, optional
        ``export.json["calibration"]`` (``{"file", "sha256"}``); without it the
        file (added by hand, or by an earlier tool) is refused unless ``trust_unverified``.
    name : str, optional
        How to name the file in messages.
    trust_unverified : bool
        Read a file with no recorded SHA-256 (:mod:`tinyclap.runtime.integrity`).
    """
    name = name or str(path)
    if recorded and recorded.get("sha256"):
        verify_sha256(path, recorded["sha256"], name=name)
    else:
        require_recorded([CALIBRATION_FILE], name.rpartition("/")[0] or name, trust_unverified)
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{name}: not valid JSON ({err})") from err
    return check_calibration(payload, name)
