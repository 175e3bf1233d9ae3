"""The Teacher interface every stage relies on, and helpers shared by teachers.

A teacher is a frozen CLAP: an audio tower and a text tower sharing one latent
space. Every teacher (the embedded mini CLAP, Microsoft CLAP, ...) subclasses
:class:`Teacher` and offers the same attributes, so that caches, students,
evaluation, pruning, transfer, export and profiling never ask which one it is.
"""

import hashlib
import os
from pathlib import Path

import torch


class Teacher(torch.nn.Module):
    """A frozen CLAP teacher: what every stage needs from it.

    Subclasses set, or compute as properties:

    - ``name``: a short name (``mini``, ``msclap-2022``, ...);
    - ``sample_rate`` (Hz), ``clip_seconds`` and ``window_samples``: the audio
      window the audio tower reads;
    - ``embedding_dim``: the size ``D`` of the shared latent space;
    - ``frontend_config``: the :class:`tinyclap.audio.features.LogMel` settings
      a student uses to read the same audio (its ``n_mels`` are the student's);
    - ``pad_mode``: how a clip shorter than one window is padded (``zeros`` or
      ``repeat``), so that students and caches see the teacher's own inputs;
    - ``fingerprint``: identifies the weights (keys the embedding cache);

    and implement :meth:`embed_audio`, :meth:`embed_text` and
    :meth:`audio_encoder`.
    """

    name = "teacher"
    pad_mode = "zeros"
    fingerprint = ""

    @property
    def window_samples(self):
        """Samples per analysis window."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def window_frames(self):
        """Log-mel frames of one window in the student frontend: a student's input height."""
        from tinyclap.audio.features import window_frames

        return window_frames(self.frontend_config, self.clip_seconds)

    @property
    def n_mels(self):
        """Mel bins of the student frontend."""
        from tinyclap.audio.features import LogMel

        return LogMel.from_config(self.frontend_config).n_mels

    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of waveforms ``[B, T]`` (one window each)."""
        raise NotImplementedError

    def embed_text(self, texts):
        """L2-normalised embeddings ``[B, D]`` of a list of sentences."""
        raise NotImplementedError

    def audio_encoder(self):
        """The audio tower as a module (for profiling: params, MACs, latency)."""
        raise NotImplementedError

    @property
    def device(self):
        """Device of the weights."""
        return next(self.parameters()).device


class WaveformInput(torch.nn.Identity):
    """The "frontend" of a tower that reads waveforms: nothing to do.

    Profiling (:func:`tinyclap.nn.complexity.profile_models`) counts the
    tower's MACs on ``[1, window_samples]`` waveforms, its STFT included.
    """

    reads_waveforms = True


class WaveformTeacher(Teacher):
    """A teacher whose audio tower reads waveforms (its STFT and log-mels inside).

    For profiling, its ``frontend`` is :class:`WaveformInput`: MACs are counted
    on ``[1, window_samples]`` waveforms, the tower's own frontend included.
    """

    @property
    def frontend(self):
        """Nothing to do before the tower: it reads waveforms."""
        return WaveformInput()


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


def safe_load(path):
    """``torch.load`` with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise TeacherLoadError(f"teacher checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        raise TeacherLoadError(f"cannot read teacher checkpoint {path}: {err}") from err


def load_state_dict_strict(model, state_dict, path):
    """Load ``state_dict``; list missing and unexpected keys in the error."""
    expected, given = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise TeacherLoadError(
            f"{path}: checkpoint keys do not match the model.\n"
            f"  missing: {missing or 'none'}\n  unexpected: {unexpected or 'none'}"
        )
    model.load_state_dict(state_dict)


def hub_offline():
    """Whether ``HF_HUB_OFFLINE`` is set (read now, not at import time)."""
    import huggingface_hub.constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return flag in ("1", "true", "yes", "on") or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def hub_failure_reason(offline, err):
    """Why a hub file could not be had, for error messages."""
    if offline:
        return "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
