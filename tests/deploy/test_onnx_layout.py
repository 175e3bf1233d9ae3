"""Channel padding and conv fusion of an exported PhiNet student: same outputs, new shapes."""

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from tinyclap.deploy.onnx import StudentGraph, session
from tinyclap.deploy.onnx_layout import fuse_linear_convs, optimize_student_graph, pad_channels
from tinyclap.students.phinet import PhiNetStudent

pytest.importorskip("onnxruntime")

# Max abs difference of L2-normalised embeddings (64-d), onnxruntime float32 vs a float64
# PyTorch reference. The rewrites add exact zeros (padding) or reassociate a product of two
# small matrices (fusion), so the error is float32 accumulation error, ~1e-7 relative per
# sum of a few hundred terms through ~20 layers: measured ~1e-7 here; 1e-5 leaves 100x room
# on any x86 kernel (AVX2 / AVX-512 / AMX). A wrong channel mapping moves coordinates by ~0.1.
BOUND = 1e-5


@pytest.fixture(scope="module")
def student_graph(tmp_path_factory):
    """An a0.75 student (channel counts 18, 36, 61, ...) exported without any rewrite."""
    torch.manual_seed(0)
    student = PhiNetStudent(0.75, 0.75, 4, 5, n_frames=101, n_mels=64, head_channels=64,
                            embedding_dim=64).eval()  # fmt: skip
    for module in student.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    logmel = torch.randn(3, 101, 64, generator=torch.Generator().manual_seed(1))
    path = tmp_path_factory.mktemp("layout") / "student.onnx"
    torch.onnx.export(StudentGraph(student).eval(), (logmel[:2],), str(path), dynamo=False,
                      input_names=["logmel"], output_names=["embedding"],
                      dynamic_axes={"logmel": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=17)  # fmt: skip
    with torch.inference_mode():
        reference = F.normalize(student.double()(logmel.double()), dim=-1).numpy()
    return path, logmel.numpy(), reference


def conv_weights(model):
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    return [inits[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]


def run(model, logmel, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return session(path).run(None, {"logmel": logmel})[0]


def test_pad_channels_keeps_the_outputs(student_graph, tmp_path):
    path, logmel, reference = student_graph
    model = onnx.load(str(path))
    before = conv_weights(model)
    assert any(w[0] % 16 for w in before)  # the a0.75 student has odd channel counts
    changed = pad_channels(model, 16)
    after = conv_weights(model)
    assert changed > 0 and len(after) == len(before)
    # every conv but the head (its output feeds the mean, not a conv) is now 16-aligned
    assert all(w[0] % 16 == 0 for w in after[:-1]) and after[-1][0] == before[-1][0]
    # depthwise convs: as many groups as (padded) channels, one input channel each
    assert any(w[1] == 1 and w[0] > 1 for w in after)
    out = run(model, logmel, tmp_path, "padded")
    assert out.shape == reference.shape and np.abs(out - reference).max() < BOUND


def test_fuse_linear_convs_merges_the_first_pair(student_graph, tmp_path):
    path, logmel, reference = student_graph
    model = onnx.load(str(path))
    count = len(conv_weights(model))
    merged = fuse_linear_convs(model)
    assert merged >= 1 and len(conv_weights(model)) == count - merged
    # the 3x3 one-channel conv and the 1 -> C pointwise one became one 3x3 conv 1 -> C
    first = conv_weights(model)[0]
    assert first[1:] == [1, 3, 3] and first[0] > 1
    out = run(model, logmel, tmp_path, "fused")
    assert np.abs(out - reference).max() < BOUND


def test_optimize_student_graph_writes_a_valid_padded_copy(student_graph, tmp_path):
    path, logmel, reference = student_graph
    out = optimize_student_graph(path, tmp_path / "opt.onnx")
    assert out == tmp_path / "opt.onnx" and path.exists()
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["logmel"]
    assert all(w[0] % 16 == 0 for w in conv_weights(model)[:-1])
    got = session(out).run(None, {"logmel": logmel})[0]
    assert np.abs(got - reference).max() < BOUND
