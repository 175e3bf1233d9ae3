"""Open set ("none of these") and multi-label decisions without torch (``open_set.json``).

The one implementation of the decision rules, in numpy, shared by the runtime
and the full install (:mod:`tinyclap.deploy.calibration` re-exports it; the
decisions of :meth:`ZeroShotAudioClassifier.classify_open_set`,
:meth:`~ZeroShotAudioClassifier.classify_multi_label` and ``tinyclap classify``
are these): the thresholds ``tinyclap calibrate`` (or ``tinyclap adapt
--calibrate``) stores in an exported folder, checked against the SHA-256 in
``export.json["calibration"]``, applied to cosine scores in float32.

Example
-------
>>> cal = {"labels": ["a", "b"], "reject_threshold": 0.5,
...        "label_thresholds": {"a": 0.3}, "shared_label_threshold": 0.6}
>>> scores = np.array([[0.4, 0.7], [0.2, 0.1]], np.float32)
>>> open_set_decisions(scores, ["a", "b"], cal)[1]
[1, -1]
>>> multi_label_decisions(scores, ["a", "b"], cal)[1]
[['b', 'a'], []]
"""

import json
import logging
from pathlib import Path

import numpy as np

from tinyclap.runtime.text import sha256_of

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "open_set.json"
CALIBRATION_FORMAT = "tinyclap-open-set"
REJECTED = -1


class MissingCalibrationError(ValueError):
    """Open-set or multi-label decisions asked of a folder without ``open_set.json``."""


def check_calibration(payload, where=CALIBRATION_FILE):
    """Raise ``ValueError`` (naming ``where``) unless ``payload`` is a calibration dict.

    Example
    -------
    >>> check_calibration({"format": "x"})
    Traceback (most recent call last):
    ...
    ValueError: open_set.json: not a tinyclap open-set calibration
    """
    if not isinstance(payload, dict) or payload.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{where}: not a tinyclap open-set calibration")
    thresholds = payload.get("label_thresholds")
    if not isinstance(payload.get("reject_threshold"), (int, float)) or not isinstance(
        thresholds, dict
    ):
        raise ValueError(f"{where}: reject_threshold or label_thresholds missing")
    if not all(isinstance(v, (int, float)) for v in thresholds.values()):
        raise ValueError(f"{where}: label_thresholds must map labels to numbers")
    return payload


def read_folder_calibration(folder, info, trust_unverified=False):
    """A folder's ``open_set.json`` checked against ``export.json["calibration"]``, or None.

    Parameters
    ----------
    folder : str or Path
        The exported folder.
    info : dict
        Its ``export.json``.
    trust_unverified : bool
        Read the file even when ``export.json`` records no SHA-256 for it
        (:mod:`tinyclap.runtime.integrity`).

    Raises
    ------
    ValueError
        The file does not match the recorded SHA-256 (or has none, without the
        opt-in), or is not a calibration.

    Example
    -------
    >>> read_folder_calibration("exported/demo", {}) is None  # doctest: +SKIP
    True
    """
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    recorded = (info or {}).get("calibration") or {}
    if recorded.get("sha256"):
        if sha256_of(path) != recorded["sha256"]:
            raise ValueError(
                f"{path}: SHA-256 does not match export.json; the file was modified or "
                "corrupted after calibration: re-run `tinyclap calibrate` or re-download"
            )
    else:
        from tinyclap.runtime.integrity import require_recorded

        require_recorded([CALIBRATION_FILE], str(Path(folder)), trust_unverified)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return check_calibration(payload, str(path))


def rejection_threshold(calibration, names, threshold=None):
    """The rejection threshold for ``names`` (an explicit ``threshold`` wins).

    Example
    -------
    >>> rejection_threshold(None, ["a"], 0.3)
    0.3
    """
    if threshold is not None:
        return float(threshold)
    if calibration is None:
        raise MissingCalibrationError(
            "this model has no open-set calibration (open_set.json): run `tinyclap calibrate "
            "FOLDER --manifest VALID.json --labels ...` (full install) or pass a threshold"
        )
    if sorted(calibration["labels"]) != sorted(names):
        logger.warning(
            "open-set threshold calibrated for %d other labels (%s...): an approximation here",
            len(calibration["labels"]),
            ", ".join(calibration["labels"][:3]),
        )
    return float(calibration["reject_threshold"])


def label_thresholds(calibration, names, thresholds=None):
    """``[C]`` float32 multi-label thresholds for ``names`` (calibrated, else the shared one).

    Example
    -------
    >>> label_thresholds({"label_thresholds": {"a": 0.25}, "shared_label_threshold": 0.5},
    ...                  ["a", "b"]).tolist()
    [0.25, 0.5]
    """
    if thresholds is not None:
        values = np.asarray(thresholds, dtype=np.float32).reshape(-1)
        return np.repeat(values, len(names)) if len(values) == 1 else values
    if calibration is None:
        raise MissingCalibrationError(
            "this model has no multi-label calibration (open_set.json): run `tinyclap "
            "calibrate FOLDER --manifest VALID.json --labels ...` (full install) or pass "
            "thresholds"
        )
    table = calibration["label_thresholds"]
    shared = float(calibration.get("shared_label_threshold", 0.5))
    return np.array([float(table.get(n, shared)) for n in names], dtype=np.float32)


def open_set_decisions(scores, names, calibration, threshold=None):
    """``(best score [N], index [N] with -1 for "none of these", label or None per clip)``.

    Parameters
    ----------
    scores : array
        ``[N, C]`` cosines.
    names : list of str
        The ``C`` class names.
    calibration : dict or None
        ``open_set.json``.
    threshold : float, optional
        Overrides the calibrated rejection threshold.
    """
    scores = np.asarray(scores, dtype=np.float32)
    limit = np.float32(rejection_threshold(calibration, names, threshold))
    index = scores.argmax(axis=-1)
    best = scores[np.arange(len(scores)), index]
    keep = best >= limit
    index = [int(i) if k else REJECTED for i, k in zip(index, keep)]
    return best, index, [names[i] if i != REJECTED else None for i in index]


def multi_label_decisions(scores, names, calibration, thresholds=None):
    """``(present [N, C] booleans, labels present per clip, best first)``.

    Parameters
    ----------
    scores : array
        ``[N, C]`` cosines.
    names : list of str
        The ``C`` class names.
    calibration : dict or None
        ``open_set.json``.
    thresholds : float or list of float, optional
        One threshold, or one per label (overrides the calibrated ones).
    """
    scores = np.asarray(scores, dtype=np.float32)
    limits = label_thresholds(calibration, names, thresholds)
    if len(limits) != len(names):
        raise ValueError(f"{len(limits)} thresholds for {len(names)} labels")
    present = scores >= limits[None]
    labels = []
    for row, keep in zip(scores.tolist(), present.tolist()):
        order = sorted((i for i in range(len(names)) if keep[i]), key=lambda i: -row[i])
        labels.append([names[i] for i in order])
    return present, labels
