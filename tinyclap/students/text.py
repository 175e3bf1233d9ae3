"""The text student: SentencePiece ids -> a few transformer layers -> CLAP projection.

tinyCLAP makes the audio side tiny; :class:`TextStudent` does the same for the
text side. It is distilled into the teacher's text space
(``hparams/distill_text.yaml``, ``-cos(teacher_text(x), student_text(x))``), so
that free-form labels need neither BERT nor GPT-2 nor MiniLM on a device.

Layout: subword embeddings + learned positions, ``num_layers`` pre-norm
transformer layers (attention written with plain matrix products so the graph
exports to ONNX as is), a final LayerNorm, a masked mean over the tokens, and
the CLAP :class:`~tinyclap.nn.projection.Projection` into the latent space.

Tokenizer: :class:`TextTokenizer`, a SentencePiece model (trained by the
stage, padding id 0) applied to :func:`tinyclap.data.text_corpus.normalise`'d
text (lower case, single spaces), truncated to ``max_length`` tokens and
right-padded with 0. sentencepiece runs without torch; the contract is
recorded in an exported folder's ``export.json``.

A checkpoint (:func:`save_text_student`) holds the build config, the state
dict, the tokenizer model (as bytes) and the teacher it was distilled from.

Example
-------
>>> student = TextStudent(vocab_size=100, embedding_dim=16, d_model=32, num_heads=2,
...                       ff_dim=64)
>>> ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
>>> student(ids, (ids > 0).long()).shape
torch.Size([2, 16])
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap.data.text_corpus import normalise
from tinyclap.nn.projection import Projection

TEXT_STUDENT_FORMAT = "tinyclap-text-student"
PAD_ID = 0


class SelfAttention(torch.nn.Module):
    """Multi-head self-attention over padded tokens (plain ops: ONNX-exportable).

    Parameters
    ----------
    d_model : int
        Token size.
    num_heads : int
        Heads (``d_model`` must be a multiple).
    dropout : float
        Dropout on the attention weights.
    """

    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of num_heads {num_heads}")
        self.num_heads, self.head_dim = int(num_heads), int(d_model) // int(num_heads)
        self.qkv = torch.nn.Linear(d_model, 3 * d_model)
        self.out = torch.nn.Linear(d_model, d_model)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x, mask):
        """``x [B, L, d]``, ``mask [B, L]`` (1 = token) -> ``[B, L, d]``."""
        batch, length, d_model = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, L, hd]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        keep = mask[:, None, None, :].to(torch.bool)
        scores = scores.masked_fill(~keep, -1e4)
        weights = self.drop(torch.softmax(scores, dim=-1))
        context = torch.matmul(weights, v).transpose(1, 2).reshape(batch, length, d_model)
        return self.out(context)


class TransformerLayer(torch.nn.Module):
    """Pre-norm transformer layer: attention then a GELU feed-forward, both residual."""

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, num_heads, dropout)
        self.norm2 = torch.nn.LayerNorm(d_model)
        self.feed_forward = torch.nn.Sequential(
            torch.nn.Linear(d_model, ff_dim),
            torch.nn.GELU(),
            torch.nn.Linear(ff_dim, d_model),
        )
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x, mask):
        """``[B, L, d]`` tokens (``mask [B, L]``) -> ``[B, L, d]``."""
        x = x + self.drop(self.attention(self.norm1(x), mask))
        return x + self.drop(self.feed_forward(self.norm2(x)))


class TextStudent(torch.nn.Module):
    """Token ids ``[B, L]`` (+ mask) to un-normalised CLAP text embeddings ``[B, D]``.

    Parameters
    ----------
    vocab_size : int
        SentencePiece vocabulary size (id 0 is padding).
    embedding_dim : int
        The teacher's latent size D.
    d_model : int
        Token size of the encoder.
    num_layers : int
        Transformer layers (0: a bag of subword embeddings).
    num_heads : int
        Attention heads.
    ff_dim : int
        Feed-forward width.
    max_length : int
        Longest token sequence (positions learned up to it).
    dropout : float
        Encoder dropout.
    projection_dropout : float
        Dropout inside the projection (msclap: 0.5).

    Example
    -------
    >>> student = TextStudent(50, 8, d_model=16, num_layers=1, num_heads=2, ff_dim=32)
    >>> student.config["d_model"], student(torch.tensor([[3, 4]]), torch.tensor([[1, 1]])).shape
    (16, torch.Size([1, 8]))
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        d_model=128,
        num_layers=2,
        num_heads=4,
        ff_dim=256,
        max_length=32,
        dropout=0.1,
        projection_dropout=0.5,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=int(vocab_size),
            embedding_dim=int(embedding_dim),
            d_model=int(d_model),
            num_layers=int(num_layers),
            num_heads=int(num_heads),
            ff_dim=int(ff_dim),
            max_length=int(max_length),
            dropout=float(dropout),
            projection_dropout=float(projection_dropout),
        )
        self.token_embedding = torch.nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.position_embedding = torch.nn.Embedding(max_length, d_model)
        self.layers = torch.nn.ModuleList(
            TransformerLayer(d_model, num_heads, ff_dim, dropout) for _ in range(num_layers)
        )
        self.norm = torch.nn.LayerNorm(d_model)
        self.projection = Projection(d_model, embedding_dim, projection_dropout)

    @property
    def embedding_dim(self):
        """The latent size D."""
        return self.config["embedding_dim"]

    @property
    def max_length(self):
        """Longest token sequence the student reads."""
        return self.config["max_length"]

    def build_spec(self):
        """How to rebuild this student (:func:`tinyclap.nn.specs.build`)."""
        return {"class": "tinyclap.students.text.TextStudent", "args": [], "kwargs": self.config}

    def forward(self, tokens, mask):
        """Un-normalised embeddings ``[B, D]`` of token ids ``[B, L]`` (``mask``: 1 = token)."""
        tokens = tokens[:, : self.max_length]
        mask = mask[:, : self.max_length].to(torch.float32)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        for layer in self.layers:
            x = layer(x, mask)
        x = self.norm(x)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.projection(pooled)


