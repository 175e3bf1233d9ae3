"""ONNX graph of the text student: token ids in, L2-normalised label embedding out.

``onnx/text_encoder.onnx`` (written by ``tinyclap export`` with a text
student) together with ``text_tokenizer.model`` (its SentencePiece model) is a
complete free-form text encoder that runs without torch. Input contract
(:data:`TEXT_ONNX_CONTRACT`, recorded in ``export.json["text_student"]``):

1. normalise the text: lower case, runs of whitespace to one space, stripped;
2. ``SentencePieceProcessor(model_file="text_tokenizer.model").encode(text)``;
   an empty result becomes ``[unk_id]``; keep at most ``max_length`` ids;
3. ``input_ids``: int64 ``[batch, length]``, right-padded with 0 (the padding
   id); ``attention_mask``: int64 ``[batch, length]``, 1 for tokens, 0 for padding;
4. output ``embedding``: float32 ``[batch, K]``, L2-normalised, already
   restricted to a pruned student's kept dimensions. Prompts are filled in
   first (``prompt_template`` of ``hyperparams.yaml``, e.g. ``this is the
   sound of {label}``).

Example
-------
>>> from tinyclap.students.text import TextStudent
>>> import tempfile, pathlib
>>> student = TextStudent(40, 8, d_model=16, num_layers=1, num_heads=2, ff_dim=32).eval()
>>> path = export_text_onnx(student, pathlib.Path(tempfile.mkdtemp()) / "t.onnx")  # doctest: +SKIP
"""

from pathlib import Path

import torch
import torch.nn.functional as F

OPSET = 17
TEXT_ONNX_CONTRACT = {
    "inputs": {
        "input_ids": "int64 [batch, length]: SentencePiece ids of the normalised text "
        "(lower case, single spaces), at most max_length, right-padded with 0",
        "attention_mask": "int64 [batch, length]: 1 for tokens, 0 for padding",
    },
    "output": {"embedding": "float32 [batch, K]: L2-normalised, kept dimensions only"},
    "empty_text": "encodes to [unk_id]",
    "padding_id": 0,
}


class TextEmbeddingGraph(torch.nn.Module):
    """``(input_ids, attention_mask)`` to L2-normalised embeddings ``[B, K]``.

    Parameters
    ----------
    student : TextStudent
        The text student (eval mode).
    kept_dims : list of int, optional
        A pruned student's kept dimensions (sliced, then re-normalised).
    """

    def __init__(self, student, kept_dims=None):
        super().__init__()
        self.student = student
        kept = None if kept_dims is None else torch.as_tensor(kept_dims, dtype=torch.long)
        self.register_buffer("kept_dims", kept if kept is not None else torch.zeros(0).long())
        self.sliced = kept is not None

    def forward(self, input_ids, attention_mask):
        """Embed padded ``[B, L]`` token ids."""
        embedding = F.normalize(self.student(input_ids, attention_mask), dim=-1)
        if self.sliced:
            embedding = F.normalize(embedding.index_select(1, self.kept_dims), dim=-1)
        return embedding


def export_text_onnx(student, path, kept_dims=None):
    """Write the text student's ONNX graph (dynamic batch and length); return ``path``.

    Raises
    ------
    ImportError
        When the ``onnx`` package is missing (``pip install tinyclap[onnx]``).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = TextEmbeddingGraph(student.eval(), kept_dims).eval()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]], dtype=torch.long)
    ids = ids.clamp(max=student.config["vocab_size"] - 1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.long)
    torch.onnx.export(
        graph,
        (ids, mask),
        str(path),
        dynamo=False,
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "length"},
            "attention_mask": {0: "batch", 1: "length"},
            "embedding": {0: "batch"},
        },
        opset_version=OPSET,
    )
    onnx.checker.check_model(str(path))
    return path


def onnx_text_embeddings(session, tokenizer, texts):
    """Run an onnxruntime ``session`` of the graph on ``texts``; ``[N, K]`` numpy.

    Example
    -------
    >>> onnx_text_embeddings(sess, tokenizer, ["a barking dog"]).shape  # doctest: +SKIP
    (1, 256)
    """
    ids, mask = tokenizer(list(texts))
    return session.run(["embedding"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
