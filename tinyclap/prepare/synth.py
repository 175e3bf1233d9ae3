"""Prepare the procedural Synth dataset: wav files plus SpeechBrain manifests.

Each split holds the same number of clips per class of
:data:`tinyclap.data.synth_sounds.SYNTH_CLASSES`, rendered deterministically from a seed
(every example owns its random generator, so the files do not depend on the
order or the number of worker processes). Train and valid contain two-class
mixtures with probability ``mixture_prob``; the test split is single-class so
that zero-shot accuracy is well defined. A second call with the same options
returns at once.

Example
-------
python recipes/Synth/synth_prepare.py --data_folder data/synth --save_folder results/synth
"""

import argparse
import json
import logging
import multiprocessing
import os
import sys
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from tinyclap.data.manifests import (
    REPORT_FILENAME,
    add_allow_missing_argument,
    manifests_complete,
    mark_prepared,
    skip_if_prepared,
    write_manifest,
    write_preparation_report,
)
from tinyclap.data.synth_sounds import SYNTH_CLASSES, example_rng, sample_example

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
# Bump when the generator changes so existing preparations are rebuilt.
DATASET_VERSION = 1
# Below this many clips a process pool costs more than it saves.
_MIN_CLIPS_FOR_POOL = 200


def _example_id(split, index):
    """Return the manifest id of example ``index`` of ``split``."""
    return f"synth_{split}_{index:05d}"


def _render_to_file(job):
    """Render one example and write it as 16-bit PCM; return its manifest fields.

    ``job`` is ``(seed, split_index, index, label, mixture_prob, sample_rate,
    duration, wav_path)``; it is a plain tuple so that it pickles to workers.
    """
    seed, split_index, index, label, mixture_prob, sample_rate, duration, path = job
    rng = example_rng(seed, split_index, index)
    wav, labels, caption = sample_example(rng, label, sample_rate, duration, mixture_prob)
    sf.write(path, wav, sample_rate, subtype="PCM_16")
    return {
        "wav": path,
        "duration": len(wav) / sample_rate,
        "label": labels[0],
        "labels": labels,
        "caption": caption,
    }


def _plan_jobs(data_folder, counts, sample_rate, duration, mixture_prob, seed):
    """List ``(split, id, job)`` for every example, classes interleaved."""
    plan = []
    for split_index, split in enumerate(SPLITS):
        split_mixture_prob = 0.0 if split == "test" else mixture_prob
        for index in range(counts[split] * len(SYNTH_CLASSES)):
            label = SYNTH_CLASSES[index % len(SYNTH_CLASSES)]
            example_id = _example_id(split, index)
            path = str(data_folder / split / f"{example_id}.wav")
            job = (
                seed,
                split_index,
                index,
                label,
                split_mixture_prob,
                sample_rate,
                duration,
                path,
            )
            plan.append((split, example_id, job))
    return plan


def _resolve_workers(num_workers, n_jobs):
    """Number of worker processes: 0 means render in this process."""
    if num_workers is None:
        if n_jobs < _MIN_CLIPS_FOR_POOL:
            return 0
        num_workers = min(os.cpu_count() or 1, 8)
    return 0 if num_workers <= 1 else int(num_workers)


def _render_all(jobs, num_workers):
    """Render ``jobs`` in order, in a spawn-based pool when ``num_workers > 1``."""
    progress = {"total": len(jobs), "desc": "Synth clips", "unit": "clip"}
    if num_workers == 0:
        return [_render_to_file(job) for job in tqdm(jobs, **progress)]
    # "spawn" keeps workers safe when the caller has already started torch threads.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers) as pool:
        results = pool.imap(_render_to_file, jobs, chunksize=16)
        return list(tqdm(results, **progress))


def _remove_old_clips(data_folder):
    """Delete clips of an earlier preparation so no stale files remain."""
    for split in SPLITS:
        for old_clip in (data_folder / split).glob(f"synth_{split}_*.wav"):
            old_clip.unlink()


