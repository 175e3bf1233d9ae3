"""Read shard sets (:mod:`tinyclap.data.shards`) as a training stream: ranks, workers, epochs.

:class:`ShardDataset` is a ``torch`` ``IterableDataset`` built on webdataset's
tar iterators (``tar_file_expander`` + ``group_by_keys``) and its shuffle
buffer. It yields SpeechBrain-style dicts (``id``, ``sig``, ...) that
``speechbrain.dataio.batch.PaddedBatch`` collates. What it guarantees:

- **Each sample once per epoch across ranks.** An epoch is a slice of one
  global stream: pass ``p`` over the set visits the shards in an order shuffled
  with ``(seed, p)``, sample by sample. Epoch ``e`` covers positions
  ``[e * N, (e + 1) * N)`` of that stream (``N``: the set's sample count, or
  ``epoch_samples`` for nominal epochs rounded down to a multiple of the world
  size); rank ``r`` takes the ``r``-th contiguous ``N / world`` of it, and its
  DataLoader worker ``w`` the ``w``-th contiguous part of that. So every sample
  of an epoch is read by exactly one (rank, worker), every rank yields the same
  number of samples and batches (DDP stays in step), and a rank opens only the
  shards its slice touches. When ``world`` does not divide ``N`` (full-pass
  epochs), the last rank wraps to the start of the pass: ``ceil(N / world) *
  world - N`` samples are read twice (:meth:`ShardDataset.plan` counts them),
  as torch's ``DistributedSampler`` pads.
- **Shuffling**: the shard order (per pass) and a webdataset shuffle buffer of
  ``shuffle_buffer`` raw samples per worker, seeded by (seed, epoch, rank,
  worker): the stream is a function of those and of the shard set only.
- **Exact resume** (:meth:`ShardDataset.set_position`): after ``batches``
  batches of an epoch, every worker replays its deterministic stream and drops,
  undecoded, the samples of the batches already consumed (PyTorch's DataLoader
  takes batches from its workers in turn), so the resumed epoch yields exactly
  the batches the uninterrupted one would have yielded next (worker 0 of the
  new DataLoader plays the worker whose turn was next). This holds when
  the shard set, seed, world size, ``num_workers`` and ``batch_size`` are those
  of the interrupted run; otherwise the interrupted epoch starts over (a
  warning says so; no sample is lost, the consumed part is read again).
- **Bad samples are never silently skipped**: a corrupt tar member, a shard
  with fewer samples than its index says, or a sample ``decode`` fails on raises
  a :class:`~tinyclap.data.shards.ShardError` naming the shard and key. With
  ``skip_bad=True`` it is instead counted, logged, appended to
  ``bad_log/bad_samples.rank<r>.jsonl``, and replaced by a repeat of an earlier
  good sample of the same worker, so counts (and DDP) stay in step. A
  :class:`~tinyclap.data.shards.ShardError` from ``decode`` (a teacher field of
  other weights, say) is a refusal, never skipped.
"""

import collections
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from tinyclap.data.shards import ShardError, check_shards

logger = logging.getLogger(__name__)


