"""Tests of the teacher-embedding cache: contents, reuse, keys, resume, bounds, errors."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.audio.io import AudioLoadError
from tinyclap.data.pipelines import distill_datasets
from tinyclap.training.cache import (
    TeacherEmbeddingCache,
    cached_manifest,
    content_key,
    debug_max_clips,
    manifest_fingerprint,
)

SR = 16000
WINDOW = 4000  # 0.25 s windows keep everything tiny
DIM = 8

# Clip lengths (samples) and their expected window counts for WINDOW=4000.
CLIP_LENGTHS = {
    "short": (1500, 1),  # shorter than a window: one zero-padded window
    "exact": (8000, 2),  # exact multiple
    "long": (10500, 3),  # two full windows + an end-aligned third
    "single": (4000, 1),
}


class Interrupted(RuntimeError):
    """Stands in for a crash or Ctrl-C in the middle of a build."""


class FakeTeacher:
    """Deterministic stand-in teacher: a fixed random linear map of summary stats."""

    sample_rate = SR
    embedding_dim = DIM
    pad_mode = "zeros"

    def __init__(self, fingerprint="x", fail_after=None):
        self.fingerprint = fingerprint
        self.fail_after = fail_after  # raise on this many + 1-th call
        self.calls = 0
        self.windows_seen = 0
        gen = torch.Generator().manual_seed(1234)
        self.weight = torch.randn(4, DIM, generator=gen)

    def embed_audio(self, wavs):
        assert wavs.dim() == 2
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise Interrupted("simulated interruption")
        self.calls += 1
        self.windows_seen += wavs.shape[0]
        stats = torch.stack(
            [wavs.mean(-1), wavs.std(-1), wavs.abs().amax(-1), wavs[:, :100].mean(-1)],
            dim=-1,
        )
        return stats @ self.weight


def _write_clips(folder, lengths=CLIP_LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries, data = {}, {}
    for clip_id, (length, _) in lengths.items():
        wav = rng.uniform(-0.8, 0.8, size=length).astype(np.float32)
        path = folder / f"{clip_id}.wav"
        sf.write(str(path), wav, SR, subtype="FLOAT")
        entries[clip_id] = str(path)
        data[clip_id] = wav
    return entries, data


def _expected_windows(wav):
    """Windows computed by hand (independently of split_windows)."""
    wav = torch.from_numpy(wav)
    if len(wav) < WINDOW:
        wav = torch.cat([wav, torch.zeros(WINDOW - len(wav))])
    starts = list(range(0, len(wav) - WINDOW + 1, WINDOW))
    if starts[-1] + WINDOW < len(wav):
        starts.append(len(wav) - WINDOW)
    return torch.stack([wav[s : s + WINDOW] for s in starts])


@pytest.fixture
def clips(tmp_path):
    return _write_clips(tmp_path / "audio")


TOTAL_WINDOWS = sum(n for _, n in CLIP_LENGTHS.values())


def _windows_of_first(count):
    """Windows of the first ``count`` clips, in build order."""
    return sum(n for _, n in list(CLIP_LENGTHS.values())[:count])


def _build(root, teacher, entries, **kwargs):
    """Build with one window per teacher call (batch_size=1): calls count windows."""
    kwargs.setdefault("dtype", "float32")
    kwargs.setdefault("batch_size", 1)
    return TeacherEmbeddingCache.build(root, teacher, entries, WINDOW, progressbar=False, **kwargs)


def _all_rows(cache):
    return {
        k: torch.stack([cache.get(k, i) for i in range(cache.num_windows(k))]) for k in cache.index
    }


# --------------------------------------------------------------------------- #
# contents
# --------------------------------------------------------------------------- #


def test_build_float32_exact(tmp_path, clips):
    entries, data = clips
    teacher = FakeTeacher()
    cache = _build(tmp_path / "cache", teacher, entries)

    assert len(cache) == len(entries)
    assert set(cache.index) == set(entries)
    assert cache.embeddings.dtype == np.float32
    assert cache.embeddings.shape == (sum(n for _, n in CLIP_LENGTHS.values()), DIM)
    ref_teacher = FakeTeacher()
    for clip_id, (_, n_windows) in CLIP_LENGTHS.items():
        assert cache.num_windows(clip_id) == n_windows
        expected = ref_teacher.embed_audio(_expected_windows(data[clip_id]))
        for w in range(n_windows):
            got = cache.get(clip_id, w)
            assert got.dtype == torch.float32
            assert got.shape == (DIM,)
            assert torch.equal(got, expected[w]), (clip_id, w)
    assert cache.preprocessing == {
        "sample_rate": SR,
        "window": WINDOW,
        "hop": WINDOW,
        "crops": 1,
        "pad_mode": "zeros",
        "dtype": "float32",
    }
    # Only final files (and the builders' lock file) are left behind.
    assert sorted(p.name for p in cache.folder.iterdir()) == [
        ".lock",
        "embeddings.npy",
        "index.json",
    ]


def test_build_float16_close(tmp_path, clips):
    entries, data = clips
    cache = _build(tmp_path / "cache", FakeTeacher(), entries, dtype="float16")
    assert cache.embeddings.dtype == np.float16
    ref_teacher = FakeTeacher()
    for clip_id in entries:
        expected = ref_teacher.embed_audio(_expected_windows(data[clip_id]))
        got = torch.stack([cache.get(clip_id, w) for w in range(len(expected))])
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=2e-3, atol=2e-3)


def test_clips_share_teacher_passes(tmp_path, clips):
    """Default batching: the 7 windows of the 4 clips go through the teacher in one pass."""
    entries, _ = clips
    teacher = FakeTeacher()
    batched = _build(tmp_path / "a", teacher, entries, batch_size=32)
    assert teacher.calls == 1 and teacher.windows_seen == TOTAL_WINDOWS
    one_by_one = _build(tmp_path / "b", FakeTeacher(), entries, batch_size=1)
    for clip_id, rows in _all_rows(one_by_one).items():
        assert torch.equal(_all_rows(batched)[clip_id], rows)


def test_small_batch_size_gives_same_result(tmp_path, clips):
    entries, _ = clips
    big = _build(tmp_path / "a", FakeTeacher(), entries)
    teacher = FakeTeacher()
    small = _build(tmp_path / "b", teacher, entries, batch_size=1)
    assert teacher.calls == sum(n for _, n in CLIP_LENGTHS.values())  # one per window
    for clip_id, rows in _all_rows(big).items():
        torch.testing.assert_close(_all_rows(small)[clip_id], rows, rtol=0, atol=1e-6)


def test_hop_is_used(tmp_path, clips):
    entries, _ = clips
    cache = _build(tmp_path / "cache", FakeTeacher(), entries, hop_samples=2000)
    # long: 10500 samples, starts 0,2000,...,6000 then end-aligned 6500
    assert cache.num_windows("long") == 5
    assert cache.num_windows("short") == 1
    assert cache.preprocessing["hop"] == 2000


def test_several_crops_per_clip(tmp_path, clips):
    """crops=4: long clips get 4 evenly spread crops; clips of one window stay one."""
    entries, data = clips
    teacher = FakeTeacher()
    cache = _build(tmp_path / "cache", teacher, entries, crops=4)
    assert cache.num_windows("long") == 4  # cover is 3 windows, 4 crops asked
    assert cache.num_windows("exact") == 4
    assert cache.num_windows("single") == 1  # one possible position only
    assert cache.num_windows("short") == 1
    wav = torch.from_numpy(data["long"])
    starts = [0, 2167, 4333, 6500]  # linspace(0, 10500 - 4000, 4), rounded
    expected = teacher.embed_audio(torch.stack([wav[s : s + WINDOW] for s in starts]))
    assert torch.equal(_all_rows(cache)["long"], expected)
    # the windows the training pipeline crops are the cached ones, in order
    assert torch.equal(cache.windows(wav), torch.stack([wav[s : s + WINDOW] for s in starts]))


def test_repeat_padding_teacher(tmp_path, clips):
    """A teacher with pad_mode='repeat' (msclap) sees short clips tiled, not zero-padded."""
    entries, data = clips
    teacher = FakeTeacher()
    teacher.pad_mode = "repeat"
    cache = _build(tmp_path / "cache", teacher, entries)
    short = torch.from_numpy(data["short"])
    tiled = torch.cat([short, short, short])[:WINDOW]
    assert torch.equal(cache.get("short", 0), teacher.embed_audio(tiled[None])[0])
    assert cache.preprocessing["pad_mode"] == "repeat"
    assert torch.equal(cache.windows(short)[0], tiled)
    zero_padded = _build(tmp_path / "cache", FakeTeacher(), entries)
    assert zero_padded.folder != cache.folder


def test_get_out_of_range(tmp_path, clips):
    entries, _ = clips
    cache = _build(tmp_path / "cache", FakeTeacher(), entries)
    with pytest.raises(IndexError, match="short"):
        cache.get("short", 1)
    with pytest.raises(IndexError):
        cache.get("long", -1)


def test_reopen_from_folder(tmp_path, clips):
    entries, _ = clips
    cache = _build(tmp_path / "cache", FakeTeacher(), entries)
    reopened = TeacherEmbeddingCache(cache.folder)
    assert reopened.index == cache.index
    for clip_id, rows in _all_rows(cache).items():
        assert torch.equal(_all_rows(reopened)[clip_id], rows)


# --------------------------------------------------------------------------- #
# reuse and content keys
# --------------------------------------------------------------------------- #


def test_second_build_reuses_without_recomputing(tmp_path, clips):
    entries, _ = clips
    first_teacher = FakeTeacher()
    first = _build(tmp_path / "cache", first_teacher, entries)
    assert first_teacher.calls == TOTAL_WINDOWS

    second_teacher = FakeTeacher()
    second = _build(tmp_path / "cache", second_teacher, entries)
    assert second_teacher.calls == 0
    assert second.folder == first.folder
    assert second.index == first.index
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_fingerprint_changes_folder(tmp_path, clips):
    entries, _ = clips
    a = _build(tmp_path / "cache", FakeTeacher("x"), entries)
    teacher_y = FakeTeacher("y")
    b = _build(tmp_path / "cache", teacher_y, entries)
    assert a.folder != b.folder
    assert teacher_y.calls == TOTAL_WINDOWS


@pytest.mark.parametrize(
    "change",
    [
        {"window_samples": WINDOW // 2},
        {"hop_samples": WINDOW // 2},
        {"dtype": "float16"},
        {"crops": 4},
    ],
)
def test_preprocessing_changes_folder(tmp_path, clips, change):
    entries, _ = clips
    a = _build(tmp_path / "cache", FakeTeacher(), entries)
    kwargs = {"dtype": "float32", "window_samples": WINDOW, **change}
    teacher = FakeTeacher()
    b = TeacherEmbeddingCache.build(
        tmp_path / "cache", teacher, entries, progressbar=False, **kwargs
    )
    assert a.folder != b.folder
    assert teacher.calls > 0


def test_sample_rate_changes_key():
    base = {"sample_rate": 16000, "window": 4000, "hop": 4000, "dtype": "float16"}
    assert content_key("x", {}, base) != content_key("x", {}, {**base, "sample_rate": 44100})
    assert content_key("x", {}, base) == content_key("x", {}, dict(base))
    assert len(content_key("x", {}, base)) == 16


def test_file_content_change_changes_folder(tmp_path, clips):
    entries, data = clips
    a = _build(tmp_path / "cache", FakeTeacher(), entries)

    # Different length -> different size (and mtime).
    new = np.concatenate([data["long"], data["long"][:500]])
    sf.write(entries["long"], new, SR, subtype="FLOAT")
    teacher = FakeTeacher()
    b = _build(tmp_path / "cache", teacher, entries)
    assert b.folder != a.folder
    assert teacher.calls == TOTAL_WINDOWS
    expected = FakeTeacher().embed_audio(_expected_windows(new))
    assert b.num_windows("long") == len(expected)
    assert torch.equal(b.get("long", len(expected) - 1), expected[-1])


def test_same_size_rewrite_with_new_mtime_changes_folder(tmp_path, clips):
    entries, data = clips
    a = _build(tmp_path / "cache", FakeTeacher(), entries)
    path = entries["exact"]
    old_mtime = os.stat(path).st_mtime_ns
    sf.write(path, -data["exact"], SR, subtype="FLOAT")  # same size
    os.utime(path, ns=(old_mtime + 10**9, old_mtime + 10**9))  # coarse clocks: force it
    b = _build(tmp_path / "cache", FakeTeacher(), entries)
    assert b.folder != a.folder
    assert not torch.equal(a.get("exact", 0), b.get("exact", 0))


def test_manifest_fingerprint_covers_ids_and_paths(tmp_path, clips):
    entries, _ = clips
    fp = manifest_fingerprint(entries)
    assert fp == manifest_fingerprint(dict(reversed(list(entries.items()))))  # order-free
    renamed = {("z" + k if k == "long" else k): v for k, v in entries.items()}
    assert manifest_fingerprint(renamed) != fp
    fewer = {k: v for k, v in entries.items() if k != "short"}
    assert manifest_fingerprint(fewer) != fp
    missing = {**entries, "ghost": str(tmp_path / "ghost.wav")}
    assert manifest_fingerprint(missing) != fp


# --------------------------------------------------------------------------- #
# resume
# --------------------------------------------------------------------------- #


def _interrupt(root, entries, after, dtype="float32"):
    """Interrupt a build in the first teacher call of clip number ``after + 1``."""
    teacher = FakeTeacher(fail_after=_windows_of_first(after))
    with pytest.raises(Interrupted):
        _build(root, teacher, entries, dtype=dtype)
    assert teacher.calls == _windows_of_first(after)
    folders = list(root.iterdir())
    assert len(folders) == 1
    folder = folders[0]
    assert not (folder / "index.json").exists()
    assert (folder / "partial.bin").exists()
    lines = (folder / "partial_index.jsonl").read_text().splitlines()
    assert len(lines) == after
    return folder


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_resume_after_interruption(tmp_path, clips, dtype):
    entries, _ = clips
    folder = _interrupt(tmp_path / "cache", entries, after=2, dtype=dtype)

    teacher = FakeTeacher()
    resumed = _build(tmp_path / "cache", teacher, entries, dtype=dtype)
    assert resumed.folder == folder
    assert teacher.calls == TOTAL_WINDOWS - _windows_of_first(2)  # only the remaining clips

    reference = _build(tmp_path / "reference", FakeTeacher(), entries, dtype=dtype)
    assert set(resumed.index) == set(reference.index)
    for clip_id in entries:
        assert resumed.num_windows(clip_id) == reference.num_windows(clip_id)
        for w in range(reference.num_windows(clip_id)):
            assert torch.equal(resumed.get(clip_id, w), reference.get(clip_id, w))
    assert not (folder / "partial.bin").exists()
    assert not (folder / "partial_index.jsonl").exists()


def test_resume_drops_unrecorded_rows(tmp_path, clips):
    # A crash after the rows were written but before the clip was recorded.
    entries, _ = clips
    folder = _interrupt(tmp_path / "cache", entries, after=1)
    with open(folder / "partial.bin", "ab") as f:
        f.write(np.full((3, DIM), 99.0, dtype=np.float32).tobytes())

    teacher = FakeTeacher()
    resumed = _build(tmp_path / "cache", teacher, entries)
    assert teacher.calls == TOTAL_WINDOWS - _windows_of_first(1)
    reference = _build(tmp_path / "reference", FakeTeacher(), entries)
    assert resumed.embeddings.shape == reference.embeddings.shape
    np.testing.assert_array_equal(np.sort(resumed.embeddings, 0), np.sort(reference.embeddings, 0))
    for clip_id in entries:
        assert torch.equal(_all_rows(resumed)[clip_id], _all_rows(reference)[clip_id])


def test_resume_after_torn_index_line(tmp_path, clips):
    entries, _ = clips
    folder = _interrupt(tmp_path / "cache", entries, after=2)
    with open(folder / "partial_index.jsonl", "a", encoding="utf-8") as f:
        f.write('["lon')  # a half-written record

    teacher = FakeTeacher()
    resumed = _build(tmp_path / "cache", teacher, entries)
    assert teacher.calls == TOTAL_WINDOWS - _windows_of_first(2)
    assert set(resumed.index) == set(entries)  # no clip silently dropped
    reference = _build(tmp_path / "reference", FakeTeacher(), entries)
    for clip_id in entries:
        assert torch.equal(_all_rows(resumed)[clip_id], _all_rows(reference)[clip_id])


# --------------------------------------------------------------------------- #
# bounded (--debug) builds
# --------------------------------------------------------------------------- #

# sorted ids: exact, long, short, single
FIRST_TWO = {"exact", "long"}
FIRST_TWO_WINDOWS = CLIP_LENGTHS["exact"][1] + CLIP_LENGTHS["long"][1]


def test_bounded_build_caches_the_first_clips_in_sorted_order(tmp_path, clips):
    entries, _ = clips
    teacher = FakeTeacher()
    cache = _build(tmp_path / "cache", teacher, entries, max_clips=2)
    assert set(cache.index) == FIRST_TWO and len(cache) == 2
    assert teacher.calls == FIRST_TWO_WINDOWS  # only those clips went through the teacher
    reference = _build(tmp_path / "reference", FakeTeacher(), entries)
    for clip_id in FIRST_TWO:
        assert torch.equal(_all_rows(cache)[clip_id], _all_rows(reference)[clip_id])
    # the same clips whatever the manifest order: reused as it is
    again = FakeTeacher()
    reordered = dict(reversed(list(entries.items())))
    assert _build(tmp_path / "cache", again, reordered, max_clips=2).folder == cache.folder
    assert again.calls == 0
    with pytest.raises(ValueError, match="max_clips must be a positive integer"):
        _build(tmp_path / "cache", FakeTeacher(), entries, max_clips=0)


def test_bounded_cache_never_stands_in_for_the_full_one(tmp_path, clips):
    entries, _ = clips
    root = tmp_path / "cache"
    debug = _build(root, FakeTeacher(), entries, max_clips=2)
    teacher = FakeTeacher()
    full = _build(root, teacher, entries)
    assert full.folder != debug.folder
    assert set(full.index) == set(entries)
    assert teacher.calls == TOTAL_WINDOWS  # nothing taken from the debug cache
    # a bound that covers every clip is the full cache itself
    covering = FakeTeacher()
    assert _build(root, covering, entries, max_clips=len(entries)).folder == full.folder
    assert covering.calls == 0


def test_interrupted_bounded_build_is_not_resumed_by_a_full_run(tmp_path, clips):
    entries, _ = clips
    root = tmp_path / "cache"
    with pytest.raises(Interrupted):  # fails in the teacher call of the second clip
        _build(root, FakeTeacher(fail_after=CLIP_LENGTHS["exact"][1]), entries, max_clips=2)
    (partial,) = root.iterdir()
    assert len((partial / "partial_index.jsonl").read_text().splitlines()) == 1
    teacher = FakeTeacher()
    full = _build(root, teacher, entries)
    assert full.folder != partial and teacher.calls == TOTAL_WINDOWS
    assert set(full.index) == set(entries)
    resumed = FakeTeacher()  # the bounded build itself resumes after its recorded clip
    assert set(_build(root, resumed, entries, max_clips=2).index) == FIRST_TWO
    assert resumed.calls == CLIP_LENGTHS["long"][1]


def test_an_incomplete_cache_is_never_returned(tmp_path, clips):
    # e.g. a folder left by a tool that stopped a build early and finalised it
    entries, _ = clips
    root = tmp_path / "cache"
    debug = _build(root, FakeTeacher(), entries, max_clips=2)
    full_folder = root / content_key("x", entries, debug.preprocessing)
    debug.folder.rename(full_folder)
    with pytest.raises(ValueError, match=r"lacks 2 of its 4 clips .*delete the folder"):
        _build(root, FakeTeacher(), entries)


def test_debug_datasets_read_only_cached_clips(tmp_path, clips):
    entries, _ = clips
    manifest = {k: {"wav": v, "label": "rain" if k == "long" else None} for k, v in entries.items()}
    full_path = tmp_path / "train.json"
    full_path.write_text(json.dumps(manifest))
    max_clips = debug_max_clips({"debug": True, "debug_batches": 2}, 1)
    assert max_clips == 2
    assert debug_max_clips({"debug": False, "debug_batches": 2}, 16) is None
    assert debug_max_clips({}, 16) is None
    cache = _build(tmp_path / "cache", FakeTeacher(), entries, max_clips=max_clips)
    with pytest.raises(KeyError, match=r"'short' is not in the teacher cache .*cached_manifest"):
        cache.num_windows("short")
    path = cached_manifest(full_path, cache, tmp_path / "debug" / "train.json")
    assert list(json.loads(Path(path).read_text())) == ["exact", "long"]  # manifest order kept
    datasets = distill_datasets(
        {"train": path, "valid": path}, {"train": cache, "valid": cache}, SR, WINDOW, ["rain"]
    )
    for split in ("train", "valid"):
        items = [datasets[split][i] for i in range(len(datasets[split]))]
        assert [item["id"] for item in items] == ["exact", "long"]
        assert all(item["teacher_emb"].shape == (DIM,) for item in items)
    other = _build(tmp_path / "cache", FakeTeacher(), {"short": entries["short"]})
    with pytest.raises(ValueError, match="built from another manifest"):
        cached_manifest(tmp_path / "debug" / "train.json", other, tmp_path / "x.json")


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


def test_corrupt_audio_names_file_and_manifest_id(tmp_path, clips):
    entries, _ = clips
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(np.random.default_rng(5).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    entries = {**entries, "broken_clip": str(bad)}
    with pytest.raises(AudioLoadError) as info:
        _build(tmp_path / "cache", FakeTeacher(), entries)
    assert str(bad) in str(info.value)
    assert "broken_clip" in str(info.value)


def test_missing_audio_names_file_and_manifest_id(tmp_path, clips):
    entries, _ = clips
    entries = {"gone": str(tmp_path / "audio" / "gone.wav"), **entries}
    with pytest.raises(AudioLoadError) as info:
        _build(tmp_path / "cache", FakeTeacher(), entries)
    assert "gone.wav" in str(info.value)
    assert "manifest entry gone" in str(info.value)


def test_index_json_layout(tmp_path, clips):
    entries, _ = clips
    cache = _build(tmp_path / "cache", FakeTeacher(), entries)
    meta = json.loads((cache.folder / "index.json").read_text())
    offsets = sorted(meta["index"].values())
    # Rows are contiguous and non-overlapping.
    pos = 0
    for offset, count in offsets:
        assert offset == pos
        pos += count
    assert pos == cache.embeddings.shape[0]


def _build_in_process(root, entries, queue):
    teacher = FakeTeacher()
    _build(root, teacher, entries)
    queue.put(teacher.calls)


def test_concurrent_builders_take_turns(tmp_path, clips):
    """Two processes building one cache: one computes it, the other reuses it."""
    import multiprocessing

    entries, _ = clips
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_build_in_process, args=(tmp_path / "cache", entries, queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sorted(queue.get() for _ in workers) == [0, TOTAL_WINDOWS]
    reference = _build(tmp_path / "reference", FakeTeacher(), entries)
    shared = TeacherEmbeddingCache(next((tmp_path / "cache").iterdir()))
    assert _all_rows(shared).keys() == _all_rows(reference).keys()
    for clip_id, rows in _all_rows(reference).items():
        assert torch.equal(_all_rows(shared)[clip_id], rows)
