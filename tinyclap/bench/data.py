"""Training-loader throughput on real formats, and what resampling once at preparation gains.

``tinyclap bench data`` writes a corpus in the formats corpora come in (mixed
rates and encodings: FLAC 22.05 kHz 16-bit, OGG Vorbis 32 kHz, 24-bit WAV
44.1 kHz, 24-bit stereo FLAC 48 kHz), then times epochs of the distillation
training loader (the SpeechBrain pipeline of
:func:`tinyclap.data.pipelines.distill_datasets`: decode, mono, resample to the
teacher's rate, one cached crop and its teacher embedding, padded batches)
with 0, 1, 2... DataLoader workers, two ways: reading the corpus as prepared
(every epoch decodes and resamples), and reading the copies that
``resample_to_teacher_rate: true`` writes once at preparation
(:mod:`tinyclap.data.resampled`). Ways and worker counts are timed in
interleaved rounds, one thread per process; the table gives clips/s and clips/s
per worker (``num_workers 0``: the main process alone), the one-time cost of the
resampling and the disk it takes. The teacher embeddings come from a stand-in
teacher (zeros): only the loader is timed.

Example
-------
tinyclap bench data --clips 48 --seconds 10 --workers 0 1 2 --out results/data_bench
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch

from tinyclap.data.pipelines import distill_datasets
from tinyclap.data.resampled import resample_manifests
from tinyclap.training.cache import TeacherEmbeddingCache

# (extension, sample rate, soundfile subtype, channels): the formats corpora come in
FORMATS = [
    ("flac", 22050, "PCM_16", 1),
    ("ogg", 32000, "VORBIS", 1),
    ("wav", 44100, "PCM_24", 1),
    ("flac", 48000, "PCM_24", 2),
]

NAME = "data"
HELP = "training-loader clips/s per worker on real formats, resampled once or not"


class NullTeacher:
    """A stand-in teacher for the cache the loader reads: zero embeddings, no cost."""

    embedding_dim = 8
    pad_mode = "zeros"
    fingerprint = "null-teacher"

    def __init__(self, sample_rate):
        self.sample_rate = sample_rate

    def embed_audio(self, wavs):
        """``[B, 8]`` zeros."""
        return torch.zeros(wavs.shape[0], self.embedding_dim)


def write_format_corpus(folder, count, seconds, seed=0):
    """``count`` clips cycling through :data:`FORMATS`; returns the manifest path.

    Example
    -------
    >>> path = write_format_corpus(tempfile.mkdtemp(), 4, 0.5)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for i in range(count):
        ext, rate, subtype, channels = FORMATS[i % len(FORMATS)]
        t = np.arange(int(seconds * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
        wav = np.stack([tone + 0.05 * rng.standard_normal(len(t)) for _ in range(channels)], -1)
        path = folder / f"clip{i:04d}_{rate}.{ext}"
        sf.write(str(path), wav.astype(np.float32), rate, subtype=subtype)
        manifest[f"clip{i:04d}"] = {"wav": str(path), "duration": seconds, "label": "x"}
    path = folder / "train.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _folder_bytes(paths):
    return sum(Path(p).stat().st_size for p in paths)


def _wavs(manifest):
    return [e["wav"] for e in json.loads(Path(manifest).read_text()).values()]


def time_epoch(dataset, batch_size, num_workers):
    """Seconds to read one epoch of ``dataset`` through SpeechBrain's training loader."""
    loader = sb.dataio.dataloader.make_dataloader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers
    )
    start = time.perf_counter()
    clips = sum(len(batch.id) for batch in loader)
    seconds = time.perf_counter() - start
    if clips != len(dataset):
        raise RuntimeError(f"the loader read {clips} of {len(dataset)} clips")
    return seconds


def run(args):
    """Write the corpus, resample it once, time the loaders; return the record."""
    torch.set_num_threads(1)
    rate, window = args.sample_rate, int(args.sample_rate * args.window_seconds)
    teacher = NullTeacher(rate)
    with tempfile.TemporaryDirectory(prefix="tinyclap-data-bench-") as tmp:
        tmp = Path(tmp)
        original = write_format_corpus(tmp / "corpus", args.clips, args.seconds)
        start = time.perf_counter()
        resampled = resample_manifests({"train": original}, rate, tmp / "resampled",
                                       tmp / "manifests", progressbar=False)["train"]  # fmt: skip
        resample_seconds = time.perf_counter() - start
        report = json.loads((tmp / "manifests" / "resample_report.json").read_text())
        ways = {"as prepared": original, "resampled once": resampled}
        datasets = {}
        for way, manifest in ways.items():
            entries = {k: v["wav"] for k, v in json.loads(Path(manifest).read_text()).items()}
            cache = TeacherEmbeddingCache.build(tmp / "cache", teacher, entries, window,
                                                progressbar=False)  # fmt: skip
            datasets[way] = distill_datasets({"train": manifest}, {"train": cache}, rate,
                                             window, ["x"])["train"]  # fmt: skip
        seconds = {(way, w): [] for way in ways for w in args.workers}
        for round_ in range(args.rounds):
            for workers in args.workers:
                for way in ways:
                    took = time_epoch(datasets[way], args.batch_size, workers)
                    seconds[way, workers].append(took)
                    print(f"round {round_ + 1}: {way}, {workers} workers: "
                          f"{args.clips / took:.1f} clips/s", file=sys.stderr)  # fmt: skip
        sizes = {way: _folder_bytes(_wavs(m)) for way, m in ways.items()}
    rows = []
    for workers in args.workers:
        row = {"num_workers": workers}
        for way in ways:
            clips_per_s = args.clips / statistics.median(seconds[way, workers])
            row[f"{way}: clips/s"] = round(clips_per_s, 1)
            row[f"{way}: clips/s per worker"] = round(clips_per_s / max(workers, 1), 1)
        ratios = [a / b for a, b in zip(seconds["as prepared", workers],
                                        seconds["resampled once", workers])]  # fmt: skip
        row["gain (x)"] = round(statistics.median(ratios), 2)
        rows.append(row)
    return {
        "corpus": {
            "clips": args.clips,
            "seconds_per_clip": args.seconds,
            "formats": [f"{ext} {r} Hz {st} {ch}ch" for ext, r, st, ch in FORMATS],
            "bytes": sizes["as prepared"],
        },
        "teacher_rate": rate,
        "window_seconds": args.window_seconds,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "resampling_once": {
            "seconds": round(resample_seconds, 2),
            "counts": report["splits"]["train"],
            "bytes_read_by_epochs": sizes["resampled once"],
        },
        "rows": rows,
    }


def table(record, command):
    """Markdown tables of a :func:`run` record, with the command that made it.

    Example
    -------
    >>> rec = {"corpus": {"clips": 4}, "rows": [{"num_workers": 0, "gain (x)": 2.0}]}
    >>> print(table(rec, "tinyclap bench data"))
    Command: `tinyclap bench data`
    <BLANKLINE>
    | num_workers | gain (x) |
    |---|---|
    | 0 | 2.0 |
    <BLANKLINE>
    | setting | value |
    |---|---|
    | corpus | {'clips': 4} |
    """
    header = list(record["rows"][0])
    lines = [f"Command: `{command}`", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(str(row[k]) for k in header) + " |" for row in record["rows"]]
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in record.items() if key != "rows"]
    return "\n".join(lines)


def add_arguments(p):
    """The options of ``tinyclap bench data``."""
    p.add_argument("--clips", type=int, default=48, help="generated clips")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    p.add_argument("--sample_rate", type=int, default=44100, help="the teacher's rate")
    p.add_argument("--window_seconds", type=float, default=5.0, help="the teacher's window")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="num_workers")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
