"""Teacher embeddings inside the shards: the teacher cache as a ``teacher.npy`` field per sample.

The shard counterpart of :mod:`tinyclap.training.cache`: the frozen teacher
embeds the same deterministic crops (:func:`tinyclap.audio.windows.crop_windows`,
one row per window, so long clips keep one embedding per crop), and each
sample of each shard gets a ``teacher.npy`` member (``[windows, D]``, float16
or float32) next to its audio, its ``json`` gaining ``"teacher":
<fingerprint>``. Distillation then reads audio and targets together from
sequential tars: no random-access cache on shared storage.

The pass is collective under ``torch.distributed`` (e.g. ``torchrun``, any
number of nodes): rank ``r`` of ``W`` rewrites shards ``r, r + W, ...`` (each
into ``.tmp``, renamed over the shard, then recorded in its own
``teacher_pass.<r>.jsonl``), all wait, and rank 0 writes the new SHA-256 and
sizes into ``shards.json`` with the ``teacher`` record (source, weights
fingerprint, preprocessing). A killed rank loses only the shard it was
writing: the same command (any number of ranks) skips every recorded shard,
and a shard renamed but not yet recorded is recognised by its members.

Refusals: a set whose fields came from other teacher weights (or other crops)
is refused by the pass (unless ``replace=True``) and by the training stream
(:func:`check_teacher`, and per sample: a sample whose ``json`` names another
fingerprint, e.g. a shard copied from another set, fails naming shard and key).
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.distributed import ddp_barrier, ddp_broadcast
from tqdm import tqdm

from tinyclap.audio.windows import crop_windows
from tinyclap.data.shard_reader import sample_audio_bytes, sample_json
from tinyclap.data.shards import ShardError, decode_audio, load_index, sha256_file, write_index
from tinyclap.training.cache import build_shard

PASS_RECORDS = "teacher_pass*.jsonl"


def teacher_record(teacher, window_samples, hop_samples=None, crops=1, dtype="float16"):
    """What the fields of a set must match: the teacher's weights and the crops.

    Example
    -------
    >>> from types import SimpleNamespace as T
    >>> t = T(name="mini", fingerprint="ab", sample_rate=16000, pad_mode="zeros", embedding_dim=8)
    >>> teacher_record(t, 16000, crops=2)["preprocessing"]["hop"]
    16000
    """
    return {
        "source": str(getattr(teacher, "source", None) or teacher.name),
        "fingerprint": teacher.fingerprint,
        "embedding_dim": int(teacher.embedding_dim),
        "preprocessing": {
            "sample_rate": int(teacher.sample_rate),
            "window": int(window_samples),
            "hop": int(hop_samples or window_samples),
            "crops": int(crops),
            "pad_mode": teacher.pad_mode,
            "dtype": str(dtype),
        },
    }


def check_teacher(folder, index, record):
    """Refuse a set whose teacher fields are absent or from other weights / crops.

    Raises
    ------
    ShardError
        Naming the set, both fingerprints or the differing preprocessing.
    """
    have = index.get("teacher")
    if have is None:
        raise ShardError(f"shard set {folder} has no teacher fields: run the teacher pass first")
    if have.get("fingerprint") != record["fingerprint"]:
        raise ShardError(
            f"shard set {folder} carries teacher fields of other teacher weights "
            f"({have.get('source')}, fingerprint {str(have.get('fingerprint'))[:12]}; this "
            f"teacher: {record['source']}, {record['fingerprint'][:12]}): refused; run the "
            "teacher pass again with replace (hparams: replace_teacher_fields: true)"
        )
    if have.get("preprocessing") != record["preprocessing"]:
        raise ShardError(
            f"shard set {folder} carries teacher fields of other crops "
            f"({have.get('preprocessing')}, wanted {record['preprocessing']}): refused; run "
            "the teacher pass again with replace (hparams: replace_teacher_fields: true)"
        )


def add_teacher_fields(folder, teacher, record, batch_size=32, progressbar=True, replace=False):
    """Give every sample of the set in ``folder`` its teacher field; return the new index.

    Parameters
    ----------
    folder : str or Path
        A shard set (``tinyclap shard``).
    teacher : object
        ``embed_audio(wavs) -> [B, D]``, ``sample_rate``, ``fingerprint``.
    record : dict
        :func:`teacher_record` of ``teacher`` and the crops.
    batch_size : int
        Windows per teacher forward pass.
    progressbar : bool
        A tqdm bar per rank.
    replace : bool
        Overwrite the fields of other teacher weights instead of refusing.

    Notes
    -----
    Collective under ``torch.distributed`` (outside ``run_on_main``): every
    process calls it with the same arguments.
    """
    folder = Path(folder)
    index = load_index(folder)
    if index.get("teacher") == record:
        return index
    if index.get("teacher") is not None and not replace:
        check_teacher(folder, index, record)  # raises: other weights or crops
    rank, world = build_shard()
    # rank 0's view of the recorded shards, so that every rank splits the same list
    done = set(ddp_broadcast(sorted(_recorded(folder, record, replace))))
    shards = [s for s in index["shards"] if s["name"] not in done][rank::world]
    desc = "teacher fields" if world == 1 else f"teacher fields (rank {rank})"
    bar = tqdm(shards, desc=desc, unit="shard", disable=not progressbar)
    for shard in bar:
        entry = _rewrite(folder, shard, teacher, record, batch_size)
        with open(folder / _records_name(rank), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
    ddp_barrier()  # every rank's shards are rewritten and recorded
    if rank == 0:
        done = _recorded(folder, record, replace)
        missing = [s["name"] for s in index["shards"] if s["name"] not in done]
        if missing:
            raise ShardError(f"{folder}: the teacher pass recorded no field for {missing[:3]}")
        for shard in index["shards"]:
            shard.update(done[shard["name"]])
        index["bytes"] = sum(s["bytes"] for s in index["shards"])
        index["teacher"] = record
        write_index(folder, index)
        for path in folder.glob(PASS_RECORDS):
            path.unlink()
    ddp_barrier()  # the new index is on disk
    return load_index(folder)


def _records_name(rank):
    return "teacher_pass.jsonl" if rank == 0 else f"teacher_pass.{rank}.jsonl"


def _recorded(folder, record, replace):
    """``{shard name: {"sha256", "bytes"}}`` recorded by any rank for this teacher."""
    done = {}
    for path in sorted(folder.glob(PASS_RECORDS)):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                break  # a torn last line
            if entry["fingerprint"] != record["fingerprint"]:
                if not replace:
                    raise ShardError(
                        f"{path} records an interrupted teacher pass of other weights "
                        f"({entry['fingerprint'][:12]}): refused; delete the teacher_pass "
                        "files or run with replace"
                    )
                continue
            shard = folder / entry["name"]
            if shard.exists() and shard.stat().st_size == entry["bytes"]:
                done[entry["name"]] = {"sha256": entry["sha256"], "bytes": entry["bytes"]}
    return done


def _rewrite(folder, shard, teacher, record, batch_size):
    """Rewrite one shard with its teacher fields (atomically); return its pass record."""
    import webdataset as wds
    from webdataset.tariterators import group_by_keys, tar_file_expander

    path = folder / shard["name"]
    prep = record["preprocessing"]
    with open(path, "rb") as stream:
        samples = list(group_by_keys(tar_file_expander([{"url": str(path), "stream": stream}])))
    if len(samples) != shard["samples"]:
        raise ShardError(f"{path}: read {len(samples)} samples, the index lists {shard['samples']}")
    if all(_has_field(s, record) for s in samples):  # renamed before a kill, not recorded
        return _entry(path, record)
    crops = []
    for sample in samples:
        source = f"{path} key {sample['__key__']}"
        _, data = sample_audio_bytes(sample)
        wav, _ = decode_audio(data, source, prep["sample_rate"])
        crops.append(crop_windows(torch.from_numpy(wav), prep["window"], prep["crops"],
                                  prep["hop"], prep["pad_mode"]))  # fmt: skip
    windows = torch.cat(crops)
    with torch.no_grad():
        embs = torch.cat([teacher.embed_audio(w).cpu() for w in windows.split(batch_size)])
    embs = embs.numpy().astype(prep["dtype"])
    tmp = path.with_name(path.name + ".teacher.tmp")
    with open(tmp, "wb") as out:
        writer = wds.TarWriter(out, mtime=0.0)
        offset = 0
        for sample, sample_crops in zip(samples, crops):
            rows = embs[offset : offset + len(sample_crops)]
            offset += len(sample_crops)
            meta = {**sample_json(sample), "teacher": record["fingerprint"]}
            buffer = io.BytesIO()
            np.save(buffer, rows)
            fields = {k: v for k, v in sample.items() if not k.startswith("__") and k != "json"}
            fields.pop("teacher.npy", None)
            writer.write({"__key__": sample["__key__"], **fields, "json": meta,
                          "teacher.npy": buffer.getvalue()})  # fmt: skip
        writer.close()
    os.replace(tmp, path)
    return _entry(path, record)


def _has_field(sample, record):
    return "teacher.npy" in sample and sample_json(sample).get("teacher") == record["fingerprint"]


def _entry(path, record):
    return {"name": path.name, "fingerprint": record["fingerprint"],
            "sha256": sha256_file(path), "bytes": path.stat().st_size}  # fmt: skip


def sample_teacher(raw, fingerprint, source):
    """``[windows, D]`` float32 teacher rows of a raw sample, refusing other weights.

    Raises
    ------
    ShardError
        No field, or a field of another fingerprint; names ``source``.
    """
    meta = sample_json(raw)
    if "teacher.npy" not in raw:
        raise ShardError(f"{source} has no teacher field: run the teacher pass")
    if meta.get("teacher") != fingerprint:
        raise ShardError(
            f"{source}: teacher field of other weights ({str(meta.get('teacher'))[:12]}, "
            f"this teacher {fingerprint[:12]}): refused"
        )
    return np.load(io.BytesIO(raw["teacher.npy"])).astype(np.float32)
