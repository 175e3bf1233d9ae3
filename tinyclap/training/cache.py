"""Teacher-embedding cache: run the frozen teacher once, not every epoch.

The distillation loss needs only the teacher's audio embeddings, so they are
computed once per deterministic crop of every clip
(:func:`tinyclap.audio.windows.crop_windows`: the clip's window cover, or more evenly
spread crops so that training still sees varied views) and stored on disk
(``embeddings.npy``, memory-mapped at training time, plus ``index.json``
mapping each manifest id to its rows). The folder name is a content key over
the teacher's weights, the manifest (paths, sizes, modification times) and the
preprocessing, so any change to them builds a new cache.

Clips are embedded in batches of ``batch_size`` windows (several clips per
teacher pass). Building is resumable: rows are appended to ``partial.bin`` and a
clip is recorded in ``partial_index.jsonl`` only after its rows are flushed; an
interrupted build restarts after the last recorded clip, and the final files
are renamed into place only when complete.

In a multi-process run (``torch.distributed`` initialised, e.g. under
``torchrun``) every process builds a shard: process ``r`` of ``W`` embeds clips
``r, r + W, r + 2W, ...`` of the manifest into its own partial files
(``partial.<r>.bin``, ``partial_index.<r>.jsonl``; rank 0 keeps the names
above), all wait for each other, and rank 0 merges the shards in manifest
order, so the cache is the one a single process writes (same folder, keys and
row layout). A killed process loses only its unrecorded clips: the same
command (with any number of processes, or one) skips every clip recorded in
any partial index of the folder.

A bounded build (``max_clips``, for ``--debug`` runs: :func:`debug_max_clips`)
caches only the first clips of the manifest in sorted id order. Its content
key is that of those clips alone, so it is a complete cache of a smaller
manifest and never the cache (complete or partial) of the full one: a later
full run builds its own. The stage then trains on :func:`cached_manifest`,
the manifest restricted to the cached clips.
"""

import contextlib
import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.distributed import ddp_barrier, ddp_broadcast, ddp_prevent_block
from tqdm import tqdm

try:  # POSIX advisory locks: concurrent builders of one cache take turns
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import crop_windows
from tinyclap.data.manifests import write_manifest


def manifest_fingerprint(entries):
    """Fingerprint ``{id: wav_path}``: paths, file sizes and modification times.

    Example
    -------
    >>> len(manifest_fingerprint({}))
    64
    """
    digest = hashlib.sha256()
    for key in sorted(entries):
        path = Path(entries[key])
        stat = path.stat() if path.exists() else None
        record = [key, str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1]
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()


