"""Data for a stage: run the hparams' preparation, merge distillation corpora, check splits.

The hparams declare ``prepare`` (a callable returning ``{split: manifest}``,
see :mod:`tinyclap.prepare`) and optionally ``distill_corpora``; nothing here
knows one dataset from another.
"""

from pathlib import Path

import speechbrain as sb

from tinyclap.data.audio_check import check_manifests, clean_manifests, format_report, write_report
from tinyclap.data.manifests import write_manifest
from tinyclap.data.pipelines import read_manifest
from tinyclap.data.resampled import resample_manifests, resample_report
from tinyclap.prepare import Preparation


def corpus_preparation(corpus):
    """The :class:`~tinyclap.prepare.Preparation` of one ``distill_corpora`` entry.

    Example
    -------
    >>> corpus_preparation({"dataset": "clotho", "data_folder": "/data/Clotho"}).save_folder
    '/data/Clotho'
    """
    options = dict(corpus)
    name, data_folder = options.pop("dataset"), options.pop("data_folder")
    return Preparation(name, data_folder, options.pop("manifest_folder", None), **options)


def merge_corpora(corpora, folder):
    """Merge the train and valid manifests of several distillation corpora.

    Parameters
    ----------
    corpora : list of dict
        ``{"dataset": name, "data_folder": path}`` plus optional
        ``manifest_folder`` and preparation options of that dataset.
    folder : str or Path
        Where the merged ``train.json`` and ``valid.json`` go.

    Returns
    -------
    dict
        ``{"train": path, "valid": path}``; ids are ``<corpus>/<id>`` (the
        corpus is the dataset name, numbered when a dataset appears twice);
        clips without a ``label`` get ``label: null``.
    """
    merged = {"train": {}, "valid": {}}
    names = [c["dataset"] for c in corpora]
    for index, corpus in enumerate(corpora):
        name = corpus["dataset"]
        prefix = name if names.count(name) == 1 else f"{name}{index}"
        manifests = corpus_preparation(corpus)()
        for split in merged:
            if split in manifests:
                entries = read_manifest(manifests[split])
                # unlabelled audio: label None (no zero-shot target in validation)
                merged[split].update(
                    {f"{prefix}/{k}": {"label": None, **v} for k, v in entries.items()}
                )
    paths = {}
    for split, entries in merged.items():
        if not entries:
            raise ValueError(f"distill_corpora: no {split} clips in {names}")
        paths[split] = str(Path(folder) / f"{split}.json")
        write_manifest(paths[split], entries)
    return paths


def exclude_classes(manifests, classes, folder, splits=("train", "valid")):
    """Drop every clip of ``splits`` that contains one of ``classes`` (for unseen-class studies).

    A clip is dropped when its ``label`` or any of its ``labels`` (a Synth
    mixture's second class) is excluded, so neither its audio nor its caption
    mentions the class. The test split is kept whole: evaluating on it shows
    what the model does with classes it never heard.

    Parameters
    ----------
    manifests : dict
        ``{split: manifest path}``.
    classes : list of str
        Class names to exclude (each must occur in some manifest).
    folder : str or Path
        Where the filtered manifests go (``<split>.json``).

    Returns
    -------
    dict
        ``manifests`` with the filtered splits' paths replaced.

    Example
    -------
    >>> import tempfile
    >>> from tinyclap.data.manifests import write_manifest
    >>> d = Path(tempfile.mkdtemp())
    >>> write_manifest(d / "train.json", {"a": {"wav": "a.wav", "label": "rain"},
    ...     "b": {"wav": "b.wav", "label": "wind", "labels": ["wind", "rain"]},
    ...     "c": {"wav": "c.wav", "label": "wind"}})
    >>> out = exclude_classes({"train": str(d / "train.json")}, ["rain"], d / "kept")
    >>> sorted(read_manifest(out["train"]))
    ['c']
    """
    excluded = {str(c) for c in classes}
    seen, result = set(), dict(manifests)
    for split in splits:
        if split not in manifests:
            continue
        entries = read_manifest(manifests[split])
        kept = {}
        for key, entry in entries.items():
            labels = set(entry.get("labels") or []) | {entry.get("label")}
            seen |= labels & excluded
            if not labels & excluded:
                kept[key] = entry
        if not kept:
            raise ValueError(f"exclude_classes: no {split} clip left in {manifests[split]}")
        result[split] = str(Path(folder) / f"{split}.json")
        write_manifest(result[split], kept)
    unknown = sorted(excluded - seen)
    if unknown:
        raise ValueError(
            f"exclude_classes: {unknown} occur in no {'/'.join(splits)} clip of "
            f"{', '.join(str(manifests[s]) for s in splits if s in manifests)}"
        )
    return result


