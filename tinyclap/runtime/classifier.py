"""Zero-shot classification with an exported folder, without torch.

:class:`RuntimeClassifier` reads what ``tinyclap export`` writes:

* ``export.json``: sample rate and log-mel settings (``frontend``), window
  (``clip_seconds``), ``pad_mode``, ``prompt_template`` and the SHA-256 of the
  weights (the label tables are checked against it);
* ``label_embeddings.safetensors``: the teacher's prompt embeddings of the
  bundled label sets (read here with a few lines of numpy: the safetensors
  layout is a length, a JSON header and raw little-endian arrays);
* ``onnx/student.onnx``: the student (log-mels in), run by
  :class:`tinyclap.runtime.engine.OnnxStudentEngine`; or its static int8
  twin ``onnx/student.int8.onnx`` where the export recorded that one as the
  folder's default (``precision``, :mod:`tinyclap.runtime.graphs`).

Labels are a bundled (or adapted) set's name (``esc50``, ``us8k``,
``adapted``...) or free-form words. Prompts found in the tables take the
teacher's embeddings; the others are embedded by the folder's text student
(``onnx/text_encoder.onnx`` + ``text_tokenizer.model``, see
:mod:`tinyclap.runtime.text`; needs the ``sentencepiece`` package), exactly as
the full install does. A folder without that graph (or without sentencepiece)
raises :class:`MissingTextEncoderError` naming the prompts and the reason.
Free-form labels that name a few-shot prototype class of an adapted set take
the prototype, and no labels at all take the adapted set (the folder's
default): the rule of :mod:`tinyclap.runtime.labels`.

``open_set.json`` (``tinyclap calibrate``), checked against its SHA-256 in
``export.json``, gives the "none of these" and multi-label decisions of
:mod:`tinyclap.runtime.decisions` (``open_set=True`` / ``multi_label=True`` of
:meth:`RuntimeClassifier.classify_files`).
"""

import json
import re
import struct
import time
from pathlib import Path

import numpy as np

from tinyclap.runtime.audio import audio_files, load_audio
from tinyclap.runtime.decisions import (
    multi_label_decisions,
    open_set_decisions,
    read_folder_calibration,
)
from tinyclap.runtime.engine import OnnxStudentEngine
from tinyclap.runtime.frontend import check_frontend_settings
from tinyclap.runtime.graphs import student_graph
from tinyclap.runtime.integrity import require_recorded
from tinyclap.runtime.labels import default_label_set, plan_labels
from tinyclap.runtime.text import DEFAULT_TEMPLATE, OnnxTextEncoder, sha256_of

TABLES_FORMAT = "tinyclap-label-embeddings"
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64,
                      "BF16": None, "I64": np.int64, "I32": np.int32}  # fmt: skip


class MissingTextEncoderError(ValueError):
    """Labels whose prompts are not in the folder's tables, and no text encoder to embed them."""


def read_safetensors(path):
    """``({name: array}, metadata)`` of a safetensors file, with numpy only.

    Example
    -------
    >>> read_safetensors("exported/demo/label_embeddings.safetensors")  # doctest: +SKIP
    ({'esc50': array(...), ...}, {'format': 'tinyclap-label-embeddings', ...})
    """
    raw = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(raw)[8 + size :]
    tensors = {}
    for name, entry in header.items():
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, not supported")
        start, end = entry["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(entry["shape"]).astype(np.float32)
    return tensors, metadata


def folder_config(folder):
    """The settings the runtime needs, from ``export.json`` (and ``hyperparams.yaml``'s pad_mode).

    Older exports record no ``pad_mode`` in ``export.json``: its top-level
    ``pad_mode:`` line in ``hyperparams.yaml`` is read as plain text (no YAML
    parser, nothing built).

    Raises
    ------
    FileNotFoundError
        The folder has no ``export.json``.
    """
    folder = Path(folder)
    path = folder / "export.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; pass a folder written by `tinyclap export`")
    info = json.loads(path.read_text(encoding="utf-8"))
    for key in ("frontend", "clip_seconds"):
        if key not in info:
            raise ValueError(f"{path}: no {key!r} entry; re-export the folder (tinyclap export)")
    check_frontend_settings(info["frontend"], info["clip_seconds"], where=str(path))
    pad_mode = info.get("pad_mode")
    yaml_path = folder / "hyperparams.yaml"
    if pad_mode is None and yaml_path.is_file():
        found = re.search(r'^pad_mode:\s*"?(\w+)"?', yaml_path.read_text(encoding="utf-8"), re.M)
        pad_mode = found.group(1) if found else None
    return {
        "frontend": dict(info["frontend"]),
        "sample_rate": int(info["frontend"].get("sample_rate", 44100)),
        "clip_seconds": float(info["clip_seconds"]),
        "pad_mode": pad_mode or "zeros",
        "prompt_template": info.get("prompt_template") or DEFAULT_TEMPLATE,
        "weights": info.get("weights") or {},
        "info": info,
    }


