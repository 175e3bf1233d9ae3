"""Exportable log-mel frontends for the single-file ONNX graphs.

``torch.stft`` (complex output) does not export cleanly, so a waveform-in ONNX
graph computes :class:`tinyclap.audio.features.LogMel` with ordinary tensor ops.
Every class here equals ``LogMel`` to float precision (the tests check 1e-3 dB)
and differs only in how the short-time Fourier transform is laid out, which is
what decides the graph's speed under onnxruntime:

* ``dense``: two strided ``Conv`` with the windowed DFT basis of all
  ``n_fft // 2 + 1`` bins (the first exporter; about 725M MACs per 5 s window
  at 44.1 kHz);
* ``used_conv``: one strided ``Conv`` whose basis holds only the bins the mel
  filterbank uses (real and imaginary parts stacked: 324 of 513 bins for
  MS-CLAP 2022), the square-and-sum folded into the mel ``MatMul``;
* ``used_matmul``: the same basis as one ``MatMul`` over hop-sized blocks of the
  signal (frame = 3 whole blocks + a partial one, summed after the GEMM), no
  ``Conv``;
* ``stft_op`` / ``dft_op``: ONNX's own ``STFT`` and ``DFT`` operators (opset 17);
* ``factored``: a two-stage (Cooley-Tukey) DFT as GEMMs: ``n_fft = P x Q`` with
  the window *and* the twiddle factors folded into the first stage's ``Q``
  per-column matrices and the second stage restricted to the mel-used bins
  (about 7x fewer MACs than ``dense`` for MS-CLAP 2022).

:data:`FRONTENDS` maps the names to classes; :data:`DEFAULT_FRONTEND` is the one
:func:`tinyclap.deploy.onnx.export_onnx` puts in ``audio_encoder.onnx`` (chosen
by ``python -m tinyclap.bench.onnx_frontend``, see
``results/onnx_frontend_bench/README.md``), or ``used_conv`` where the factored DFT does not
apply (:func:`onnx_frontend`).
"""

import math

import torch
import torch.nn.functional as F


def _window(frontend):
    """The analysis window zero-padded to ``n_fft`` (float64), as ``torch.stft`` centres it."""
    window = torch.zeros(frontend.n_fft, dtype=torch.float64)
    offset = (frontend.n_fft - frontend.win_length) // 2
    window[offset : offset + frontend.win_length] = frontend.window.double()
    return window


def used_bins(mel_fb):
    """The contiguous bin range ``(lo, hi)`` (``hi`` exclusive) with any mel weight.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> used_bins(LogMel().mel_fb)
    (2, 326)
    """
    used = (mel_fb.abs().sum(1) > 0).nonzero().flatten()
    if len(used) == 0:
        raise ValueError("the mel filterbank has no non-zero weight")
    return int(used.min()), int(used.max()) + 1


class _LogMelBase(torch.nn.Module):
    """Shared parts: reflect padding, the log, the dB offset; ``macs`` bookkeeping."""

    def __init__(self, frontend):
        super().__init__()
        self.n_fft, self.hop_length = int(frontend.n_fft), int(frontend.hop_length)
        self.n_mels = int(frontend.n_mels)
        self.pad = self.n_fft // 2
        self.amin = float(frontend.amin)
        self.offset_db = 10.0 * math.log10(max(frontend.amin, frontend.ref))
        self.lo, self.hi = used_bins(frontend.mel_fb)

    def _padded(self, wavs):
        return F.pad(wavs.unsqueeze(1), (self.pad, self.pad), mode="reflect").squeeze(1)

    def _log(self, mel):
        return 10.0 * torch.log10(torch.clamp(mel, min=self.amin)) - self.offset_db

    def num_frames(self, num_samples):
        """Frames of a ``num_samples`` window (centred STFT)."""
        return int(num_samples) // self.hop_length + 1

    def macs(self, num_samples):
        """Multiply-accumulates per window (the STFT and the mel ``MatMul``)."""
        raise NotImplementedError