def _prepare(hparams, needed):
    manifests = {split: str(path) for split, path in hparams["prepare"]().items()}
    if hparams.get("distill_corpora"):
        folder = Path(hparams["output_folder"]) / "distill_manifests"
        manifests.update(merge_corpora(hparams["distill_corpora"], folder))
    if hparams.get("exclude_classes"):
        folder = Path(hparams["output_folder"]) / "manifests_without_excluded"
        manifests = exclude_classes(manifests, hparams["exclude_classes"], folder)
    if hparams.get("resample_to_teacher_rate"):
        manifests = resample_once(manifests, hparams)
    missing = [split for split in needed if split not in manifests]
    if missing:
        raise ValueError(
            f"the prepared data ({hparams.get('data_folder', '?')}) has no {'/'.join(missing)} "
            f"split with these options (it has {', '.join(sorted(manifests))}); this stage "
            f"needs {', '.join(needed)}: choose folds with --test_folds / --valid_folds, or "
            "give distillation audio with --distill_corpora"
        )
    return manifests


def teacher_rate(hparams):
    """The sample rate the stage reads audio at: the teacher's, else ``sample_rate``.

    Example
    -------
    >>> teacher_rate({"sample_rate": 16000})
    16000
    """
    teacher = hparams.get("teacher_model")
    return int(teacher.sample_rate if teacher is not None else hparams["sample_rate"])


def resampled_folder(hparams):
    """Where ``resample_to_teacher_rate`` puts the copies.

    ``resampled_folder`` when set, else ``resampled_<rate>Hz`` beside the
    manifests (the preparation's ``save_folder``) or, without one, in the
    output folder.

    Example
    -------
    >>> resampled_folder({"sample_rate": 16000, "output_folder": "runs/x"}).as_posix()
    'runs/x/resampled_16000Hz'
    """
    if hparams.get("resampled_folder"):
        return Path(hparams["resampled_folder"])
    base = getattr(hparams.get("prepare"), "save_folder", None) or hparams["output_folder"]
    return Path(base) / f"resampled_{teacher_rate(hparams)}Hz"


def resample_once(manifests, hparams):
    """``resample_to_teacher_rate``: every split read from copies at the teacher's rate.

    Each clip is written once (:mod:`tinyclap.data.resampled`: later runs reuse
    the copies) and the stage reads the manifests of
    ``<output_folder>/resampled_manifests``; counts in ``results.json``
    (``data.resampled``).
    """
    return resample_manifests(
        manifests,
        teacher_rate(hparams),
        resampled_folder(hparams),
        Path(hparams["output_folder"]) / "resampled_manifests",
        subtype=hparams.get("resampled_subtype", "FLOAT"),
    )


def prepare_data(hparams, needed):
    """Prepare the stage's data; return ``{split: manifest_path}``.

    Runs ``hparams["prepare"]`` (on the main process only in a multi-process
    run, the others then read the finished manifests), merges
    ``distill_corpora`` (their train and valid manifests replace the
    dataset's), with ``resample_to_teacher_rate`` reads every split from copies
    at the teacher's rate (:func:`resample_once`), checks that the ``needed``
    splits exist, and with
    ``skip_bad_audio`` drops unreadable clips (counted and logged).
    """
    if sb.utils.distributed.is_distributed_initialized():
        sb.utils.distributed.run_on_main(_prepare, args=[hparams, needed])
    manifests = _prepare(hparams, needed)
    if hparams.get("skip_bad_audio"):
        manifests = clean_manifests(manifests, hparams["output_folder"])
    return manifests


def data_summary(hparams):
    """What the stage's preparations dropped, for ``results.json``.

    ``{"preparation": report, "corpora": {dataset: report}}`` with the reports
    of :func:`tinyclap.data.manifests.preparation_report` (missing files,
    counted only where ``allow_missing`` let a preparation drop them); a
    preparation without a report (e.g. a user's own function) gives ``None``.
    """
    summary = {"preparation": _report(hparams.get("prepare"))}
    corpora = {}
    for corpus in hparams.get("distill_corpora") or []:
        corpora[corpus["dataset"]] = _report(corpus_preparation(corpus))
    if corpora:
        summary["corpora"] = corpora
    if hparams.get("resample_to_teacher_rate"):
        summary["resampled"] = resample_report(
            Path(hparams["output_folder"]) / "resampled_manifests"
        )
    return summary


def _report(prepare):
    if not hasattr(prepare, "report"):
        return None
    try:
        return prepare.report()
    except FileNotFoundError:  # prepared by an older version: no report
        return None


def check_audio(hparams, manifests):
    """Decode every clip of ``manifests``; write and print the report of bad ones."""
    report = check_manifests(manifests)
    path = write_report(report, hparams["output_folder"])
    print(format_report(report))
    print(f"report: {path}")
    return {
        "stage": "check_audio",
        "checked": report["checked"],
        "bad_count": report["bad_count"],
        "report": str(path),
        "bad": [bad for result in report["splits"].values() for bad in result["bad"]],
    }
