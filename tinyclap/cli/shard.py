"""``tinyclap shard SOURCE --out DIR``: any dataset the project reads, as webdataset shards.

SOURCE is an audio folder (every audio file under it, found as
:mod:`tinyclap.prepare.audiofolder` does) or a JSON manifest
(``{id: {"wav": path, ...}}``): one shard set in ``DIR``. With ``--dataset NAME
--data_folder PATH``, any benchmark or corpus of
:data:`tinyclap.prepare.PREPARATIONS` (ESC-50, US8K, TUT17, AudioCaps, Clotho,
FSD50K, MACS, AudioFolder, Synth...) is prepared by its own preparation into
manifests first and written as one shard set per split, ``DIR/<split>`` (the
layout ``data_source: shards`` reads); so is a folder SOURCE given ``--splits``
(``train``, ``valid``). The
writer is :func:`tinyclap.data.shards.write_shards` (resumable: run the same
command again after a kill).

Example
-------
tinyclap shard --dataset esc50 --data_folder /data/ESC-50-master --out /data/shards/esc50
tinyclap shard /data/my_audio --out /data/shards/mine --sample_rate 44100 --shard_size 2000
"""

import json
from pathlib import Path

import yaml

from tinyclap.data.pipelines import read_manifest
from tinyclap.data.shards import ShardError, write_shards
from tinyclap.prepare import Preparation


def parse_options(pairs):
    """``["k=v", ...]`` -> ``{k: yaml value}`` (preparation options).

    Example
    -------
    >>> parse_options(["test_folds=[1]", "n_train=3", "label_from_folder=true"])
    {'test_folds': [1], 'n_train': 3, 'label_from_folder': True}
    """
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def source_manifests(source=None, dataset=None, data_folder=None, manifest_folder=None,
                     splits=None, options=None):  # fmt: skip
    """``{split or None: manifest path}`` of what to shard (``None``: a single set).

    Raises
    ------
    ValueError
        Neither or both of SOURCE and ``--dataset``, an unknown split, a missing source.
    """
    if (source is None) == (dataset is None):
        raise ValueError("give SOURCE (an audio folder or a manifest) or --dataset NAME")
    if dataset is not None and data_folder is None:
        raise ValueError("--dataset needs --data_folder (where the dataset lies)")
    if source is not None:
        path = Path(source)
        if path.is_file():
            read_manifest(path)  # a clear error for a bad manifest
            return {None: str(path)}
        if not path.is_dir():
            raise FileNotFoundError(f"shard source not found: {source}")
        if not splits:  # every audio file of the folder, one set in DIR
            return {None: Preparation("audiofolder", path, manifest_folder)()["all"]}
        dataset, data_folder = "audiofolder", path
    preparation = Preparation(dataset, data_folder, manifest_folder, **(options or {}))
    manifests = preparation()
    if splits:
        unknown = [s for s in splits if s not in manifests]
        if unknown:
            raise ValueError(
                f"{dataset}: no split {unknown} (it has {', '.join(sorted(manifests))})"
            )
        return {s: manifests[s] for s in splits}
    if len(manifests) > 1:  # `all` (audiofolder) repeats the other splits
        manifests.pop("all", None)
    return manifests


def shard_source(args):
    """Run ``tinyclap shard``; print and return ``{split: index summary}``."""
    options = parse_options(args.option)
    manifests = source_manifests(
        args.source, args.dataset, args.data_folder, args.manifest_folder, args.splits, options
    )
    summary = {}
    for split, manifest in manifests.items():
        out = Path(args.out) if split is None else Path(args.out) / split
        index = write_shards(
            read_manifest(manifest),
            out,
            shard_size=args.shard_size,
            audio=args.audio,
            sample_rate=args.sample_rate,
            subtype=args.flac_subtype,
            source=f"{args.dataset or args.source} ({manifest})",
            skip_bad_audio=args.skip_bad_audio,
            progress=not args.no_progress,
        )
        summary[split or "all"] = {
            "folder": str(out),
            "samples": index["samples"],
            "shards": len(index["shards"]),
            "hours": round(index["duration_s"] / 3600, 3),
            "bytes_per_clip": round(index["bytes"] / max(1, index["samples"])),
            "bad_clips": index["bad"]["count"],
        }
    print(json.dumps(summary, indent=2))
    return summary


def add_shard_command(sub):
    """Add ``tinyclap shard`` to the ``tinyclap`` subparsers."""
    p = sub.add_parser(
        "shard",
        help="write a dataset as webdataset shards (+ shards.json)",
        description="SOURCE (an audio folder or a JSON manifest) becomes one shard set in "
        "DIR (shard-*.tar + shards.json); --dataset NAME --data_folder PATH (esc50, us8k, "
        "tut17, audiocaps, clotho, fsd50k, macs, audiofolder, synth) one set per split in "
        "DIR/<split>. Resumable: run the same command again after a kill.",
    )
    p.add_argument("source", nargs="?", help="an audio folder or a JSON manifest")
    p.add_argument("--out", required=True, help="the shard folder (one sub-folder per split)")
    p.add_argument("--dataset", help="a dataset name (esc50, us8k, tut17, audiocaps, ...)")
    p.add_argument("--data_folder", help="--dataset: where it lies")
    p.add_argument(
        "--manifest_folder", help="--dataset: where its manifests go (default: data_folder)"
    )
    p.add_argument("--splits", nargs="+", help="splits to shard (default: all prepared)")
    p.add_argument("--option", nargs="+", metavar="KEY=VALUE", help="preparation options")
    p.add_argument("--shard_size", type=int, default=1000, help="samples per shard")
    p.add_argument("--audio", choices=["flac", "original"], default="flac",
                   help="flac: decoded, mono, FLAC; original: the file's bytes")  # fmt: skip
    p.add_argument("--sample_rate", type=int, help="flac: resample once to this rate")
    p.add_argument("--flac_subtype", choices=["PCM_16", "PCM_24"], default="PCM_16")
    p.add_argument("--skip_bad_audio", action="store_true",
                   help="drop unreadable clips (named and counted in shards.json)")  # fmt: skip
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.set_defaults(func=shard_source)
    return p


__all__ = ["ShardError", "add_shard_command", "shard_source", "source_manifests"]
