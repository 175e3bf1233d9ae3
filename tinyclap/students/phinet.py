"""PhiNet students: the tiny audio encoders distilled from a CLAP teacher.

The student follows tinyCLAP: a BatchNorm over mel bins (as Cnn14), micromind's
PhiNet (``compatibility=True``: ReLU6, no squeeze-excite) on the
``[1, frames, n_mels]`` log-mel image, a 1x1 stride-2 convolution to
``head_channels`` (2048 in the paper), a global mean, then the CLAP projection
to the teacher's latent size. The parameter layout (``base.bn0``,
``base._layers``, ``base.pn_block``, ``projection.*``) is the official one.
"""

import torch

from tinyclap._compat import load_phinet_class
from tinyclap.nn.projection import Projection
from tinyclap.students.knobs import check_phinet


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
        check_phinet(alpha, beta, t_zero, num_layers, head_channels)
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

    def _bn0_scale(self):
        """``weight / sqrt(running_var + eps)`` of the eval-mode BatchNorm over mel bins."""
        bn = self.bn0
        scale = torch.rsqrt(bn.running_var + bn.eps)
        return scale * bn.weight if bn.affine else scale

    def _bn0_shift(self):
        """``bias - running_mean * scale`` of the eval-mode BatchNorm over mel bins."""
        bn = self.bn0
        shift = -bn.running_mean * self._bn0_scale()
        return shift + bn.bias if bn.affine else shift

    def forward(self, logmels):
        """``[B, frames, n_mels]`` log-mels to ``[B, head_channels]`` features."""
        if self.training or not self.bn0.track_running_stats:
            x = logmels.unsqueeze(1).transpose(1, 3)  # [B, mels, frames, 1]
            x = self.bn0(x).transpose(1, 3)  # [B, 1, frames, mels]
        else:  # bn0 in eval mode is a per-mel affine map: no transposes in exported graphs
            x = (logmels * self._bn0_scale() + self._bn0_shift()).unsqueeze(1)
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

    def build_spec(self):
        """How to rebuild this student (:mod:`tinyclap.nn.specs`)."""
        return {"class": f"{__name__}.PhiNetStudent", "args": [], "kwargs": dict(self.config)}


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
