"""A student as a full-integer int8 LiteRT model (litert-torch PT2E).

The recipe (verified on this machine, ``DESIGN.md`` §7): ``torch.export`` of
the student on one window of log-mels, PT2E quantisation with litert-torch's
quantizer (int8 weights per output channel, int8 activations, static ranges),
min/max calibration on real windows, then ``litert_torch.convert``: int8
weights and activations throughout, an int8 input (the log-mels, with the
input tensor's scale and zero point) and a float32 output (the projected
embedding, dequantised by the model's last op).

One rewrite makes the graph runnable by TensorFlow Lite Micro, which has no
``GELU`` kernel: the projection's GELU is exported as its tanh approximation
written as ``x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`` (an identity of the
tanh form; the converter fuses the tanh form back into ``GELU``, not this one),
at most 4.7e-4 from the exact GELU, far below int8 steps. Any op the converter
or TFLM cannot run is reported with the layer it comes from
(:class:`UnsupportedOpError`).

Example
-------
>>> info = convert_student(student, logmels, "mcu/student_int8.tflite")  # doctest: +SKIP
>>> info["input"]["dtype"], info["output"]["dtype"]  # doctest: +SKIP
('int8', 'float32')
"""

import contextlib
import io
import math
import re
from pathlib import Path

import numpy as np
import torch

GELU_MAX_ERROR = 5e-4  # |tanh-approximate GELU - exact GELU| over the reals: 4.7e-4 at most


class UnsupportedOpError(ValueError):
    """The converter or TFLM cannot map an op of the student; names the op and the layer."""


def tflm_gelu(x, approximate="none"):
    """GELU in ops TFLM has int8 kernels for (``MUL``, ``ADD``, ``LOGISTIC``).

    Example
    -------
    >>> x = torch.linspace(-6, 6, 1001)
    >>> bool((tflm_gelu(x) - torch.nn.functional.gelu(x)).abs().max() < GELU_MAX_ERROR)
    True
    """
    return x * torch.sigmoid(2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x))


