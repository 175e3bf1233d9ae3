"""WebDataset shards of a manifest: the writer, the shard index, and the index checks.

``tinyclap shard`` turns a manifest (``{id: {"wav": path, ...}}``, from any
preparation of :mod:`tinyclap.prepare`) into tar shards in the ``webdataset``
format, so that a cluster streams big sequential files instead of opening
millions of small ones. One sample is two tar members with the same key:

- ``<key>.flac`` (the clip, decoded, mixed to mono and re-encoded as FLAC,
  optionally resampled once) or ``<key>.<ext>`` (the original file's bytes);
- ``<key>.json``: ``id`` (the manifest id), ``duration``, ``sample_rate``,
  ``source`` (the original path) and the manifest's other fields (``label``,
  ``labels``, ``caption``, ``captions``...).

The key is the id with every character other than letters, digits, ``_`` and
``-`` replaced by ``_`` (webdataset splits a member name at its first dot), made
unique with a ``_dup<n>`` suffix. Shard ``i`` holds samples ``i * shard_size``
to ``(i + 1) * shard_size - 1`` of the manifest, in manifest order, so shard
boundaries depend on nothing else: a killed run continues after its last
complete shard (each is written to ``.tmp``, renamed, then recorded in
``progress.jsonl``) and writes the same shards. Tars are byte-reproducible
(member times are 0).

``DIR/shards.json`` indexes the set: sample count, audio seconds, bytes and
SHA-256 of every shard, the totals, and the bad clips (when
``skip_bad_audio`` dropped them: named and counted, never silently).
:func:`load_index` reads it and :func:`check_shards` refuses a set whose
shards are missing (or, with ``verify=True``, altered) before training starts.

Example
-------
>>> import tempfile, numpy as np, soundfile as sf
>>> d = Path(tempfile.mkdtemp())
>>> sf.write(d / "a.wav", np.zeros(800, "float32"), 8000)
>>> index = write_shards({"a": {"wav": str(d / "a.wav"), "label": "rain"}}, d / "out",
...                      progress=False)
>>> index["samples"], [s["name"] for s in index["shards"]]
(1, ['shard-000000.tar'])
>>> check_shards(d / "out")["samples"]
1
"""

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import webdataset as wds
from tqdm import tqdm

from tinyclap.audio.io import AudioLoadError, describe_source, resample
from tinyclap.runtime.audio import decode_mono

FORMAT = "tinyclap-shards"
VERSION = 1
INDEX = "shards.json"
PROGRESS = "progress.jsonl"
AUDIO_FIELDS = ("flac", "wav", "ogg", "oga", "opus", "mp3", "aif", "aiff", "au", "w64")


class ShardError(ValueError):
    """A shard set that cannot be used: missing shards, a bad index, corrupt samples."""


def shard_name(index):
    """The file name of shard ``index``.

    Example
    -------
    >>> shard_name(12)
    'shard-000012.tar'
    """
    return f"shard-{index:06d}.tar"


def sample_keys(ids):
    """``{id: key}``: tar-safe, unique sample keys for manifest ids.

    Example
    -------
    >>> sample_keys(["dog/a.wav", "dog_a_wav", "b"])
    {'dog/a.wav': 'dog_a_wav', 'dog_a_wav': 'dog_a_wav_dup1', 'b': 'b'}
    """
    keys, used = {}, set()
    for clip_id in ids:
        key = re.sub(r"[^A-Za-z0-9_-]", "_", str(clip_id)) or "_"
        base, n = key, 0
        while key in used:
            n += 1
            key = f"{base}_dup{n}"
        used.add(key)
        keys[clip_id] = key
    return keys


def sha256_file(path, chunk_size=1 << 20):
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def decode_audio(data, source, sample_rate=None):
    """``(mono float32 [T] numpy, rate)`` of encoded audio bytes, checked like a file.

    Parameters
    ----------
    data : bytes
        Any format libsndfile reads.
    source : str
        How to name the audio in errors (e.g. ``shard-000003.tar key clip_7``).
    sample_rate : int, optional
        Resample to this rate (``None``: keep the stored rate).

    Raises
    ------
    AudioLoadError
        Unreadable, empty, or NaN/Inf samples; the message names ``source``.

    Example
    -------
    >>> decode_audio(b"not audio", "shard-000000.tar key a")
    Traceback (most recent call last):
    ...
    tinyclap.audio.io.AudioLoadError: cannot read audio of shard-000000.tar key a: ...
    """
    wav, rate = decode_mono(io.BytesIO(data), f"audio of {source}", AudioLoadError)
    if sample_rate is not None and int(sample_rate) != rate:
        import torch

        wav = resample(torch.from_numpy(wav), rate, int(sample_rate)).numpy()
        rate = int(sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32), rate


