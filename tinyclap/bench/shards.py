"""Shards versus a folder of files, and the teacher-field pass on 1 versus 2 ranks.

``tinyclap bench shards`` measures what sizing a cluster needs:

1. **Loader throughput**: the same generated clips (5 s, 44.1 kHz, 16-bit WAV)
   read as a folder of files (a map-style dataset over the manifest,
   :func:`tinyclap.audio.io.load_audio`), as FLAC shards and as shards of the
   original WAV bytes (:class:`tinyclap.data.shard_reader.ShardDataset`, audio
   decoded: the last separates the container from the codec), each by a
   DataLoader with 1 and 2 worker processes (batch 8), in interleaved rounds;
   clips/s and clips/s per worker. Both decode every clip to float32 at the
   teacher rate, nothing else.
2. **Teacher-field pass**: :func:`tinyclap.training.shard_cache.add_teacher_fields`
   on a fresh copy of a shard set with the MS-CLAP 2022 audio tower (random
   weights: time does not depend on them), 1 process x 1 thread versus 2
   processes x 1 thread in a ``gloo`` group (as under ``torchrun``), interleaved
   rounds; the time of the pass alone on rank 0 (which returns once the index is
   rewritten), and the CPU time of the busiest rank (how evenly the work splits,
   whatever else the machine runs).
3. **Sizes**: bytes per clip as WAV, as FLAC shards, and the teacher field's
   bytes per window.

Example
-------
tinyclap bench shards --clips 64 --teacher_clips 16 --rounds 3 --out results/scaleout
"""

import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch

from tinyclap.audio.io import load_audio
from tinyclap.bench.cache import free_port
from tinyclap.bench.distill import random_msclap_2022, write_clips
from tinyclap.data.shard_reader import ShardDataset, sample_audio_bytes
from tinyclap.data.shards import decode_audio, load_index, write_shards
from tinyclap.runtime.machine import machine_info
from tinyclap.training.shard_cache import add_teacher_fields, teacher_record

NAME = "shards"
HELP = "shards vs folder loader clips/s; teacher-field pass on 1 vs 2 ranks; bytes per clip"

RATE = 44100


class FolderClips(torch.utils.data.Dataset):
    """The clips of a manifest, read from their files (the folder way)."""

    def __init__(self, entries):
        self.paths = [e["wav"] for e in entries.values()]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return load_audio(self.paths[i], RATE)


def decode_clip(raw):
    """A shard sample's audio at the teacher rate (the shard way)."""
    return torch.from_numpy(decode_audio(sample_audio_bytes(raw)[1], raw["__key__"], RATE)[0])


def time_loader(dataset, workers, batch_size=8):
    """``(seconds, clips)`` of one full pass of a DataLoader over ``dataset``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         collate_fn=list)  # fmt: skip
    start, clips = time.perf_counter(), 0
    for batch in loader:
        clips += len(batch)
    return time.perf_counter() - start, clips


def msclap_audio_teacher(text_folder):
    """The MS-CLAP 2022 teacher with seeded random weights (the same in every process)."""
    from tinyclap.teachers.msclap import MSCLAPTeacher, build_clap

    torch.manual_seed(0)
    clap, cfg = build_clap("msclap-2022", text_folder)
    # the pass embeds audio only: no tokenizer
    return MSCLAPTeacher("msclap-2022", clap, None, cfg, fingerprint="random-0").eval()


def _pass_worker(rank, world, port, text_folder, folder, out):
    """One process of the teacher pass: join the group, run the pass, write its time."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world,
                                             timeout=timedelta(seconds=1800))  # fmt: skip
    teacher = msclap_audio_teacher(text_folder)
    record = teacher_record(teacher, teacher.window_samples)
    if world > 1:
        torch.distributed.barrier()  # start the clock together
    start, cpu_start = time.perf_counter(), time.process_time()
    add_teacher_fields(folder, teacher, record, batch_size=8, progressbar=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    Path(out, f"rank{rank}.json").write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))
    if world > 1:
        torch.distributed.destroy_process_group()


def time_teacher_pass(world, text_folder, source, scratch):
    """``(wall s on rank 0, CPU s of the busiest rank, new index)`` of the teacher pass.

    Over a fresh copy of ``source``, with ``world`` processes.
    """
    folder = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(source, folder / "set")
    out = folder / "times"
    out.mkdir()
    torch.multiprocessing.start_processes(
        _pass_worker, args=(world, free_port(), str(text_folder), str(folder / "set"), str(out)),
        nprocs=world, start_method="spawn",
    )  # fmt: skip
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]
    index = load_index(folder / "set")
    shutil.rmtree(folder)
    return ranks[0]["seconds"], max(r["cpu_seconds"] for r in ranks), index