def prepare_synth(
    data_folder,
    save_folder,
    n_train=60,
    n_valid=10,
    n_test=20,
    sample_rate=16000,
    duration=2.0,
    mixture_prob=0.25,
    seed=1234,
    num_workers=None,
    allow_missing=False,
):
    """Generate the Synth dataset and its SpeechBrain JSON manifests.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        Where the clips go, as ``data_folder/{train,valid,test}/{id}.wav``.
    save_folder : str or pathlib.Path
        Where the manifests ``{train,valid,test}.json`` go.
    n_train, n_valid, n_test : int
        Clips per class in each split.
    sample_rate : int
        Sampling rate in Hz.
    duration : float
        Clip length in seconds.
    mixture_prob : float
        Fraction of train and valid clips that mix in a second class (the
        test split is always single-class).
    seed : int
        Dataset seed; the same options always give bit-identical files.
    num_workers : int, optional
        Worker processes; ``None`` picks the CPU count for large sets and
        renders in-process for small ones; 0 or 1 renders in-process.
    allow_missing : bool
        Accepted for the interface shared with the real-data preparations;
        no effect (the clips are rendered here, a deleted one is rendered
        again). ``prepare_report.json`` records ``missing_files: 0`` so that
        :func:`tinyclap.data.manifests.preparation_report` reads this folder too.

    Returns
    -------
    dict
        Split name to manifest path. Each manifest maps ids such as
        ``synth_train_00042`` to ``{"wav", "duration", "label", "labels",
        "caption"}``.

    Example
    -------
    >>> manifests = prepare_synth("data/synth", "results/synth", n_train=2)
    ... # doctest: +SKIP
    >>> sorted(manifests)  # doctest: +SKIP
    ['test', 'train', 'valid']
    """
    data_folder = Path(data_folder).resolve()
    save_folder = Path(save_folder).resolve()
    counts = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}
    options = {
        "dataset_version": DATASET_VERSION,
        "classes": list(SYNTH_CLASSES),
        "data_folder": str(data_folder),
        "counts_per_class": counts,
        "sample_rate": int(sample_rate),
        "duration": float(duration),
        "mixture_prob": float(mixture_prob),
        "seed": int(seed),
    }
    manifest_paths = {split: str(save_folder / f"{split}.json") for split in SPLITS}
    filenames = [f"{split}.json" for split in SPLITS]
    if skip_if_prepared(save_folder, options, filenames) and manifests_complete(manifest_paths):
        logger.info("Synth dataset already prepared in %s, skipping", save_folder)
        if not (save_folder / REPORT_FILENAME).is_file():  # prepared by an older version
            _write_report(save_folder, manifest_paths, allow_missing)
        return manifest_paths

    (save_folder / "prepare_options.json").unlink(missing_ok=True)
    _remove_old_clips(data_folder)
    for split in SPLITS:
        (data_folder / split).mkdir(parents=True, exist_ok=True)
    plan = _plan_jobs(data_folder, counts, sample_rate, duration, mixture_prob, seed)
    jobs = [job for _, _, job in plan]
    entries = _render_all(jobs, _resolve_workers(num_workers, len(jobs)))

    manifests = {split: {} for split in SPLITS}
    for (split, example_id, _), entry in zip(plan, entries):
        manifests[split][example_id] = entry
    for split in SPLITS:
        write_manifest(manifest_paths[split], manifests[split])
    _write_report(save_folder, manifest_paths, allow_missing)
    mark_prepared(save_folder, options)
    logger.info("Synth dataset written: %d clips in %s", len(jobs), data_folder)
    return manifest_paths


def _write_report(save_folder, manifest_paths, allow_missing):
    """``prepare_report.json``: clip counts per split, nothing missing."""
    counts = {}
    for split, path in manifest_paths.items():
        with open(path, encoding="utf-8") as f:
            counts[split] = len(json.load(f))
    write_preparation_report(
        save_folder,
        {
            "dataset": "synth",
            "counts": counts,
            "missing_count": {},
            "missing": {},
            "missing_files": 0,
            "allow_missing": bool(allow_missing),
        },
    )


def _parse_args(argv):
    """Parse the command line of the preparation script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_folder", required=True, help="folder for the wavs")
    parser.add_argument("--save_folder", required=True, help="folder for manifests")
    parser.add_argument("--n_train", type=int, default=60, help="train clips/class")
    parser.add_argument("--n_valid", type=int, default=10, help="valid clips/class")
    parser.add_argument("--n_test", type=int, default=20, help="test clips/class")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds")
    parser.add_argument("--mixture_prob", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--num_workers", type=int, default=None)
    add_allow_missing_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Command-line entry point: prepare the dataset and print the manifests."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parse_args(argv)
    manifests = prepare_synth(**vars(args))
    for split, path in manifests.items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    sys.exit(main())


MIXTURES_SPLIT_INDEX = len(SPLITS)  # a fourth generator stream: clips unlike any split's


def prepare_synth_mixtures(
    data_folder, save_folder=None, n_per_class=10, sample_rate=16000, duration=2.0, seed=1234
):
    """Render an evaluation set of two-class Synth mixtures (``mixtures.json``).

    Every clip mixes a primary class (``n_per_class`` clips per class) with a
    second, uniformly drawn class, as the train and valid splits do for a
    quarter of their clips; the clips come from their own random stream, so
    none equals a clip of the train, valid or test split. Used by the
    multi-label study (:mod:`tinyclap.studies.open_set`).

    Returns
    -------
    str
        The manifest path (entries carry ``label`` and both ``labels``).

    Example
    -------
    >>> prepare_synth_mixtures("data/synth", n_per_class=2)  # doctest: +SKIP
    '.../data/synth/mixtures.json'
    """
    data_folder = Path(data_folder).resolve()
    save_folder = Path(save_folder or data_folder).resolve()
    path = save_folder / "mixtures.json"
    options = {
        "n_per_class": int(n_per_class),
        "sample_rate": int(sample_rate),
        "duration": float(duration),
        "seed": int(seed),
        "version": DATASET_VERSION,
    }
    stamp = save_folder / "mixtures_options.json"
    if path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == options:
        return str(path)
    (data_folder / "mixtures").mkdir(parents=True, exist_ok=True)
    entries = {}
    count = int(n_per_class) * len(SYNTH_CLASSES)
    for index in tqdm(range(count), desc="Synth mixtures", unit="clip"):
        label = SYNTH_CLASSES[index % len(SYNTH_CLASSES)]
        rng = example_rng(seed, MIXTURES_SPLIT_INDEX, index)
        wav, labels, caption = sample_example(rng, label, sample_rate, duration, 1.0)
        clip = data_folder / "mixtures" / f"synth_mixture_{index:05d}.wav"
        sf.write(clip, wav, sample_rate, subtype="PCM_16")
        entries[clip.stem] = {
            "wav": str(clip),
            "duration": len(wav) / sample_rate,
            "label": labels[0],
            "labels": labels,
            "caption": caption,
        }
    write_manifest(path, entries)
    stamp.write_text(json.dumps(options), encoding="utf-8")
    return str(path)
