"""A student with its frontend, and the student checkpoint format.

The Student contract: a student is any ``torch.nn.Module`` mapping log-mels
``[B, frames, n_mels]`` to embeddings ``[B, D]``. The stages need nothing more
(:class:`StudentAudioEncoder` adds the teacher's frontend, window and padding).
Where it has a ``projection`` submodule, projection-only finetuning trains it
and pruning shrinks it. A checkpoint records how to rebuild the module (its
class and constructor arguments) next to its weights.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap.audio.features import LogMel, window_frames
from tinyclap.nn.specs import build, spec_of
from tinyclap.students.phinet import PhiNetStudent

STUDENT_FORMAT = "tinyclap-student"


class StudentAudioEncoder(torch.nn.Module):
    """A student with its frontend: waveforms in, L2-normalised embeddings out.

    Parameters
    ----------
    student : torch.nn.Module
        The audio encoder on log-mels: ``[B, frames, n_mels] -> [B, D]``
        (a :class:`PhiNetStudent`, or any module honouring that contract).
    frontend_config : dict
        :class:`tinyclap.audio.features.LogMel` keyword arguments (the teacher's).
    clip_seconds : float
        Analysis window length in seconds.
    kept_dims : list of int, optional
        For a student pruned to K dimensions: which dimensions of the
        teacher's latent space its K outputs are (text embeddings are sliced
        to them for zero-shot use; see :mod:`tinyclap.pruning.surgery`).
    pad_mode : str
        How clips shorter than a window are padded: the teacher's
        (``zeros``, or ``repeat`` for msclap), so the student sees what it was
        distilled on.

    Example
    -------
    >>> s = PhiNetStudent(0.5, 0.75, 4, 4, n_frames=101, n_mels=64,
    ...                   head_channels=64, embedding_dim=16)
    >>> enc = StudentAudioEncoder(s, {"sample_rate": 16000, "f_max": 8000}, 2.0)
    >>> enc.embed_audio(torch.randn(3, 32000)).shape
    torch.Size([3, 16])
    """

    def __init__(self, student, frontend_config, clip_seconds, kept_dims=None, pad_mode="zeros"):
        super().__init__()
        self.pad_mode = str(pad_mode)
        self.student = student
        self.frontend_config = dict(frontend_config)
        self.frontend = LogMel(**self.frontend_config)
        self.clip_seconds = float(clip_seconds)
        self.kept_dims = None if kept_dims is None else [int(i) for i in kept_dims]
        if self.kept_dims is not None and len(self.kept_dims) != self.embedding_dim:
            raise ValueError(
                f"{len(self.kept_dims)} kept dims for a student with {self.embedding_dim} outputs"
            )

    @property
    def sample_rate(self):
        """Input sample rate in Hz."""
        return self.frontend.sample_rate

    @property
    def window_samples(self):
        """Samples per analysis window."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self):
        """Log-mel frames of one window: the student's input height."""
        return window_frames(self.frontend_config, self.clip_seconds)

    @property
    def embedding_dim(self):
        """Size of the output embeddings (the student's ``embedding_dim``, else probed once)."""
        dim = getattr(self.student, "embedding_dim", None)
        if dim is None:
            dim = getattr(self, "_probed_dim", None)
        if dim is None:
            dim = student_output_dim(self.student, self.n_frames, self.frontend.n_mels)
            self._probed_dim = dim
        return int(dim)

    def audio_encoder(self):
        """The student on log-mels (for profiling)."""
        return self.student

    @torch.no_grad()
    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of waveforms ``[B, T]``."""
        self.eval()
        device = next(self.student.parameters()).device
        return F.normalize(self.student(self.frontend(wavs.to(device))), dim=-1)


student_frames = window_frames  # the student's input height for a window


def student_output_dim(student, n_frames, n_mels):
    """Output size of a student, from one forward pass on zeros (eval mode, no grad).

    Example
    -------
    >>> student_output_dim(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(7)), 4, 3)
    7
    """
    was_training = student.training
    device = next(iter(student.parameters()), torch.zeros(())).device
    try:
        with torch.no_grad():
            out = student.eval()(torch.zeros(1, int(n_frames), int(n_mels), device=device))
    finally:
        student.train(was_training)
    if out.dim() != 2:
        raise ValueError(
            f"a student must map log-mels [B, frames, n_mels] to [B, D]; "
            f"{type(student).__name__} returned shape {tuple(out.shape)}"
        )
    return out.shape[-1]


def save_student(path, encoder, teacher=""):
    """Write a :class:`StudentAudioEncoder` to one self-describing file.

    The file holds the weights, the frontend, window and padding, the teacher
    it was distilled from, the kept dimensions of a pruned student, and the
    student's build spec (:mod:`tinyclap.nn.specs`): its class and constructor
    arguments, so that :func:`load_student` rebuilds any student module.

    Parameters
    ----------
    path : str or Path
        Output file.
    encoder : StudentAudioEncoder
        Student and frontend.
    teacher : str
        Name or path of the teacher it was distilled from (metadata).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": STUDENT_FORMAT,
        "build": spec_of(encoder.student),
        "config": getattr(encoder.student, "config", None),
        "frontend": encoder.frontend_config,
        "clip_seconds": encoder.clip_seconds,
        "teacher": str(teacher),
        "kept_dims": encoder.kept_dims,
        "pad_mode": encoder.pad_mode,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.student.state_dict().items()},
    }
    tmp = Path(str(path) + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def is_student_checkpoint(path):
    """Whether ``path`` is a file written by :func:`save_student`.

    False for a missing path, a torch file of another format and one that
    needs pickled objects (``weights_only`` refuses it: another format).

    Raises
    ------
    ValueError
        ``corrupt or unreadable checkpoint PATH: <reason>`` for a file torch
        cannot read at all (truncated, not a torch file, no permission).
    """
    if not Path(path).is_file():
        return False
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        if "weights only load failed" in str(err).lower():
            return False
        reason = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(
            f"corrupt or unreadable checkpoint {path}: {type(err).__name__}: {reason}"
        ) from err
    return isinstance(payload, dict) and payload.get("format") == STUDENT_FORMAT


def build_student(payload):
    """The student module a checkpoint payload describes (weights not loaded).

    Checkpoints written before build specs existed hold a PhiNet ``config``.
    """
    if payload.get("build") is not None:
        return build(payload["build"])
    return PhiNetStudent(**payload["config"])


def load_student(path, device="cpu"):
    """Load a file written by :func:`save_student` as a :class:`StudentAudioEncoder`.

    Raises
    ------
    ValueError
        If the file is not a student checkpoint or its keys do not match
        (missing and unexpected keys are listed).
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != STUDENT_FORMAT:
        raise ValueError(f"{path} is not a tinyclap student checkpoint")
    student = build_student(payload)
    expected, given = set(student.state_dict()), set(payload["state_dict"])
    if expected != given:
        raise ValueError(
            f"{path}: checkpoint keys do not match the student.\n"
            f"  missing: {sorted(expected - given) or 'none'}\n"
            f"  unexpected: {sorted(given - expected) or 'none'}"
        )
    student.load_state_dict(payload["state_dict"])
    encoder = StudentAudioEncoder(
        student,
        payload["frontend"],
        payload["clip_seconds"],
        payload.get("kept_dims"),
        payload.get("pad_mode", "zeros"),
    )
    encoder.teacher = payload.get("teacher", "")
    return encoder.to(device).eval()
