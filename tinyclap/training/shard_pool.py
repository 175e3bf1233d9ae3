"""The transfer stage's pool from shard sets (``data_source: shards`` in ``transfer.yaml``).

Transfer is fold-wise over a benchmark-sized pool (ESC-50, US8K, TUT17...): its
clips are split into folds, a PCA may be fitted on the teacher rows of some of
them, and every fold trains on one subset and tests on another. So the pool's
shard sets (``<shards_folder>/<split>`` for each of ``pool_splits``) are read
once, sequentially, after their teacher fields are checked or added
(:func:`tinyclap.training.shard_data.prepare_teacher_fields`): each clip's encoded
audio bytes (decoded again at each use) and teacher rows are kept in memory, and
the folds' datasets are map-style datasets over them (so SpeechBrain's samplers,
shuffling and ``DistributedSampler`` apply as for manifests). Distillation, whose
corpora are the big ones, streams instead (:mod:`tinyclap.training.shard_data`).
"""

import random

import torch
from speechbrain.dataio.batch import PaddedBatch

from tinyclap.audio.windows import crop_windows
from tinyclap.data.shard_reader import ShardDataset, sample_audio_bytes, sample_json
from tinyclap.data.shards import decode_audio
from tinyclap.training.shard_cache import sample_teacher
from tinyclap.training.shard_data import prepare_teacher_fields, shard_folder


class TeacherRows:
    """In-memory teacher rows with the read API of a teacher cache (``get``, ``random_crop``).

    Example
    -------
    >>> prep = {"window": 4, "hop": 4, "crops": 1, "pad_mode": "zeros"}
    >>> rows = TeacherRows({"a": torch.ones(2, 3)}, prep)
    >>> rows.num_windows("a"), rows.get("a", 1).shape
    (2, torch.Size([3]))
    """

    def __init__(self, rows, preprocessing):
        self.rows, self.preprocessing = rows, preprocessing

    def __contains__(self, clip_id):
        return clip_id in self.rows

    def num_windows(self, clip_id):
        """Rows (crops) of ``clip_id``."""
        return len(self.rows[clip_id])

    def get(self, clip_id, window=0):
        """Row ``window`` of ``clip_id`` (float32 ``[D]``)."""
        return self.rows[clip_id][window]

    def random_crop(self, clip_id, wav):
        """One of the clip's crops of ``wav`` at random (Python's ``random``) and its row."""
        p = self.preprocessing
        crops = crop_windows(wav, p["window"], p["crops"], p["hop"], p["pad_mode"])
        if len(crops) != self.num_windows(clip_id):
            raise ValueError(f"{clip_id}: {len(crops)} crops, {self.num_windows(clip_id)} rows")
        window = random.randrange(len(crops))
        return crops[window], self.get(clip_id, window)


def read_shard_pool(teacher, hparams, splits):
    """``(pool, audio, rows)`` of the pool splits' shard sets.

    ``pool`` is ``{id: json metadata + "split"}`` (as :func:`read_pool
    <tinyclap.stages.transfer.read_pool>` builds from manifests), ``audio``
    ``{id: (source, encoded bytes)}``, ``rows`` a :class:`TeacherRows`.
    """
    record = prepare_teacher_fields(teacher, hparams, splits)
    pool, audio, rows = {}, {}, {}
    for split in splits:
        folder = shard_folder(hparams, split)
        stream = ShardDataset(folder, lambda raw: raw, shuffle_buffer=0, rank=0, world=1)
        for raw in stream:
            meta = sample_json(raw)
            source = f"{folder / raw['__shard__']} key {raw['__key__']}"
            if meta["id"] in pool:
                raise ValueError(f"clip id {meta['id']!r} appears in two pool splits ({source})")
            if "label" not in meta:
                raise ValueError(f"{source}: clip {meta['id']!r} has no 'label'")
            pool[meta["id"]] = {**meta, "split": split}
            audio[meta["id"]] = (source, sample_audio_bytes(raw)[1])
            rows[meta["id"]] = torch.from_numpy(sample_teacher(raw, record["fingerprint"], source))
    return pool, audio, TeacherRows(rows, record["preprocessing"])


class PoolClips(torch.utils.data.Dataset):
    """A fold's clips from the in-memory pool: SpeechBrain-style dict items.

    ``train``: ``id``, ``sig`` (a random cached crop), ``teacher_emb``,
    ``label_index``; otherwise ``id``, the whole clip ``sig`` and ``label_index``.
    """

    def __init__(self, keys, pool, audio, rows, classes, sample_rate, train):
        self.keys, self.pool, self.audio, self.rows = list(keys), pool, audio, rows
        self.class_index = {c: i for i, c in enumerate(classes)}
        self.sample_rate, self.train = int(sample_rate), train

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        clip_id = self.keys[i]
        source, data = self.audio[clip_id]
        wav = torch.from_numpy(decode_audio(data, source, self.sample_rate)[0])
        item = {"id": clip_id, "label_index": self.class_index[self.pool[clip_id]["label"]]}
        if not self.train:
            return {**item, "sig": wav}
        sig, emb = self.rows.random_crop(clip_id, wav)
        return {**item, "sig": sig, "teacher_emb": emb}


def pool_datasets(train_keys, test_keys, pool, audio, rows, classes, sample_rate):
    """The ``train`` / ``test`` datasets of one fold (collate with :data:`COLLATE`)."""
    return {
        "train": PoolClips(train_keys, pool, audio, rows, classes, sample_rate, True),
        "test": PoolClips(test_keys, pool, audio, rows, classes, sample_rate, False),
    }


COLLATE = {"collate_fn": PaddedBatch}  # the pool datasets' items are plain dicts
