"""The C99 log-mel frontend of an MCU export: ``frontend.c`` / ``frontend.h``.

The C sources (package data, ``c/frontend.{c,h}.in``) are generic; this module
fills in one student's settings and tables, computed by the host frontend
:class:`tinyclap.runtime.frontend.HostLogMel` itself: the Hann window, the
twiddles of a radix-2 real FFT, and the mel filterbank restricted to its
non-zero weights (a start, a count and the weights per mel bin). All tables are
``const`` (flash); the only RAM is the caller's ``tinyclap_frontend_t``
(``n_fft + used bins`` floats) and its audio and output buffers.

Example
-------
>>> files = write_frontend({"sample_rate": 16000, "f_max": 8000.0}, 1.0, "mcu")  # doctest: +SKIP
>>> sorted(files)  # doctest: +SKIP
['frontend.c', 'frontend.h']
"""

import math
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from tinyclap.runtime.frontend import HostLogMel

C_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")


def _floats(values, per_line=8):
    values = np.asarray(values, dtype=np.float32).ravel()
    items = [f"{float(v):.9g}f" for v in values]
    items = [i if any(c in i for c in ".e") else i.replace("f", ".0f") for i in items]
    return ",\n".join(
        "  " + ", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)
    )


def _ints(values, per_line=16):
    items = [str(int(v)) for v in values]
    return ",\n".join(
        "  " + ", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)
    )


def sparse_mel(frontend):
    """``(start, count, offset, weights)`` of the mel filterbank's non-zero runs.

    ``start`` is relative to the first used FFT bin; row ``m`` is
    ``weights[offset[m]:offset[m] + count[m]]`` on bins ``start[m] ..``.

    Example
    -------
    >>> start, count, offset, weights = sparse_mel(HostLogMel(16000, f_max=8000.0))
    >>> len(start), int(count.sum()) == len(weights)
    (64, True)
    """
    fb = frontend.mel_fb.T  # [n_mels, used bins]
    start, count, weights = [], [], []
    for row in fb:
        nonzero = np.flatnonzero(row)
        lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        start.append(lo)
        count.append(hi - lo)
        weights.extend(row[lo:hi])
    offset = np.concatenate([[0], np.cumsum(count)[:-1]])
    return np.array(start), np.array(count), offset, np.asarray(weights, np.float32)


def frontend_ram_bytes(frontend):
    """Bytes of ``tinyclap_frontend_t`` (the frontend's whole state): ``n_fft + bins`` floats."""
    return 4 * (frontend.n_fft + frontend.bins)


def frontend_sources(config, clip_seconds):
    """``{"frontend.c": text, "frontend.h": text}`` for a frontend config and window length.

    Raises
    ------
    ValueError
        ``n_fft`` is not a power of two (the radix-2 FFT needs one).
    """
    frontend = HostLogMel.from_config(config)
    n_fft = frontend.n_fft
    if n_fft < 4 or n_fft & (n_fft - 1):
        raise ValueError(f"frontend n_fft={n_fft}: the C frontend's radix-2 FFT needs a power of 2")
    start, count, offset, weights = sparse_mel(frontend)
    window_samples = int(round(float(clip_seconds) * frontend.sample_rate))
    angles = 2.0 * math.pi * np.arange(n_fft // 2) / n_fft
    values = {
        "sample_rate": frontend.sample_rate,
        "n_fft": n_fft,
        "hop_length": frontend.hop_length,
        "win_length": frontend.win_length,
        "n_mels": frontend.n_mels,
        "f_min": f"{frontend.f_min:g}",
        "f_max": f"{frontend.f_max:g}",
        "first_bin": frontend.first_bin,
        "last_bin_incl": frontend.last_bin - 1,
        "n_bins": frontend.bins,
        "amin": f"{frontend.amin:.9g}",
        "offset_db": f"{frontend.offset_db:.9g}",
        "window_samples": window_samples,
        "n_frames": frontend.num_frames(window_samples),
        "state_bytes": frontend_ram_bytes(frontend),
        "window": _floats(frontend.window),
        "cos": _floats(np.cos(angles)),
        "sin": _floats(np.sin(angles)),
        "mel_start": _ints(start),
        "mel_count": _ints(count),
        "mel_offset": _ints(offset),
        "n_weights": len(weights),
        "mel_weights": _floats(weights),
    }
    if "." not in values["amin"] and "e" not in values["amin"]:
        values["amin"] += ".0"
    if "." not in values["offset_db"] and "e" not in values["offset_db"]:
        values["offset_db"] += ".0"
    folder = resources.files("tinyclap.deploy.mcu") / "c"
    return {
        name: Template((folder / f"{name}.in").read_text(encoding="utf-8")).substitute(values)
        for name in ("frontend.c", "frontend.h")
    }


def write_frontend(config, clip_seconds, out_dir):
    """Write ``frontend.c`` and ``frontend.h`` into ``out_dir``; returns their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in frontend_sources(config, clip_seconds).items():
        paths[name] = out_dir / name
        paths[name].write_text(text, encoding="utf-8")
    return paths


def frontend_flash_bytes(config):
    """Bytes of the frontend's const tables (window, twiddles, sparse mel weights)."""
    frontend = HostLogMel.from_config(config)
    start, _, _, weights = sparse_mel(frontend)
    return 4 * (frontend.n_fft + frontend.n_fft) + 4 * len(weights) + (2 + 2 + 4) * len(start)
