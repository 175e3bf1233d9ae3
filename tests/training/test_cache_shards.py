"""The teacher cache built by two processes (gloo, CPU) equals the one-process cache.

Each process embeds its shard of the manifest; rank 0 merges. A process killed
mid-build loses only its unrecorded clips: the rerun embeds exactly the rest.
"""

import functools
import json
import os

import numpy as np
import pytest
import torch

from tinyclap.bench.cache import build_in_processes, compare_caches
from tinyclap.teachers import load_teacher
from tinyclap.training.cache import TeacherEmbeddingCache, build_shard

BATCH = 2  # windows per teacher pass: the mini teacher's 1 s window holds a 0.5 s clip
FORK = "fork"  # the processes start as copies of this one: no seconds of imports each


class DyingTeacher:
    """Loads the teacher; on rank ``rank`` the process exits after ``after`` teacher passes."""

    def __init__(self, path, rank, after):
        self.path, self.rank, self.after = path, rank, after

    def __call__(self):
        teacher = load_teacher(self.path)
        if int(os.environ["RANK"]) != self.rank:
            return teacher
        embed, calls = teacher.embed_audio, [0]

        def dying_embed(wavs):
            if calls[0] == self.after:
                os._exit(17)  # a kill: no clean-up, no exception handling
            calls[0] += 1
            return embed(wavs)

        teacher.embed_audio = dying_embed
        return teacher


@pytest.fixture(scope="module")
def setting(mini_teacher, synth_tree, tmp_path_factory):
    """Entries of the tiny Synth train split and their one-process cache."""
    manifest = json.loads(synth_tree["manifests"]["train"].read_text())
    entries = {key: entry["wav"] for key, entry in manifest.items()}
    root = tmp_path_factory.mktemp("one_process")
    teacher = load_teacher(str(mini_teacher.path))
    reference = TeacherEmbeddingCache.build(
        root, teacher, entries, teacher.window_samples, batch_size=BATCH, progressbar=False
    )
    return {"entries": entries, "reference": reference, "teacher": str(mini_teacher.path)}


def _assert_same_cache(folder, reference):
    cache = TeacherEmbeddingCache(folder)
    assert cache.folder.name == reference.folder.name  # same content key
    assert cache.index == reference.index  # same keys, same row layout
    assert cache.embeddings.dtype == np.float16
    assert compare_caches(folder, reference.folder) <= 1e-3  # fp16 rounding of unit vectors
    assert sorted(p.name for p in cache.folder.iterdir() if not p.name.startswith(".lock")) == [
        "embeddings.npy",
        "index.json",
    ]  # the shards' partial files are gone


def test_not_distributed_means_one_shard():
    assert not torch.distributed.is_initialized()
    assert build_shard() == (0, 1)


def test_two_processes_build_the_one_process_cache(setting, tmp_path):
    make = functools.partial(load_teacher, setting["teacher"])
    records = build_in_processes(
        2, make, tmp_path, setting["entries"], timeout_s=120, batch_size=BATCH, start_method=FORK
    )
    assert len({r["folder"] for r in records}) == 1
    _assert_same_cache(records[0]["folder"], setting["reference"])
    # each process embedded its half of the clips (one window each), nothing twice
    total = len(setting["entries"])
    assert [r["windows_embedded"] for r in records] == [(total + 1) // 2, total // 2]


def test_killed_rank_resumes_without_recomputing(setting, tmp_path):
    entries = setting["entries"]
    assert len(entries) >= 2 * (2 * BATCH + 1)  # rank 1 has clips left when it dies
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        build_in_processes(2, DyingTeacher(setting["teacher"], rank=1, after=2), tmp_path,
                           entries, timeout_s=120, batch_size=BATCH, start_method=FORK)  # fmt: skip
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert not (folder / "index.json").exists()
    recorded = {
        index.name: len(index.read_text().splitlines())
        for index in folder.glob("partial_index*.jsonl")
    }
    assert recorded["partial_index.1.jsonl"] == 2 * BATCH  # two passes on disk, then killed

    make = functools.partial(load_teacher, setting["teacher"])
    records = build_in_processes(
        2, make, tmp_path, entries, timeout_s=120, batch_size=BATCH, start_method=FORK
    )
    _assert_same_cache(folder, setting["reference"])
    embedded = [r["windows_embedded"] for r in records]
    assert sum(embedded) == len(entries) - sum(recorded.values())  # the rest, once
    assert embedded[1] == len(entries) // 2 - 2 * BATCH
