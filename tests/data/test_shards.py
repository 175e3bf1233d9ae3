"""Shard sets: the writer (index, resume, bad audio), the CLI sources, the training stream.

The stream's guarantees are asserted on small sets: every sample once per
epoch over all (rank, worker) pairs, equal per-rank counts, exact resume, and
bad samples named (shard + key) and counted, never silently skipped.
"""

import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers.dataset_trees import build_audiocaps, build_esc50, write_tone
from tinyclap.audio.io import AudioLoadError
from tinyclap.data import shards as shards_module
from tinyclap.data.shard_reader import (
    ShardDataset,
    consumed_per_worker,
    epoch_slices,
    read_bad_log,
    sample_json,
)
from tinyclap.data.shards import ShardError, check_shards, load_index, write_shards
from tinyclap.cli.shard import source_manifests
from tinyclap.cli.main import main as cli_main


def make_entries(folder, count, rate=8000):
    """``count`` short random clips (lengths differ) as a manifest."""
    rng = np.random.default_rng(0)
    entries = {}
    for i in range(count):
        path = folder / "audio" / f"clip.{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(400 + 10 * i)).astype("float32"), rate)
        entries[f"set/clip.{i}"] = {"wav": str(path), "label": f"c{i % 3}", "caption": f"clip {i}"}
    return entries


def ids_of(raw):
    return sample_json(raw)["id"]


def stream(folder, rank, world, workers, batch_size=3, epoch=1, **kw):
    """The ids a (rank, DataLoader) reads in ``epoch``, batch by batch."""
    ds = ShardDataset(folder, ids_of, rank=rank, world=world, **kw)
    ds.set_position(epoch)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers,
                                         collate_fn=list)  # fmt: skip
    return [batch for batch in loader]


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    """23 clips in shards of 5 (the last holds 3)."""
    root = tmp_path_factory.mktemp("shards")
    entries = make_entries(root, 23)
    index = write_shards(entries, root / "set", shard_size=5, progress=False)
    return {"root": root, "entries": entries, "folder": root / "set", "index": index}


def test_index_counts_durations_and_hashes(shard_set):
    index, folder = shard_set["index"], shard_set["folder"]
    assert [s["samples"] for s in index["shards"]] == [5, 5, 5, 5, 3]
    assert index["samples"] == 23 and index["bad"]["count"] == 0
    expected = sum((400 + 10 * i) / 8000 for i in range(23))
    assert index["duration_s"] == pytest.approx(expected, abs=0.01)  # rounded to ms per shard
    for record in index["shards"]:
        assert record["sha256"] == shards_module.sha256_file(folder / record["name"])
        assert record["bytes"] == (folder / record["name"]).stat().st_size
    assert load_index(folder) == index
    with tarfile.open(folder / "shard-000000.tar") as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile("set_clip_0.json"))
        audio = tar.extractfile("set_clip_0.flac").read()
    assert names[:2] == ["set_clip_0.flac", "set_clip_0.json"]  # dots in ids are not key separators
    assert meta == {"id": "set/clip.0", "duration": 0.05, "sample_rate": 8000,
                    "source": shard_set["entries"]["set/clip.0"]["wav"], "label": "c0",
                    "caption": "clip 0"}  # fmt: skip
    wav, rate = sf.read(io.BytesIO(audio), dtype="float32")
    original, _ = sf.read(shard_set["entries"]["set/clip.0"]["wav"], dtype="float32")
    assert rate == 8000 and wav.shape == original.shape
    assert np.abs(wav - original).max() <= 1 / 2**15  # 16-bit FLAC of float audio


def test_original_bytes_and_resampled_flac(shard_set, tmp_path):
    entries = dict(list(shard_set["entries"].items())[:2])
    write_shards(entries, tmp_path / "orig", audio="original", progress=False)
    with tarfile.open(tmp_path / "orig" / "shard-000000.tar") as tar:
        stored = tar.extractfile("set_clip_1.wav").read()
    assert stored == open(entries["set/clip.1"]["wav"], "rb").read()
    write_shards(entries, tmp_path / "16k", sample_rate=16000, progress=False)
    with tarfile.open(tmp_path / "16k" / "shard-000000.tar") as tar:
        meta = json.load(tar.extractfile("set_clip_1.json"))
    assert meta["sample_rate"] == 16000 and meta["duration"] == pytest.approx(410 / 8000)
    with pytest.raises(ShardError, match="--sample_rate needs --audio flac"):
        write_shards(entries, tmp_path / "x", audio="original", sample_rate=16000)


