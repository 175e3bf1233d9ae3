"""Tests of the training objectives: distillation (-cos) and CLAP's contrastive loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from tinyclap.training.losses import contrastive_loss, distillation_loss


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- #
# distillation_loss
# --------------------------------------------------------------------------- #


def test_distillation_identical_is_minus_one():
    e = _randn(6, 16)
    assert distillation_loss(e, e.clone()).item() == pytest.approx(-1.0, abs=1e-6)


def test_distillation_opposite_is_plus_one():
    e = _randn(6, 16)
    assert distillation_loss(e, -e).item() == pytest.approx(1.0, abs=1e-6)


def test_distillation_orthogonal_is_zero():
    assert distillation_loss(torch.eye(4), torch.eye(4).roll(1, 0)).item() == pytest.approx(0.0)


def test_distillation_is_minus_mean_cosine():
    s, t = _randn(5, 12, seed=1), _randn(5, 12, seed=2)
    expected = -F.cosine_similarity(s, t, dim=-1).mean()
    torch.testing.assert_close(distillation_loss(s, t), expected)


def test_distillation_scale_invariant():
    s, t = _randn(5, 12, seed=1), _randn(5, 12, seed=2)
    base = distillation_loss(s, t)
    scales = torch.tensor([0.01, 3.0, 100.0, 7.0, 0.5]).unsqueeze(1)
    torch.testing.assert_close(distillation_loss(s * scales, t), base)
    torch.testing.assert_close(distillation_loss(s, 42.0 * t), base)


def test_distillation_bounds_and_scalar():
    loss = distillation_loss(_randn(32, 8, seed=3), _randn(32, 8, seed=4))
    assert loss.dim() == 0
    s, t = _randn(32, 8, seed=3), _randn(32, 8, seed=4)
    expected = -(F.normalize(s, dim=-1) * F.normalize(t, dim=-1)).sum(-1).mean()  # -mean cos
    torch.testing.assert_close(loss, expected)


def test_distillation_gradient_only_to_student():
    s = _randn(4, 8, seed=5).requires_grad_()
    t = _randn(4, 8, seed=6).requires_grad_()
    distillation_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # teacher is detached


def test_distillation_accepts_half_teacher():
    s = _randn(4, 8, seed=7)
    loss = distillation_loss(s, s.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(-1.0, abs=1e-3)


def test_distillation_minimising_aligns_student():
    t = _randn(8, 16, seed=8)
    s = _randn(8, 16, seed=9).requires_grad_()
    opt = torch.optim.Adam([s], lr=0.1)
    start = distillation_loss(s, t).item()
    for _ in range(100):
        opt.zero_grad()
        loss = distillation_loss(s, t)
        loss.backward()
        opt.step()
    assert distillation_loss(s, t).item() < start
    assert distillation_loss(s, t).item() < -0.95


# --------------------------------------------------------------------------- #
# contrastive_loss
# --------------------------------------------------------------------------- #


def _reference_contrastive(audio, text, scale):
    a, t = F.normalize(audio, dim=-1), F.normalize(text, dim=-1)
    logits = scale * a @ t.T
    n = len(a)
    loss_a = -torch.stack([logits[i].log_softmax(0)[i] for i in range(n)]).mean()
    loss_t = -torch.stack([logits[:, i].log_softmax(0)[i] for i in range(n)]).mean()
    return 0.5 * (loss_a + loss_t)


def test_contrastive_matches_reference():
    a, t = _randn(6, 10, seed=1), _randn(6, 10, seed=2)
    scale = torch.tensor(math.log(1 / 0.07))
    expected = _reference_contrastive(a, t, 1 / 0.07)
    torch.testing.assert_close(contrastive_loss(a, t, scale), expected, rtol=1e-5, atol=1e-5)


def test_contrastive_symmetric():
    a, t = _randn(6, 10, seed=1), _randn(6, 10, seed=2)
    scale = torch.tensor(2.0)
    torch.testing.assert_close(contrastive_loss(a, t, scale), contrastive_loss(t, a, scale))


def test_contrastive_matched_lower_than_shuffled():
    a = _randn(8, 16, seed=3)
    t = a + 0.1 * _randn(8, 16, seed=4)  # matched pairs, row i with row i
    scale = torch.tensor(math.log(1 / 0.07))
    matched = contrastive_loss(a, t, scale)
    shuffled = contrastive_loss(a, t[torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])], scale)
    assert matched.item() < shuffled.item()
    assert matched.item() < math.log(8) < shuffled.item()


def test_contrastive_perfect_pairs_near_zero_at_large_scale():
    e = torch.eye(4)
    assert contrastive_loss(e, e, torch.tensor(math.log(100.0))).item() < 1e-6


def test_contrastive_zero_scale_is_log_batch():
    a, t = _randn(5, 7, seed=5), _randn(5, 7, seed=6)
    # exp(-inf) = 0: all logits equal, loss = log(B).
    loss = contrastive_loss(a, t, torch.tensor(-float("inf")))
    assert loss.item() == pytest.approx(math.log(5), abs=1e-6)


def test_contrastive_scale_invariant_in_embeddings():
    a, t = _randn(5, 7, seed=5), _randn(5, 7, seed=6)
    scale = torch.tensor(1.5)
    torch.testing.assert_close(
        contrastive_loss(3 * a, 0.2 * t, scale), contrastive_loss(a, t, scale)
    )


def test_contrastive_gradient_flows_to_logit_scale_and_embeddings():
    a = _randn(6, 10, seed=7).requires_grad_()
    t = _randn(6, 10, seed=8).requires_grad_()
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    contrastive_loss(a, t, logit_scale).backward()
    assert logit_scale.grad is not None
    assert logit_scale.grad.item() != 0.0
    assert a.grad.abs().sum() > 0 and t.grad.abs().sum() > 0


def test_contrastive_clamps_at_max_scale():
    a, t = _randn(6, 10, seed=9), _randn(6, 10, seed=10)
    at_max = contrastive_loss(a, t, torch.tensor(math.log(100.0)))
    above = contrastive_loss(a, t, torch.tensor(math.log(1000.0)))
    torch.testing.assert_close(above, at_max)
    torch.testing.assert_close(above, _reference_contrastive(a, t, 100.0), rtol=1e-5, atol=1e-5)
    custom = contrastive_loss(a, t, torch.tensor(math.log(1000.0)), max_scale=10.0)
    torch.testing.assert_close(custom, _reference_contrastive(a, t, 10.0), rtol=1e-5, atol=1e-5)
    below = contrastive_loss(a, t, torch.tensor(math.log(5.0)), max_scale=10.0)
    torch.testing.assert_close(below, _reference_contrastive(a, t, 5.0), rtol=1e-5, atol=1e-5)


def test_contrastive_clamped_scale_gets_no_gradient():
    a, t = _randn(6, 10, seed=11), _randn(6, 10, seed=12)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1000.0)))
    contrastive_loss(a, t, logit_scale).backward()
    assert logit_scale.grad.item() == 0.0


def test_contrastive_batch_of_one_is_zero():
    a, t = _randn(1, 4, seed=13), _randn(1, 4, seed=14)
    assert contrastive_loss(a, t, torch.tensor(2.0)).item() == pytest.approx(0.0, abs=1e-7)
