"""PhiNet students: the tiny audio encoders distilled from a CLAP teacher.

The student follows tinyCLAP: a BatchNorm over mel bins (as Cnn14), micromind's
PhiNet (``compatibility=True``: ReLU6, no squeeze-excite) on the
``[1, frames, n_mels]`` log-mel image, a 1x1 stride-2 convolution to
``head_channels`` (2048 in the paper), a global mean, then the CLAP projection
to the teacher's latent size. The parameter layout (``base.bn0``,
``base._layers``, ``base.pn_block``, ``projection.*``) is the official one.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap._compat import load_phinet_class
from tinyclap.features import LogMel
from tinyclap.projection import Projection

STUDENT_FORMAT = "tinyclap-student"


def backbone_config(alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels):
    """The PhiNet backbone's settings as a JSON-friendly dict (stored in checkpoints).

    Example
    -------
    >>> backbone_config(1.5, 0.75, 6, 7, 690, 64, 2048)["num_layers"]
    7
    """
    return dict(
        alpha=float(alpha),
        beta=float(beta),
        t_zero=float(t_zero),
        num_layers=int(num_layers),
        n_frames=int(n_frames),
        n_mels=int(n_mels),
        head_channels=int(head_channels),
    )


class PhiNetBackbone(torch.nn.Module):
    """PhiNet feature extractor with tinyCLAP's input norm and 1x1 head.

    Parameters
    ----------
    alpha, beta, t_zero, num_layers
        PhiNet's width multiplier, shape factor, base expansion and depth.
    n_frames, n_mels : int
        Input log-mel size.
    head_channels : int
        Output channels of the 1x1 stride-2 head convolution.
    """

    def __init__(self, alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels):
        super().__init__()
        phinet = load_phinet_class()(
            input_shape=(1, int(n_frames), int(n_mels)),
            alpha=float(alpha),
            beta=float(beta),
            t_zero=float(t_zero),
            num_layers=int(num_layers),
            compatibility=True,
        )
        self.bn0 = torch.nn.BatchNorm2d(int(n_mels))
        self._layers = phinet._layers
        last_channels = [m for m in self._layers.modules() if isinstance(m, torch.nn.Conv2d)]
        self.pn_block = torch.nn.Conv2d(
            last_channels[-1].out_channels, int(head_channels), kernel_size=1, stride=2
        )

    def forward(self, logmels):
        """``[B, frames, n_mels]`` log-mels to ``[B, head_channels]`` features."""
        x = logmels.unsqueeze(1).transpose(1, 3)  # [B, mels, frames, 1]
        x = self.bn0(x).transpose(1, 3)  # [B, 1, frames, mels]
        for layer in self._layers:
            x = layer(x)
        return self.pn_block(x).mean((-1, -2))


class PhiNetStudent(torch.nn.Module):
    """A PhiNet audio encoder projecting into a CLAP latent space.

    Parameters
    ----------
    alpha : float
        Width multiplier.
    beta : float
        Shape factor: the expansion grows from ``t_zero`` to ``beta * t_zero``.
    t_zero : float
        Base expansion factor.
    num_layers : int
        Number of PhiNet blocks (N).
    n_frames, n_mels : int
        Input log-mel size (690 x 64 for CLAP 2022's 5 s windows).
    head_channels : int
        Channels of the 1x1 head before the projection (2048 in tinyCLAP).
    embedding_dim : int
        Latent size: the teacher's embedding size (1024 for MS-CLAP).
    dropout : float
        Projection dropout.

    Example
    -------
    >>> student = PhiNetStudent(0.5, 0.75, 4, 4, n_frames=101, n_mels=64,
    ...                         head_channels=128, embedding_dim=32)
    >>> student(torch.randn(2, 101, 64)).shape
    torch.Size([2, 32])
    """

    def __init__(
        self,
        alpha=1.5,
        beta=0.75,
        t_zero=6,
        num_layers=7,
        n_frames=690,
        n_mels=64,
        head_channels=2048,
        embedding_dim=1024,
        dropout=0.5,
    ):
        super().__init__()
        self.config = dict(
            **backbone_config(alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels),
            embedding_dim=int(embedding_dim),
            dropout=float(dropout),
        )
        self.base = PhiNetBackbone(alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels)
        self.projection = Projection(int(head_channels), int(embedding_dim), dropout)

    @property
    def embedding_dim(self):
        """Size of the output embeddings."""
        return self.config["embedding_dim"]

    def forward(self, logmels):
        """Return un-normalised embeddings ``[B, D]`` of ``[B, frames, mels]`` input."""
        return self.projection(self.base(logmels))


class StudentAudioEncoder(torch.nn.Module):
    """A student with its frontend: waveforms in, L2-normalised embeddings out.

    Parameters
    ----------
    student : PhiNetStudent
        The audio encoder on log-mels.
    frontend_config : dict
        :class:`tinyclap.features.LogMel` keyword arguments (the teacher's).
    clip_seconds : float
        Analysis window length in seconds.
    kept_dims : list of int, optional
        For a student pruned to K dimensions: which dimensions of the
        teacher's latent space its K outputs are (text embeddings are sliced
        to them for zero-shot use; see :mod:`tinyclap.pruning`).
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
        if self.kept_dims is not None and len(self.kept_dims) != student.embedding_dim:
            raise ValueError(
                f"{len(self.kept_dims)} kept dims for a student with "
                f"{student.embedding_dim} outputs"
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
    def embedding_dim(self):
        """Size of the output embeddings."""
        return self.student.embedding_dim

    def audio_encoder(self):
        """The student on log-mels (for profiling)."""
        return self.student

    @torch.no_grad()
    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of waveforms ``[B, T]``."""
        self.eval()
        device = next(self.student.parameters()).device
        return F.normalize(self.student(self.frontend(wavs.to(device))), dim=-1)


def phinet_kwargs(hparams, teacher):
    """PhiNet settings from the hparams, input size from the teacher's frontend.

    Shared by the distilled students and the transfer classifiers.
    """
    frontend = teacher.frontend_config
    return {
        "alpha": hparams["alpha"],
        "beta": hparams["beta"],
        "t_zero": hparams["t_zero"],
        "num_layers": hparams["num_layers"],
        "n_frames": student_frames(frontend, teacher.clip_seconds),
        "n_mels": frontend.get("n_mels", 64),
        "head_channels": hparams["head_channels"],
        "dropout": hparams["dropout"],
    }


def student_frames(frontend_config, clip_seconds):
    """Log-mel frames of one window: the student's input height.

    Example
    -------
    >>> student_frames({"sample_rate": 44100}, 5.0)
    690
    """
    frontend = LogMel(**frontend_config)
    return frontend.num_frames(int(round(clip_seconds * frontend.sample_rate)))


def save_student(path, encoder, teacher=""):
    """Write a :class:`StudentAudioEncoder` to one self-describing file.

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
        "config": encoder.student.config,
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
    """Whether ``path`` is a file written by :func:`save_student`."""
    if not Path(path).is_file():
        return False
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, or one that needs pickled objects
        return False
    return isinstance(payload, dict) and payload.get("format") == STUDENT_FORMAT


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
    student = PhiNetStudent(**payload["config"])
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


class PhiNetClassifier(torch.nn.Module):
    """A PhiNet backbone with a linear classification head (the EAsT student).

    The same backbone as :class:`PhiNetStudent` (``base``: BatchNorm over mel
    bins, PhiNet, 1x1 head conv, global mean); ``forward`` also returns the
    pooled ``head_channels`` features, the "student feature" that embedding-as-
    target transfer regresses on the teacher's embeddings.

    Parameters
    ----------
    alpha, beta, t_zero, num_layers
        PhiNet knobs (see :class:`PhiNetStudent`).
    n_frames, n_mels : int
        Input log-mel size.
    head_channels : int
        Feature size.
    num_classes : int
        Outputs of the classifier.
    dropout : float
        Dropout on the features before the classifier.

    Example
    -------
    >>> model = PhiNetClassifier(0.5, 0.75, 4, 3, n_frames=101, n_mels=64,
    ...                          head_channels=32, num_classes=5)
    >>> logits, features = model(torch.randn(2, 101, 64))
    >>> logits.shape, features.shape
    (torch.Size([2, 5]), torch.Size([2, 32]))
    """

    def __init__(
        self,
        alpha=0.75,
        beta=0.75,
        t_zero=4,
        num_layers=5,
        n_frames=101,
        n_mels=64,
        head_channels=512,
        num_classes=10,
        dropout=0.2,
    ):
        super().__init__()
        self.config = dict(
            **backbone_config(alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels),
            num_classes=int(num_classes),
            dropout=float(dropout),
        )
        self.base = PhiNetBackbone(alpha, beta, t_zero, num_layers, n_frames, n_mels, head_channels)
        self.dropout = torch.nn.Dropout(float(dropout))
        self.classifier = torch.nn.Linear(int(head_channels), int(num_classes))

    def forward(self, logmels):
        """``[B, frames, mels]`` log-mels to ``(logits [B, C], features [B, head_channels])``."""
        features = self.base(logmels)
        return self.classifier(self.dropout(features)), features
