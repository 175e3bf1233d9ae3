"""Read long audio files window by window, in bounded memory.

:func:`tinyclap.audio.io.load_audio` reads a whole file; a one-hour recording at
44.1 kHz is 635 MB of float32 before resampling. :class:`AudioStream` reads the
file in blocks with soundfile, mixes each block to mono and resamples it in
chunks, and :class:`WindowStream` cuts the stream into fixed windows at a hop.
What they hold at any time is a few chunks, whatever the file's length.

The chunks are resampled with the same filter as :func:`tinyclap.audio.io.resample`
(torchaudio's sinc, or SciPy's polyphase filter for odd rate pairs), each with
enough input context on both sides, and chunk boundaries fall on multiples of the
filter's period, so the streamed signal equals the whole-file resampling (to float
rounding, see ``tests/audio/test_stream.py``). The windows are those of
:func:`tinyclap.audio.windows.split_windows`: starts every ``hop`` samples, plus
one last window aligned to the end of the file when the hop leaves a tail.
"""

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tinyclap.audio.io import MAX_SINC_KERNEL, AudioLoadError, describe_source, resample
from tinyclap.audio.windows import pad_to_length

READ_BLOCK = 65536  # frames per soundfile read


def resample_context(orig_sr, target_sr):
    """Input samples of context that one resampled output sample depends on (each side).

    Rounded up to a multiple of the rate ratio's input period (``orig_sr / gcd``),
    so that chunks cut at that context start on a period boundary.

    Example
    -------
    >>> resample_context(44100, 16000)  # 441-sample periods; the sinc spans 17 + 441
    882
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    g = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // g, target_sr // g
    if orig * new > MAX_SINC_KERNEL:  # scipy.signal.resample_poly: Kaiser FIR, 10 * max taps
        reach = math.ceil(10 * max(orig, new) / new) + 1
    else:  # torchaudio: lowpass_filter_width 6, rolloff 0.99; pads (width, width + orig)
        reach = math.ceil(6 * orig / (0.99 * min(orig, new))) + orig
    return math.ceil(reach / orig) * orig


@functools.lru_cache(maxsize=8)
def chunk_resampler(orig_sr, target_sr):
    """A function resampling chunks like :func:`tinyclap.audio.io.resample`, kernel built once.

    torchaudio's ``resample`` rebuilds its sinc kernel on every call (0.25 s for
    44.1 -> 16 kHz, more than resampling 10 s of audio): the stream builds it once
    per rate pair (cached) and applies it with torchaudio's own second step, so
    results are the same bit for bit.

    Example
    -------
    >>> x = torch.randn(4410)
    >>> bool(torch.equal(chunk_resampler(44100, 16000)(x), resample(x, 44100, 16000)))
    True
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    g = math.gcd(orig_sr, target_sr)
    if orig_sr == target_sr or (orig_sr // g) * (target_sr // g) > MAX_SINC_KERNEL:
        return lambda wav: resample(wav, orig_sr, target_sr)
    try:  # the two halves of torchaudio.functional.resample (private names)
        from torchaudio.functional.functional import (
            _apply_sinc_resample_kernel,
            _get_sinc_resample_kernel,
        )

        kernel, width = _get_sinc_resample_kernel(
            orig_sr, target_sr, g, 6, 0.99, "sinc_interp_hann", None, torch.device("cpu"),
            torch.float32,
        )  # fmt: skip
    except (ImportError, TypeError):  # another torchaudio: rebuild the kernel each time
        return lambda wav: resample(wav, orig_sr, target_sr)
    return lambda wav: _apply_sinc_resample_kernel(wav, orig_sr, target_sr, g, kernel, width)


class AudioStream:
    """A file as consecutive mono float32 chunks at ``sample_rate``, read block by block.

    Concatenated, the chunks equal ``load_audio(path, sample_rate)`` (to float
    rounding); the stream never holds more than about two chunks of input.

    Parameters
    ----------
    path : str or Path
        Any file soundfile reads; channels are averaged.
    sample_rate : int, optional
        Target rate in Hz (``None``: the file's).
    chunk_seconds : float
        Input seconds resampled at a time.
    manifest_id : str, optional
        Named in error messages.

    Attributes
    ----------
    file_sample_rate, file_frames : int
        The file's rate and length in frames (from its header).
    num_samples : int
        Expected length at ``sample_rate``.
    peak_samples : int
        Most samples held at once so far (input pending + chunk being returned).

    Example
    -------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.zeros((44100 * 3, 2)), 44100)
    >>> stream = AudioStream(f, 16000, chunk_seconds=1.0)
    >>> [len(c) for c in stream]
    [16000, 16000, 16000]
    """

    def __init__(self, path, sample_rate=None, chunk_seconds=10.0, manifest_id=None):
        self.path = Path(path)
        self.source = describe_source(path, manifest_id)
        if not self.path.is_file():
            raise AudioLoadError(f"audio file not found: {self.source}")
        try:
            info = sf.info(str(self.path))
        except Exception as err:  # libsndfile raises several error types
            raise AudioLoadError(f"cannot read audio file {self.source}: {err}") from err
        self.file_sample_rate = int(info.samplerate)
        self.file_frames = int(info.frames)
        self.sample_rate = int(sample_rate or self.file_sample_rate)
        g = math.gcd(self.file_sample_rate, self.sample_rate)
        self._orig, self._new = self.file_sample_rate // g, self.sample_rate // g
        self.num_samples = math.ceil(self._new * self.file_frames / self._orig)
        periods = max(1, round(float(chunk_seconds) * self.file_sample_rate / self._orig))
        self.chunk_frames = periods * self._orig
        self.context = (
            0
            if self._orig == self._new
            else resample_context(self.file_sample_rate, self.sample_rate)
        )
        self.peak_samples = 0
        self._resample = chunk_resampler(self.file_sample_rate, self.sample_rate)

    def _blocks(self):
        """Mono float32 blocks of the file, checked."""
        try:
            with sf.SoundFile(str(self.path)) as handle:
                while True:
                    data = handle.read(READ_BLOCK, dtype="float32", always_2d=True)
                    if data.shape[0] == 0:
                        return
                    if not np.isfinite(data).all():
                        raise AudioLoadError(f"audio file holds NaN or Inf samples: {self.source}")
                    yield torch.from_numpy(data.mean(axis=1))
        except AudioLoadError:
            raise
        except Exception as err:
            raise AudioLoadError(f"cannot read audio file {self.source}: {err}") from err

    def _hold(self, *sizes):
        self.peak_samples = max(self.peak_samples, int(sum(sizes)))

    def __iter__(self):
        """Yield the resampled chunks (``[n]`` float32 tensors, ``n >= 1``)."""
        pending = torch.zeros(0)  # input samples from absolute frame `pending_start`
        pending_start = 0
        cursor = 0  # first input frame not yet resampled (a multiple of the period)
        read = 0
        for block in self._blocks():
            read += len(block)
            pending = torch.cat([pending, block])
            self._hold(len(pending))
            if self._orig == self._new:  # nothing to resample: pass the blocks on
                yield pending
                pending = torch.zeros(0)
                continue
            while pending_start + len(pending) >= cursor + self.chunk_frames + self.context:
                left = max(0, cursor - self.context)
                segment = pending[left - pending_start : cursor + self.chunk_frames + self.context
                                  - pending_start]  # fmt: skip
                out = self._resample(segment)
                skip = (cursor - left) // self._orig * self._new
                chunk = out[skip : skip + self.chunk_frames // self._orig * self._new]
                self._hold(len(pending), len(out))
                yield chunk.contiguous()
                cursor += self.chunk_frames
                keep = max(0, cursor - self.context)
                pending, pending_start = pending[keep - pending_start :], keep
        if read == 0:
            raise AudioLoadError(f"audio file has no samples: {self.source}")
        self.num_samples = math.ceil(self._new * read / self._orig)
        if self._orig == self._new or cursor >= read:
            return
        left = max(0, cursor - self.context)
        out = self._resample(pending[left - pending_start :])
        self._hold(len(pending), len(out))
        skip = (cursor - left) // self._orig * self._new
        done = cursor // self._orig * self._new
        yield out[skip : skip + self.num_samples - done].contiguous()


class WindowStream:
    """Fixed windows of a long file, read and resampled as a stream (bounded memory).

    Yields ``(start, window)`` with ``start`` in samples at ``sample_rate``: the
    windows of ``split_windows(load_audio(path, sample_rate), window_samples, hop)``.

    Parameters
    ----------
    path : str or Path
        The audio file.
    sample_rate : int
        Rate the windows are cut at.
    window_samples : int
        Window length.
    hop : int, optional
        Samples between window starts (default: ``window_samples``).
    pad_mode : str
        Padding of a file shorter than one window (see ``pad_to_length``).
    chunk_seconds : float
        Input seconds read and resampled at a time.
    manifest_id : str, optional
        Named in error messages.

    Attributes
    ----------
    num_samples : int
        The file's length at ``sample_rate`` (exact once iterated).
    peak_samples : int
        Most audio samples held at once by the reader (its buffers and the
        resampler's), for checking that memory does not grow with the file.

    Example
    -------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "ramp.wav")
    >>> sf.write(f, np.linspace(-1, 1, 10), 8000, subtype="FLOAT")
    >>> [start for start, _ in WindowStream(f, 8000, 4, hop=3)]
    [0, 3, 6]
    """

    def __init__(self, path, sample_rate, window_samples, hop=None, pad_mode="zeros",
                 chunk_seconds=10.0, manifest_id=None):  # fmt: skip
        self.audio = AudioStream(path, sample_rate, chunk_seconds, manifest_id)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        self.hop = int(hop or window_samples)
        if self.window_samples < 1 or self.hop < 1:
            raise ValueError(f"window ({window_samples}) and hop ({hop}) must be >= 1 sample")
        self.pad_mode = pad_mode
        self._peak = 0

    @property
    def num_samples(self):
        """Length of the file at ``sample_rate``."""
        return self.audio.num_samples

    @property
    def peak_samples(self):
        """Most samples held at once by the reader and the window buffer."""
        return self._peak + self.audio.peak_samples

    def expected_windows(self):
        """Number of windows, from the file's header (for progress bars)."""
        length, size = self.num_samples, self.window_samples
        if length <= size:
            return 1
        regular = (length - size) // self.hop + 1
        return regular + int((regular - 1) * self.hop + size < length)

    def __iter__(self):
        """Yield ``(start, window [window_samples])``."""
        size, hop = self.window_samples, self.hop
        buffer, buffer_start = torch.zeros(0), 0
        next_start, last_start, total = 0, None, 0
        for chunk in self.audio:
            total += len(chunk)
            buffer = torch.cat([buffer, chunk])
            self._peak = max(self._peak, len(buffer))
            while next_start + size <= total:
                offset = next_start - buffer_start
                yield next_start, buffer[offset : offset + size].clone()
                last_start, next_start = next_start, next_start + hop
            keep = max(buffer_start, min(next_start, total - size))
            buffer, buffer_start = buffer[keep - buffer_start :].clone(), keep
        if last_start is None:  # shorter than one window
            yield 0, pad_to_length(buffer, size, self.pad_mode)
        elif last_start + size < total:
            yield total - size, buffer[total - size - buffer_start :]

    def batches(self, batch_size=32):
        """Yield ``(starts [B], windows [B, window_samples])`` batches.

        Example
        -------
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "z.wav")
        >>> sf.write(f, np.zeros(100), 8000)
        >>> [w.shape[0] for _, w in WindowStream(f, 8000, 10).batches(4)]
        [4, 4, 2]
        """
        starts, windows = [], []
        for start, window in self:
            starts.append(start)
            windows.append(window)
            if len(windows) == batch_size:
                yield starts, torch.stack(windows)
                starts, windows = [], []
        if windows:
            yield starts, torch.stack(windows)
