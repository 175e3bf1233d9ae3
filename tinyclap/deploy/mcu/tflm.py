"""TensorFlow Lite Micro's own interpreter, from Python: arena size and int8 inference.

The ``tflite-micro`` package wraps TFLM's C++ ``MicroInterpreter`` (reference
kernels, the ``RecordingMicroAllocator``). Its ``print_allocations()`` writes
``Arena allocation total N bytes`` from C++ (``MicroPrintf``: file descriptor 2
in the build measured here, 1 in others), so :func:`captured_fd` redirects the
descriptors themselves (not ``sys.stdout``) and flushes C's buffer before
reading them back.

Example
-------
>>> model = TflmModel("mcu/student_int8.tflite")  # doctest: +SKIP
>>> model.arena_bytes  # doctest: +SKIP
412032
>>> model(logmels).shape  # float log-mels [frames, n_mels] in  # doctest: +SKIP
(256,)
"""

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

PROBE_ARENA = 16 * 1024 * 1024  # first allocation: large enough for any student here
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")


class TflmError(ValueError):
    """TFLM could not load or allocate a model (the reason is in the message)."""


@contextlib.contextmanager
def captured_fd(fd):
    """Capture what C and Python write to file descriptor ``fd`` (1 or 2).

    Yields a list that holds the captured text once the block exits.
    """
    libc = ctypes.CDLL(None)
    text = []
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield text
        finally:
            stream.flush()
            libc.fflush(None)  # C stdio's buffer, before the descriptor goes back
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text.append(tmp.read().decode("utf-8", "replace"))


def _interpreter(path, arena_size):
    from tflite_micro.python.tflite_micro import runtime

    with captured_fd(2) as err:
        try:
            return runtime.Interpreter.from_file(str(path), arena_size=int(arena_size))
        except RuntimeError as exc:
            failure = exc
    missing = _MISSING_OP.findall(err[0])
    if missing:
        raise TflmError(
            f"{path}: TensorFlow Lite Micro has no kernel for op(s) "
            + ", ".join(sorted(set(missing)))
        ) from failure
    detail = err[0].strip().splitlines()
    raise TflmError(
        f"{path}: TFLM failed to allocate tensors in a {arena_size}-byte arena"
        + (f" ({detail[-1]})" if detail else "")
    ) from failure


def arena_bytes(path, probe=PROBE_ARENA):
    """Peak tensor arena of a ``.tflite`` model, measured by TFLM's recording allocator.

    The model is allocated in a ``probe``-byte arena, ``print_allocations()``
    reports the bytes TFLM used; the model is then allocated again in exactly
    that many bytes (a check that the figure suffices).
    """
    interpreter = _interpreter(path, probe)
    with captured_fd(1) as out, captured_fd(2) as err:
        interpreter.print_allocations()
    found = _TOTAL.search(out[0] + err[0])
    if not found:
        raise TflmError(f"{path}: no 'Arena allocation total' in TFLM's allocation report")
    total = int(found.group(1))
    _interpreter(path, total)  # allocates in exactly the measured arena, or raises
    return total


class TflmModel:
    """An int8 ``.tflite`` student run by TFLM: float log-mels in, float embedding out.

    The input is quantised with the input tensor's scale and zero point (as a
    device does after the frontend); an int8 output is dequantised.

    Parameters
    ----------
    path : str or Path
        The ``.tflite`` file.
    arena_size : int, optional
        Tensor arena in bytes (default: the measured peak, :func:`arena_bytes`).
    """

    def __init__(self, path, arena_size=None):
        self.path = Path(path)
        self.arena_bytes = arena_bytes(self.path) if arena_size is None else int(arena_size)
        self.interpreter = _interpreter(self.path, self.arena_bytes)
        self.input = self.interpreter.get_input_details(0)
        self.output = self.interpreter.get_output_details(0)

    @staticmethod
    def _quant(details):
        params = details.get("quantization_parameters") or {}
        scales, zeros = params.get("scales"), params.get("zero_points")
        if scales is not None and len(scales):
            return float(scales[0]), int(zeros[0])
        return None

    @property
    def input_quantization(self):
        """``(scale, zero_point)`` of the int8 input, or None for a float input."""
        return self._quant(self.input) if self.input["dtype"] == np.int8 else None

    def quantize_input(self, logmels):
        """Float log-mels ``[frames, n_mels]`` as the input tensor ``[1, frames, n_mels]``."""
        x = np.asarray(logmels, dtype=np.float32).reshape(self.input["shape"])
        quant = self.input_quantization
        if quant is None:
            return x
        scale, zero = quant
        return np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)

    def __call__(self, logmels):
        """The embedding ``[D]`` (float, not normalised) of one window's log-mels."""
        self.interpreter.set_input(self.quantize_input(logmels), 0)
        self.interpreter.invoke()
        y = self.interpreter.get_output(0)
        if self.output["dtype"] == np.int8:
            scale, zero = self._quant(self.output)
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32).reshape(-1)
