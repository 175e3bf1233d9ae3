"""Tests of the PhiNet students and their projection (shapes, layout, sizes)."""

import pytest
import torch

from tinyclap.nn.projection import Projection
from tinyclap.students.phinet import PhiNetBackbone, PhiNetStudent

PAPER = {"n_frames": 690, "n_mels": 64, "head_channels": 2048, "embedding_dim": 1024}
SMALL = {"n_frames": 101, "n_mels": 64, "head_channels": 128, "embedding_dim": 32}


def _params(module):
    return sum(p.numel() for p in module.parameters())


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def paper_student():
    torch.manual_seed(0)
    return PhiNetStudent(1.5, 0.75, 6, 7, **PAPER)


# --------------------------------------------------------------------------- #
# PhiNetStudent
# --------------------------------------------------------------------------- #


def test_small_student_output_shape():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, **SMALL).eval()
    with torch.no_grad():
        out = student(torch.randn(3, 101, 64))
    assert out.shape == (3, 32)
    assert torch.isfinite(out).all()
    assert student.embedding_dim == 32


def test_backbone_output_shape():
    torch.manual_seed(0)
    backbone = PhiNetBackbone(0.5, 0.75, 4, 4, n_frames=101, n_mels=64, head_channels=128)
    backbone.eval()
    with torch.no_grad():
        feats = backbone(torch.randn(2, 101, 64))
    assert feats.shape == (2, 128)


def test_paper_student_output_shape(paper_student):
    paper_student.eval()
    with torch.no_grad():
        out = paper_student(torch.randn(2, 690, 64, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (2, 1024)
    assert torch.isfinite(out).all()
    # The projection ends with a LayerNorm (identity affine at init): each row has
    # zero mean and variance var / (var + eps) <= 1.
    torch.testing.assert_close(out.mean(-1), torch.zeros(2), atol=1e-4, rtol=0)
    variance = out.var(-1, unbiased=False)
    assert ((variance > 0.8) & (variance <= 1.0 + 1e-4)).all()


def test_eval_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, **SMALL).eval()
    x = torch.randn(3, 101, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = student(x), student(x)
        single = student(x[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(single[0], a[1], atol=1e-5, rtol=1e-5)


def test_official_key_layout(paper_student):
    shapes = _shapes(paper_student)
    prefixes = ("base.bn0.", "base._layers.", "base.pn_block.", "projection.")
    assert all(k.startswith(prefixes) for k in shapes), [
        k for k in shapes if not k.startswith(prefixes)
    ]
    for key in (
        "base.bn0.weight",
        "base.bn0.bias",
        "base.bn0.running_mean",
        "base.bn0.running_var",
    ):
        assert shapes[key] == (64,)
    assert any(k.startswith("base._layers.") for k in shapes)
    assert shapes["base.pn_block.weight"][0] == 2048
    assert shapes["base.pn_block.weight"][2:] == (1, 1)
    assert shapes["base.pn_block.bias"] == (2048,)
    assert shapes["projection.linear1.weight"] == (1024, 2048)
    assert shapes["projection.linear2.weight"] == (1024, 1024)
    assert shapes["projection.layer_norm.weight"] == (1024,)
    assert shapes["projection.layer_norm.bias"] == (1024,)
    # msclap's projection has no biases on its linear layers.
    assert "projection.linear1.bias" not in shapes
    assert "projection.linear2.bias" not in shapes
    # pn_block consumes the last PhiNet conv's channels.
    last_conv = [m for m in paper_student.base._layers.modules() if isinstance(m, torch.nn.Conv2d)][
        -1
    ]
    assert shapes["base.pn_block.weight"][1] == last_conv.out_channels


def test_paper_parameter_count(paper_student):
    n = _params(paper_student)
    assert n == 4_434_547
    assert abs(n - 4.4e6) / 4.4e6 < 0.05


@pytest.mark.parametrize(
    ("alpha", "beta", "t_zero", "num_layers", "paper_millions", "exact"),
    [(3.0, 0.75, 6, 7, 7.0, 7_035_849), (0.75, 0.75, 4, 4, 3.2, 3_244_529)],
)
def test_other_paper_sizes(alpha, beta, t_zero, num_layers, paper_millions, exact):
    n = _params(PhiNetStudent(alpha, beta, t_zero, num_layers, **PAPER))
    assert n == exact
    assert abs(n - paper_millions * 1e6) / (paper_millions * 1e6) < 0.10


def test_parameters_grow_with_alpha():
    counts = [_params(PhiNetStudent(a, 0.75, 6, 7, **PAPER)) for a in (0.5, 1.0, 1.5, 2.0, 3.0)]
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)


def test_parameters_grow_with_num_layers():
    counts = [_params(PhiNetStudent(1.5, 0.75, 6, n, **PAPER)) for n in (4, 5, 6, 7, 8)]
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)


def test_head_and_embedding_sizes_count_as_expected():
    a = PhiNetStudent(0.5, 0.75, 4, 4, **{**SMALL, "embedding_dim": 32})
    b = PhiNetStudent(0.5, 0.75, 4, 4, **{**SMALL, "embedding_dim": 64})
    # linear1 (128 -> D), linear2 (D -> D), LayerNorm (2D).
    assert _params(b) - _params(a) == (128 * 64 + 64 * 64 + 128) - (128 * 32 + 32 * 32 + 64)


def test_config_round_trip(paper_student):
    config = paper_student.config
    assert config == {
        "alpha": 1.5,
        "beta": 0.75,
        "t_zero": 6.0,
        "num_layers": 7,
        "n_frames": 690,
        "n_mels": 64,
        "head_channels": 2048,
        "embedding_dim": 1024,
        "dropout": 0.5,
    }
    clone = PhiNetStudent(**config)
    assert _shapes(clone) == _shapes(paper_student)
    assert list(clone.state_dict()) == list(paper_student.state_dict())
    clone.load_state_dict(paper_student.state_dict())  # strict
    assert clone.config == config


def test_config_round_trip_small_and_weights():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, **SMALL).eval()
    clone = PhiNetStudent(**student.config).eval()
    clone.load_state_dict(student.state_dict())
    x = torch.randn(2, 101, 64)
    with torch.no_grad():
        assert torch.equal(student(x), clone(x))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, **SMALL)
    assert student.projection.drop.p == 0.5
    x = torch.randn(4, 101, 64)
    student.eval()
    with torch.no_grad():
        ref = student(x)
        student.train()
        student.base.eval()  # keep BatchNorm statistics fixed, test only the dropout
        noisy = student(x)
    assert not torch.allclose(noisy, ref)


def test_student_backward():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, **SMALL)
    student(torch.randn(2, 101, 64)).pow(2).sum().backward()
    assert student.base.pn_block.weight.grad is not None
    assert student.base.bn0.weight.grad is not None
    assert student.projection.linear1.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- #
# Projection
# --------------------------------------------------------------------------- #


def test_projection_shapes_and_layout():
    proj = Projection(8, 4).eval()
    out = proj(torch.randn(3, 8))
    assert out.shape == (3, 4)
    assert sorted(proj.state_dict()) == [
        "layer_norm.bias",
        "layer_norm.weight",
        "linear1.weight",
        "linear2.weight",
    ]