def layer_of(node):
    """The module path (``projection.linear1``) a ``torch.export`` node comes from."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<top level>"
    path = list(stack.values())[-1][0]
    return re.sub(r"^L\['self'\]\.?|^L__self___", "", str(path)) or "<top level>"


def export_program(student, n_frames, n_mels):
    """``torch.export`` of the student on one window ``[1, n_frames, n_mels]``, GELU rewritten."""
    example = (torch.zeros(1, int(n_frames), int(n_mels)),)
    try:
        program = torch.export.export(student.eval(), example)
    except Exception as exc:  # torch.export's own errors name the op; add the student
        raise UnsupportedOpError(
            f"torch.export cannot trace {type(student).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    return program.run_decompositions({torch.ops.aten.gelu.default: tflm_gelu}), example


def _op_name(target):
    return str(getattr(target, "__name__", target)).split(".")[0]


def _name_failing_node(program, message):
    """``(op, layer)`` of the first graph node whose op name appears in ``message``."""
    for node in program.graph.nodes:
        if node.op == "call_function" and _op_name(node.target) in message:
            return _op_name(node.target), layer_of(node)
    return None, None


def quantize(program, calibration, batch_size=1):
    """PT2E int8 quantisation of an exported student, calibrated on ``calibration``.

    Returns ``(quantized module, quantizer)``; ``calibration`` is ``[N, frames, n_mels]``
    float log-mels (real windows), run one at a time (the model's input has batch 1).
    """
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for window in torch.as_tensor(np.asarray(calibration, dtype=np.float32)):
            prepared(window[None])
    return convert_pt2e(prepared, fold_quantize=False), quantizer


def tflite_ops(path, module_names=None):
    """``{op name: [module paths]}`` of a ``.tflite`` model, from its tensor names.

    litert-torch names each output tensor after the module stack it comes
    from (``pkg.Student/pkg.Projection_projection/...LayerNorm_layer_norm;7``).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = {}
    # _get_ops_details is LiteRT's own (underscored) listing of the graph's ops
    for op in interpreter._get_ops_details():  # noqa: SLF001
        if op["op_name"] == "DELEGATE":  # XNNPACK's, added at load time: not in the file
            continue
        layers = ops.setdefault(op["op_name"], [])
        for index in op["outputs"]:
            layer = module_path(names.get(index, ""), module_names)
            if layer not in layers:
                layers.append(layer)
    return ops


def module_path(tensor_name, module_names=None):
    """``projection.layer_norm`` from a litert-torch tensor name (see :func:`tflite_ops`).

    Each segment is ``module.Class_attribute``; with ``module_names`` (the
    student's ``named_modules()`` keys) the split that names a real submodule
    wins, so class or attribute names holding ``_`` come out right.

    Example
    -------
    >>> module_path("a.Student/b.Projection_projection/c.LayerNorm_layer_norm;7")
    'projection.layer_norm'
    >>> module_path("a.S/b._Sign_head;0", {"", "head"})
    'head'
    """
    path = []
    for part in tensor_name.split(";")[0].split("/")[1:]:
        last = part.rsplit(".", 1)[-1]
        splits = [last[i + 1 :] for i, c in enumerate(last) if c == "_" and last[i + 1 :]]
        known = [a for a in splits if module_names and ".".join([*path, a]) in module_names]
        if known or splits:
            path.append((known or splits)[0])
    return ".".join(path) or tensor_name


def check_tflm_ops(path, module_names=None):
    """Raise :class:`UnsupportedOpError` when TFLM lacks a kernel for an op of ``path``."""
    from tinyclap.deploy.mcu.tflm import TflmError, arena_bytes

    try:
        arena_bytes(path)
    except TflmError as exc:
        ops = tflite_ops(path, module_names)
        missing = [op for op in ops if re.search(rf"\b{op}\b", str(exc))]
        if not missing:
            raise
        where = "; ".join(f"{op} in {', '.join(ops[op][:3])}" for op in missing)
        raise UnsupportedOpError(
            f"{path}: TensorFlow Lite Micro has no kernel for {where}: change that layer "
            "(or its activation) to ops TFLM supports"
        ) from exc


def _details(interpreter_details):
    quant = interpreter_details.get("quantization") or (0.0, 0)
    return {
        "dtype": np.dtype(interpreter_details["dtype"]).name,
        "shape": [int(v) for v in interpreter_details["shape"]],
        "scale": float(quant[0]),
        "zero_point": int(quant[1]),
    }


def convert_student(student, calibration, out_path, n_frames=None, n_mels=None):
    """Write ``student`` as a full-integer int8 ``.tflite``; returns its I/O and ops.

    Parameters
    ----------
    student : torch.nn.Module
        Log-mels ``[B, frames, n_mels]`` to embeddings ``[B, D]`` (eval mode).
    calibration : numpy.ndarray
        ``[N, frames, n_mels]`` float log-mels of real windows (the calibration set).
    out_path : str or Path
        The ``.tflite`` file to write.
    n_frames, n_mels : int, optional
        Input size (default: the calibration windows').

    Returns
    -------
    dict
        ``input`` / ``output`` (dtype, shape, scale, zero point), ``ops``
        (TFLite op names), ``converter`` (package versions), ``bytes``.

    Raises
    ------
    UnsupportedOpError
        An op of the student has no LiteRT mapping or no TFLM kernel; the
        message names it and its layer.
    """
    import importlib.metadata

    import litert_torch
    from ai_edge_litert.interpreter import Interpreter
    from litert_torch.quantize.quant_config import QuantConfig

    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 3 or len(calibration) == 0:
        raise ValueError(
            f"calibration log-mels must be [N, frames, n_mels], got {calibration.shape}"
        )
    n_frames = calibration.shape[1] if n_frames is None else int(n_frames)
    n_mels = calibration.shape[2] if n_mels is None else int(n_mels)
    program, example = export_program(student, n_frames, n_mels)
    quantized, quantizer = quantize(program, calibration)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            model = litert_torch.convert(
                quantized, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)
            )
            model.export(str(out_path))
    except Exception as exc:
        op, layer = _name_failing_node(program, f"{exc}\n{log.getvalue()}")
        where = f"op {op} in layer {layer}" if op else "an op of the student"
        raise UnsupportedOpError(
            f"litert-torch cannot convert {where} of {type(student).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    check_tflm_ops(out_path, {name for name, _ in student.named_modules()})
    interpreter = Interpreter(model_path=str(out_path))
    versions = {p: importlib.metadata.version(p) for p in ("litert-torch", "ai-edge-litert")}
    return {
        "file": out_path.name,
        "bytes": out_path.stat().st_size,
        "input": _details(interpreter.get_input_details()[0]),
        "output": _details(interpreter.get_output_details()[0]),
        "ops": sorted(tflite_ops(out_path)),
        "converter": {"recipe": "litert-torch PT2E, int8 per-channel weights", **versions},
        "gelu": "tanh approximation as x*sigmoid(...) (TFLM has no GELU kernel)",
    }
