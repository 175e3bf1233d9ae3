"""Free-form labels without torch: prompts, SentencePiece ids, ``onnx/text_encoder.onnx``.

An exported folder with a text student carries ``onnx/text_encoder.onnx`` and
``text_tokenizer.model``; ``export.json["text_student"]`` records the input
contract (:data:`tinyclap.deploy.text_onnx.TEXT_ONNX_CONTRACT`), followed here:

1. normalise: lower case, runs of whitespace to one space, stripped
   (:func:`normalise`, which the text corpus and the tokenizer use too);
2. SentencePiece-encode; an empty result becomes ``[unk_id]``; keep at most
   ``max_length`` ids (``export.json["text_student"]["tokenizer"]["max_length"]``);
3. ``input_ids`` int64 ``[batch, length]`` right-padded with 0, and
   ``attention_mask`` int64, 1 for tokens;
4. the output ``embedding`` is L2-normalised and already cut to a pruned
   student's kept dimensions.

Prompts are built as the full install builds them: :func:`readable_label`
(re-exported by :mod:`tinyclap.data.label_sets`) filled into the
folder's prompt template. sentencepiece runs without torch; the tests check
token ids and embeddings against :mod:`tinyclap.students.text`.

Example
-------
>>> class_prompts(["door_wood_knock", "cafe/restaurant"])
['this is the sound of door wood knock', 'this is the sound of cafe or restaurant']
>>> normalise("  A Dog   Barks ")
'a dog barks'
"""

import hashlib
from pathlib import Path

import numpy as np

DEFAULT_TEMPLATE = "this is the sound of {label}"
TEXT_ONNX_FILE = "onnx/text_encoder.onnx"
TOKENIZER_FILE = "text_tokenizer.model"
PAD_ID = 0
DEFAULT_MAX_LENGTH = 32


def readable_label(name):
    """A class name as prompt words: ``_`` -> space, ``a/b`` -> ``a or b``.

    Example
    -------
    >>> readable_label("door_wood_knock/knock")
    'door wood knock or knock'
    """
    return " or ".join(part.replace("_", " ").strip() for part in str(name).split("/"))


def class_prompts(labels, template=DEFAULT_TEMPLATE):
    """The prompts of ``labels`` (:func:`readable_label` words in ``template``).

    Example
    -------
    >>> class_prompts(["dog_bark"], "a recording of {label}")
    ['a recording of dog bark']
    """
    if "{label}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{label}} field")
    return [template.format(label=readable_label(label)) for label in labels]


def normalise(text):
    """Lower-case, single-spaced text (what the text corpus and the tokenizer see).

    Example
    -------
    >>> normalise("  Rain ON  a Roof ")
    'rain on a roof'
    """
    return " ".join(str(text).lower().split())


