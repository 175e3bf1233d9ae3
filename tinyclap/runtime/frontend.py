"""The CLAP log-mel frontend in numpy, at FFT cost (no torch).

:class:`HostLogMel` computes what :class:`tinyclap.audio.features.LogMel`
computes (centred, reflect-padded frames, periodic Hann window, power
spectrum, librosa's Slaney mel filterbank, ``10 log10(max(x, amin))``) with
an rFFT per frame, and keeps only the FFT bins that the mel filterbank uses:
for CLAP 2022 (50-14000 Hz at 44.1 kHz, n_fft 1024) that is 324 of 513 bins
(2 to 325: the filterbank's non-zero columns), so the power spectrum and the mel
product touch 63% of the spectrum, and the mel product runs in bands of
mels over only the bins each band uses (:func:`mel_bands`). The mel
filterbank is rebuilt here in numpy exactly as ``librosa.filters.mel`` builds
it (no librosa needed at run time; the tests compare the two).

The single-file ONNX audio graph cannot call an FFT: it computes a factored
two-stage DFT as matrix products (:mod:`tinyclap.deploy.onnx_frontends`); the
rFFT here costs ``O(n_fft log n_fft)`` per frame.

:func:`check_frontend_settings` bounds the settings (the one check, used by
:class:`HostLogMel`, :class:`tinyclap.audio.features.LogMel` and both folder
loaders): a shared folder's ``n_fft: 1000000000`` is refused in one line
instead of ending in a numpy allocation error.
"""

import math

import numpy as np

try:  # scipy's pocketfft transforms float32 directly and is ~2x faster; optional
    import scipy.fft as _fft

    _FFT_KW = {"workers": 1, "overwrite_x": True}
except ImportError:  # the torch-free runtime needs numpy only
    _fft = np.fft
    _FFT_KW = {}


DEFAULTS = {"sample_rate": 44100, "n_fft": 1024, "hop_length": 320, "win_length": 1024,
            "n_mels": 64, "f_min": 50.0, "f_max": 14000.0, "amin": 1e-10, "ref": 1.0}  # fmt: skip
# Sane bounds, far outside every CLAP frontend (16-48 kHz, n_fft 512-1024, 64 mels, 5-10 s)
# and far below what exhausts memory: (low, high), inclusive.
BOUNDS = {"sample_rate": (1000, 384000), "n_fft": (16, 65536), "hop_length": (1, 65536),
          "win_length": (1, 65536), "n_mels": (1, 1024), "f_min": (0.0, 192000.0),
          "f_max": (1.0, 192000.0), "amin": (1e-30, 1.0), "ref": (1e-30, 1e30)}  # fmt: skip
MAX_CLIP_SECONDS = 600.0
MAX_WINDOW_FRAMES = 100_000  # frames of one window (CLAP 2022: 690)


class FrontendSettingsError(ValueError):
    """Log-mel or window settings outside sane bounds (e.g. from a hostile folder)."""


