"""Int8 variants of the exported ONNX graphs (onnxruntime quantization).

Two recipes, both leaving the log-mel frontend in float (the power spectrum's
dynamic range does not survive int8):

* :func:`quantize_dynamic_graph`: weights of ``MatMul`` / ``Gemm`` in int8,
  activations quantized on the fly (no calibration; the projection only);
* :func:`quantize_static_graph`: static QDQ quantization of the student's
  convolutions (per-channel int8 weights, uint8 activations with ranges
  calibrated on real windows) and of the element-wise ops between them, so that
  the chain stays in int8 (onnxruntime fuses it into ``QLinearConv`` /
  ``QLinearAdd`` ...), the stem convolution (one input channel) left float,
  then the projection (``MatMul`` / ``Gemm``) quantized dynamically.

Which one ``tinyclap export --quantize`` writes is :data:`DEFAULT_INT8`:
static, calibrated on ``--calibration_manifest`` (else on ``--eval_manifest``);
without either it falls back to dynamic, saying so in the report. An export
with an evaluation manifest then makes static int8 the folder's default graph
where it keeps zero-shot accuracy (:mod:`tinyclap.runtime.graphs`).

Static int8 pays once the graph's channel counts are padded to 16
(:mod:`tinyclap.deploy.onnx_layout`, applied by every export):
onnxruntime's int8 depthwise kernel was 3x slower than fp32 on 36 channels, and
on 16-aligned channels the edge student's static int8 graph runs ~1.5x faster
than its (equally padded) fp32 graph at batch 1, one thread, on an AVX-512 VNNI
CPU (``results/deploy_bench/README.md``, ``docs/how-to/fast-cpu-inference.md``).
Unpadded, static int8 was 1.0-1.2x.
"""

import logging
from pathlib import Path

import numpy as np

DEFAULT_INT8 = "static"  # falls back to dynamic without calibration clips
MODES = ("static", "dynamic")
# Student ops that static int8 quantizes (those with int8 kernels in onnxruntime's CPU EP;
# quantizing the element-wise ones too keeps the activations int8 between convolutions:
# measured 1.19x vs 0.98x with Conv alone, minimum times, MS-CLAP 2022 edge student).
STATIC_OPS = ["Conv", "Add", "Mul", "Clip", "Relu", "Transpose", "Reshape", "Unsqueeze",
              "Pad", "Concat", "Slice", "GlobalAveragePool", "AveragePool"]  # fmt: skip


def frontend_nodes(model):
    """Names of the frontend's nodes in an exported graph (left in float)."""
    return [n.name for n in model.graph.node if "frontend" in n.name]


def float_input_nodes(model):
    """Names of the nodes before the student's first ``Conv``, left in float.

    They are the frontend and the student's input normalisation (the eval-mode
    BatchNorm over mel bins, a per-mel affine map), so the log-mels are never
    quantized. (ONNX node lists are topologically sorted.)
    """
    names = []
    for node in model.graph.node:
        if node.op_type == "Conv" and "frontend" not in node.name:
            break
        names.append(node.name)
    return sorted(set(names) | set(frontend_nodes(model)))


