"""The stages' data from shard sets: ``data_source: shards`` (``distill.yaml``, ``transfer.yaml``).

``shards_folder`` holds one shard set per split (``train/``, ``valid/``, ...,
as ``tinyclap shard --dataset NAME`` writes them). Before training, every set
is checked (:func:`tinyclap.data.shards.check_shards`: a shard missing from
disk fails here) and given its teacher fields if it has none
(:func:`tinyclap.training.shard_cache.add_teacher_fields`, collective); fields
of other teacher weights are refused. Training streams
:class:`~tinyclap.data.shard_reader.ShardDataset` items in SpeechBrain's
convention (``id``, ``sig``, ``teacher_emb``, ``label_index``; collated by
``PaddedBatch``): train items are one cached crop per clip, chosen from
``(seed, epoch, key)`` (so a resumed epoch picks the same crops), valid items
whole clips (every rank reads the whole valid set, in order).

:class:`ShardEpochs` positions the stream at each epoch start (exact resume
after a kill, see :mod:`tinyclap.data.shard_reader`) and records, per rank
and epoch, the samples trained on and an order-free hash of their ids
(``<output_folder>/shard_epochs/<stage>.rank<r>.jsonl``): over the ranks the
counts add up to the epoch and the hashes to the hash of every id once.
"""

import hashlib
import json
from pathlib import Path

import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

from tinyclap.audio.windows import crop_windows
from tinyclap.data.shard_reader import ShardDataset, read_bad_log, sample_audio_bytes, sample_json
from tinyclap.data.shards import ShardError, check_shards, decode_audio
from tinyclap.training.shard_cache import (
    add_teacher_fields,
    check_teacher,
    sample_teacher,
    teacher_record,
)


def id_hash(clip_id):
    """A 64-bit hash of a sample id; sums of them (mod 2**64) identify a set of ids.

    Example
    -------
    >>> id_hash("a") == id_hash("a") != id_hash("b")
    True
    """
    return int.from_bytes(hashlib.sha256(str(clip_id).encode()).digest()[:8], "little")


def ids_hash(ids):
    """Order-free hash of a multiset of ids: the sum of :func:`id_hash` mod 2**64."""
    return sum(id_hash(i) for i in ids) % 2**64


