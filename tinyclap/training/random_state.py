"""Checkpointable random-number state and run counters, for exact resumes.

A SpeechBrain ``Checkpointer`` saves and loads *recoverables*. Two small ones
live here:

- :class:`RandomState` saves the global random number generators (torch CPU,
  the current CUDA device, numpy, Python's ``random``) and any extra
  generators it is given. Added to a checkpointer, a run killed and restarted
  from a checkpoint continues with the random state it had when the
  checkpoint was written: the same shuffles, training crops and dropout masks
  as the run that was never interrupted, whatever the new process consumed
  before recovery (seeding, model construction).
- :class:`StepCounters` counts events of a run (e.g. optimiser steps skipped
  for a non-finite loss) across resumes.

Both are meant to be declared in the hparams yaml and registered with the
stage's checkpointers::

    rng: !new:tinyclap.training.random_state.RandomState
    step_counters: !new:tinyclap.training.random_state.StepCounters

When the random state is restored
---------------------------------
SpeechBrain saves a checkpoint at the end of an epoch's validation and,
with ``ckpt_interval_minutes`` / ``ckpt_interval_steps``, after a training
step. ``Brain.fit`` recovers in ``on_fit_start``, after the modules and the
optimiser are built; nothing else draws random numbers before the next
training batch is loaded, so restoring the state saved with the checkpoint
reproduces the interrupted run exactly (``ReproducibleRandomSampler`` shuffles
from its own seed and the epoch, and a ``SaveableDataLoader`` fast-forwards its
sampler without loading the skipped items). One caveat for intra-epoch
checkpoints: a new ``DataLoader`` iterator draws its worker base seed from the
global torch generator, which the uninterrupted run did at the start of the
epoch, before the checkpoint. Give the training loader its own
``torch.Generator`` (``generator`` in ``train_dataloader_opts``, and in
``generators`` here) so that this draw does not touch the global state; with
``num_workers > 0`` a resume inside an epoch cannot be exact anyway (the
workers' own generators are not saved).

Under DDP every process saves its own state (``<name>.rank<r>.ckpt`` next to
the main process's file) and loads it back, falling back to the main
process's state when its file is missing (e.g. more processes than before).
"""

import functools
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import get_rank

logger = logging.getLogger(__name__)


def _rank_path(path, rank):
    """Where process ``rank`` keeps its state; the main process uses ``path`` itself."""
    path = Path(path)
    if not rank:
        return path
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def _write_atomically(path, write):
    """Call ``write(tmp_path)``, then move the file into place."""
    tmp = Path(str(path) + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _numpy_state():
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def _set_numpy_state(state):
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    )


def _python_state(rng=random):
    version, internal, gauss_next = rng.getstate()
    return {"version": version, "internal": torch.tensor(internal), "gauss_next": gauss_next}


def _set_python_state(state, rng=random):
    internal = tuple(int(x) for x in state["internal"].tolist())
    rng.setstate((state["version"], internal, state["gauss_next"]))