class TextTokenizer:
    """A SentencePiece model applied to normalised text, padded into a batch.

    Parameters
    ----------
    model_proto : bytes
        The serialised SentencePiece model (a ``.model`` file's content).
    max_length : int
        Tokens kept per text (the student's ``max_length``).

    Example
    -------
    >>> tok = TextTokenizer.from_file("runs/text/tokenizer.model", 32)  # doctest: +SKIP
    >>> ids, mask = tok(["a barking dog"])  # doctest: +SKIP
    """

    def __init__(self, model_proto, max_length=32):
        import sentencepiece

        self.model_proto = bytes(model_proto)
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)
        self.max_length = int(max_length)
        if self.processor.pad_id() != PAD_ID:
            raise ValueError(
                f"the SentencePiece model pads with id {self.processor.pad_id()}, the text "
                f"student with {PAD_ID}: train it with pad_id={PAD_ID}"
            )

    @classmethod
    def from_file(cls, path, max_length=32):
        """Read a ``.model`` file."""
        return cls(Path(path).read_bytes(), max_length)

    @property
    def vocab_size(self):
        """Pieces of the model (padding and unknown included)."""
        return int(self.processor.get_piece_size())

    def encode(self, texts):
        """Lists of token ids of ``texts`` (normalised, truncated to ``max_length``)."""
        ids = self.processor.encode([normalise(t) for t in texts], out_type=int)
        return [(row or [self.processor.unk_id()])[: self.max_length] for row in ids]

    def __call__(self, texts):
        """``(ids [B, L] int64, mask [B, L] int64)`` of ``texts``, right-padded with 0."""
        rows = self.encode(texts)
        length = max(len(r) for r in rows) if rows else 1
        ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return ids, mask


def save_text_student(path, student, tokenizer, teacher="", teacher_fingerprint="", extra=None):
    """Write a text-student checkpoint (``torch.save`` of tensors and plain data).

    Parameters
    ----------
    path : str or Path
        Output file (written atomically).
    student : TextStudent
        The trained student.
    tokenizer : TextTokenizer
        Its tokenizer (stored as bytes: the checkpoint is self-contained).
    teacher, teacher_fingerprint : str
        Where the latent space comes from (checked at export).
    extra : dict, optional
        More plain data to record (e.g. the measured held-out cosine).
    """
    payload = {
        "format": TEXT_STUDENT_FORMAT,
        "config": dict(student.config),
        "state_dict": {k: v.detach().cpu() for k, v in student.state_dict().items()},
        "tokenizer": torch.frombuffer(bytearray(tokenizer.model_proto), dtype=torch.uint8),
        "teacher": str(teacher),
        "teacher_fingerprint": str(teacher_fingerprint),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def is_text_student_checkpoint(path):
    """True if ``path`` is a file written by :func:`save_text_student`."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, or one that needs pickled objects
        return False
    return isinstance(payload, dict) and payload.get("format") == TEXT_STUDENT_FORMAT


def load_text_student(path):
    """``(student, tokenizer, payload)`` of a text-student checkpoint (student in eval mode).

    Raises
    ------
    ValueError
        If ``path`` is not a text-student checkpoint.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TEXT_STUDENT_FORMAT:
        raise ValueError(
            f"{path} is not a tinyclap text-student checkpoint (train one with "
            "`python train.py hparams/distill_text.yaml`)"
        )
    student = TextStudent(**payload["config"])
    student.load_state_dict(payload["state_dict"])
    tokenizer = TextTokenizer(payload["tokenizer"].numpy().tobytes(), student.max_length)
    return student.eval(), tokenizer, payload


@torch.no_grad()
def embed_texts(student, tokenizer, texts, batch_size=256):
    """L2-normalised ``[N, D]`` student embeddings of ``texts`` (eval mode, batched).

    Example
    -------
    >>> embed_texts(student, tokenizer, ["a barking dog"]).shape  # doctest: +SKIP
    torch.Size([1, 256])
    """
    student.eval()
    device = next(student.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = tokenizer(list(texts[start : start + batch_size]))
        out.append(F.normalize(student(ids.to(device), mask.to(device)), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, student.embedding_dim)
