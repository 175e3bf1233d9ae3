"""A SpeechBrain ``Checkpointer`` whose checkpoints appear only when complete.

SpeechBrain 1.1 marks a folder as a checkpoint by its ``CKPT.yaml`` and writes
that file *before* the parameter files, so a run killed while saving would
later resume from a truncated checkpoint. :class:`AtomicCheckpointer` writes
the meta file under a temporary name and renames it into place after every
parameter file is on disk; an interrupted save leaves an ignored folder.
"""

import os
from pathlib import Path

from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import ddp_barrier


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
