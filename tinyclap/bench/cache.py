"""Teacher-cache build time: one process versus several processes building shards.

``tinyclap bench cache`` builds the teacher-embedding cache of the same generated
clips (5 s at 44.1 kHz, the MS-CLAP 2022 teacher with random weights: time does not
depend on the weights) with 1 process x 1 thread, then with ``--processes`` processes
x 1 thread joined in a ``gloo`` process group (the sharded build of
:meth:`tinyclap.training.cache.TeacherEmbeddingCache.build`, as under ``torchrun``), in
interleaved rounds, each build into a fresh folder. The time is that of the build
alone (teacher construction and process start excluded), taken on rank 0, which
returns only once the merged cache is on disk. The caches of both ways are compared
(same keys, embeddings within fp16 rounding). A probe (the same one-thread matmul loop
alone, then in ``--processes`` processes at once, before and after the builds) records
how much parallelism the machine gave at the time.

:func:`build_in_processes` is the building block: it is also what the tests use to run
a sharded build in several processes.

Example
-------
tinyclap bench cache --clips 32 --rounds 2 --out results/cache_bench
"""

import functools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

from tinyclap.bench.distill import random_msclap_2022, write_clips
from tinyclap.bench.output import quantity_table
from tinyclap.training.cache import TeacherEmbeddingCache

NAME = "cache"
HELP = "teacher-cache build time: 1 process vs N processes building shards"


def free_port():
    """A free TCP port on localhost, for a process group's rendezvous.

    Example
    -------
    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, make_teacher, root, entries, build_kwargs, out, threads,
            timeout_s):  # fmt: skip
    """One process of :func:`build_in_processes`: join the group, build, write a record."""
    torch.set_num_threads(threads)
    distributed = world_size > 1
    if distributed:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))  # fmt: skip
        torch.distributed.init_process_group(
            "gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
        )
    teacher = make_teacher()
    windows = [0]
    embed = teacher.embed_audio

    def counting_embed(wavs):
        windows[0] += int(wavs.shape[0])
        return embed(wavs)

    teacher.embed_audio = counting_embed  # count the windows this process embeds
    if distributed:
        torch.distributed.barrier()  # start the clock together
    start, cpu_start = time.perf_counter(), time.process_time()
    cache = TeacherEmbeddingCache.build(
        root, teacher, entries, teacher.window_samples, progressbar=False, **build_kwargs
    )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    record = {"rank": rank, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "windows_embedded": windows[0], "folder": str(cache.folder),
              "clips": len(cache)}  # fmt: skip
    Path(out, f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
    if distributed:
        torch.distributed.destroy_process_group()


def build_in_processes(world_size, make_teacher, root, entries, threads=1, timeout_s=1800,
                       start_method="spawn", **build_kwargs):  # fmt: skip
    """Build a teacher cache with ``world_size`` processes (``gloo``), as ``torchrun`` would.

    Each process runs ``make_teacher()`` (a picklable callable: processes are
    spawned), then :meth:`TeacherEmbeddingCache.build` on its shard. With
    ``world_size=1`` the single process builds without a process group (the
    plain build).

    Parameters
    ----------
    world_size : int
        Number of processes.
    make_teacher : callable
        Returns the teacher (``embed_audio``, ``sample_rate``, ``window_samples``, ...).
    root : str or Path
        Parent folder of the cache.
    entries : dict
        ``{id: wav_path}``.
    threads : int
        Torch threads per process.
    timeout_s : float
        Process-group timeout (how long a process waits at a barrier).
    start_method : str
        ``spawn`` (fresh interpreters, as ``torchrun``) or ``fork`` (copies of this
        process: starts in a fraction of the time, for tests).
    **build_kwargs
        Passed to :meth:`TeacherEmbeddingCache.build` (``batch_size``, ``dtype``, ...).

    Returns
    -------
    list of dict
        Per rank: ``seconds`` (build time), ``cpu_seconds`` (CPU time of the
        process during the build), ``windows_embedded``, ``folder``, ``clips``.

    Raises
    ------
    torch.multiprocessing.ProcessRaisedException, ProcessExitedException
        If a process fails or dies (the others are then terminated, as by ``torchrun``).

    Example
    -------
    >>> make = functools.partial(load_teacher, "teacher.ckpt")  # doctest: +SKIP
    >>> build_in_processes(2, make, "cache", entries)  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory(prefix="tinyclap-shards-") as out:
        args = (world_size, free_port(), make_teacher, str(root), dict(entries), build_kwargs,
                out, threads, timeout_s)  # fmt: skip
        torch.multiprocessing.start_processes(
            _worker, args=args, nprocs=world_size, join=True, start_method=start_method
        )
        return [
            json.loads(Path(out, f"rank{rank}.json").read_text(encoding="utf-8"))
            for rank in range(world_size)
        ]


