"""``tinyclap bench shards``: both loaders read the same audio; the tables hold every figure."""

import json

import torch

from tinyclap.bench.distill import write_clips
from tinyclap.bench.shards import FolderClips, decode_clip, markdown, time_loader
from tinyclap.data.shard_reader import ShardDataset
from tinyclap.data.shards import write_shards


def test_folder_and_shards_loaders_decode_the_same_samples(tmp_path):
    entries = json.loads(write_clips(tmp_path / "clips", 4, 0.2).read_text())
    write_shards(entries, tmp_path / "flac", shard_size=2, progress=False)
    write_shards(entries, tmp_path / "wav", shard_size=2, audio="original", progress=False)
    folder = [FolderClips(entries)[i] for i in range(4)]
    for name in ("flac", "wav"):
        shards = list(ShardDataset(tmp_path / name, decode_clip, shuffle_buffer=0))
        # 16-bit WAV -> 16-bit FLAC is lossless: the very same float32 samples
        assert all(torch.equal(a, b) for a, b in zip(folder, shards))
        seconds, clips = time_loader(ShardDataset(tmp_path / name, decode_clip), workers=0)
        assert clips == 4 and seconds > 0


def test_markdown_holds_every_figure():
    record = {
        "loader": [{"source": "folder", "workers": 1, "clips_per_s": 10.0,
                    "clips_per_s_per_worker": 10.0, "seconds": [0.4]}],
        "teacher_pass": {"seconds_1_rank": [2.0], "seconds_2_ranks": [1.1],
                         "ratio_2_over_1_median": 0.55, "cpu_seconds_busiest_rank_1": [2.0],
                         "cpu_seconds_busiest_rank_2": [1.0], "cpu_ratio_2_over_1_median": 0.5},
        "sizes": {"wav_bytes_per_clip": 441044},
    }  # fmt: skip
    text = markdown(record)
    for figure in ("| folder | 1 | 10.0 | 10.0 |", "0.55", "0.5 |", "441044"):
        assert figure in text
