"""Static (QDQ) and dynamic int8 graphs of a tiny student: what is quantized, and how close."""

import numpy as np
import onnx
import pytest
import torch

from tinyclap.deploy.onnx import AudioEmbeddingGraph, StudentGraph, _export, session
from tinyclap.deploy.quantize import (
    depthwise_convs,
    quantize_graph,
    quantize_static_graph,
    stem_conv,
)

pytest.importorskip("onnxruntime")

# Max abs difference of L2-normalised embeddings, static int8 vs fp32, on these inputs:
# measured 3.3e-3 (waveform graph) and 3.1e-3 (log-mel graph) for the tiny student (16-d,
# non-trivial BatchNorm statistics; cosine to fp32 >= 0.99998); the bound leaves 3x room.
# Unrelated unit vectors of this size differ by ~0.5 in some coordinate.
STATIC_BOUND = 1e-2


def windows(encoder, n, seed):
    gen = torch.Generator().manual_seed(seed)
    rate = encoder.frontend.sample_rate
    samples = int(rate * encoder.clip_seconds)
    t = torch.arange(samples) / rate
    freqs = 200 + 3000 * torch.rand(n, 1, generator=gen)
    tones = 0.3 * torch.sin(2 * torch.pi * freqs * t) * torch.rand(n, 1, generator=gen)
    return tones + 0.05 * torch.rand(n, 1, generator=gen) * torch.randn(n, samples, generator=gen)


@pytest.fixture(scope="module")
def graphs(tiny_student, tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    encoder = tiny_student.model()
    for module in encoder.student.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            gen = torch.Generator().manual_seed(0)
            module.running_mean.copy_(torch.rand(module.num_features, generator=gen) - 0.5)
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=gen))
    calib, check = windows(encoder, 32, 0), windows(encoder, 8, 1)
    with torch.inference_mode():
        audio = _export(AudioEmbeddingGraph(encoder.frontend, encoder.student).eval(),
                        calib[:2], root / "audio.onnx", "embedding")  # fmt: skip
        student = _export(StudentGraph(encoder.student).eval(), encoder.frontend(calib[:2]),
                          root / "student.onnx", "embedding", "logmel")  # fmt: skip
        feeds = {"audio": {"waveform": check.numpy()},
                 "student": {"logmel": encoder.frontend(check).numpy()}}  # fmt: skip
        calibration = {"audio": calib.numpy(), "student": encoder.frontend(calib).numpy()}
    return {"audio": audio, "student": student, "feeds": feeds, "calibration": calibration}


def ops(path):
    return [(n.op_type, n.name) for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("name", ["audio", "student"])
def test_static_int8_quantizes_the_convolutions_only_and_stays_close(graphs, name):
    out = quantize_static_graph(graphs[name], graphs["calibration"][name])
    assert out.name == f"{name}.int8.onnx"
    nodes = ops(out)
    float_convs = [n for op, n in ops(graphs[name]) if op == "Conv" and "frontend" not in n]
    # every student convolution but the stem reads int8 weights through a DequantizeLinear ...
    model = onnx.load(str(out))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and "frontend" not in n.name]
    assert len(convs) == len(float_convs) > 1
    stem, rest = convs[0], convs[1:]
    assert stem.name == stem_conv(model)
    assert all(producers.get(c.input[1]) == "DequantizeLinear" for c in rest)
    assert all(producers.get(c.input[0]) == "DequantizeLinear" for c in rest)
    # ... the stem (one input channel: the log-mels, unquantized) stays float, as does
    # the frontend; the projection is dynamic int8 (no float MatMul / Gemm left there)
    assert producers.get(stem.input[1]) != "DequantizeLinear"
    assert producers.get(stem.input[0]) != "DequantizeLinear"
    assert not [n for op, n in nodes if "frontend" in n and "Quantize" in op]
    student_ops = {op for op, n in nodes if "frontend" not in n}
    assert {"DynamicQuantizeMatMul", "MatMulInteger"} & student_ops, student_ops
    assert not {"MatMul", "Gemm"} & student_ops
    feed = graphs["feeds"][name]
    fp32 = session(graphs[name]).run(None, feed)[0]
    int8 = session(out).run(None, feed)[0]
    diff = np.abs(int8 - fp32).max()
    assert 0 < diff < STATIC_BOUND, diff
    assert (np.sum(int8 * fp32, -1) > 0.9999).all()


def test_a_quantized_stem_when_asked(graphs, tmp_path):
    out = quantize_static_graph(graphs["student"], graphs["calibration"]["student"],
                                tmp_path / "q.onnx", float_stem=False)  # fmt: skip
    model = onnx.load(str(out))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers.get(next(n for n in model.graph.node if n.op_type == "Conv").input[1]) == (
        "DequantizeLinear"
    )


def test_pointwise_only_leaves_the_depthwise_convolutions_float(graphs, tmp_path):
    out = quantize_static_graph(graphs["audio"], graphs["calibration"]["audio"],
                                tmp_path / "pw.onnx", depthwise=False)  # fmt: skip
    model = onnx.load(str(out))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    depthwise = set(depthwise_convs(model))
    assert depthwise
    for node in model.graph.node:
        if node.op_type == "Conv" and "frontend" not in node.name:
            quantized = producers.get(node.input[1]) == "DequantizeLinear"
            expected = node.name not in depthwise and node.name != stem_conv(model)
            assert quantized == expected, node.name


def test_quantize_graph_modes(graphs, tmp_path):
    dynamic = quantize_graph(graphs["student"], "dynamic", out=tmp_path / "d.onnx")
    assert {"DynamicQuantizeMatMul", "MatMulInteger"} & {op for op, _ in ops(dynamic)}
    with pytest.raises(ValueError, match="needs calibration"):
        quantize_graph(graphs["student"], "static")
    with pytest.raises(ValueError, match="unknown int8 mode 'int4'"):
        quantize_graph(graphs["student"], "int4", out=tmp_path / "x.onnx")
