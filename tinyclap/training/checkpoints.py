"""A SpeechBrain ``Checkpointer`` whose checkpoints appear only when complete.

SpeechBrain 1.1 marks a folder as a checkpoint by its ``CKPT.yaml`` and writes
that file *before* the parameter files, so a run killed while saving would
later resume from a truncated checkpoint. :class:`AtomicCheckpointer` writes
the meta file under a temporary name and renames it into place after every
parameter file is on disk; an interrupted save leaves an ignored folder.

Stages made of independent units (a pruning point, a transfer fold) record each
finished unit with :func:`write_finished`; a rerun reuses it through
:func:`read_finished` only if it was made with the same settings
(:func:`config_hash`).
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import ddp_barrier

logger = logging.getLogger(__name__)


class AtomicCheckpointer(Checkpointer):
    """Drop-in :class:`speechbrain.utils.checkpoints.Checkpointer` (same arguments).

    Example
    -------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> ckpt = AtomicCheckpointer(folder, {"layer": torch.nn.Linear(2, 2)})
    >>> sorted(p.name for p in ckpt.save_checkpoint().path.iterdir())
    ['CKPT.yaml', 'layer.ckpt']
    """

    def _save_checkpoint_metafile(self, fpath, meta_to_include={}, end_of_epoch=True):
        pending = Path(str(fpath) + ".pending")
        meta = super()._save_checkpoint_metafile(pending, meta_to_include, end_of_epoch)
        self._pending_meta = (pending, Path(fpath))
        return meta

    def save_checkpoint(self, *args, **kwargs):
        """Save as SpeechBrain does, then publish the meta file atomically."""
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if checkpoint is not None:  # the main process, the only one that writes
            pending, final = self._pending_meta
            os.replace(pending, final)
        # In a multi-process run, the others list checkpoints (to delete old ones)
        # right after this: they must see the one just published.
        ddp_barrier()
        return checkpoint


# hparams that never change a finished result: where things go, and loader workers
OUTPUT_KEYS = ("output_folder", "save_folder", "train_log", "cache_folder", "num_workers")


def config_hash(hparams, exclude=(), **extra):
    """Short hash of the plain hparams (numbers, strings, lists, dicts) that decide a result.

    Objects built by hyperpyyaml, output locations and ``exclude`` (e.g. the
    grid being run) are left out; ``extra`` adds values such as weight
    fingerprints.

    Example
    -------
    >>> config_hash({"lr": 0.1, "output_folder": "a"}) == config_hash({"lr": 0.1, "output_folder": "b"})
    True
    >>> config_hash({"lr": 0.1}) == config_hash({"lr": 0.2})
    False
    """  # noqa: E501

    def plain(value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, tuple)):
            items = [plain(v) for v in value]
            return None if any(i is _SKIP for i in items) else items
        if isinstance(value, dict):
            items = {str(k): plain(v) for k, v in value.items()}
            return {k: v for k, v in items.items() if v is not _SKIP}
        return _SKIP

    skip = set(OUTPUT_KEYS) | set(exclude)
    config = {k: plain(v) for k, v in hparams.items() if k not in skip and not k.startswith("_")}
    config = {k: v for k, v in config.items() if v is not _SKIP}
    payload = json.dumps([config, extra], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_SKIP = object()


def read_finished(path, config):
    """The record a finished unit of work wrote at ``path``, if written for ``config``.

    Returns ``None`` when there is no record, or when it was written with other
    settings (logged: the unit is then run again and the record replaced).
    """
    path = Path(path)
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("config_hash") != config:
        logger.warning("%s was written with other settings: running it again", path)
        return None
    return record


def write_finished(path, record, config):
    """Write ``record`` (plus ``config_hash``) to ``path`` atomically; return it."""
    record = {**record, "config_hash": config}
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return record
