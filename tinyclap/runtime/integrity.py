"""What ``export.json`` vouches for: recorded SHA-256s, and unverified files as an opt-in.

``tinyclap export`` records the SHA-256 of every file it writes (weights,
label tables, ONNX graphs, tokenizer, calibration) in ``export.json``; both
loaders check each file against its record. A file with *no* record (a folder
of an earlier tinyclap, or one whose hashes were deleted) cannot be verified:
it loads only with the explicit opt-in, ``trust_unverified=True`` in Python and
``--trust_unverified`` on the command line (named like ``trust_remote_code``,
the opt-in for code). The one rule, shared by :mod:`tinyclap.runtime` and
:class:`tinyclap.deploy.inference.ZeroShotAudioClassifier`.

Example
-------
>>> require_recorded([], "exported/demo")  # every file recorded: nothing to say
>>> require_recorded(["student weights"], "exported/demo")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tinyclap.runtime.integrity.UnverifiedFileError: exported/demo: export.json records no SHA-256 ...
"""

import logging

logger = logging.getLogger(__name__)

OPT_IN_UNVERIFIED = (
    "Re-export it with `tinyclap export` (which records checksums), or load it unverified "
    "only if you trust its source: trust_unverified=True in Python, --trust_unverified on "
    "the command line."
)


class UnverifiedFileError(ValueError):
    """Files of a folder that ``export.json`` records no SHA-256 for (loading needs the opt-in)."""


def require_recorded(unrecorded, where, trust_unverified=False):
    """Refuse (or, with the opt-in, warn about) files that ``export.json`` does not vouch for.

    Parameters
    ----------
    unrecorded : list of str
        What has no recorded SHA-256 (e.g. ``"student weights"``, ``"onnx/student.onnx"``).
    where : str
        The folder or repo (named in the message).
    trust_unverified : bool
        The opt-in: load them anyway, with a warning.

    Raises
    ------
    UnverifiedFileError
        ``unrecorded`` is not empty and there is no opt-in.
    """
    if not unrecorded:
        return
    what = ", ".join(unrecorded)
    if not trust_unverified:
        raise UnverifiedFileError(
            f"{where}: export.json records no SHA-256 for {what} (a folder of an earlier "
            "tinyclap, or one whose hashes were removed), so it cannot be verified and was "
            f"not loaded. {OPT_IN_UNVERIFIED}"
        )
    logger.warning("%s: %s loaded unverified (trust_unverified=True)", where, what)
