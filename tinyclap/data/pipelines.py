"""SpeechBrain data pipelines for the teacher, distillation and evaluation stages.

All stages read manifests of the form ``{id: {"wav": path, "label": str, ...}}``
(``caption`` for caption data). Audio always goes through
:func:`tinyclap.audio.io.load_audio`, so a missing or corrupt file fails with an
error naming the file and the manifest id.

Training items are one window of ``window_samples``: a random crop for the
teacher, and for distillation a random one of the clip's deterministic windows
whose teacher embedding is in the cache (teacher and student must see the
same samples). Evaluation items are whole clips; the Brains cut them into
windows and average the window embeddings.
"""

import json

import speechbrain as sb
import torch

from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import random_crop


def read_manifest(path):
    """Load a JSON manifest ``{id: {"wav": path, ...}}``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not UTF-8 JSON of that shape; the message names the file and,
        for a bad entry, its id.

    Example
    -------
    >>> import tempfile
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    >>> _ = f.write('{"a": {"label": "rain"}}'); f.close()
    >>> read_manifest(f.name)
    Traceback (most recent call last):
    ...
    ValueError: manifest ...json: entry 'a' has no 'wav' field
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"manifest {path} is not valid UTF-8 JSON: {err}") from err
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"manifest {path}: expected an object {{id: entry}}, got {kind}")
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise ValueError(f"manifest {path}: entry {key!r} is not an object")
        if not isinstance(entry.get("wav"), str):
            raise ValueError(f"manifest {path}: entry {key!r} has no 'wav' field")
    return data


def manifest_classes(*paths):
    """Sorted distinct ``label`` values over one or more manifests.

    Example
    -------
    >>> import tempfile, json, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    >>> json.dump({"a": {"wav": "x", "label": "rain"}, "b": {"wav": "y", "label": "dog"}}, f)
    >>> f.close()
    >>> manifest_classes(f.name)
    ['dog', 'rain']
    >>> os.unlink(f.name)
    """
    labels = set()
    for path in paths:
        labels.update(e["label"] for e in read_manifest(path).values() if "label" in e)
    return sorted(labels)


def _dataset(manifest_path, data_folder=None):
    replacements = {"data_root": str(data_folder)} if data_folder else None
    return sb.dataio.dataset.DynamicItemDataset.from_json(manifest_path, replacements=replacements)


def _with_outputs(ds, pipeline, keys, label_pipeline=None):
    """Add ``pipeline`` (and ``label_index`` when given) and set the output keys."""
    sb.dataio.dataset.add_dynamic_item([ds], pipeline)
    if label_pipeline is not None:
        sb.dataio.dataset.add_dynamic_item([ds], label_pipeline)
        keys = [*keys, "label_index"]
    sb.dataio.dataset.set_output_keys([ds], keys)
    return ds


def label_index_pipeline(classes, manifest_path, unknown_ok=False):
    """A SpeechBrain pipeline ``(id, label) -> label_index`` (position in ``classes``).

    A label outside ``classes`` (or ``None``, unlabelled audio) gives -1 when
    ``unknown_ok`` (such clips are not scored), else a ``ValueError`` naming
    the manifest and the entry.

    Example
    -------
    >>> index = label_index_pipeline(["dog", "rain"], "test.json")
    >>> index("c1", "rain")
    1
    >>> index("c2", "siren")
    Traceback (most recent call last):
    ...
    ValueError: test.json: entry 'c2' has label 'siren', not one of the 2 classes (dog, rain)
    """
    class_index = {c: i for i, c in enumerate(classes)}
    shown = ", ".join(list(classes)[:8]) + (", ..." if len(classes) > 8 else "")

    @sb.utils.data_pipeline.takes("id", "label")
    @sb.utils.data_pipeline.provides("label_index")
    def pipeline(clip_id, label):
        if label in class_index:
            return class_index[label]
        if unknown_ok:
            return -1
        raise ValueError(
            f"{manifest_path}: entry {clip_id!r} has label {label!r}, not one of the "
            f"{len(class_index)} classes ({shown})"
        )

    return pipeline


def count_unscored(manifest_path, classes):
    """Clips of a manifest that :func:`label_index_pipeline` leaves unscored (``-1``).

    With ``unknown_ok=True`` (distillation validation), a clip whose ``label``
    is missing, ``None`` (unlabelled audio) or not one of ``classes`` gets
    ``label_index`` -1 and no zero-shot score. This counts them, so that the
    stage can log the number and write it into ``results.json``.

    Parameters
    ----------
    manifest_path : str or pathlib.Path
        A JSON manifest (read with :func:`read_manifest`).
    classes : list of str
        The zero-shot classes.

    Returns
    -------
    int
        Number of entries without a label in ``classes``.

    Example
    -------
    >>> import tempfile, json, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    >>> json.dump({"a": {"wav": "x", "label": "rain"}, "b": {"wav": "y", "label": None},
    ...            "c": {"wav": "z", "label": "siren"}, "d": {"wav": "w"}}, f)
    >>> f.close()
    >>> count_unscored(f.name, ["dog", "rain"])
    3
    >>> os.unlink(f.name)
    """
    known = set(classes)
    return sum(entry.get("label") not in known for entry in read_manifest(manifest_path).values())


def teacher_datasets(manifests, sample_rate, window_samples, classes):
    """Datasets for contrastive teacher training.

    Parameters
    ----------
    manifests : dict
        ``{"train": path, "valid": path}``.
    sample_rate, window_samples : int
        Audio rate and training crop length.
    classes : list of str
        Class names; ``label_index`` is the position of ``label`` in it.

    Returns
    -------
    dict of DynamicItemDataset
        ``train`` yields ``sig`` (a random crop) and ``caption``; ``valid``
        yields the whole clip ``sig``, ``caption`` and ``label_index``.
    """
    datasets = {}
    for split, path in manifests.items():
        train = split == "train"
        ds = _dataset(path)

        @sb.utils.data_pipeline.takes("id", "wav")
        @sb.utils.data_pipeline.provides("sig")
        def audio_pipeline(clip_id, wav, train=train):
            sig = load_audio(wav, sample_rate, manifest_id=clip_id)
            return random_crop(sig, window_samples) if train else sig

        labels = None if train else label_index_pipeline(classes, path)
        datasets[split] = _with_outputs(ds, audio_pipeline, ["id", "sig", "caption"], labels)
    return datasets


def distill_datasets(manifests, caches, sample_rate, window_samples, classes):
    """Datasets for distillation from cached teacher embeddings.

    Parameters
    ----------
    manifests : dict
        ``{"train": path, "valid": path}``.
    caches : dict
        ``{split: TeacherEmbeddingCache}`` built with the same windows.
    sample_rate, window_samples : int
        Audio rate and window length (the teacher's).
    classes : list of str
        Class names for the zero-shot validation accuracy.

    Returns
    -------
    dict of DynamicItemDataset
        ``train`` yields ``sig`` (one of the clip's cached crops, at random)
        and its ``teacher_emb``; ``valid`` yields the whole clip ``sig``, the
        crop-averaged ``teacher_emb`` and ``label_index``.
    """
    datasets = {}
    for split, path in manifests.items():
        cache, train = caches[split], split == "train"
        ds = _dataset(path)

        @sb.utils.data_pipeline.takes("id", "wav")
        @sb.utils.data_pipeline.provides("sig", "teacher_emb")
        def pipeline(clip_id, wav, cache=cache, train=train):
            sig = load_audio(wav, sample_rate, manifest_id=clip_id)
            if train:
                yield from cache.random_crop(clip_id, sig)
            else:
                yield sig
                count = cache.num_windows(clip_id)
                embs = torch.stack([cache.get(clip_id, w) for w in range(count)])
                yield torch.nn.functional.normalize(embs.mean(0), dim=-1)

        # distillation audio may be unlabelled or outside the zero-shot classes
        labels = None if train else label_index_pipeline(classes, path, unknown_ok=True)
        datasets[split] = _with_outputs(ds, pipeline, ["id", "sig", "teacher_emb"], labels)
    return datasets


def eval_dataset(manifest_path, sample_rate, classes):
    """Whole clips with their ``label_index`` for zero-shot evaluation."""

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def pipeline(clip_id, wav):
        return load_audio(wav, sample_rate, manifest_id=clip_id)

    labels = label_index_pipeline(classes, manifest_path)
    return _with_outputs(_dataset(manifest_path), pipeline, ["id", "sig"], labels)


def unpad(padded):
    """List of 1-D tensors from a SpeechBrain ``PaddedData`` (relative lengths)."""
    data, lengths = padded
    sizes = torch.round(lengths * data.shape[1]).long().tolist()
    return [row[:n] for row, n in zip(data, sizes)]


def transfer_datasets(manifests, caches, sample_rate, window_samples, classes):
    """Datasets for embedding-as-target transfer (supervised, with teacher targets).

    Parameters
    ----------
    manifests : dict
        ``{"train": path, "test": path}`` (one fold's labelled training clips
        and its held-out clips).
    caches : dict
        ``{clip_id: TeacherEmbeddingCache}`` holding every training clip.
    sample_rate, window_samples : int
        Audio rate and window length (the teacher's).
    classes : list of str
        Class names; ``label_index`` is the position of ``label`` in it.

    Returns
    -------
    dict of DynamicItemDataset
        ``train`` yields ``sig`` (a random one of the clip's cached windows),
        its ``teacher_emb`` and ``label_index``; ``test`` yields the whole clip
        ``sig`` and ``label_index``.
    """

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig", "teacher_emb")
    def train_pipeline(clip_id, wav):
        sig = load_audio(wav, sample_rate, manifest_id=clip_id)
        yield from caches[clip_id].random_crop(clip_id, sig)

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def test_pipeline(clip_id, wav):
        return load_audio(wav, sample_rate, manifest_id=clip_id)

    return {
        "train": _with_outputs(
            _dataset(manifests["train"]),
            train_pipeline,
            ["id", "sig", "teacher_emb"],
            label_index_pipeline(classes, manifests["train"]),
        ),
        "test": _with_outputs(
            _dataset(manifests["test"]),
            test_pipeline,
            ["id", "sig"],
            label_index_pipeline(classes, manifests["test"]),
        ),
    }
