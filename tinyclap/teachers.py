"""Frozen CLAP teachers behind one interface.

Every teacher returned by :func:`load_teacher` offers

- ``embed_audio(wavs[B, T]) -> [B, D]`` and ``embed_text(list[str]) -> [B, D]``,
  both L2-normalised;
- ``sample_rate``, ``clip_seconds``, ``window_samples``, ``embedding_dim``;
- ``frontend_config``: the :class:`tinyclap.features.LogMel` settings a student
  must use to read the same audio;
- ``fingerprint``: a hash of the weights, used to key the embedding cache.

- ``pad_mode``: how a clip shorter than one window is padded (``zeros`` or
  ``repeat``), so that students and caches see the teacher's own inputs.

Teachers: ``mini``, the embedded teacher trained by
``python train.py hparams/train_teacher.yaml`` (a checkpoint path is required),
and Microsoft CLAP ``msclap-2022`` / ``msclap-2023``
(:mod:`tinyclap.msclap_teacher`: local files or the Hugging Face hub).
"""

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap.features import LogMel
from tinyclap.mini_clap import MiniCLAP, SentenceEncoder

MINI_FORMAT = "tinyclap-mini-teacher"
MSCLAP_NAMES = ("msclap-2022", "msclap-2023")


class TeacherLoadError(RuntimeError):
    """A teacher could not be loaded (missing file, wrong format, wrong keys)."""