def compare_caches(a, b):
    """Largest absolute difference between two caches' embeddings; raises if keys differ.

    Example
    -------
    >>> compare_caches(cache, other)  # doctest: +SKIP
    0.0
    """
    a, b = TeacherEmbeddingCache(a), TeacherEmbeddingCache(b)
    if a.index.keys() != b.index.keys():
        raise ValueError(f"{a.folder} and {b.folder} hold different clips")
    rows = [
        np.abs(
            np.asarray(a.embeddings[oa : oa + n], np.float32)
            - np.asarray(b.embeddings[b.index[k][0] : b.index[k][0] + n], np.float32)
        ).max()
        for k, (oa, n) in a.index.items()
    ]
    return float(max(rows, default=0.0))


def _matmul_seconds(_):
    """Seconds of a fixed one-thread matmul loop (the work of :func:`parallel_probe`)."""
    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    start = time.perf_counter()
    for _ in range(600):
        a @ a
    return time.perf_counter() - start


def parallel_probe(processes):
    """Seconds of the same one-thread loop in 1 process, then in ``processes`` at once.

    On a machine with idle cores both are equal; their ratio says how much of the
    sharded build's speed-up the machine could give at the time.

    Example
    -------
    >>> one, many = parallel_probe(2)  # doctest: +SKIP
    """
    context = torch.multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        one = pool.map(_matmul_seconds, [0])[0]
    with context.Pool(processes) as pool:
        many = max(pool.map(_matmul_seconds, range(processes)))
    return one, many


def run(args):
    """Time the builds in interleaved rounds; return the record."""
    with tempfile.TemporaryDirectory(prefix="tinyclap-cache-bench-") as tmp:
        tmp = Path(tmp)
        manifest = write_clips(tmp / "clips", args.clips, args.clip_seconds)
        entries = {k: v["wav"] for k, v in json.loads(manifest.read_text()).items()}
        make_teacher = functools.partial(_random_teacher, str(tmp / "teacher"))
        probes = [parallel_probe(args.processes)]
        times = {1: [], args.processes: []}
        cpu = {1: [], args.processes: []}  # CPU seconds of the busiest process
        folders = {}
        for round_ in range(args.rounds):
            for world in (1, args.processes):
                root = tmp / f"cache-{world}-{round_}"
                records = build_in_processes(world, make_teacher, root, entries, threads=1,
                                             batch_size=args.batch_size)  # fmt: skip
                times[world].append(records[0]["seconds"])
                cpu[world].append(max(r["cpu_seconds"] for r in records))
                folders[world] = records[0]["folder"]
                windows = [r["windows_embedded"] for r in records]
                print(f"round {round_ + 1}: {world} process(es) x 1 thread: "
                      f"{records[0]['seconds']:.2f} s, CPU s per rank "
                      f"{[round(r['cpu_seconds'], 2) for r in records]}, windows per rank "
                      f"{windows}", file=sys.stderr)  # fmt: skip
        probes.append(parallel_probe(args.processes))
        max_diff = compare_caches(folders[1], folders[args.processes])
    one = statistics.median(times[1])
    many = statistics.median(times[args.processes])
    ratios = [m / o for o, m in zip(times[1], times[args.processes])]
    return {
        "teacher": "msclap-2022 architecture (random weights)",
        "clips": args.clips,
        "clip_seconds": args.clip_seconds,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "processes": args.processes,
        "seconds_1x1": [round(t, 2) for t in times[1]],
        f"seconds_{args.processes}x1": [round(t, 2) for t in times[args.processes]],
        "median_seconds_1x1": round(one, 2),
        f"median_seconds_{args.processes}x1": round(many, 2),
        "time_ratio_per_round": [round(r, 3) for r in ratios],
        "time_ratio_median": round(statistics.median(ratios), 3),
        # CPU time of the busiest process: what the wall time is on idle cores
        "cpu_seconds_1x1": [round(t, 2) for t in cpu[1]],
        f"cpu_seconds_busiest_of_{args.processes}": [round(t, 2) for t in cpu[args.processes]],
        "cpu_ratio_median": round(
            statistics.median(m / o for o, m in zip(cpu[1], cpu[args.processes])), 3
        ),
        # the same one-thread loop alone, then in N processes at once (before, after):
        # equal on idle cores; a ratio of N means the machine ran them one core's worth
        "probe_seconds_1_process": [round(one, 2) for one, _ in probes],
        f"probe_seconds_{args.processes}_at_once": [round(many, 2) for _, many in probes],
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "same_keys": True,  # compare_caches raised otherwise
        "max_abs_embedding_difference": max_diff,
        "cpu_count": os.cpu_count(),
    }


def _random_teacher(folder):
    """The random-weight MS-CLAP 2022 teacher (one BERT layer: the cache uses audio only)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as own:  # each process writes its text model
        return random_msclap_2022(own, text_layers=1)


def table(record, command):
    """The record as a ``quantity | value`` markdown table."""
    return quantity_table(record, command)


def add_arguments(p):
    """The options of ``tinyclap bench cache``."""
    p.add_argument("--clips", type=int, default=32, help="generated clips")
    p.add_argument("--clip_seconds", type=float, default=5.0)
    p.add_argument("--processes", type=int, default=2, help="processes of the sharded build")
    p.add_argument("--batch_size", type=int, default=8, help="windows per teacher pass")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