class RuntimeClassifier:
    """An exported folder's ONNX student and label tables, with numpy and onnxruntime only.

    Parameters
    ----------
    engine : OnnxStudentEngine
        The audio path.
    tables : dict
        ``{set name: {"labels": [...], "prompts": [...], "embeddings": array [C, K]}}``.
    template : str
        The prompt template of the tables.
    text_encoder : callable, optional
        ``embed_text(list of prompts) -> array [N, K]`` for prompts outside the tables
        (:class:`tinyclap.runtime.text.OnnxTextEncoder` for a folder with a text student).
    calibration : dict, optional
        The folder's ``open_set.json`` (open-set and multi-label thresholds).
    no_text_encoder : str
        Why there is no text encoder (named in :class:`MissingTextEncoderError`).
    default_labels : str, optional
        The set used when no labels are given (an adapted folder's ``adapted`` set).

    Example
    -------
    >>> clf = RuntimeClassifier.from_folder("exported/demo")  # doctest: +SKIP
    >>> clf.classify_files(["dog.wav"], "dog barking,a purring cat")[0]["top"][0]  # doctest: +SKIP
    {'label': 'dog barking', 'score': 0.41}
    """

    def __init__(self, engine, tables, template=DEFAULT_TEMPLATE, text_encoder=None,
                 calibration=None, no_text_encoder="", default_labels=None):  # fmt: skip
        self.engine = engine
        self.precision = "fp32"  # the student graph's (from_folder sets the one it loaded)
        self.default_labels = default_labels if default_labels in tables else None
        self.tables = tables
        self.template = template
        self.calibration = calibration
        self._text_encoder = text_encoder
        self._no_text_encoder = no_text_encoder
        self._by_prompt = {}
        for table in tables.values():
            for prompt, emb in zip(table["prompts"], table["embeddings"]):
                self._by_prompt[prompt] = emb
        self._encoded = {}  # prompts embedded by the text encoder, cached

    @classmethod
    def from_folder(cls, folder, threads=1, batch_size=1, trust_unverified=False,
                    precision="auto"):  # fmt: skip
        """Load an exported folder (``tinyclap export`` with its ``onnx/student.onnx``).

        Parameters
        ----------
        folder : str or Path
            The exported folder.
        threads : int
            onnxruntime intra-op threads.
        batch_size : int
            Windows per onnxruntime call (1, the default, is the fastest on one
            thread; see :class:`~tinyclap.runtime.engine.OnnxStudentEngine`).
        trust_unverified : bool
            Load files that ``export.json`` records no SHA-256 for (an earlier
            export, or hashes removed): only for folders you trust
            (:mod:`tinyclap.runtime.integrity`).
        precision : str
            The student graph: ``"auto"`` (the export's recorded choice,
            ``export.json["runtime_graph"]``: static int8 where it kept zero-shot
            accuracy, else fp32), ``"fp32"`` or ``"int8"``
            (:func:`tinyclap.runtime.graphs.student_graph`).

        Raises
        ------
        FileNotFoundError
            ``export.json``, ``label_embeddings.safetensors`` or the student graph missing.
        ValueError
            The label tables, the text graph, its tokenizer or ``open_set.json`` do not
            match the SHA-256 recorded in ``export.json``, or have none recorded
            (:class:`~tinyclap.runtime.integrity.UnverifiedFileError`) without the opt-in.
        """
        folder = Path(folder)
        config = folder_config(folder)
        precision, graph = student_graph(config["info"], precision)
        student = folder / graph
        if not student.is_file():
            how = "--onnx" if precision == "fp32" else "--onnx --quantize --eval_manifest M"
            raise FileNotFoundError(
                f"{student}: not found; write it with `tinyclap export ... {how}`"
            )
        recorded_graph = (config["info"].get("onnx_graphs") or {}).get(graph)
        recorded = config["weights"].get("label_embeddings", {}).get("sha256")
        unrecorded = [name for name, digest in ((graph, recorded_graph),
                      ("label_embeddings.safetensors", recorded)) if not digest]  # fmt: skip
        require_recorded(unrecorded, str(folder), trust_unverified)
        if recorded_graph and sha256_of(student) != recorded_graph:
            raise ValueError(
                f"{student}: SHA-256 does not match export.json; the graph was modified or "
                "corrupted after export: export it again or re-download the folder"
            )
        window = int(round(config["clip_seconds"] * config["sample_rate"]))
        engine = OnnxStudentEngine(student, config["frontend"], window, config["pad_mode"],
                                   threads=threads, batch_size=batch_size)  # fmt: skip
        tables_path = folder / "label_embeddings.safetensors"
        if not tables_path.is_file():
            raise FileNotFoundError(f"{tables_path}: not found (label tables of tinyclap export)")
        if recorded and sha256_of(tables_path) != recorded:
            raise ValueError(
                f"{tables_path}: SHA-256 does not match export.json; the file was modified "
                "or corrupted after export: download or re-export the folder"
            )
        tensors, metadata = read_safetensors(tables_path)
        if metadata.get("format") != TABLES_FORMAT:
            raise ValueError(f"{tables_path}: not a tinyclap label-embedding table")
        sets = json.loads(metadata["sets"])
        for name, table in sets.items():
            table["embeddings"] = tensors[name]
        template = metadata.get("template") or config["prompt_template"]
        encoder, why = cls.text_encoder(folder, config["info"], threads, trust_unverified)
        calibration = read_folder_calibration(folder, config["info"], trust_unverified)
        classifier = cls(engine, sets, template, text_encoder=encoder, calibration=calibration,
                         no_text_encoder=why,
                         default_labels=default_label_set(config["info"], sets))  # fmt: skip
        classifier.precision = precision
        return classifier

    @staticmethod
    def text_encoder(folder, info=None, threads=1, trust_unverified=False):
        """``(encoder or None, why not)``: the folder's text student for free-form prompts.

        The encoder is :class:`tinyclap.runtime.text.OnnxTextEncoder` of
        ``onnx/text_encoder.onnx`` and ``text_tokenizer.model`` (checked against
        ``export.json``); None when the folder has no text student graph or the
        ``sentencepiece`` package is missing.
        """
        if info is None:
            info = folder_config(folder)["info"]
        return OnnxTextEncoder.from_folder(folder, info, threads, trust_unverified)

    @property
    def has_text_encoder(self):
        """True when free-form labels outside the tables can be embedded."""
        return self._text_encoder is not None

    @property
    def label_sets(self):
        """Names of the bundled label sets."""
        return sorted(self.tables)

    @property
    def sample_rate(self):
        """Rate the student reads, in Hz."""
        return self.engine.sample_rate

    def label_plan(self, labels=None):
        """The :class:`~tinyclap.runtime.labels.LabelPlan` of a label spec (None: the default set).

        Free-form labels naming a prototype class of an adapted set take the
        prototype (:mod:`tinyclap.runtime.labels`); :attr:`LabelPlan.note` says so.
        """
        return plan_labels(labels, self.tables, self.template, self.default_labels)

    def resolve_labels(self, labels=None):
        """``(class names, class embeddings [C, K])`` of a label spec.

        ``labels``: a bundled set's name, ``"a,b,c"``, a list of labels, or None
        (the folder's default set, see :meth:`label_plan`).

        Raises
        ------
        MissingTextEncoderError
            Prompts not in the tables and no text encoder in the folder.
        NoLabelsError
            No labels and no default set.
        """
        plan = self.label_plan(labels)
        if plan.set_name is not None:
            return list(plan.names), self.tables[plan.set_name]["embeddings"]
        prompts = plan.prompts
        missing = [p for p in prompts if p not in self._by_prompt and p not in self._encoded]
        if missing:
            if self._text_encoder is None:
                raise MissingTextEncoderError(
                    f"{len(missing)} prompt(s) are not in this folder's label tables "
                    f"({', '.join(self.label_sets)}) and the runtime has no text encoder for "
                    f"them ({self._no_text_encoder or 'none given'}): {missing[:5]}. Use labels "
                    "of the bundled sets, a folder exported with a text student, or the full "
                    "install (tinyclap classify / ZeroShotAudioClassifier)."
                )
            embedded = np.asarray(self._text_encoder(missing), np.float32)
            width = next(iter(self.tables.values()))["embeddings"].shape[1] if self.tables else None
            if width is not None and embedded.shape[1] != width:
                raise ValueError(
                    f"the text encoder gives {embedded.shape[1]} dims, the label tables "
                    f"{width}: the folder's text graph is not this student's"
                )
            self._encoded.update(zip(missing, embedded))
        lookup = {**self._by_prompt, **self._encoded}
        rows = [self.tables[s[1]]["embeddings"][s[2]] if s[0] == "set" else lookup[s[1]]
                for s in plan.sources]  # fmt: skip
        return list(plan.names), np.stack(rows)

    def labels_of(self, labels):
        """Class names in the order of the score columns for ``labels``."""
        return self.resolve_labels(labels)[0]

    def classify_clips(self, clips, labels):
        """Scores ``[N, C]`` and the class names for 1-D clips at the student's rate."""
        names, text = self.resolve_labels(labels)
        return self.engine.embed_clips(clips) @ text.T, names

    def classify_open_set(self, clips, labels, threshold=None):
        """Scores with "none of these" (as the full install's ``classify_open_set``).

        Parameters
        ----------
        clips : list of array
            1-D clips at the student's rate.
        labels : str or list of str
            A set's name, ``"a,b,c"`` or a list.
        threshold : float, optional
            Rejection threshold on the best cosine (default: ``open_set.json``'s).

        Returns
        -------
        scores, score, index, text_lab
            ``[N, C]`` cosines, ``[N]`` best cosine, ``[N]`` best index (-1:
            rejected) and the label (None: rejected) of each clip.

        Example
        -------
        >>> clf.classify_open_set([wav], "adapted")[3]  # doctest: +SKIP
        [None]
        """
        scores, names = self.classify_clips(clips, labels)
        best, index, text_lab = open_set_decisions(scores, names, self.calibration, threshold)
        return scores, best, np.array(index), text_lab

    def classify_multi_label(self, clips, labels, thresholds=None):
        """Every label whose cosine reaches its threshold (as the full install's method).

        Parameters
        ----------
        clips : list of array
            1-D clips at the student's rate.
        labels : str or list of str
            A set's name, ``"a,b,c"`` or a list.
        thresholds : float or list of float, optional
            One threshold, or one per label (default: ``open_set.json``'s per-class
            thresholds; labels it does not know get its shared one).

        Returns
        -------
        scores, present, text_labs
            ``[N, C]`` cosines, ``[N, C]`` booleans, the labels present per clip (best first).
        """
        scores, names = self.classify_clips(clips, labels)
        present, text_labs = multi_label_decisions(scores, names, self.calibration, thresholds)
        return scores, present, text_labs

    def classify_files(self, paths, labels=None, top=3, files_per_call=16, open_set=False,
                       multi_label=False, threshold=None):  # fmt: skip
        """Zero-shot top labels of audio files (folders expanded), several files per call.

        Parameters
        ----------
        paths : list of str
            Audio files or folders.
        labels : str or list of str, optional
            A bundled set's name, ``"a,b,c"`` or a list (default: the folder's default set).
        top : int
            Labels kept per file.
        files_per_call : int
            Files whose windows are embedded together.
        open_set : bool
            Add ``"open_set"``: the best label, or None ("none of these") below the
            rejection threshold.
        multi_label : bool
            Add ``"labels"``: every label at or above its threshold, best first.
        threshold : float, optional
            Used instead of the calibrated threshold(s) of ``open_set.json``.

        Returns
        -------
        list of dict
            ``{"file", "top": [{"label", "score"}...]}`` per file (and the decisions asked for).
        """
        names, text = self.resolve_labels(labels)
        if open_set:  # a missing calibration is reported before any file is read
            open_set_decisions(np.zeros((0, len(names)), np.float32), names, self.calibration,
                               threshold)  # fmt: skip
        if multi_label:
            multi_label_decisions(np.zeros((0, len(names)), np.float32), names,
                                  self.calibration, threshold)  # fmt: skip
        top = max(1, min(int(top), len(names)))
        files = audio_files(paths)
        records = []
        for start in range(0, len(files), max(1, int(files_per_call))):
            chunk = files[start : start + max(1, int(files_per_call))]
            clips = [load_audio(path, self.sample_rate) for path in chunk]
            scores = self.engine.embed_clips(clips) @ text.T
            decided = [{} for _ in chunk]
            if open_set:
                chosen = open_set_decisions(scores, names, self.calibration, threshold)[2]
                for record, label in zip(decided, chosen):
                    record["open_set"] = label
            if multi_label:
                present = multi_label_decisions(scores, names, self.calibration, threshold)[1]
                for record, found in zip(decided, present):
                    record["labels"] = found
            for path, row, extra in zip(chunk, scores, decided):
                best = np.argsort(-row, kind="stable")[:top]
                ranked = [{"label": names[i], "score": round(float(row[i]), 4)} for i in best]
                records.append({"file": path, "top": ranked, **extra})
        return records

    def classify_folder(self, paths, labels=None, top=3, files_per_call=16, **decisions):
        """:meth:`classify_files` and its throughput (files, seconds, files_per_s, cpu_seconds).

        ``cpu_seconds`` (this process's CPU time) is the figure to compare on a loaded
        machine; ``decisions``: ``open_set``, ``multi_label``, ``threshold``.
        """
        start, cpu = time.perf_counter(), time.process_time()
        records = self.classify_files(paths, labels, top, files_per_call, **decisions)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return records, {"files": len(records), "seconds": round(seconds, 3),
                         "files_per_s": round(len(records) / max(seconds, 1e-9), 2),
                         "cpu_seconds": round(cpu, 3)}  # fmt: skip