def sha256_of(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks.

    Example
    -------
    >>> len(sha256_of(__file__))
    64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SentencePieceIds:
    """The text student's tokenisation, in numpy (the ``onnx_contract`` of ``export.json``).

    Parameters
    ----------
    model_path : str or Path
        ``text_tokenizer.model`` of an exported folder.
    max_length : int
        Ids kept per text.

    Example
    -------
    >>> tok = SentencePieceIds("exported/demo/text_tokenizer.model", 32)  # doctest: +SKIP
    >>> ids, mask = tok(["this is the sound of rain", ""])  # doctest: +SKIP
    >>> mask.sum(1).tolist()  # doctest: +SKIP
    [6, 1]
    """

    def __init__(self, model_path, max_length=DEFAULT_MAX_LENGTH):
        import sentencepiece

        self.path = Path(model_path)
        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(self.path))
        self.max_length = int(max_length)
        if self.processor.pad_id() != PAD_ID:
            raise ValueError(
                f"{self.path}: the SentencePiece model pads with id {self.processor.pad_id()}, "
                f"the text graph expects {PAD_ID}: not a tinyclap text tokenizer"
            )

    def encode(self, texts):
        """Lists of ids of ``texts``: normalised, ``[unk_id]`` when empty, truncated."""
        rows = self.processor.encode([normalise(t) for t in texts], out_type=int)
        return [(row or [self.processor.unk_id()])[: self.max_length] for row in rows]

    def __call__(self, texts):
        """``(input_ids, attention_mask)``: int64 ``[B, L]``, right-padded with 0."""
        rows = self.encode(texts)
        length = max((len(r) for r in rows), default=1)
        ids = np.full((len(rows), length), PAD_ID, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask


class OnnxTextEncoder:
    """Prompts to L2-normalised label embeddings with ``onnx/text_encoder.onnx``.

    Parameters
    ----------
    graph_path : str or Path
        The text student's ONNX graph.
    tokenizer : SentencePieceIds
        Its tokenisation.
    threads : int
        onnxruntime intra-op threads.
    batch_size : int
        Prompts per onnxruntime call.

    Example
    -------
    >>> enc = OnnxTextEncoder.from_folder("exported/demo")  # doctest: +SKIP
    >>> enc(["this is the sound of a purring cat"]).shape  # doctest: +SKIP
    (1, 256)
    """

    def __init__(self, graph_path, tokenizer, threads=1, batch_size=64):
        from tinyclap.runtime.engine import ort_session

        self.path = Path(graph_path)
        self.tokenizer = tokenizer
        self.session = ort_session(self.path, threads)
        self.batch_size = max(1, int(batch_size))
        names = sorted(i.name for i in self.session.get_inputs())
        if names != ["attention_mask", "input_ids"]:
            raise ValueError(
                f"{self.path}: inputs {names}, expected attention_mask and input_ids "
                "(onnx/text_encoder.onnx of tinyclap export with a text student)"
            )

    @classmethod
    def from_folder(cls, folder, info, threads=1, trust_unverified=False):
        """The encoder of an exported folder, or ``(None, why)`` when it cannot have one.

        Parameters
        ----------
        folder : str or Path
            The exported folder.
        info : dict
            Its ``export.json``.
        threads : int
            onnxruntime intra-op threads.
        trust_unverified : bool
            Load a graph or tokenizer with no SHA-256 in ``export.json``
            (:mod:`tinyclap.runtime.integrity`).

        Returns
        -------
        (OnnxTextEncoder or None, str)
            The encoder and ``""``, or None and the reason (for the error message).

        Raises
        ------
        ValueError
            The graph or tokenizer does not match the SHA-256 in ``export.json``.
        """
        folder = Path(folder)
        graph, model = folder / TEXT_ONNX_FILE, folder / TOKENIZER_FILE
        record = info.get("text_student") or {}
        if not record or not graph.is_file() or not model.is_file():
            return None, f"no text student graph ({TEXT_ONNX_FILE} + {TOKENIZER_FILE}) in {folder}"
        try:
            import sentencepiece  # noqa: F401
        except ImportError:
            return None, (
                f"the folder has {TEXT_ONNX_FILE}, but the sentencepiece package (its "
                "tokenizer) is not installed: pip install sentencepiece"
            )
        expected = {
            graph: (record.get("files") or {}).get("onnx_sha256"),
            model: ((info.get("weights") or {}).get("text_tokenizer") or {}).get("sha256"),
        }
        from tinyclap.runtime.integrity import require_recorded

        unrecorded = [f"{p.parent.name}/{p.name}" if p == graph else p.name
                      for p, digest in expected.items() if not digest]  # fmt: skip
        require_recorded(unrecorded, str(folder), trust_unverified)
        for path, digest in expected.items():
            if digest and sha256_of(path) != digest:
                raise ValueError(
                    f"{path}: SHA-256 does not match export.json; the file was modified or "
                    "corrupted after export: download or re-export the folder"
                )
        max_length = (record.get("tokenizer") or {}).get("max_length", DEFAULT_MAX_LENGTH)
        return cls(graph, SentencePieceIds(model, max_length), threads=threads), ""

    def __call__(self, prompts):
        """L2-normalised embeddings ``[N, K]`` of ``prompts`` (float32)."""
        prompts = list(prompts)
        out = []
        for start in range(0, len(prompts), self.batch_size):
            ids, mask = self.tokenizer(prompts[start : start + self.batch_size])
            feeds = {"input_ids": ids, "attention_mask": mask}
            out.append(self.session.run(["embedding"], feeds)[0].astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