def quantize_dynamic_graph(path, out=None):
    """Dynamic int8 quantization of the student's MatMul/Gemm layers; returns the new path.

    Example
    -------
    >>> quantize_dynamic_graph("onnx/student.onnx")  # doctest: +SKIP
    PosixPath('onnx/student.int8.onnx')
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    out = path.with_suffix(".int8.onnx") if out is None else Path(out)
    quantize_dynamic(
        str(path),
        str(out),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=frontend_nodes(onnx.load(str(path))),
    )
    return out


class _Reader:
    """An onnxruntime ``CalibrationDataReader`` over a list of input arrays."""

    def __init__(self, name, batches):
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: np.ascontiguousarray(batch, np.float32)}

    def rewind(self):  # not used by MinMax calibration (one pass)
        pass


def stem_conv(model):
    """Name of the student's first ``Conv`` (its stem: one input channel, the log-mels), or None.

    Static int8 leaves it float (``float_stem``): onnxruntime's ``QLinearConv`` on
    one input channel is slow (edge student, MS-CLAP 2022 window: 0.37 ms int8 vs
    0.045 ms fp32 NCHWc, onnxruntime profile), and a float stem reads the log-mels
    unquantized. Measured on the whole edge graph: 0.87 vs 1.02 ms (median, batch 1,
    one thread), cosine to fp32 unchanged (``results/deploy_bench/ISSUE26.md``).
    """
    for node in model.graph.node:
        if node.op_type == "Conv" and "frontend" not in node.name:
            return node.name
    return None


def depthwise_convs(model):
    """Names of the grouped (depthwise) ``Conv`` nodes of ``model``."""
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in n.attribute)]  # fmt: skip


def quantize_static_graph(
    path,
    calibration,
    out=None,
    depthwise=True,
    per_channel=True,
    batch_size=16,
    float_stem=True,
    dynamic_projection=True,
):
    """Static QDQ int8 quantization of the student's convolutions; returns the new path.

    The graph is first pre-processed (shape inference and onnxruntime's basic
    optimisations, as onnxruntime recommends), then every student ``Conv`` gets
    int8 weights (per output channel) and uint8 activations with ranges
    calibrated (min/max) on ``calibration``, as do the element-wise ops of
    :data:`STATIC_OPS`; the frontend and the stem convolution (:func:`stem_conv`)
    stay float, and the projection (``MatMul`` / ``Gemm``) gets dynamic int8
    (``dynamic_projection``).

    Parameters
    ----------
    path : str or Path
        A float graph (``audio_encoder.onnx``, ``student.onnx``, ``classifier_scores.onnx``).
    calibration : numpy.ndarray
        Inputs of the graph's (only) input, ``[N, ...]``: real windows (waveforms or
        log-mels, whichever the graph takes); a few dozen to a few hundred.
    out : str or Path, optional
        Where to write (default: ``*.int8.onnx`` beside ``path``).
    depthwise : bool
        Quantize the depthwise convolutions too (``False``: pointwise ones only).
    per_channel : bool
        Per-output-channel weight scales (recommended for depthwise convolutions).
    batch_size : int
        Calibration batch size.
    float_stem : bool
        Leave the first convolution float (:func:`stem_conv`; faster and exact on the input).
    dynamic_projection : bool
        Then quantize the projection (``MatMul`` / ``Gemm``) dynamically, as
        :func:`quantize_dynamic_graph` does: its float weights are most of a
        student's bytes (edge student: graph 6.5 -> 1.8 MB) and it runs faster
        (edge, batch 1, one thread: 0.86 -> 0.77 ms minimum, 1.18 -> 1.00 median).
        Static QDQ on the projection instead was 2.1x slower (not fused).

    Example
    -------
    >>> windows = np.random.randn(32, 32000).astype(np.float32)  # doctest: +SKIP
    >>> quantize_static_graph("onnx/audio_encoder.onnx", windows)  # doctest: +SKIP
    PosixPath('onnx/audio_encoder.int8.onnx')
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = Path(path)
    out = path.with_suffix(".int8.onnx") if out is None else Path(out)
    calibration = np.asarray(calibration, dtype=np.float32)
    if len(calibration) == 0:
        raise ValueError(f"no calibration inputs for {path}")
    batches = [calibration[i : i + batch_size] for i in range(0, len(calibration), batch_size)]
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(path), str(pre))
        model = onnx.load(str(pre))
        exclude = float_input_nodes(model) + ([] if depthwise else depthwise_convs(model))
        if float_stem and stem_conv(model):
            exclude.append(stem_conv(model))
        static_out = Path(tmp) / "static.onnx" if dynamic_projection else out
        quantize_static(
            str(pre),
            str(static_out),
            _Reader(model.graph.input[0].name, batches),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=STATIC_OPS,
            nodes_to_exclude=exclude,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        if dynamic_projection:
            # onnxruntime warns on the root logger that a graph with QDQ nodes may be
            # "already quantized": it is, on purpose (the convolutions); quiet only that call
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)
            try:
                quantize_dynamic_graph(static_out, out)
            finally:
                root.setLevel(level)
    return out


def quantize_graph(path, mode=None, calibration=None, out=None):
    """The int8 variant ``mode`` (``"static"`` or ``"dynamic"``) of ``path``; returns its path.

    ``"static"`` needs ``calibration`` (see :func:`quantize_static_graph`).

    Example
    -------
    >>> quantize_graph("onnx/student.onnx", "dynamic")  # doctest: +SKIP
    PosixPath('onnx/student.int8.onnx')
    """
    if mode is None:  # the default recipe where there is something to calibrate on
        mode = DEFAULT_INT8 if calibration is not None else "dynamic"
    if mode == "dynamic":
        return quantize_dynamic_graph(path, out)
    if mode == "static":
        if calibration is None:
            raise ValueError(f"static int8 quantization of {path} needs calibration inputs")
        return quantize_static_graph(path, calibration, out)
    raise ValueError(f"unknown int8 mode {mode!r}; choose one of {MODES}")
