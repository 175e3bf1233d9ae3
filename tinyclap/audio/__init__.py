"""Audio: read and resample files, windows and crops, the CLAP log-mel frontend.

``tinyclap.audio.load_audio(path, sample_rate)`` is the public way to read a file
(mono float32 at ``sample_rate``); ``WindowStream`` reads a long file window by window.
"""

from tinyclap.audio.features import LogMel
from tinyclap.audio.io import AudioLoadError, describe_source, load_audio, resample
from tinyclap.audio.stream import AudioStream, WindowStream
from tinyclap.audio.windows import crop_windows, pad_to_length, random_crop, split_windows

__all__ = [
    "AudioLoadError",
    "AudioStream",
    "LogMel",
    "crop_windows",
    "describe_source",
    "load_audio",
    "pad_to_length",
    "random_crop",
    "resample",
    "split_windows",
    "WindowStream",
]