def _encode(path, clip_id, audio, sample_rate, subtype):
    """``(field, bytes, duration, rate)`` of one clip for its sample."""
    source = describe_source(path, clip_id)
    if audio == "original":
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix not in AUDIO_FIELDS:
            raise AudioLoadError(f"{source}: extension .{suffix} is not one of {AUDIO_FIELDS}")
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise AudioLoadError(f"cannot read audio file {source}: {err}") from err
        wav, rate = decode_audio(data, source)  # checks it decodes, gives the duration
        return suffix, data, len(wav) / rate, rate
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise AudioLoadError(f"cannot read audio file {source}: {err}") from err
    wav, rate = decode_audio(data, source, sample_rate)
    out = io.BytesIO()
    sf.write(out, np.clip(wav, -1.0, 1.0), rate, format="FLAC", subtype=subtype)
    return "flac", out.getvalue(), len(wav) / rate, rate


def _plan(entries, keys, options):
    """Fingerprint of what is sharded: ids, keys, files (size, mtime) and options."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for clip_id, entry in entries.items():
        path = Path(entry["wav"])
        stat = path.stat() if path.exists() else None
        record = [clip_id, keys[clip_id], str(path), stat.st_size if stat else -1,
                  stat.st_mtime_ns if stat else -1]  # fmt: skip
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()


def _read_progress(out, plan):
    """The shard records a previous run of the same plan completed (files still on disk)."""
    path = out / PROGRESS
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if header.get("plan") != plan:
        raise ShardError(
            f"{out} holds shards of another source or other options ({path}); "
            "give a new --out folder or delete it"
        )
    done = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except ValueError:
            break  # a torn last line: that shard is written again
        shard = out / record["name"]
        if shard.exists() and shard.stat().st_size == record["bytes"]:
            done[record["index"]] = record
    return done


def write_shards(
    entries,
    out,
    shard_size=1000,
    audio="flac",
    sample_rate=None,
    subtype="PCM_16",
    source=None,
    skip_bad_audio=False,
    progress=True,
):
    """Write ``entries`` as webdataset shards in ``out``, with ``out/shards.json``.

    Parameters
    ----------
    entries : dict
        A manifest ``{id: {"wav": path, ...}}`` (order kept).
    out : str or Path
        The shard folder (created).
    shard_size : int
        Samples per shard (the last one may hold fewer).
    audio : str
        ``flac`` (decoded, mono, re-encoded) or ``original`` (the file's bytes).
    sample_rate : int, optional
        ``flac`` only: resample once to this rate (``None``: the file's rate).
    subtype : str
        ``flac`` only: ``PCM_16`` or ``PCM_24``.
    source : str, optional
        What was sharded (recorded in the index).
    skip_bad_audio : bool
        Drop unreadable clips (named and counted in the index) instead of failing.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict
        The index written to ``out/shards.json``.

    Raises
    ------
    ShardError
        Bad options, or ``out`` holds shards of another plan.
    AudioLoadError
        An unreadable clip (without ``skip_bad_audio``), naming file and id.
    """
    if audio not in ("flac", "original"):
        raise ShardError(f"--audio must be flac or original, got {audio!r}")
    if isinstance(shard_size, bool) or int(shard_size) != shard_size or shard_size < 1:
        raise ShardError(f"--shard_size must be a positive integer, got {shard_size!r}")
    if audio == "original" and sample_rate is not None:
        raise ShardError("--sample_rate needs --audio flac (original bytes keep their rate)")
    if subtype not in ("PCM_16", "PCM_24"):
        raise ShardError(f"--flac_subtype must be PCM_16 or PCM_24, got {subtype!r}")
    if not entries:
        raise ShardError(f"nothing to shard into {out}: the manifest is empty")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = sample_keys(entries)
    options = {"shard_size": int(shard_size), "audio": audio, "sample_rate": sample_rate,
               "subtype": subtype, "skip_bad_audio": bool(skip_bad_audio)}  # fmt: skip
    plan = _plan(entries, keys, options)
    done = _read_progress(out, plan)
    progress_file = out / PROGRESS
    ids = list(entries)
    chunks = [ids[i : i + int(shard_size)] for i in range(0, len(ids), int(shard_size))]
    resumed = sum(len(chunks[i]) for i in done)
    bar = tqdm(total=len(ids), initial=resumed, desc="shards", unit="clip", disable=not progress)
    with open(progress_file, "w", encoding="utf-8") as f:  # rewritten: no torn line
        f.write(json.dumps({"plan": plan, "options": options}) + "\n")
        f.writelines(json.dumps(done[i]) + "\n" for i in sorted(done))
    for index, chunk in enumerate(chunks):
        if index in done:
            continue
        done[index] = _write_shard(out, index, chunk, entries, keys, options, bar)
        with open(progress_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(done[index]) + "\n")
            f.flush()
            os.fsync(f.fileno())
    bar.close()
    records = [done[i] for i in range(len(chunks))]
    bad = [b for r in records for b in r.pop("bad")]
    if bad and not skip_bad_audio:  # pragma: no cover (raised while writing)
        raise AudioLoadError(bad[0]["error"])
    index = {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "options": options,
        "plan": plan,
        "samples": sum(r["samples"] for r in records),
        "duration_s": round(sum(r["duration_s"] for r in records), 3),
        "bytes": sum(r["bytes"] for r in records),
        "shards": records,
        "bad": {"count": len(bad), "clips": bad},
        "teacher": None,
    }
    write_index(out, index)
    return index


def _write_shard(out, index, chunk, entries, keys, options, bar):
    """Write one shard atomically; return its record (with the bad clips it dropped)."""
    name = shard_name(index)
    tmp = out / f"{name}.tmp"
    duration, count, bad = 0.0, 0, []
    try:
        with open(tmp, "wb") as stream:
            writer = wds.TarWriter(stream, mtime=0.0)
            try:
                for clip_id in chunk:
                    sample, seconds, problem = _sample(entries[clip_id], clip_id, keys, options)
                    bar.update(1)
                    if problem is not None:
                        bad.append(problem)
                        continue
                    writer.write(sample)
                    duration += seconds
                    count += 1
            finally:
                writer.close()
    except BaseException:  # a bad clip (strict) or a kill: no half shard is left
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out / name)
    return {
        "index": index,
        "name": name,
        "samples": count,
        "duration_s": round(duration, 3),
        "bytes": (out / name).stat().st_size,
        "sha256": sha256_file(out / name),
        "bad": bad,
    }


def _sample(entry, clip_id, keys, options):
    """``(webdataset sample, seconds, None)``, or ``(None, 0, bad record)`` with ``skip_bad_audio``."""
    try:
        field, data, seconds, rate = _encode(
            entry["wav"], clip_id, options["audio"], options["sample_rate"], options["subtype"]
        )
    except AudioLoadError as err:
        if not options["skip_bad_audio"]:
            raise
        return None, 0.0, {"id": clip_id, "source": str(entry["wav"]), "error": str(err)}
    meta = {k: v for k, v in entry.items() if k not in ("wav", "duration")}
    meta = {"id": clip_id, "duration": round(seconds, 6), "sample_rate": rate,
            "source": str(entry["wav"]), **meta}  # fmt: skip
    return {"__key__": keys[clip_id], field: data, "json": meta}, seconds, None


def write_index(folder, index):
    """Write ``folder/shards.json`` atomically."""
    path = Path(folder) / INDEX
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load_index(folder):
    """The index of the shard set in ``folder`` (``folder/shards.json``).

    Raises
    ------
    ShardError
        No index, or not a tinyclap shard index.
    """
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"no shard index {path}: write the shards with `tinyclap shard`") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ShardError(f"shard index {path} is not valid JSON: {err}") from err
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ShardError(f"{path} is not a tinyclap shard index (format {FORMAT!r})")
    if index.get("version") != VERSION:
        raise ShardError(f"{path}: index version {index.get('version')}, this tinyclap reads {VERSION}")
    return index


def check_shards(folder, verify=False):
    """The index of ``folder`` once every shard it lists is on disk (and intact).

    Parameters
    ----------
    folder : str or Path
        A shard folder.
    verify : bool
        Also compare every shard's SHA-256 with the index (reads all bytes).

    Raises
    ------
    ShardError
        Shards missing, of the wrong size, or (``verify``) altered, or shard files
        the index does not list (they would never be read): all named.
    """
    folder = Path(folder)
    index = load_index(folder)
    problems = []
    for record in index["shards"]:
        path = folder / record["name"]
        if not path.exists():
            problems.append(f"{record['name']} (missing)")
        elif path.stat().st_size != record["bytes"]:
            problems.append(f"{record['name']} ({path.stat().st_size} bytes, index: {record['bytes']})")
        elif verify and sha256_file(path) != record["sha256"]:
            problems.append(f"{record['name']} (SHA-256 differs from the index)")
    listed = {record["name"] for record in index["shards"]}
    unlisted = sorted(p.name for p in folder.glob("shard-*.tar") if p.name not in listed)
    problems += [f"{name} (on disk, not in the index)" for name in unlisted]
    if problems:
        raise ShardError(
            f"shard set {folder}: {len(problems)} of the {len(index['shards'])} shards in "
            f"{INDEX} cannot be used: {', '.join(problems[:5])}"
            + (", ..." if len(problems) > 5 else "")
        )
    return index
