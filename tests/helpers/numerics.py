"""Error bounds for float32 pipelines, derived from rounding models instead of tuned on one CPU.

Float32 kernels differ between CPUs (AVX2, AVX-512, AMX: other blockings and
summation orders), so two float32 implementations agree only up to their
rounding errors, which no test can pin to one machine's value. These helpers
compare a float32 result with a float64 reference and bound the difference
from first principles:

* :func:`logmel_error_bound`: per log-mel cell, from a per-bin error model of a
  float32 DFT (``|dX_k| <= gamma * ||X||_2`` per frame) carried exactly through
  the mel sums and the log;
* :func:`assert_logmels_agree`: two float32 frontends within twice that bound.

Carried through a student by its float64 Jacobian, this worst-case bound is far
too loose for scores (about 5 for a cosine on the timeline test's student: the
near-floor cells dominate it), so score-level tests assert decisions instead
(tests/deploy/test_timeline_export.py).

A real defect (a wrong window, hop, mel row or filter) moves log-mels by
decibels: far above these bounds, which the tests show on a broken frontend.
"""

import copy
import math

import numpy as np
import torch

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


def dft_bin_gamma(n_fft):
    """Relative per-bin error of a float32 DFT of ``n_fft`` points: ``|dX_k| <= gamma ||X||_2``.

    A backward-stable radix-2 FFT has ``||dX||_2 <= c log2(n) eps ||X||_2``
    with ``c`` about 5 for the butterflies and twiddles (Higham, *Accuracy and
    Stability of Numerical Algorithms*, 24.1); the GEMM-factored and dense
    DFT frontends sum ``sqrt(n)``-term (two stages of 32) or ``n``-term dot
    products whose rounding grows like ``sqrt(terms) eps`` on random-sign
    data. ``max(5 log2 n, 2 sqrt n) eps`` covers both; every bin's error is
    at most the whole vector's.

    Example
    -------
    >>> round(dft_bin_gamma(1024) / EPS32)
    64
    """
    return max(5 * math.log2(n_fft), 2 * math.sqrt(n_fft)) * EPS32


def float64_logmel(logmel):
    """A float64 copy of a :class:`~tinyclap.audio.features.LogMel` (same window and filterbank)."""
    return copy.deepcopy(logmel).double()


@torch.no_grad()
def logmel_error_bound(logmel, wavs):
    """Largest error (dB) a float32 frontend may make on each log-mel cell of ``wavs``.

    Parameters
    ----------
    logmel : tinyclap.audio.features.LogMel
        The frontend's settings (its float64 copy computes the exact spectrum).
    wavs : Tensor ``[B, T]``
        The float32 input (exactly representable in float64).

    Returns
    -------
    Tensor ``[B, frames, n_mels]`` (float64)
        ``max(hi - exact, exact - lo)`` where ``[lo, hi]`` is the dB interval of
        the mel power under the per-bin DFT error of :func:`dft_bin_gamma`,
        plus the rounding of the power sums (``(n_bins + 4) eps`` relative)
        and of the dB value itself; the ``amin`` floor clamps both ends as
        the frontend does.
    """
    exact = float64_logmel(logmel)
    spec = torch.stft(wavs.double(), n_fft=exact.n_fft, hop_length=exact.hop_length,
                      win_length=exact.win_length, window=exact.window, center=True,
                      pad_mode="reflect", return_complex=True)  # fmt: skip
    mag = spec.abs()  # [B, bins, frames]
    delta = dft_bin_gamma(exact.n_fft) * mag.pow(2).sum(1, keepdim=True).sqrt()
    fb = exact.mel_fb  # [bins, mels], non-negative
    power = mag.pow(2).transpose(1, 2) @ fb
    slack = (2 * mag * delta + delta.pow(2)).transpose(1, 2) @ fb
    slack = slack + power * (fb.shape[0] + 4) * EPS32

    def db(p):
        return 10.0 * torch.log10(torch.clamp(p, min=exact.amin))

    centre = db(power)
    spread = torch.maximum(db(power + slack) - centre, centre - db(power - slack))
    return spread + centre.abs() * 4 * EPS32 + 1e-6


def assert_logmels_agree(got, expected, logmel, wavs):
    """Two float32 frontends' log-mels of ``wavs`` differ by at most twice the float32 bound.

    Each lies within :func:`logmel_error_bound` of the exact values, so their
    difference is within twice it; a wrong window, hop or mel row is far outside.
    """
    got, expected = (torch.as_tensor(np.asarray(x)).double() for x in (got, expected))
    assert got.shape == expected.shape, (got.shape, expected.shape)
    bound = logmel_error_bound(logmel, torch.as_tensor(np.asarray(wavs)))
    excess = (got - expected).abs() - 2 * bound.reshape(got.shape)
    assert float(excess.max()) <= 0, (
        f"log-mels differ beyond the float32 bound by {excess.max():.3g} dB"
    )