class DenseConvLogMel(_LogMelBase):
    """Two strided convolutions with the windowed DFT basis of every bin.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((DenseConvLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def __init__(self, frontend):
        super().__init__(frontend)
        window = _window(frontend)
        freqs = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * freqs * torch.arange(self.n_fft, dtype=torch.float64)[None]
        angle = angle / self.n_fft
        self.register_buffer("dft_real", (torch.cos(angle) * window).float()[:, None, :])
        self.register_buffer("dft_imag", (-torch.sin(angle) * window).float()[:, None, :])
        self.register_buffer("mel_fb", frontend.mel_fb.detach().clone())

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        x = self._padded(wavs).unsqueeze(1)
        real = F.conv1d(x, self.dft_real, stride=self.hop_length)
        imag = F.conv1d(x, self.dft_imag, stride=self.hop_length)
        mel = torch.matmul((real * real + imag * imag).transpose(1, 2), self.mel_fb)
        return self._log(mel)

    def macs(self, num_samples):
        """Multiply-accumulates per window."""
        bins = self.n_fft // 2 + 1
        return self.num_frames(num_samples) * bins * (2 * self.n_fft + self.n_mels)


def _used_basis(frontend, lo, hi):
    """``[n_fft, 2 * (hi - lo)]`` windowed DFT basis of bins ``lo..hi`` (real | imag)."""
    n_fft = frontend.n_fft
    angle = 2 * math.pi * torch.arange(n_fft, dtype=torch.float64)[:, None]
    angle = angle * torch.arange(lo, hi, dtype=torch.float64)[None] / n_fft
    window = _window(frontend)[:, None]
    return torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window], 1)


class UsedBinsConvLogMel(_LogMelBase):
    """One strided convolution, real and imaginary parts of the mel-used bins only.

    The power's ``re^2 + im^2`` is folded into the mel ``MatMul`` (its matrix
    stacked twice), so the graph is ``Pad, Conv, Mul, Transpose, MatMul, Log``.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((UsedBinsConvLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def __init__(self, frontend):
        super().__init__(frontend)
        basis = _used_basis(frontend, self.lo, self.hi)  # [n_fft, 2U]
        self.register_buffer("basis", basis.T.float()[:, None, :].contiguous())
        mel = frontend.mel_fb.detach()[self.lo : self.hi]
        self.register_buffer("mel_fb2", torch.cat([mel, mel]).clone())

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        spec = F.conv1d(self._padded(wavs).unsqueeze(1), self.basis, stride=self.hop_length)
        return self._log(torch.matmul((spec * spec).transpose(1, 2), self.mel_fb2))

    def macs(self, num_samples):
        """Multiply-accumulates per window."""
        used = self.hi - self.lo
        return self.num_frames(num_samples) * 2 * used * (self.n_fft + self.n_mels)


class UsedBinsMatMulLogMel(_LogMelBase):
    """The mel-used-bins basis as ``MatMul`` over hop-sized blocks (no ``Conv``).

    Frame ``t`` covers samples ``[t*hop, t*hop + n_fft)``: whole blocks
    ``t .. t+q-1`` plus the first ``r`` samples of block ``t+q`` (``n_fft = q*hop
    + r``). One GEMM ``[blocks, hop] x [hop, q * 2U]`` (and a small one for the
    partial block) gives every block's contribution at every offset; shifted
    slices of it are summed.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((UsedBinsMatMulLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def __init__(self, frontend):
        super().__init__(frontend)
        hop = self.hop_length
        self.q, self.r = divmod(self.n_fft, hop)
        basis = _used_basis(frontend, self.lo, self.hi).float()  # [n_fft, 2U]
        whole = [basis[j * hop : (j + 1) * hop] for j in range(self.q)]
        self.register_buffer("whole", torch.cat(whole, 1).contiguous())  # [hop, q*2U]
        self.register_buffer("part", basis[self.q * hop :].contiguous())  # [r, 2U]
        mel = frontend.mel_fb.detach()[self.lo : self.hi]
        self.register_buffer("mel_fb2", torch.cat([mel, mel]).clone())

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        hop, q, width = self.hop_length, self.q, 2 * (self.hi - self.lo)
        frames = wavs.shape[-1] // hop + 1
        blocks = frames + q  # enough blocks for the last frame's partial one
        x = self._padded(wavs)
        x = F.pad(x, (0, blocks * hop - x.shape[-1]))  # zeros never reach a frame
        x = x.reshape(x.shape[0], blocks, hop)
        y = torch.matmul(x, self.whole)  # [B, blocks, q*2U]
        spec = y[:, 0:frames, 0:width]
        for j in range(1, q):
            spec = spec + y[:, j : j + frames, j * width : (j + 1) * width]
        if self.r:
            spec = spec + torch.matmul(x[:, q : q + frames, : self.r], self.part)
        return self._log(torch.matmul(spec * spec, self.mel_fb2))

    def macs(self, num_samples):
        """Multiply-accumulates per window."""
        used = self.hi - self.lo
        frames = self.num_frames(num_samples)
        return (frames + self.q) * self.hop_length * self.q * 2 * used + frames * 2 * used * (
            self.r + self.n_mels
        )


class _FftOpLogMel(_LogMelBase):
    """Base of the frontends that call an ONNX FFT operator: the window, the used mel rows."""

    def __init__(self, frontend):
        super().__init__(frontend)
        self.register_buffer("window", _window(frontend).float())
        self.register_buffer("mel_fb", frontend.mel_fb.detach()[self.lo : self.hi].clone())

    def _fft_macs(self, num_samples, per_frame=0):
        """Frames x (radix-2 FFT estimate, 2 N log2 N real MACs, + ``per_frame`` + mel product)."""
        fft = 2 * self.n_fft * math.log2(self.n_fft) + per_frame
        return int(self.num_frames(num_samples) * (fft + (self.hi - self.lo) * self.n_mels))


class _StftOp(torch.autograd.Function):
    """``torch.stft`` (not centred) in PyTorch; ONNX ``STFT`` (opset 17) when exported."""

    @staticmethod
    def forward(ctx, x, window, hop):  # noqa: D102
        spec = torch.stft(x, window.shape[0], hop, window=window, center=False,
                          return_complex=True)  # fmt: skip
        return torch.view_as_real(spec.transpose(1, 2))  # [B, frames, bins, 2]

    @staticmethod
    def symbolic(g, x, window, hop):  # noqa: D102
        signal = g.op("Unsqueeze", x, g.op("Constant", value_t=torch.tensor([2])))
        step = g.op("Constant", value_t=torch.tensor(hop, dtype=torch.int64))
        return g.op("STFT", signal, step, window, onesided_i=1)


class StftOpLogMel(_FftOpLogMel):
    """ONNX's ``STFT`` operator (reflect padding done before it).

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((StftOpLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        spec = _StftOp.apply(self._padded(wavs), self.window, self.hop_length)
        spec = spec[:, :, self.lo : self.hi]
        power = (spec * spec).sum(-1)
        return self._log(torch.matmul(power, self.mel_fb))

    def macs(self, num_samples):
        """Multiply-accumulates per window (radix-2 FFT estimate: 2 N log2 N real MACs)."""
        return self._fft_macs(num_samples)


class _RfftOp(torch.autograd.Function):
    """``torch.fft.rfft`` over the last axis; ONNX ``DFT`` (opset 17, onesided) when exported."""

    @staticmethod
    def forward(ctx, frames):  # noqa: D102
        return torch.view_as_real(torch.fft.rfft(frames, dim=-1))

    @staticmethod
    def symbolic(g, frames):  # noqa: D102
        signal = g.op("Unsqueeze", frames, g.op("Constant", value_t=torch.tensor([-1])))
        return g.op("DFT", signal, axis_i=2, onesided_i=1)


def _frames(x, frames, hop, n_fft):
    """``[B, L]`` to overlapping ``[B, frames, n_fft]`` frames by block slices (no Gather)."""
    q, r = divmod(n_fft, hop)
    blocks = frames + q
    x = F.pad(x, (0, blocks * hop - x.shape[-1])).reshape(x.shape[0], blocks, hop)
    parts = [x[:, j : j + frames] for j in range(q)]
    if r:
        parts.append(x[:, q : q + frames, :r])
    return torch.cat(parts, -1)


class DftOpLogMel(_FftOpLogMel):
    """Frames by block slices, the window, then ONNX's ``DFT`` operator.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((DftOpLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        frames = _frames(self._padded(wavs), wavs.shape[-1] // self.hop_length + 1,
                         self.hop_length, self.n_fft)  # fmt: skip
        spec = _RfftOp.apply(frames * self.window)[:, :, self.lo : self.hi]
        return self._log(torch.matmul((spec * spec).sum(-1), self.mel_fb))

    def macs(self, num_samples):
        """Multiply-accumulates per window (radix-2 FFT estimate; the window's N products)."""
        return self._fft_macs(num_samples, per_frame=self.n_fft)


def _split(n_fft, hop):
    """``n_fft = p * q`` with ``q`` dividing ``hop`` and ``p`` near ``sqrt(n_fft)``."""
    best = None
    for q in range(2, n_fft):
        if n_fft % q == 0 and hop % q == 0:
            p = n_fft // q
            if best is None or abs(math.log(p / q)) < abs(math.log(best[0] / best[1])):
                best = (p, q)
    if best is None:
        raise ValueError(f"no factor of n_fft={n_fft} divides hop={hop}: use another frontend")
    return best


class FactoredLogMel(_LogMelBase):
    """A two-stage DFT as GEMMs, window and twiddles folded in, mel-used bins only.

    With ``n_fft = p * q`` (``q`` divides the hop), sample ``n = q*a + b`` and bin
    ``k = k1 + p*k2``: ``X[k] = sum_b D[b, k2] * sum_a x[q*a + b] C_b[a, k1]``,
    where ``C_b[a, k1] = w[q*a + b] exp(-2 pi i (a k1 / p + b k1 / n_fft))`` holds
    the window and the twiddle, and ``D[b, k2] = exp(-2 pi i b k2 / q)``. The
    signal, reshaped ``[B, q (b), rows]``, is framed along the rows (stride
    ``hop / q``); stage 1 is ``q`` GEMMs ``[frames, p] x [p, 2p]`` (one per
    ``b``), stage 2 one GEMM ``[2 K2, q] x [q, frames * 2p]`` over the needed
    ``k2`` only; the bins come out in order ``k = p*k2 + k1``, so the mel
    ``MatMul`` takes a plain slice of the filterbank.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)
    >>> wav = 0.1 * torch.randn(2, 16000)
    >>> bool((FactoredLogMel(frontend)(wav) - frontend(wav)).abs().max() < 1e-3)
    True
    """

    def __init__(self, frontend):
        super().__init__(frontend)
        n_fft = self.n_fft
        self.p, self.q = p, q = _split(n_fft, self.hop_length)
        window = _window(frontend).reshape(p, q)  # [a, b]
        a = torch.arange(p, dtype=torch.float64)[:, None]
        k1 = torch.arange(p, dtype=torch.float64)[None]
        stage1 = []
        for b in range(q):
            angle = 2 * math.pi * (a * k1 / p + b * k1 / n_fft)  # [a, k1]
            w = window[:, b : b + 1]
            stage1.append(torch.cat([torch.cos(angle) * w, -torch.sin(angle) * w], 1))
        self.register_buffer("stage1", torch.stack(stage1).float())  # [q, p, 2p]
        self.k2_lo, self.k2_hi = self.lo // p, (self.hi - 1) // p + 1
        k2 = torch.arange(self.k2_lo, self.k2_hi, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * k2 * torch.arange(q, dtype=torch.float64)[None] / q  # [k2, b]
        self.register_buffer("stage2", torch.cat([torch.cos(angle), -torch.sin(angle)]).float())
        mel = torch.zeros(p * (self.k2_hi - self.k2_lo), frontend.n_mels)
        bins = frontend.mel_fb.detach()[p * self.k2_lo : p * self.k2_hi]
        mel[: len(bins)] = bins
        self.register_buffer("mel_fb", mel)

    def forward(self, wavs):
        """``[B, T]`` waveforms to ``[B, frames, n_mels]`` log-mels."""
        p, q = self.p, self.q
        batch, frames = wavs.shape[0], wavs.shape[-1] // self.hop_length + 1
        x = self._padded(wavs)
        rows = -(-x.shape[-1] // q)
        x = F.pad(x, (0, rows * q - x.shape[-1])).reshape(batch, rows, q).transpose(1, 2)
        x = _frames(x.reshape(batch * q, rows), frames, self.hop_length // q, p)
        y = torch.matmul(x.reshape(batch, q, frames, p), self.stage1)  # [B, b, F, 2p]
        k2 = self.k2_hi - self.k2_lo
        z = torch.matmul(self.stage2, y.reshape(batch, q, frames * 2 * p))  # [B, 2K2, F*2p]
        z = z.reshape(batch, 2, k2, frames, 2, p)
        real = z[:, 0, :, :, 0] - z[:, 1, :, :, 1]  # [B, K2, F, p]
        imag = z[:, 0, :, :, 1] + z[:, 1, :, :, 0]
        power = (real * real + imag * imag).transpose(1, 2).reshape(batch, frames, k2 * p)
        return self._log(torch.matmul(power, self.mel_fb))

    def macs(self, num_samples):
        """Multiply-accumulates per window."""
        frames, p, q = self.num_frames(num_samples), self.p, self.q
        k2 = self.k2_hi - self.k2_lo
        return frames * (q * p * 2 * p + 2 * k2 * q * 2 * p + k2 * p * (3 + self.n_mels))


FRONTENDS = {
    "dense": DenseConvLogMel,
    "used_conv": UsedBinsConvLogMel,
    "used_matmul": UsedBinsMatMulLogMel,
    "stft_op": StftOpLogMel,
    "dft_op": DftOpLogMel,
    "factored": FactoredLogMel,
}
DEFAULT_FRONTEND = "factored"


def onnx_frontend(frontend, kind=None):
    """The exportable twin of ``frontend`` (a :class:`LogMel`) of the given ``kind``.

    Without ``kind``: :data:`DEFAULT_FRONTEND` (``factored``) where ``n_fft`` and the
    hop share a factor and it needs fewer MACs than ``used_conv``, else ``used_conv``.

    Example
    -------
    >>> from tinyclap.audio.features import LogMel
    >>> type(onnx_frontend(LogMel(), "dense")).__name__
    'DenseConvLogMel'
    >>> type(onnx_frontend(LogMel(hop_length=441))).__name__  # no common factor
    'UsedBinsConvLogMel'
    """
    if kind is None:
        fallback = UsedBinsConvLogMel(frontend)
        try:
            chosen = FRONTENDS[DEFAULT_FRONTEND](frontend)
        except ValueError:
            return fallback
        samples = 10 * frontend.n_fft
        return chosen if chosen.macs(samples) < fallback.macs(samples) else fallback
    if kind not in FRONTENDS:
        raise ValueError(f"unknown ONNX frontend {kind!r}; choose one of {sorted(FRONTENDS)}")
    return FRONTENDS[kind](frontend)