def run(args):
    """Measure; the record of loader rows, the teacher pass and the sizes."""
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="shards_bench_"))
    try:
        manifest = write_clips(scratch / "clips", args.clips, args.seconds, RATE)
        entries = json.loads(Path(manifest).read_text())
        index = write_shards(entries, scratch / "shards", shard_size=args.shard_size,
                             progress=False)  # fmt: skip
        write_shards(entries, scratch / "shards_wav", shard_size=args.shard_size,
                     audio="original", progress=False)  # fmt: skip
        wav_bytes = sum(Path(e["wav"]).stat().st_size for e in entries.values())
        shards = ShardDataset(scratch / "shards", decode_clip, shuffle_buffer=0)
        wav_shards = ShardDataset(scratch / "shards_wav", decode_clip, shuffle_buffer=0)
        loaders = {"folder (WAV files)": FolderClips(entries), "shards (FLAC)": shards,
                   "shards (original WAV bytes)": wav_shards}  # fmt: skip
        times = {(name, w): [] for name in loaders for w in args.workers}
        for _ in range(args.rounds):  # interleaved rounds: the machine's load hits all alike
            for w in args.workers:
                for name, dataset in loaders.items():
                    seconds, clips = time_loader(dataset, w)
                    assert clips == args.clips, (name, clips)
                    times[(name, w)].append(seconds)
        loader_rows = []
        for (name, w), secs in times.items():
            rate = args.clips / statistics.median(secs)
            row = {"source": name, "workers": w, "seconds": [round(s, 3) for s in secs]}
            row["clips_per_s"] = round(rate, 1)
            row["clips_per_s_per_worker"] = round(rate / max(1, w), 1)
            loader_rows.append(row)
        teacher_entries = dict(list(entries.items())[: args.teacher_clips])
        write_shards(teacher_entries, scratch / "teacher_set", shard_size=2, progress=False)
        text_folder = scratch / "text"
        random_msclap_2022(text_folder.parent / "bert", text_layers=1)  # writes the text model
        text_folder = text_folder.parent / "bert" / "bert-base-uncased-random"
        pass_times, pass_cpu, with_fields = {1: [], 2: []}, {1: [], 2: []}, None
        for _ in range(args.rounds):
            for world in (1, 2):
                source = scratch / "teacher_set"
                seconds, cpu, with_fields = time_teacher_pass(world, text_folder, source, scratch)
                pass_times[world].append(seconds)
                pass_cpu[world].append(cpu)
        base = load_index(scratch / "teacher_set")
        ratios = [b / a for a, b in zip(pass_times[1], pass_times[2])]
        cpu_ratios = [b / a for a, b in zip(pass_cpu[1], pass_cpu[2])]
        record = {
            "machine": machine_info(),
            "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
            "clips": args.clips,
            "clip_seconds": args.seconds,
            "sample_rate": RATE,
            "loader": loader_rows,
            "teacher_pass": {
                "clips": args.teacher_clips,
                "shards": len(base["shards"]),
                "seconds_1_rank": [round(s, 2) for s in pass_times[1]],
                "seconds_2_ranks": [round(s, 2) for s in pass_times[2]],
                "ratio_2_over_1_median": round(statistics.median(ratios), 3),
                "cpu_seconds_busiest_rank_1": [round(s, 2) for s in pass_cpu[1]],
                "cpu_seconds_busiest_rank_2": [round(s, 2) for s in pass_cpu[2]],
                "cpu_ratio_2_over_1_median": round(statistics.median(cpu_ratios), 3),
            },
            "sizes": {
                "wav_bytes_per_clip": round(wav_bytes / args.clips),
                "flac_shard_bytes_per_clip": round(index["bytes"] / args.clips),
                "teacher_field_bytes_per_clip": round(
                    (with_fields["bytes"] - base["bytes"]) / args.teacher_clips
                ),
                "shard_size": args.shard_size,
            },
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record


def table(record, command):
    """The bench's tables under the command that made them."""
    return f"Command: `{command}`\n\n" + markdown(record)


def markdown(record):
    """The bench's tables."""
    lines = ["| source | workers | clips/s | clips/s per worker | seconds per pass (rounds) |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for row in record["loader"]:
        lines.append(f"| {row['source']} | {row['workers']} | {row['clips_per_s']} | "
                     f"{row['clips_per_s_per_worker']} | {row['seconds']} |")  # fmt: skip
    t = record["teacher_pass"]
    lines += ["", "| teacher pass | wall s on rank 0 (rounds) | CPU s of the busiest rank |",
              "|---|---|---|",
              f"| 1 rank x 1 thread | {t['seconds_1_rank']} | "
              f"{t['cpu_seconds_busiest_rank_1']} |",
              f"| 2 ranks x 1 thread | {t['seconds_2_ranks']} | "
              f"{t['cpu_seconds_busiest_rank_2']} |",
              f"| ratio 2 / 1 (median of rounds) | {t['ratio_2_over_1_median']} | "
              f"{t['cpu_ratio_2_over_1_median']} |", "",
              "| size | bytes |", "|---|---:|"]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in record["sizes"].items()]
    return "\n".join(lines)


def add_arguments(p):
    """The options of ``tinyclap bench shards``."""
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--shard_size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--teacher_clips", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