def test_killed_writer_resumes_after_the_last_complete_shard(shard_set, tmp_path, monkeypatch):
    encode, calls = shards_module._encode, []

    def dying_encode(*args):
        if len(calls) == 12:  # in the third shard: two complete shards on disk
            raise KeyboardInterrupt
        calls.append(args[1])
        return encode(*args)

    monkeypatch.setattr(shards_module, "_encode", dying_encode)
    with pytest.raises(KeyboardInterrupt):
        write_shards(shard_set["entries"], tmp_path / "set", shard_size=5, progress=False)
    assert not (tmp_path / "set" / "shards.json").exists()
    assert sorted(p.name for p in (tmp_path / "set").glob("*.tar")) == [
        "shard-000000.tar", "shard-000001.tar"]  # fmt: skip
    calls.clear()
    monkeypatch.setattr(shards_module, "_encode", lambda *a: calls.append(a[1]) or encode(*a))
    index = write_shards(shard_set["entries"], tmp_path / "set", shard_size=5, progress=False)
    assert calls == list(shard_set["entries"])[10:]  # only the clips of the unfinished shards
    # byte-identical to the uninterrupted run (member times are 0)
    assert [s["sha256"] for s in index["shards"]] == [
        s["sha256"] for s in shard_set["index"]["shards"]
    ]
    with pytest.raises(ShardError, match="another source or other options"):
        write_shards(shard_set["entries"], tmp_path / "set", shard_size=4, progress=False)


def test_bad_audio_fails_naming_it_or_is_counted(shard_set, tmp_path):
    entries = dict(list(shard_set["entries"].items())[:3])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    entries["broken"] = {"wav": str(bad), "label": "c0"}
    with pytest.raises(AudioLoadError, match=r"bad\.wav \(manifest entry broken\)"):
        write_shards(entries, tmp_path / "strict", progress=False)
    index = write_shards(entries, tmp_path / "lenient", skip_bad_audio=True, progress=False)
    assert index["samples"] == 3 and index["bad"]["count"] == 1
    assert index["bad"]["clips"][0]["id"] == "broken"


def test_missing_or_altered_shard_fails_before_reading(shard_set, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for path in shard_set["folder"].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "shard-000002.tar").unlink()
    with pytest.raises(ShardError, match=r"1 of the 5 shards .*shard-000002.tar \(missing\)"):
        ShardDataset(folder, ids_of)
    (folder / "shard-000002.tar").write_bytes((shard_set["folder"] / "shard-000003.tar").read_bytes())
    check_shards(folder)  # same size: only the hash tells
    with pytest.raises(ShardError, match="shard-000002.tar \\(SHA-256 differs"):
        check_shards(folder, verify=True)
    (folder / "shard-000009.tar").write_bytes(b"")  # a shard the index does not list
    with pytest.raises(ShardError, match=r"shard-000009.tar \(on disk, not in the index\)"):
        check_shards(folder)


@pytest.mark.parametrize("world,workers", [(1, 0), (2, 0), (2, 2), (3, 2)])
def test_every_sample_once_per_epoch_across_ranks_and_workers(shard_set, world, workers):
    for epoch in (1, 2):
        per_rank = [stream(shard_set["folder"], r, world, workers, epoch=epoch, shuffle_buffer=4,
                           seed=3) for r in range(world)]  # fmt: skip
        seen = [i for batches in per_rank for b in batches for i in b]
        assert set(seen) == set(shard_set["entries"])
        repeated = -23 % world  # the last rank wraps to the pass start (DistributedSampler pads)
        assert len(seen) == 23 + repeated
        assert len({len(b) for b in per_rank}) == 1  # same batch count on every rank: DDP in step
    orders = [[i for b in stream(shard_set["folder"], 0, 1, 0, epoch=e, shuffle_buffer=4)
               for i in b] for e in (1, 2)]  # fmt: skip
    assert orders[0] != orders[1]  # reshuffled each epoch


def test_nominal_epochs_run_across_passes():
    # 10 samples, nominal epochs of 4 over 2 ranks: epoch 3 covers positions 8, 9 | 0, 1
    assert epoch_slices(10, 2, 0, 2, 1, epoch_samples=4) == [[(0, 8, 10)]]
    assert epoch_slices(10, 2, 1, 2, 1, epoch_samples=4) == [[(1, 0, 2)]]


def test_resume_after_k_batches_yields_exactly_the_rest(shard_set):
    folder, kw = shard_set["folder"], {"shuffle_buffer": 4, "seed": 5}
    full = stream(folder, 1, 2, 2, epoch=2, **kw)
    assert consumed_per_worker(3, [6, 6], 3) == ([6, 3], 1)  # workers alternate; 1 is next
    for done in (1, 3, 4):
        ds = ShardDataset(folder, ids_of, rank=1, world=2, **kw)
        ds.set_position(2, done, batch_size=3, num_workers=2, layout=ds.layout(3, 2))
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list)
        assert list(loader) == full[done:]
    ds = ShardDataset(folder, ids_of, rank=1, world=2, **kw)  # another layout: the epoch restarts
    ds.set_position(2, 3, batch_size=3, num_workers=2, layout={"world": 4})
    assert list(torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list)) == full


def corrupt_copy(shard_set, folder, change):
    folder.mkdir()
    for path in shard_set["folder"].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    data = bytearray((folder / "shard-000001.tar").read_bytes())
    change(data)
    (folder / "shard-000001.tar").write_bytes(bytes(data))
    return folder