def file_fingerprint(path, chunk_size=1 << 20):
    """SHA-256 of a file's bytes.

    Example
    -------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_fingerprint(f.name)[:8]
    'ba7816bf'
    >>> os.unlink(f.name)
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MiniTeacher(torch.nn.Module):
    """The embedded teacher: log-mel frontend + :class:`MiniCLAP` + MiniLM.

    Parameters
    ----------
    model : MiniCLAP
        Trained (or freshly initialised) model.
    frontend_config : dict
        Keyword arguments of :class:`tinyclap.features.LogMel`.
    clip_seconds : float
        Window length the model was trained on.
    sentence_encoder : SentenceEncoder, optional
        Frozen text encoder (loaded from the local MiniLM package if omitted).
    fingerprint : str
        Identifies the weights (the checkpoint's hash when loaded from disk).
    """

    def __init__(self, model, frontend_config, clip_seconds, sentence_encoder=None, fingerprint=""):
        super().__init__()
        self.model = model
        self.frontend_config = dict(frontend_config)
        self.frontend = LogMel(**self.frontend_config)
        self.clip_seconds = float(clip_seconds)
        self.sentence_encoder = sentence_encoder or SentenceEncoder()
        self.fingerprint = fingerprint
        self.name = "mini"
        self.pad_mode = "zeros"

    @property
    def sample_rate(self):
        """Input sample rate in Hz."""
        return self.frontend.sample_rate

    @property
    def window_samples(self):
        """Samples per analysis window."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def embedding_dim(self):
        """Size of the shared latent space."""
        return self.model.embedding_dim

    def audio_encoder(self):
        """The audio tower as a module on log-mels (for profiling)."""
        return _LogMelAudioTower(self.model)

    @torch.no_grad()
    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of waveforms ``[B, T]``."""
        self.eval()
        device = next(self.model.parameters()).device
        return F.normalize(self.model.encode_audio(self.frontend(wavs.to(device))), dim=-1)

    @torch.no_grad()
    def embed_text(self, texts):
        """L2-normalised embeddings ``[B, D]`` of a list of sentences."""
        self.eval()
        sentence = self.sentence_encoder(list(texts))
        return F.normalize(self.model.encode_sentence_embeddings(sentence), dim=-1)


class _LogMelAudioTower(torch.nn.Module):
    """The audio side of a :class:`MiniCLAP` alone (log-mels in, embeddings out)."""

    def __init__(self, model):
        super().__init__()
        self.base = model.audio_encoder.base
        self.projection = model.audio_encoder.projection

    def forward(self, logmels):
        """Un-normalised audio embeddings of ``[B, frames, mels]``."""
        return self.projection(self.base(logmels))


def save_mini_teacher(path, model, frontend_config, clip_seconds):
    """Write a MiniCLAP checkpoint that :func:`load_teacher` reads.

    The frozen MiniLM text encoder is not stored: it comes from its package.

    Parameters
    ----------
    path : str or Path
        Output file.
    model : MiniCLAP
        The model to save.
    frontend_config : dict
        :class:`LogMel` keyword arguments.
    clip_seconds : float
        Training window length.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MINI_FORMAT,
        "config": model.config,
        "frontend": dict(frontend_config),
        "clip_seconds": float(clip_seconds),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = Path(str(path) + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_mini_teacher(path, device="cpu"):
    """Load a checkpoint written by :func:`save_mini_teacher`."""
    payload = _safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != MINI_FORMAT:
        raise TeacherLoadError(f"{path} is not a tinyclap mini-teacher checkpoint")
    model = MiniCLAP(**payload["config"])
    _load_state_dict_strict(model, payload["state_dict"], path)
    teacher = MiniTeacher(
        model,
        payload["frontend"],
        payload["clip_seconds"],
        fingerprint=file_fingerprint(path),
    )
    return teacher.to(device).eval().requires_grad_(False)


def load_teacher(name_or_path, checkpoint=None, device="cpu", **kwargs):
    """Load a frozen teacher by name or checkpoint path.

    Parameters
    ----------
    name_or_path : str
        ``mini`` (then ``checkpoint`` is required), ``msclap-2022``,
        ``msclap-2023``, or a path to a mini-teacher checkpoint.
    checkpoint : str, optional
        Local weights file (for msclap: ``CLAP_weights_*.pth``; downloaded
        from the hub when omitted).
    device : str
        Torch device.
    **kwargs
        msclap options: ``text_model`` (local folder), ``trust_checkpoint``,
        ``cache_dir``; see :func:`tinyclap.msclap_teacher.load_msclap_teacher`.

    Returns
    -------
    MiniTeacher or MSCLAPTeacher
        In eval mode, gradients disabled.

    Example
    -------
    >>> load_teacher("mini")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.TeacherLoadError: the mini teacher needs checkpoint=PATH ...
    """
    name = str(name_or_path)
    if name in MSCLAP_NAMES:
        from tinyclap.msclap_teacher import load_msclap_teacher

        return load_msclap_teacher(name, checkpoint=checkpoint, device=device, **kwargs)
    if name == "mini":
        if checkpoint is None:
            raise TeacherLoadError(
                "the mini teacher needs checkpoint=PATH (train one with "
                "`python train.py hparams/train_teacher.yaml`)"
            )
        return load_mini_teacher(checkpoint, device)
    path = Path(checkpoint or name)
    if not path.is_file():
        raise TeacherLoadError(
            f"unknown teacher {name!r}: not one of mini, {', '.join(MSCLAP_NAMES)} "
            f"and no file at {path}"
        )
    return load_mini_teacher(path, device)


def teacher_source(hparams):
    """``(name, checkpoint)`` of the teacher the hparams ask for.

    Example
    -------
    >>> teacher_source({"teacher": "mini", "teacher_checkpoint": None, "mini_checkpoint": "t.ckpt"})
    ('mini', 't.ckpt')
    >>> teacher_source({"teacher": "msclap-2022", "teacher_checkpoint": None})
    ('msclap-2022', None)
    """
    name, checkpoint = str(hparams["teacher"]), hparams.get("teacher_checkpoint")
    if checkpoint is None and name == "mini":
        checkpoint = hparams.get("mini_checkpoint")
    return name, checkpoint


def load_teacher_from_hparams(hparams, device="cpu"):
    """:func:`load_teacher` with the hparams' teacher options."""
    name, checkpoint = teacher_source(hparams)
    return load_teacher(
        name,
        checkpoint=checkpoint,
        device=device,
        text_model=hparams.get("text_model"),
        trust_checkpoint=bool(hparams.get("trust_checkpoint", False)),
    )


def _safe_load(path):
    """``torch.load`` with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise TeacherLoadError(f"teacher checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        raise TeacherLoadError(f"cannot read teacher checkpoint {path}: {err}") from err


def _load_state_dict_strict(model, state_dict, path):
    """Load ``state_dict``; list missing and unexpected keys in the error."""
    expected, given = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise TeacherLoadError(
            f"{path}: checkpoint keys do not match the model.\n"
            f"  missing: {missing or 'none'}\n  unexpected: {unexpected or 'none'}"
        )
    model.load_state_dict(state_dict)
