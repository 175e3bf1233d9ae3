"""The CLAP log-mel frontend.

Microsoft CLAP 2022 (Cnn14) computes features with torchlibrosa: a centred,
reflect-padded STFT with a periodic Hann window, the power spectrum, librosa's
Slaney mel filterbank and ``10 * log10(max(x, amin))`` (ref 1.0, no top_db).
:class:`LogMel` computes the same thing with ``torch.stft`` (the test suite
checks it against torchlibrosa to 1e-4). Defaults are CLAP 2022's: 44.1 kHz,
n_fft 1024, hop 320, 64 mels between 50 and 14000 Hz, so a 5 s clip gives
690 frames x 64 mels.
"""

import librosa
import torch

from tinyclap.runtime.frontend import check_frontend_settings

# The MS-CLAP 2022 log-mel settings: tinyCLAP students read audio this way for
# both MS-CLAP versions, and official tinyCLAP checkpoints expect it.
CLAP2022_FRONTEND = {
    "sample_rate": 44100,
    "n_fft": 1024,
    "hop_length": 320,
    "win_length": 1024,
    "n_mels": 64,
    "f_min": 50.0,
    "f_max": 14000.0,
}
# LAION CLAP's frontend (ClapFeatureExtractor: 48 kHz, hop 480, 64 mels) in LogMel's terms.
LAION_FRONTEND = {
    "sample_rate": 48000,
    "n_fft": 1024,
    "hop_length": 480,
    "win_length": 1024,
    "n_mels": 64,
    "f_min": 50.0,
    "f_max": 14000.0,
}


def window_frames(frontend_config, clip_seconds):
    """Log-mel frames of one window of ``clip_seconds``: a student's input height.

    Example
    -------
    >>> window_frames({"sample_rate": 44100}, 5.0)
    690
    """
    frontend = LogMel(**frontend_config)
    return frontend.num_frames(int(round(clip_seconds * frontend.sample_rate)))


class LogMel(torch.nn.Module):
    """Waveforms ``[B, T]`` to log-mel "images" ``[B, frames, n_mels]``.

    Parameters
    ----------
    sample_rate : int
        Input sample rate in Hz.
    n_fft, hop_length, win_length : int
        STFT size, hop and window length in samples.
    n_mels : int
        Number of mel bands.
    f_min, f_max : float
        Mel filterbank range in Hz.
    amin : float
        Floor applied to the mel power before the log.
    ref : float
        Reference power (0 dB).

    Example
    -------
    >>> frontend = LogMel()
    >>> frontend(torch.zeros(2, 5 * 44100)).shape
    torch.Size([2, 690, 64])
    """

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
        super().__init__()
        check_frontend_settings({"sample_rate": sample_rate, "n_fft": n_fft,
                                 "hop_length": hop_length, "win_length": win_length,
                                 "n_mels": n_mels, "f_min": f_min, "f_max": f_max,
                                 "amin": amin, "ref": ref})  # fmt: skip
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length)
        self.n_mels = int(n_mels)
        self.amin = float(amin)
        self.ref = float(ref)
        mel_fb = librosa.filters.mel(
            sr=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=f_min,
            fmax=f_max,
        )
        self.register_buffer("mel_fb", torch.from_numpy(mel_fb.T).float(), False)
        window = torch.hann_window(self.win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)
        self.f_min, self.f_max = float(f_min), float(f_max)

    @classmethod
    def from_config(cls, config):
        """A frontend from a settings dict (e.g. a teacher's ``frontend_config``).

        Example
        -------
        >>> LogMel.from_config({"sample_rate": 16000, "f_max": 8000.0}).sample_rate
        16000
        """
        return cls(**config)

    @property
    def config(self):
        """The constructor arguments, as a dict (what checkpoints store)."""
        keys = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "f_min", "f_max")
        return {key: getattr(self, key) for key in keys}

    def num_frames(self, num_samples):
        """Number of frames produced for ``num_samples`` input samples.

        Example
        -------
        >>> LogMel().num_frames(5 * 44100)
        690
        """
        return int(num_samples) // self.hop_length + 1

    def forward(self, wavs):
        """Compute log-mels of ``wavs`` (``[B, T]`` or ``[T]``)."""
        squeeze = wavs.dim() == 1
        if squeeze:
            wavs = wavs.unsqueeze(0)
        spec = torch.stft(
            wavs,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec.real.pow(2) + spec.imag.pow(2)  # [B, F, frames]
        mel = torch.matmul(power.transpose(1, 2), self.mel_fb)  # [B, frames, mels]
        logmel = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
        logmel = logmel - 10.0 * torch.log10(torch.tensor(max(self.amin, self.ref)))
        return logmel[0] if squeeze else logmel

    def extra_repr(self):
        """Settings shown in the module repr."""
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}, "
            f"f_min={self.f_min}, f_max={self.f_max}"
        )
