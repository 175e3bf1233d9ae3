"""Prototypes, open-set thresholds and multi-label thresholds on plain tensors."""

import pytest
import torch
import torch.nn.functional as F

from tinyclap.zeroshot.open_set import (
    REJECTED,
    calibrate_label_thresholds,
    calibrate_rejection,
    multilabel_decisions,
    multilabel_metrics,
    open_set_metrics,
    reject_decisions,
)
from tinyclap.zeroshot.prototypes import class_prototype, class_table, mix_with_text


def test_prototype_is_the_normalised_mean_of_normalised_examples():
    examples = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    expected = F.normalize(torch.tensor([1.0, 1.0, 0.0]), dim=0)
    assert torch.allclose(class_prototype(examples), expected)
    assert torch.allclose(class_prototype(examples[:1]), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="example embeddings"):
        class_prototype(torch.zeros(0, 3))


def test_text_weight_interpolates_between_prototype_and_text():
    p, t = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert torch.allclose(mix_with_text(p, t, 0.0), p)
    assert torch.allclose(mix_with_text(p, t, 1.0), torch.tensor([0.0, 1.0]))
    quarter = mix_with_text(p, t, 0.25)
    assert quarter[0] > quarter[1] > 0 and torch.isclose(quarter.norm(), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mix_with_text(p, t, 1.5)


def test_class_table_orders_and_kinds():
    text = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0])}
    examples = {"b": torch.tensor([[1.0, 1.0]]), "c": torch.tensor([[1.0, -1.0]])}
    names, table, kinds = class_table(examples, text, 0.0)
    assert names == ["a", "b", "c"] and kinds == ["text", "prototype", "prototype"]
    assert torch.allclose(table[1], F.normalize(torch.tensor([1.0, 1.0]), dim=0))
    names, table, kinds = class_table(examples, text, 0.5)
    assert kinds == ["text", "mixed", "prototype"]
    assert torch.allclose(table[1], mix_with_text(table.new_tensor([1.0, 1.0]), text["b"], 0.5))


def test_rejection_threshold_quantile_and_balanced():
    known = torch.linspace(0.4, 0.9, 101)
    quantile = calibrate_rejection(known, known_accept=0.9)
    assert quantile["known_accept"] == pytest.approx(0.9, abs=0.011)
    assert quantile["unknown_reject"] is None
    unknown = torch.linspace(0.1, 0.45, 50)
    balanced = calibrate_rejection(known, unknown)
    assert 0.4 <= balanced["threshold"] <= 0.45
    assert balanced["known_accept"] + balanced["unknown_reject"] > 1.9


def test_label_thresholds_separate_each_class():
    torch.manual_seed(0)
    targets = torch.rand(200, 4) < 0.3
    scores = torch.where(targets, 0.6, 0.2) + 0.05 * torch.randn(200, 4)
    scores[:, 3] += 0.2  # a class whose cosines are all higher
    per_class, shared = calibrate_label_thresholds(scores, targets)
    assert 0.55 < per_class[3] < 0.65 and all(0.3 < t < 0.5 for t in per_class[:3])
    predicted = multilabel_decisions(scores, per_class)
    assert multilabel_metrics(predicted, targets)["f1"] > 0.99
    empty = targets.clone()
    empty[:, 2] = False
    per_class, shared = calibrate_label_thresholds(scores, empty)
    assert per_class[2] == shared  # no positives: the shared threshold


def test_decisions_and_metrics():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.3], [0.1, 0.8], [0.6, 0.5]])
    decisions = reject_decisions(scores, 0.5)
    assert decisions.tolist() == [0, REJECTED, 1, 0]
    metrics = open_set_metrics(decisions, torch.tensor([0, REJECTED, 0, REJECTED]))
    assert metrics["known_accuracy"] == 0.5 and metrics["unknown_rejection"] == 0.5
    assert metrics["precision"] == pytest.approx(1 / 3) and metrics["known_rejected"] == 0.0
    perfect = multilabel_metrics(torch.eye(3).bool(), torch.eye(3).bool())
    assert perfect["f1"] == perfect["macro_f1"] == perfect["exact_match"] == 1.0