@functools.partial(register_checkpoint_hooks, save_on_main_only=False)
class RandomState:
    """The global random number generators as a checkpoint recoverable.

    Parameters
    ----------
    generators : dict, optional
        Extra named generators to save and restore with the global ones:
        ``torch.Generator`` (e.g. the one given to the training ``DataLoader``)
        or ``random.Random`` instances.
    cuda : bool
        Also save the random state of the current CUDA device, when CUDA is
        in use (it is not initialised just for this).

    Example
    -------
    >>> state = RandomState()
    >>> saved = state.state_dict()
    >>> a = (torch.rand(2), np.random.rand(), random.random())
    >>> state.load_state_dict(saved)
    >>> b = (torch.rand(2), np.random.rand(), random.random())
    >>> torch.equal(a[0], b[0]) and a[1:] == b[1:]
    True
    """

    def __init__(self, generators=None, cuda=True):
        self.generators = dict(generators or {})
        for name, gen in self.generators.items():
            if not isinstance(gen, (torch.Generator, random.Random)):
                raise TypeError(
                    f"generator {name!r}: expected a torch.Generator or random.Random, "
                    f"got {type(gen).__name__}"
                )
        self.cuda = cuda

    def state_dict(self):
        """The current states, as a dict of tensors and plain values."""
        state = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": _python_state(),
            "generators": {},
        }
        if self.cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
            device = torch.cuda.current_device()
            state["cuda"] = {"device": device, "state": torch.cuda.get_rng_state(device)}
        for name, gen in self.generators.items():
            if isinstance(gen, torch.Generator):
                state["generators"][name] = gen.get_state()
            else:
                state["generators"][name] = _python_state(gen)
        return state

    def load_state_dict(self, state):
        """Set every generator to ``state`` (from :meth:`state_dict`)."""
        torch.set_rng_state(state["torch"])
        _set_numpy_state(state["numpy"])
        _set_python_state(state["python"])
        cuda = state.get("cuda")
        if self.cuda and cuda is not None:
            if torch.cuda.is_available() and cuda["device"] < torch.cuda.device_count():
                torch.cuda.set_rng_state(cuda["state"], cuda["device"])
            else:
                logger.warning(
                    "the checkpoint holds the random state of cuda:%d, which is not "
                    "available here: CUDA random numbers will differ from the original run",
                    cuda["device"],
                )
        for name, gen in self.generators.items():
            if name not in state["generators"]:
                logger.warning("no saved state for generator %r: left as it is", name)
            elif isinstance(gen, torch.Generator):
                gen.set_state(state["generators"][name])
            else:
                _set_python_state(state["generators"][name], gen)

    @mark_as_saver
    def save(self, path):
        """Write this process's random state (every process writes its own)."""
        target = _rank_path(path, get_rank())
        _write_atomically(target, lambda tmp: torch.save(self.state_dict(), tmp))

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Restore this process's random state (the main process's if it has none)."""
        del end_of_epoch  # the same state either way: the one at the checkpoint
        rank = get_rank()
        target = _rank_path(path, rank)
        if not target.is_file():
            logger.warning(
                "no random state for process %s in %s: using the main process's", rank, path
            )
            target = Path(path)
        self.load_state_dict(torch.load(target, weights_only=True))


@register_checkpoint_hooks
class StepCounters:
    """Named counts of a run (e.g. skipped optimiser steps), kept in checkpoints.

    Loading a checkpoint never lowers a count: counts are events that
    happened, so loading an older checkpoint later in the same process (the
    best one, for the final evaluation) keeps what was counted since, while a
    fresh process (all counts zero) resumes from the saved counts.

    Parameters
    ----------
    names : iterable of str
        Counts that start at zero (any other name can be incremented too).

    Example
    -------
    >>> counters = StepCounters(["skipped_nonfinite_batches"])
    >>> counters.increment("skipped_nonfinite_batches")
    1
    >>> counters["skipped_nonfinite_batches"], counters["other"]
    (1, 0)
    >>> counters.as_dict()
    {'skipped_nonfinite_batches': 1}
    """

    def __init__(self, names=()):
        self.counts = {name: 0 for name in names}

    def increment(self, name, amount=1):
        """Add ``amount`` to count ``name``; return the new count."""
        self.counts[name] = self.counts.get(name, 0) + int(amount)
        return self.counts[name]

    def __getitem__(self, name):
        """Count ``name`` (0 if never incremented)."""
        return self.counts.get(name, 0)

    def as_dict(self):
        """A copy of the counts."""
        return dict(self.counts)

    @mark_as_saver
    def save(self, path):
        """Write the counts as JSON."""
        text = json.dumps(self.counts, indent=2, sort_keys=True)
        _write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Take the saved counts, except where this process already counted more."""
        del end_of_epoch
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        for name, count in saved.items():
            self.counts[name] = max(self.counts.get(name, 0), int(count))