def _number(name, value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise FrontendSettingsError(f"{where}: {name}={value!r} is not a number")
    return value


def check_frontend_settings(config, clip_seconds=None, where="frontend settings"):
    """Raise :class:`FrontendSettingsError` (one line, naming ``where``) on insane settings.

    Parameters
    ----------
    config : dict
        Log-mel settings (``export.json["frontend"]``, :attr:`LogMel.config`); missing
        keys take the CLAP 2022 defaults.
    clip_seconds : float, optional
        The analysis window, checked too (with the frames it gives).
    where : str
        Named in the error (e.g. the file the settings come from).

    Returns
    -------
    dict
        The settings with defaults filled in.

    Example
    -------
    >>> check_frontend_settings({"sample_rate": 16000, "f_max": 8000.0})["n_fft"]
    1024
    >>> check_frontend_settings({"n_fft": 1000000000}, where="export.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tinyclap.runtime.frontend.FrontendSettingsError: export.json: n_fft=1000000000 is outside ...
    """
    if not isinstance(config, dict):
        raise FrontendSettingsError(f"{where}: the frontend settings are not a mapping")
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise FrontendSettingsError(f"{where}: unknown frontend setting(s) {unknown}")
    settings = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    for name, (low, high) in BOUNDS.items():
        value = _number(name, settings[name], where)
        if not low <= value <= high:
            raise FrontendSettingsError(f"{where}: {name}={value!r} is outside {low:g}..{high:g}")
    if settings["win_length"] > settings["n_fft"]:
        raise FrontendSettingsError(
            f"{where}: win_length={settings['win_length']} is longer than n_fft={settings['n_fft']}"
        )
    if not settings["f_min"] < settings["f_max"] <= settings["sample_rate"] / 2:
        raise FrontendSettingsError(
            f"{where}: f_min={settings['f_min']}, f_max={settings['f_max']}: need "
            f"f_min < f_max <= sample_rate / 2 = {settings['sample_rate'] / 2:g}"
        )
    if clip_seconds is not None:
        seconds = _number("clip_seconds", clip_seconds, where)
        if not 0 < seconds <= MAX_CLIP_SECONDS:
            raise FrontendSettingsError(
                f"{where}: clip_seconds={seconds!r} is outside (0, {MAX_CLIP_SECONDS:g}]"
            )
        frames = int(seconds * settings["sample_rate"]) // int(settings["hop_length"]) + 1
        if frames > MAX_WINDOW_FRAMES:
            raise FrontendSettingsError(
                f"{where}: a {seconds:g} s window at hop {settings['hop_length']} gives "
                f"{frames} frames, more than {MAX_WINDOW_FRAMES}"
            )
    return settings


def hz_to_mel(freqs):
    """Slaney mel scale (librosa's default, ``htk=False``).

    Example
    -------
    >>> round(float(hz_to_mel(1000.0)), 9)
    15.0
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freqs / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_part = freqs >= min_log_hz
    safe = np.where(log_part, freqs, min_log_hz)
    return np.where(log_part, min_log_mel + np.log(safe / min_log_hz) / logstep, mels)


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`.

    Example
    -------
    >>> round(float(mel_to_hz(15.0)), 6)
    1000.0
    """
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_part = mels >= min_log_mel
    return np.where(log_part, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max):
    """``[n_mels, n_fft // 2 + 1]`` Slaney-normalised triangles, as ``librosa.filters.mel``.

    Example
    -------
    >>> mel_filterbank(44100, 1024, 64, 50.0, 14000.0).shape
    (64, 513)
    """
    fftfreqs = np.fft.rfftfreq(n=int(n_fft), d=1.0 / float(sample_rate))
    mel_f = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), int(n_mels) + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((int(n_mels), len(fftfreqs)), dtype=np.float32)
    for i in range(int(n_mels)):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : int(n_mels) + 2] - mel_f[: int(n_mels)]))[:, None]
    return weights