def dist_rank_world():
    """``(rank, world_size)`` of this process (``(0, 1)`` outside ``torch.distributed``).

    Example
    -------
    >>> dist_rank_world()
    (0, 1)
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def split_sizes(total, parts):
    """``parts`` contiguous sizes summing to ``total``, the first ones one larger.

    Example
    -------
    >>> split_sizes(7, 3)
    [3, 2, 2]
    """
    base, extra = divmod(int(total), int(parts))
    return [base + (i < extra) for i in range(parts)]


def pass_order(num_shards, seed, pass_index):
    """The shard order of pass ``pass_index`` (a permutation seeded by ``(seed, pass)``).

    Example
    -------
    >>> sorted(pass_order(4, 0, 3).tolist())
    [0, 1, 2, 3]
    >>> (pass_order(4, 0, 3) == pass_order(4, 0, 3)).all()
    True
    """
    return np.random.default_rng([int(seed), int(pass_index)]).permutation(int(num_shards))


def epoch_slices(total, epoch, rank, world, workers, epoch_samples=None):
    """Per worker of ``rank``: the ``(pass, start, stop)`` stream segments it reads in ``epoch``.

    ``epoch`` counts from 0. Offsets are positions within a pass (``0 <= start <
    stop <= total``). See the module docstring for the layout.

    Example
    -------
    >>> epoch_slices(10, 0, 1, 2, 2)  # rank 1 of 2 reads samples 5-9 of pass 0
    [[(0, 5, 8)], [(0, 8, 10)]]
    >>> epoch_slices(5, 0, 1, 2, 1)  # 3 per rank: rank 1 wraps to the pass start
    [[(0, 3, 5), (0, 0, 1)]]
    """
    if epoch_samples is None:
        per_rank = math.ceil(total / world)
        base = 0
        wrap = lambda p: (epoch, p % total)  # noqa: E731 (full passes wrap within the pass)
    else:
        per_rank = int(epoch_samples) // world
        if per_rank < 1:
            raise ShardError(f"epoch_samples={epoch_samples} gives no sample to each of {world} ranks")
        base = epoch * per_rank * world
        wrap = lambda p: divmod(p, total)  # noqa: E731 (nominal epochs run across passes)
    out, start = [], base + rank * per_rank
    for size in split_sizes(per_rank, workers):
        segments, pos, stop = [], start, start + size
        while pos < stop:
            pass_index, offset = wrap(pos)
            length = min(stop - pos, total - offset)
            segments.append((int(pass_index), int(offset), int(offset + length)))
            pos += length
        out.append(segments)
        start = stop
    return out


def shard_pieces(segments, counts, seed):
    """``[(shard, first, stop)]`` samples to read for stream ``segments``.

    Example
    -------
    >>> shard_pieces([(0, 1, 5)], [3, 3], seed=0)  # samples 1-4 of pass 0 (shard order 0, 1)
    [(0, 1, 3), (1, 0, 2)]
    """
    pieces = []
    for pass_index, start, stop in segments:
        pos = 0
        for shard in pass_order(len(counts), seed, pass_index).tolist():
            lo, hi = max(start, pos), min(stop, pos + counts[shard])
            if lo < hi:
                pieces.append((shard, lo - pos, hi - pos))
            pos += counts[shard]
    return pieces


def consumed_per_worker(batches, worker_samples, batch_size):
    """Samples each worker has delivered after ``batches`` batches of a DataLoader.

    PyTorch takes one batch from each worker in turn, skipping exhausted ones.
    Also returns the worker the next batch comes from.

    Example
    -------
    >>> consumed_per_worker(3, [5, 4], 2)
    ([4, 2], 1)
    """
    left = [math.ceil(n / batch_size) for n in worker_samples]
    taken, turn = [0] * len(left), 0
    while batches > 0 and any(left):
        if left[turn]:
            left[turn] -= 1
            taken[turn] += 1
            batches -= 1
        turn = (turn + 1) % len(left)
    return [min(t * batch_size, n) for t, n in zip(taken, worker_samples)], turn


class ShardDataset(torch.utils.data.IterableDataset):
    """A shard set as a rank- and worker-split, shuffled, resumable sample stream.

    Parameters
    ----------
    folder : str or Path
        The shard set (its ``shards.json`` must list only shards on disk:
        checked here, before training starts).
    decode : callable
        ``decode(raw) -> dict``: a webdataset raw sample (``__key__``,
        ``__url__``, ``json``, ``flac``... as bytes) to the item yielded. It
        raises to reject a sample.
    shuffle_buffer : int
        webdataset shuffle buffer (raw samples per worker); 0: stream order.
    seed : int
        Seeds the shard order and the buffers.
    epoch_samples : int, optional
        Nominal epoch length (samples over all ranks); ``None``: one pass.
    rank, world : int, optional
        This process's rank and the world size (default: ``torch.distributed``'s).
    skip_bad : bool
        Count, log and replace bad samples instead of raising.
    bad_log : str or Path, optional
        Folder of the ``bad_samples.rank<r>.jsonl`` logs (``skip_bad``).
    verify : bool
        Check every shard's SHA-256 against the index first.
    """

    def __init__(self, folder, decode, shuffle_buffer=1000, seed=0, epoch_samples=None,
                 rank=None, world=None, skip_bad=False, bad_log=None, verify=False):  # fmt: skip
        super().__init__()
        self.folder = Path(folder)
        self.index = check_shards(self.folder, verify=verify)
        self.counts = [int(s["samples"]) for s in self.index["shards"]]
        if sum(self.counts) == 0:
            raise ShardError(f"shard set {self.folder} holds no sample")
        self.decode = decode
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.epoch_samples = epoch_samples
        default_rank, default_world = dist_rank_world()
        self.rank = default_rank if rank is None else int(rank)
        self.world = default_world if world is None else int(world)
        self.skip_bad = bool(skip_bad)
        self.bad_log = Path(bad_log) if bad_log else None
        self.epoch, self.skip, self.turn = 0, None, 0

    @property
    def total(self):
        """Samples in the set."""
        return sum(self.counts)

    def plan(self, workers=1):
        """``{"per_rank", "per_worker", "repeated"}`` of an epoch with ``workers`` workers."""
        slices = epoch_slices(self.total, 0, self.rank, self.world, workers, self.epoch_samples)
        per_worker = [sum(b - a for _, a, b in s) for s in slices]
        per_rank = sum(per_worker)
        nominal = self.total if self.epoch_samples is None else per_rank * self.world
        return {"per_rank": per_rank, "per_worker": per_worker,
                "repeated": per_rank * self.world - nominal}  # fmt: skip

    def set_position(self, epoch, batches=0, batch_size=1, num_workers=0, layout=None):
        """Start the next iteration at batch ``batches`` of ``epoch`` (from 1, SpeechBrain's).

        ``layout`` is the :meth:`layout` of the interrupted run (its world size,
        workers, batch size, set); a different one restarts the epoch.
        """
        self.epoch = int(epoch) - 1
        self.skip, self.turn = None, 0
        if not batches:
            return
        here = self.layout(batch_size, num_workers)
        if layout is not None and layout != here:
            logger.warning(
                "resuming epoch %d of %s with another layout (%s, was %s): the epoch starts "
                "over, its first %d batches are read again", epoch, self.folder, here, layout,
                batches,
            )  # fmt: skip
            return
        per_worker = self.plan(max(1, int(num_workers)))["per_worker"]
        self.skip, self.turn = consumed_per_worker(int(batches), per_worker, int(batch_size))

    def layout(self, batch_size, num_workers):
        """What an exact resume needs unchanged."""
        return {"world": self.world, "workers": max(1, int(num_workers)),
                "batch_size": int(batch_size), "seed": self.seed,
                "epoch_samples": self.epoch_samples, "plan": self.index.get("plan"),
                "shards": [s["sha256"] for s in self.index["shards"]][:1]}  # fmt: skip

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        # a resumed DataLoader starts with its worker 0: it plays the part of the worker
        # whose turn came next, so that batches keep their order
        worker = (worker + self.turn) % workers
        slices = epoch_slices(self.total, self.epoch, self.rank, self.world, workers,
                              self.epoch_samples)  # fmt: skip
        pieces = shard_pieces(slices[worker], self.counts, self.seed)
        raw = self._raw(pieces)
        if self.shuffle_buffer > 1:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker]).integers(2**31)
            raw = wds.filters._shuffle(raw, bufsize=self.shuffle_buffer,
                                       initial=self.shuffle_buffer, seed=int(rng))  # fmt: skip
        skip = self.skip[worker] if self.skip else 0
        target = sum(b - a for _, a, b in slices[worker]) - skip
        yielded, recent = 0, collections.deque(maxlen=64)
        for position, sample in enumerate(raw):
            if position < skip:
                continue  # consumed before the interruption: dropped undecoded
            if sample is None:  # a sample lost to a corrupt tar (skip_bad): stands in below
                continue
            sample["__epoch__"] = self.epoch  # e.g. for a crop chosen per epoch
            try:
                item = self.decode(sample)
            except ShardError as err:  # the set is inconsistent (e.g. other teacher weights)
                raise ShardError(f"{self.folder / sample['__shard__']} key {sample['__key__']}: "
                                 f"refused: {err}") from err  # fmt: skip
            except Exception as err:
                self._bad(sample["__shard__"], sample["__key__"], err)
                continue
            recent.append(item)
            yielded += 1
            yield item
        if yielded < target:  # replace bad samples by repeats: every rank stays in step
            if not recent:
                raise ShardError(f"{self.folder}: no readable sample in this worker's shards")
            for i in range(target - yielded):
                yield recent[i % len(recent)]

    def _raw(self, pieces):
        """Raw samples of ``pieces`` (``None`` for each sample lost to a corrupt tar)."""
        for shard, first, stop in pieces:
            record = self.index["shards"][shard]
            path = self.folder / record["name"]
            read, key, failed = 0, None, False
            try:
                with open(path, "rb") as stream:
                    source = [{"url": str(path), "stream": stream}]
                    for sample in group_by_keys(tar_file_expander(source)):
                        key = sample["__key__"]
                        if read >= first:
                            sample["__shard__"] = record["name"]
                            yield sample
                        read += 1
                        if read >= stop:
                            break
            except Exception as err:  # tarfile / webdataset errors: named, then counted
                failed = True
                where = f"after key {key}" if key else "at its first member"
                self._bad(record["name"], key or "?", err, f"corrupt tar member {where}")
            if read < stop:  # lost samples (tarfile reads a bad header as the end: counted)
                if not failed:
                    lost = ShardError(f"read {read} samples, the index lists {record['samples']}")
                    self._bad(record["name"], key or "?", lost, "truncated or corrupt shard")
                yield from [None] * (stop - max(read, first))

    def _bad(self, shard, key, err, what="bad sample"):
        message = f"{self.folder / shard} key {key}: {what}: {err}"
        if not self.skip_bad:
            raise ShardError(message) from err
        logger.warning("skipped %s", message)
        if self.bad_log is not None:
            self.bad_log.mkdir(parents=True, exist_ok=True)
            line = {"epoch": self.epoch + 1, "shard": shard, "key": key, "error": f"{what}: {err}"}
            with open(self.bad_log / f"bad_samples.rank{self.rank}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")


def read_bad_log(folder):
    """Bad-sample records of every rank's log in ``folder`` (``[]`` when none)."""
    records = []
    for path in sorted(Path(folder).glob("bad_samples.rank*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return records


def sample_json(raw):
    """The ``json`` member of a raw sample, parsed."""
    return json.loads(raw["json"])


def sample_audio_bytes(raw):
    """``(field, bytes)`` of a raw sample's audio member.

    Example
    -------
    >>> sample_audio_bytes({"__key__": "a", "json": b"{}"})
    Traceback (most recent call last):
    ...
    KeyError: 'sample a has no audio member (flac, wav, ...)'
    """
    from tinyclap.data.shards import AUDIO_FIELDS

    for field in AUDIO_FIELDS:
        if field in raw:
            return field, raw[field]
    raise KeyError(f"sample {raw.get('__key__')} has no audio member (flac, wav, ...)")