def content_key(teacher_fingerprint, entries, preprocessing):
    """Short hash naming a cache: teacher + manifest + preprocessing options.

    Example
    -------
    >>> content_key("t", {}, {"sr": 16000}) == content_key("t", {}, {"sr": 16000})
    True
    """
    payload = json.dumps(
        [teacher_fingerprint, manifest_fingerprint(entries), preprocessing], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def bounded_entries(entries, max_clips=None):
    """The first ``max_clips`` entries in sorted id order (all when ``None``).

    The order depends on the ids only, so the same clips are chosen whatever
    the order of the manifest.

    Example
    -------
    >>> bounded_entries({"c": "c.wav", "a": "a.wav", "b": "b.wav"}, 2)
    {'a': 'a.wav', 'b': 'b.wav'}
    >>> bounded_entries({"c": "c.wav"}, None)
    {'c': 'c.wav'}
    """
    if max_clips is None:
        return entries
    if isinstance(max_clips, bool) or int(max_clips) != max_clips or max_clips < 1:
        raise ValueError(f"max_clips must be a positive integer or None, got {max_clips!r}")
    return {key: entries[key] for key in sorted(entries)[: int(max_clips)]}


def debug_max_clips(run_opts, batch_size):
    """How many clips a SpeechBrain ``--debug`` run reads per epoch, else ``None``.

    In debug mode a Brain runs ``debug_batches`` batches per epoch (default
    2), so ``debug_batches * batch_size`` clips are enough for the teacher
    cache of that split.

    Parameters
    ----------
    run_opts : dict
        SpeechBrain's run options (``debug``, ``debug_batches``).
    batch_size : int
        Batch size of the split's dataloader.

    Returns
    -------
    int or None
        The ``max_clips`` of :meth:`TeacherEmbeddingCache.build`; ``None``
        (no bound) outside debug mode.

    Example
    -------
    >>> debug_max_clips({"debug": True, "debug_batches": 2}, 16)
    32
    >>> debug_max_clips({"debug": False}, 16) is None
    True
    """
    if not run_opts.get("debug"):
        return None
    return int(run_opts.get("debug_batches", 2)) * int(batch_size)


def cached_manifest(manifest_path, cache, out_path):
    """Write the entries of ``manifest_path`` that ``cache`` holds to ``out_path``.

    After a bounded build (``max_clips``) the datasets must read only cached
    clips; this is the manifest to give them. Entry order is kept.

    Parameters
    ----------
    manifest_path : str or Path
        The full manifest (``{id: {"wav", ...}}``).
    cache : TeacherEmbeddingCache
        The cache built from (a subset of) it.
    out_path : str or Path
        Where the restricted manifest goes (parent folders are created).

    Returns
    -------
    str
        ``out_path``.
    """
    with open(manifest_path, encoding="utf-8") as f:
        entries = json.load(f)
    kept = {key: entry for key, entry in entries.items() if key in cache}
    missing = set(cache.index) - set(kept)
    if missing:
        raise ValueError(
            f"cache {cache.folder} holds clips that are not in {manifest_path} "
            f"(e.g. {sorted(missing)[:3]}): it was built from another manifest"
        )
    write_manifest(out_path, kept)
    return str(out_path)


class TeacherEmbeddingCache:
    """Read access to a complete cache folder.

    Parameters
    ----------
    folder : str or Path
        A folder written by :meth:`build`.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        with open(self.folder / "index.json", encoding="utf-8") as f:
            meta = json.load(f)
        self.index = meta["index"]
        self.preprocessing = meta["preprocessing"]
        self.embeddings = np.load(self.folder / "embeddings.npy", mmap_mode="r")

    def __len__(self):
        return len(self.index)

    def __contains__(self, clip_id):
        return clip_id in self.index

    def _entry(self, clip_id):
        try:
            return self.index[clip_id]
        except KeyError:
            raise KeyError(
                f"clip {clip_id!r} is not in the teacher cache {self.folder} "
                f"({len(self.index)} clips; a bounded --debug cache holds only the first "
                "clips: read cached_manifest() instead of the full manifest)"
            ) from None

    def num_windows(self, clip_id):
        """Number of cached windows of ``clip_id``."""
        return self._entry(clip_id)[1]

    def windows(self, wav):
        """The crops of ``wav`` whose embeddings are cached, in cache order."""
        p = self.preprocessing
        return crop_windows(
            wav, p["window"], p.get("crops", 1), p["hop"], p.get("pad_mode", "zeros")
        )

    def random_crop(self, clip_id, wav):
        """One of ``clip_id``'s cached crops of ``wav``, at random, and its embedding.

        Uses Python's ``random`` (seeded by SpeechBrain's ``seed_everything``).
        """
        window = random.randrange(self.num_windows(clip_id))
        return self.windows(wav)[window], self.get(clip_id, window)

    def get(self, clip_id, window=0):
        """Teacher embedding (float32 ``[D]``) of window ``window`` of ``clip_id``."""
        offset, count = self._entry(clip_id)
        if not 0 <= window < count:
            raise IndexError(f"{clip_id} has {count} cached windows, asked for {window}")
        return torch.from_numpy(np.array(self.embeddings[offset + window], dtype=np.float32))

    @classmethod
    def build(
        cls,
        root,
        teacher,
        entries,
        window_samples,
        hop_samples=None,
        crops=1,
        batch_size=32,
        dtype="float16",
        progressbar=True,
        max_clips=None,
    ):
        """Return the cache for ``entries``, building (or resuming) it if needed.

        Parameters
        ----------
        root : str or Path
            Parent folder; the cache lives in ``root/<content key>``.
        teacher : object
            Has ``embed_audio(wavs) -> [B, D]``, ``sample_rate`` and
            ``fingerprint``.
        entries : dict
            ``{id: wav_path}``.
        window_samples, hop_samples : int
            Window length and hop of :func:`tinyclap.audio.windows.split_windows`.
        crops : int
            Crops per clip (at least the window cover), see
            :func:`tinyclap.audio.windows.crop_windows`. The teacher's ``pad_mode``
            decides how clips shorter than a window are padded.
        batch_size : int
            Windows per teacher forward pass (from one or several clips).
        dtype : str
            ``float16`` (half the disk) or ``float32``.
        progressbar : bool
            Show a tqdm bar.
        max_clips : int, optional
            Cache only the first ``max_clips`` clips of ``entries`` in sorted
            id order (:func:`bounded_entries`; for ``--debug`` runs, see
            :func:`debug_max_clips`). The cache is keyed on those clips only,
            so it never stands in for (nor resumes into) the cache of all of
            ``entries``; train on :func:`cached_manifest`. ``None``: all.

        Notes
        -----
        Under ``torch.distributed`` (outside SpeechBrain's ``run_on_main``)
        this is a collective call: every process must make it, with the same
        arguments, and each embeds its shard (:func:`build_shard`).

        Returns
        -------
        TeacherEmbeddingCache
            A complete cache holding every clip of ``entries`` (of the
            bounded subset with ``max_clips``).
        """
        entries = bounded_entries(entries, max_clips)
        hop_samples = hop_samples or window_samples
        preprocessing = {
            "sample_rate": teacher.sample_rate,
            "window": window_samples,
            "hop": hop_samples,
            "crops": int(crops),
            "pad_mode": teacher.pad_mode,
            "dtype": dtype,
        }
        folder = Path(root) / content_key(teacher.fingerprint, entries, preprocessing)
        rank, world = build_shard()
        # Rank 0 decides for everyone whether to build, so all take the same barriers.
        if ddp_broadcast(not (folder / "index.json").exists()):
            folder.mkdir(parents=True, exist_ok=True)
            keys = list(entries)[rank::world]
            with _exclusive_lock(_shard_path(folder, ".lock", rank)):  # other jobs take turns
                if not (folder / "index.json").exists():
                    _build(folder, teacher, entries, keys, batch_size, np.dtype(dtype),
                           preprocessing, progressbar, rank)  # fmt: skip
            ddp_barrier()  # every shard is on disk
            if rank == 0:
                with _exclusive_lock(folder / ".lock"):
                    if not (folder / "index.json").exists():
                        _merge(folder, entries, teacher.embedding_dim, np.dtype(dtype),
                               preprocessing)  # fmt: skip
            ddp_barrier()  # the merged cache is on disk
        cache = cls(folder)
        absent = [key for key in entries if key not in cache.index]
        if absent:  # never hand out an incomplete cache as that of ``entries``
            raise ValueError(
                f"teacher cache {folder} lacks {len(absent)} of its {len(entries)} clips "
                f"(e.g. {absent[:3]}); delete the folder to rebuild it"
            )
        return cache


@contextlib.contextmanager
def _exclusive_lock(path):
    """Hold an exclusive advisory lock on ``path`` (POSIX; a no-op elsewhere)."""
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def build_shard():
    """``(rank, world_size)`` of this process in a teacher-cache build.

    ``(0, 1)`` (one process builds everything) unless ``torch.distributed`` is
    initialised and the caller is not inside SpeechBrain's ``run_on_main``
    (where only the main process runs and barriers would never return).

    Example
    -------
    >>> build_shard()  # not distributed
    (0, 1)
    """
    if ddp_prevent_block():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _shard_path(folder, name, rank):
    """``folder / name`` for rank 0; ``name`` with ``.<rank>`` before its suffix otherwise."""
    if rank == 0:
        return folder / name
    stem, _, suffix = name.rpartition(".")
    return folder / (f"{stem}.{rank}.{suffix}" if stem else f"{name}.{rank}")


def _partial_shards(folder):
    """``[(rows_file, index_file)]`` of every shard with a partial index in ``folder``."""
    shards = []
    for index_file in sorted(folder.glob("partial_index*.jsonl")):
        rows_file = folder / index_file.name.replace("partial_index", "partial").replace(
            ".jsonl", ".bin"
        )
        shards.append((rows_file, index_file))
    return shards


def _build(folder, teacher, entries, keys, batch_size, np_dtype, preprocessing, progress, rank=0):
    """Append the rows of the ``keys`` no shard has recorded yet to this rank's partial files."""
    partial = _shard_path(folder, "partial.bin", rank)
    partial_index = _shard_path(folder, "partial_index.jsonl", rank)
    done = _read_partial_index(partial_index)
    # Rewrite the index without a torn last line, so appends start on a fresh line.
    partial_index.write_text("".join(json.dumps([k, n]) + "\n" for k, n in done), encoding="utf-8")
    dim = teacher.embedding_dim
    rows_done = sum(n for _, n in done)
    with open(partial, "ab") as f:
        f.truncate(rows_done * dim * np_dtype.itemsize)  # drop unrecorded rows
    finished = {k for _, index_file in _partial_shards(folder)
                for k, _ in _read_partial_index(index_file)}  # fmt: skip
    todo = [k for k in keys if k not in finished]
    with (
        open(partial, "ab") as data_file,
        open(partial_index, "a", encoding="utf-8") as index_file,
    ):
        pending = []  # (clip_id, crops) waiting for one batched teacher pass

        def embed_pending():
            windows = torch.cat([crops for _, crops in pending])
            with torch.no_grad():
                embs = torch.cat([teacher.embed_audio(w).cpu() for w in windows.split(batch_size)])
            data_file.write(embs.numpy().astype(np_dtype).tobytes())
            data_file.flush()
            os.fsync(data_file.fileno())
            for clip_id, crops in pending:  # recorded only once their rows are on disk
                index_file.write(json.dumps([clip_id, len(crops)]) + "\n")
            index_file.flush()
            pending.clear()

        desc = "teacher cache" if len(keys) == len(entries) else f"teacher cache (rank {rank})"
        for clip_id in tqdm(todo, desc=desc, unit="clip", disable=not progress):
            wav = load_audio(entries[clip_id], teacher.sample_rate, manifest_id=clip_id)
            pending.append((clip_id, crop_windows(wav, preprocessing["window"],
                            preprocessing["crops"], preprocessing["hop"],
                            preprocessing["pad_mode"])))  # fmt: skip
            if sum(len(crops) for _, crops in pending) >= batch_size:
                embed_pending()
        if pending:
            embed_pending()


def _read_partial_index(path):
    if not path.exists():
        return []
    done = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            clip_id, count = json.loads(line)
        except (ValueError, TypeError):
            break  # a torn last line: everything after it is redone
        done.append((clip_id, int(count)))
    return done


def _merge(folder, entries, dim, np_dtype, preprocessing):
    """Write the final files from every shard's recorded rows, in ``entries`` order.

    The row layout is that of a single-process build; then the partial files go.
    """
    sources = {}  # clip_id -> (rows of its shard, offset, count)
    for rows_file, index_file in _partial_shards(folder):
        done = _read_partial_index(index_file)
        size = rows_file.stat().st_size if rows_file.exists() else 0
        rows = (np.memmap(rows_file, dtype=np_dtype, mode="r").reshape(-1, dim) if size
                else np.zeros((0, dim), np_dtype))  # fmt: skip
        offset = 0
        for clip_id, count in done:
            if offset + count > len(rows):
                raise ValueError(f"{rows_file} holds fewer rows than {index_file} records")
            sources.setdefault(clip_id, (rows, offset, count))
            offset += count
    absent = [key for key in entries if key not in sources]
    if absent:
        raise ValueError(
            f"teacher cache {folder}: no shard holds {len(absent)} of its {len(entries)} "
            f"clips (e.g. {absent[:3]}); run the build again to embed them"
        )
    embeddings = np.empty((sum(sources[k][2] for k in entries), dim), np_dtype)
    index, offset = {}, 0
    for clip_id in entries:
        rows, start, count = sources[clip_id]
        embeddings[offset : offset + count] = rows[start : start + count]
        index[clip_id] = [offset, count]
        offset += count
    np.save(folder / "embeddings.tmp.npy", embeddings)
    os.replace(folder / "embeddings.tmp.npy", folder / "embeddings.npy")
    tmp = folder / "index.tmp.json"
    tmp.write_text(json.dumps({"index": index, "preprocessing": preprocessing}))
    os.replace(tmp, folder / "index.json")
    sources.clear()  # drop the memory maps before removing their files
    for rows_file, index_file in _partial_shards(folder):
        rows_file.unlink(missing_ok=True)
        index_file.unlink()


def build_stage_cache(teacher, entries, hparams, max_clips=None):
    """:meth:`TeacherEmbeddingCache.build` with a stage's hparams (folder, crops, dtype).

    The one place the stages build teacher caches, so that distillation,
    pruning and transfer share the same cache of the same manifest.
    """
    return TeacherEmbeddingCache.build(
        hparams["cache_folder"],
        teacher,
        entries,
        teacher.window_samples,
        crops=hparams.get("cache_crops", 1),
        dtype=hparams["cache_dtype"],
        max_clips=max_clips,
    )