def hann_window(length):
    """Periodic Hann window (``torch.hann_window(length, periodic=True)``).

    Example
    -------
    >>> hann_window(4).round(3).tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    n = np.arange(int(length), dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * n / int(length))


class HostLogMel:
    """Waveforms ``[B, T]`` (float32) to log-mels ``[B, frames, n_mels]``, in numpy.

    Parameters
    ----------
    sample_rate, n_fft, hop_length, win_length, n_mels, f_min, f_max, amin, ref
        As :class:`tinyclap.audio.features.LogMel` (same defaults: CLAP 2022).

    Example
    -------
    >>> frontend = HostLogMel()
    >>> frontend(np.zeros((2, 5 * 44100), np.float32)).shape
    (2, 690, 64)
    >>> frontend.bins  # FFT bins the filterbank uses, of 513
    324
    """

    CHUNK = 128  # frames per FFT block
    MELS_PER_BAND = 8  # mel product in bands of 8 mels over the bins they use (7x fewer MACs)

    def __init__(
        self,
        sample_rate=44100,
        n_fft=1024,
        hop_length=320,
        win_length=1024,
        n_mels=64,
        f_min=50.0,
        f_max=14000.0,
        amin=1e-10,
        ref=1.0,
    ):
        check_frontend_settings({"sample_rate": sample_rate, "n_fft": n_fft,
                                 "hop_length": hop_length, "win_length": win_length,
                                 "n_mels": n_mels, "f_min": f_min, "f_max": f_max,
                                 "amin": amin, "ref": ref})  # fmt: skip
        self.sample_rate, self.n_fft = int(sample_rate), int(n_fft)
        self.hop_length, self.win_length = int(hop_length), int(win_length)
        self.n_mels, self.f_min, self.f_max = int(n_mels), float(f_min), float(f_max)
        self.amin, self.ref = float(amin), float(ref)
        fb = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        used = np.flatnonzero(fb.any(axis=0))
        self.first_bin, self.last_bin = int(used[0]), int(used[-1]) + 1
        self.mel_fb = np.ascontiguousarray(fb[:, self.first_bin : self.last_bin].T)  # [bins, mels]
        self.bands = mel_bands(self.mel_fb, self.MELS_PER_BAND)
        window = np.zeros(self.n_fft)
        offset = (self.n_fft - self.win_length) // 2  # torch.stft centres a shorter window
        window[offset : offset + self.win_length] = hann_window(self.win_length)
        self.window = window.astype(np.float32)
        self.offset_db = 10.0 * math.log10(max(self.amin, self.ref))

    @classmethod
    def from_config(cls, config):
        """A frontend from a settings dict (``export.json["frontend"]``).

        Example
        -------
        >>> HostLogMel.from_config({"sample_rate": 16000, "f_max": 8000.0}).bins
        508
        """
        return cls(**config)

    @property
    def bins(self):
        """Number of FFT bins computed into the mel product."""
        return self.last_bin - self.first_bin

    def num_frames(self, num_samples):
        """Frames produced for ``num_samples`` input samples.

        Example
        -------
        >>> HostLogMel().num_frames(5 * 44100)
        690
        """
        return int(num_samples) // self.hop_length + 1

    def frames(self, wavs):
        """Centred frames ``[B, frames, n_fft]`` of ``[B, T]``: a strided view, not windowed."""
        pad = self.n_fft // 2
        if wavs.shape[-1] <= pad:
            raise ValueError(f"{wavs.shape[-1]} samples: reflect padding needs more than {pad}")
        # reflect padding (as torch.stft's pad_mode="reflect"); np.pad is slower
        padded = np.concatenate([wavs[:, pad:0:-1], wavs, wavs[:, -2 : -pad - 2 : -1]], axis=-1)
        view = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft, axis=-1)
        return view[:, :: self.hop_length]

    def __call__(self, wavs):
        """Log-mels of ``wavs`` (``[B, T]`` or ``[T]``), float32.

        Frames go through the FFT in blocks of :attr:`CHUNK` (a few hundred kB
        that stay in cache), windowed into one reused buffer; each block's
        spectrum is squared in place as interleaved float32 (re, im) pairs and
        multiplied, band by band (:func:`mel_bands`), by the filterbank rows
        repeated for re and im, so ``re^2 @ W + im^2 @ W`` is the power's mel
        product without a complex-to-real pass.
        """
        wavs = np.asarray(wavs, dtype=np.float32)
        squeeze = wavs.ndim == 1
        if squeeze:
            wavs = wavs[None]
        frames = self.frames(wavs)
        out = np.empty((frames.shape[0], frames.shape[1], self.n_mels), dtype=np.float32)
        rows = min(self.CHUNK, frames.shape[1])
        block = np.empty((rows, self.n_fft), np.float32)
        band_out = np.empty((rows, self.MELS_PER_BAND), np.float32)
        lo, hi = 2 * self.first_bin, 2 * self.last_bin
        for b in range(frames.shape[0]):
            for start in range(0, frames.shape[1], rows):
                chunk = frames[b, start : start + rows]
                n = len(chunk)
                np.multiply(chunk, self.window, out=block[:n])
                spec = _fft.rfft(block[:n], axis=-1, **_FFT_KW)  # numpy's: complex128
                spec = spec.astype(np.complex64, copy=False).view(np.float32)[:, lo:hi]
                np.square(spec, out=spec)  # re^2, im^2 side by side
                target = out[b, start : start + n]
                for m0, m1, b0, b1, weights in self.bands:
                    np.matmul(spec[:, b0:b1], weights, out=band_out[:n, : m1 - m0])
                    target[:, m0:m1] = band_out[:n, : m1 - m0]
        np.maximum(out, self.amin, out=out)
        np.log10(out, out=out)
        out *= 10.0
        if self.offset_db:
            out -= self.offset_db
        return out[0] if squeeze else out


def mel_bands(mel_fb, mels_per_band=8):
    """The filterbank ``[bins, mels]`` cut into bands of mels, each over the bins it uses.

    Returns ``[(m0, m1, b0, b1, W)]``: mels ``m0:m1`` read interleaved spectrum
    columns ``b0:b1`` (twice the bin range: re and im) through ``W``, the
    filterbank rows of those bins each repeated twice. A mel triangle spans a
    few neighbouring bins, so the banded product does about 7x fewer
    multiply-adds than the dense one at CLAP 2022's settings.

    Example
    -------
    >>> fb = mel_filterbank(44100, 1024, 64, 50.0, 14000.0)[:, 2:326].T
    >>> bands = mel_bands(fb, 8)
    >>> len(bands), bands[0][:4]
    (8, (0, 8, 0, 22))
    """
    bands = []
    for m0 in range(0, mel_fb.shape[1], int(mels_per_band)):
        m1 = min(m0 + int(mels_per_band), mel_fb.shape[1])
        used = np.flatnonzero(mel_fb[:, m0:m1].any(axis=1))
        if len(used) == 0:
            used = np.array([0])
        b0, b1 = int(used[0]), int(used[-1]) + 1
        weights = np.repeat(mel_fb[b0:b1, m0:m1], 2, axis=0)  # rows for re^2 and im^2
        bands.append((m0, m1, 2 * b0, 2 * b1, np.ascontiguousarray(weights, np.float32)))
    return bands