def crop_choice(seed, epoch, key, count):
    """Which of a clip's ``count`` cached crops epoch ``epoch`` trains on.

    Example
    -------
    >>> crop_choice(1, 0, "a", 4) == crop_choice(1, 0, "a", 4) < 4
    True
    """
    digest = hashlib.sha256(f"{seed}:{epoch}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % int(count)


class DistillDecoder:
    """Raw shard sample -> distillation item (a picklable callable, for DataLoader workers).

    ``train``: ``id``, ``sig`` (one cached crop) and its ``teacher_emb``;
    otherwise ``id``, the whole clip ``sig``, the crop-averaged, normalised
    ``teacher_emb`` and ``label_index`` (-1 outside ``classes``).
    """

    def __init__(self, record, train, classes=(), seed=0, labelled=False):
        self.record, self.train, self.seed = record, train, int(seed)
        self.class_index = {c: i for i, c in enumerate(classes)}
        self.labelled = labelled

    def __call__(self, raw):
        """The item of one raw sample (raises, naming shard and key, to reject it)."""
        source = f"{raw['__shard__']} key {raw['__key__']}"
        prep = self.record["preprocessing"]
        meta = sample_json(raw)
        rows = torch.from_numpy(sample_teacher(raw, self.record["fingerprint"], source))
        _, data = sample_audio_bytes(raw)
        wav = torch.from_numpy(decode_audio(data, source, prep["sample_rate"])[0])
        label = self.class_index.get(meta.get("label"), -1)
        if self.train:
            crops = crop_windows(wav, prep["window"], prep["crops"], prep["hop"], prep["pad_mode"])
            if len(crops) != len(rows):
                raise ShardError(f"{source}: {len(crops)} crops but {len(rows)} teacher rows")
            pick = crop_choice(self.seed, raw.get("__epoch__", 0), raw["__key__"], len(rows))
            item = {"id": meta["id"], "sig": crops[pick], "teacher_emb": rows[pick]}
            return {**item, "label_index": label} if self.labelled else item
        emb = torch.nn.functional.normalize(rows.mean(0), dim=-1)
        return {"id": meta["id"], "sig": wav, "teacher_emb": emb, "label_index": label}


def uses_shards(hparams):
    """``data_source``: ``manifest`` (the preparation's files) or ``shards`` (webdataset tars).

    Example
    -------
    >>> uses_shards({"data_source": "shards"}), uses_shards({})
    (True, False)
    """
    source = hparams.get("data_source") or "manifest"
    if source not in ("manifest", "shards"):
        raise ValueError(f"data_source must be manifest or shards, got {source!r}")
    return source == "shards"


def shard_folder(hparams, split):
    """The shard set of ``split``: ``<shards_folder>/<split>``.

    Example
    -------
    >>> shard_folder({"shards_folder": "/data/shards"}, "train").as_posix()
    '/data/shards/train'
    """
    if not hparams.get("shards_folder"):
        raise ShardError("data_source: shards needs --shards_folder (written by `tinyclap shard`)")
    return Path(hparams["shards_folder"]) / split


def prepare_teacher_fields(teacher, hparams, splits):
    """Check the splits' shard sets, add missing teacher fields; return ``{split: record}``.

    Collective under ``torch.distributed``. Missing shards fail here, before
    any training; fields of other weights are refused unless
    ``replace_teacher_fields``.
    """
    crops = hparams.get("cache_crops", 1)
    record = teacher_record(
        teacher, teacher.window_samples, crops=crops, dtype=hparams["cache_dtype"]
    )
    for split in splits:
        folder = shard_folder(hparams, split)
        check_shards(folder, verify=hparams.get("verify_shards", False))
        replace = hparams.get("replace_teacher_fields", False)
        index = add_teacher_fields(folder, teacher, record, replace=replace)
        check_teacher(folder, index, record)
    return record


def shard_distill_datasets(teacher, hparams, classes, labelled=False):
    """``{"train", "valid"}`` :class:`ShardDataset` s of the distillation (fields prepared)."""
    record = prepare_teacher_fields(teacher, hparams, ("train", "valid"))
    bad_log = Path(hparams["output_folder"]) / "shard_epochs"
    common = {"skip_bad": hparams.get("skip_bad_samples", False), "bad_log": bad_log}
    train = ShardDataset(
        shard_folder(hparams, "train"),
        DistillDecoder(record, True, classes, hparams["seed"], labelled),
        shuffle_buffer=hparams.get("shuffle_buffer", 1000),
        seed=hparams["seed"],
        epoch_samples=hparams.get("epoch_samples"),
        **common,
    )
    valid = ShardDataset(shard_folder(hparams, "valid"), DistillDecoder(record, False, classes),
                         shuffle_buffer=0, rank=0, world=1, **common)  # fmt: skip
    return {"train": train, "valid": valid}


def shard_loader_opts(opts):
    """DataLoader options for a shard stream: no sampler shuffle, ``PaddedBatch`` collation.

    The stream shuffles itself (shard order, buffers). Workers are not
    persistent: each epoch's workers must start from the stream's new position.

    Example
    -------
    >>> sorted(shard_loader_opts({"batch_size": 4, "shuffle": True, "persistent_workers": True}))
    ['batch_size', 'collate_fn', 'persistent_workers']
    """
    dropped = ("shuffle", "sampler", "batch_sampler")
    opts = {k: v for k, v in opts.items() if k not in dropped}
    return {**opts, "collate_fn": PaddedBatch, "persistent_workers": False}


@register_checkpoint_hooks
class ShardLayout:
    """Checkpointed: the stream layout (:meth:`ShardDataset.layout`) a checkpoint was taken in."""

    def __init__(self):
        self.current, self.recovered = None, None

    @mark_as_saver
    def _save(self, path):
        Path(path).write_text(json.dumps(self.current), encoding="utf-8")

    @mark_as_loader
    def _recover(self, path, end_of_epoch=True):
        self.recovered = json.loads(Path(path).read_text(encoding="utf-8"))


class ShardEpochs:
    """Positions a train :class:`ShardDataset` at each epoch and records what each rank read.

    Parameters
    ----------
    dataset : ShardDataset
        The train stream.
    loader_opts : dict
        Its DataLoader options (``batch_size``, ``num_workers``).
    log_folder : str or Path
        Where ``<name>.rank<r>.jsonl`` goes.
    name : str
        The stage (``distill``, ``finetune``, ``transfer_fold_1``...).
    checkpointer : speechbrain.utils.checkpoints.Checkpointer, optional
        Gets the :class:`ShardLayout` recoverable (exact resume needs it).
    """

    def __init__(self, dataset, loader_opts, log_folder, name, checkpointer=None):
        self.dataset, self.name = dataset, name
        self.batch_size = int(loader_opts.get("batch_size", 1))
        self.workers = int(loader_opts.get("num_workers", 0))
        self.log = Path(log_folder) / f"{name}.rank{dataset.rank}.jsonl"
        self.layout = ShardLayout()
        if checkpointer is not None and "shard_layout" not in checkpointer.recoverables:
            checkpointer.add_recoverable("shard_layout", self.layout, optional_load=True)
        self.samples, self.hash, self.first_batch = 0, 0, 0

    def start(self, epoch, batches_done):
        """Position the stream at batch ``batches_done`` of ``epoch`` (SpeechBrain's, from 1)."""
        self.dataset.set_position(epoch, batches_done, self.batch_size, self.workers,
                                  layout=self.layout.recovered)  # fmt: skip
        self.layout.current = self.dataset.layout(self.batch_size, self.workers)
        self.layout.recovered = None  # only the resumed epoch may skip
        self.samples, self.hash, self.first_batch = 0, 0, int(batches_done)

    def count(self, ids):
        """Count the ids of a trained batch."""
        self.samples += len(ids)
        self.hash = (self.hash + ids_hash(ids)) % 2**64

    def end(self, epoch):
        """Append this rank's record of ``epoch``."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        record = {"stage": self.name, "epoch": int(epoch), "rank": self.dataset.rank,
                  "world": self.dataset.world, "samples": self.samples,
                  "ids_hash": self.hash, "first_batch": self.first_batch}  # fmt: skip
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def shard_summary(hparams, datasets):
    """The ``shards`` record of ``results.json``: sets, per-rank epoch sizes, bad samples."""
    train = datasets["train"]
    plan = train.plan(max(1, int(hparams["train_dataloader_opts"].get("num_workers", 0))))
    bad = read_bad_log(Path(hparams["output_folder"]) / "shard_epochs")
    return {
        "folder": str(hparams["shards_folder"]),
        "train_samples": train.total,
        "train_shards": len(train.counts),
        "world_size": train.world,
        "samples_per_rank_per_epoch": plan["per_rank"],
        "repeated_per_epoch": plan["repeated"],
        "teacher": train.index.get("teacher"),
        "bad_samples": len(bad),
        "bad": bad[:20],
        "epoch_log": str(Path(hparams["output_folder"]) / "shard_epochs"),
    }