def flac_offset(data, key):
    """Offset of the FLAC payload of ``key`` in a tar image."""
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        return tar.getmember(f"{key}.flac").offset_data


def decode_flac(raw):
    sf.read(io.BytesIO(raw["flac"]))
    return sample_json(raw)["id"]


def test_unreadable_audio_is_named_or_counted_and_replaced(shard_set, tmp_path):
    def garble(data):
        at = flac_offset(data, "set_clip_6")
        data[at : at + 64] = b"\0" * 64  # same size: check_shards cannot tell

    folder = corrupt_copy(shard_set, tmp_path / "set", garble)
    with pytest.raises(ShardError, match=r"shard-000001.tar key set_clip_6: bad sample"):
        list(ShardDataset(folder, decode_flac, shuffle_buffer=0))
    ds = ShardDataset(folder, decode_flac, shuffle_buffer=0, skip_bad=True, bad_log=tmp_path / "log")
    ds.set_position(1)
    seen = list(ds)
    assert len(seen) == 23 and "set/clip.6" not in seen  # replaced by a repeat: counts in step
    (record,) = read_bad_log(tmp_path / "log")
    assert (record["shard"], record["key"]) == ("shard-000001.tar", "set_clip_6")


def test_corrupt_tar_header_is_named_and_counted(shard_set, tmp_path):
    def break_header(data):
        with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
            at = tar.getmember("set_clip_7.flac").offset  # its 512-byte header
        data[at + 148 : at + 156] = b"9999999\0"  # a wrong header checksum

    folder = corrupt_copy(shard_set, tmp_path / "set", break_header)
    # tarfile reads a bad header in mid-archive as the end: the index count tells
    with pytest.raises(ShardError, match=r"shard-000001.tar key set_clip_6: truncated or corrupt"):
        list(ShardDataset(folder, ids_of, shuffle_buffer=0))
    ds = ShardDataset(folder, ids_of, shuffle_buffer=0, skip_bad=True, bad_log=tmp_path / "log")
    assert len(list(ds)) == 23
    assert [r["key"] for r in read_bad_log(tmp_path / "log")] == ["set_clip_6"]


def test_cli_shards_a_folder_a_manifest_and_a_dataset(tmp_path, capsys):
    for name in ("dog/a.wav", "dog/b.wav", "rain/c.wav"):
        write_tone(tmp_path / "folder" / name, 0.2)
    assert cli_main(["shard", str(tmp_path / "folder"), "--out", str(tmp_path / "f"),
                     "--manifest_folder", str(tmp_path / "m"), "--no_progress"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["all"]["samples"] == 3 and load_index(tmp_path / "f")["samples"] == 3
    assert cli_main(["shard", str(tmp_path / "folder"), "--splits", "train", "--out",
                     str(tmp_path / "fs"), "--manifest_folder", str(tmp_path / "m"),
                     "--no_progress"]) == 0  # fmt: skip
    assert load_index(tmp_path / "fs" / "train")["samples"] == 3  # 3 files: no valid clip
    capsys.readouterr()
    manifest = tmp_path / "m" / "all.json"
    assert cli_main(["shard", str(manifest), "--out", str(tmp_path / "one"), "--no_progress"]) == 0
    assert load_index(tmp_path / "one")["samples"] == 3

    build_esc50(tmp_path / "esc")
    out = tmp_path / "esc_shards"
    assert cli_main(["shard", "--dataset", "esc50", "--data_folder", str(tmp_path / "esc"),
                     "--manifest_folder", str(tmp_path / "esc_m"), "--option", "test_folds=[1]",
                     "valid_folds=[2]", "--out", str(out), "--shard_size", "8",
                     "--no_progress"]) == 0  # fmt: skip
    counts = {s: load_index(out / s)["samples"] for s in ("train", "valid", "test")}
    assert counts == {"train": 30, "valid": 10, "test": 10}
    with tarfile.open(out / "test" / "shard-000000.tar") as tar:
        meta = json.load(tar.extractfile(tar.getmembers()[1]))
    assert meta["label"] and meta["sample_rate"] == 44100 and meta["fold"] == 1


def test_caption_datasets_keep_their_captions(tmp_path):
    build_audiocaps(tmp_path / "ac", missing=())
    manifests = source_manifests(dataset="audiocaps", data_folder=tmp_path / "ac",
                                 manifest_folder=tmp_path / "m", splits=["valid"])  # fmt: skip
    entries = json.loads(open(manifests["valid"]).read())
    write_shards(entries, tmp_path / "s", progress=False)
    with tarfile.open(tmp_path / "s" / "shard-000000.tar") as tar:
        meta = json.load(tar.extractfile(tar.getmembers()[1]))
    first = next(iter(entries.values()))
    assert meta["captions"] == first["captions"] and len(meta["captions"]) == 5


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["shard", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "tinyclap: error: shard source not found" in capsys.readouterr().err
    assert cli_main(["shard", "--out", str(tmp_path / "o")]) == 1
    assert "give SOURCE" in capsys.readouterr().err
