"""Zero-shot helpers, training-log parsing and the dataio manifest checks."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinyclap.data.pipelines import manifest_classes, read_manifest, unpad
from tinyclap.studies.training_curves import parse_train_log, plot_training_curves
from tinyclap.zeroshot.prompts import class_prompts
from tinyclap.zeroshot.report import confusion_matrix, summarise, write_report
from tinyclap.zeroshot.scoring import clip_embeddings


def test_prompts_need_a_label_field():
    assert class_prompts(["rain"], "a {label} recording") == ["a rain recording"]
    with pytest.raises(ValueError, match="no {label} field"):
        class_prompts(["rain"], "a recording")


def test_clip_embeddings_average_all_windows():
    calls = []

    def embed(windows):
        calls.append(windows.shape)
        return F.normalize(torch.stack([windows.mean(1), torch.ones(len(windows))], 1), dim=-1)

    long_clip = torch.cat([torch.zeros(10), torch.ones(10), 2 * torch.ones(10)])
    clips, per_window = clip_embeddings(embed, [long_clip, torch.ones(4)], 10, per_window=True)
    assert [len(w) for w in per_window] == [3, 1]  # 3 windows; a short clip is one window
    expected = F.normalize(per_window[0].mean(0), dim=0)
    assert torch.allclose(clips[0], expected)
    assert torch.allclose(clips.norm(dim=1), torch.ones(2))
    clip_embeddings(embed, [long_clip, torch.ones(4)], 10, batch_size=2)
    assert calls[-2:] == [torch.Size([2, 10]), torch.Size([2, 10])]


def test_summary_and_confusion():
    targets, preds = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    matrix = confusion_matrix(targets, preds, 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    summary = summarise(targets, preds, ["a", "b", "c", "d"])
    assert summary["accuracy"] == pytest.approx(4 / 6)
    assert summary["per_class_accuracy"] == {
        "a": 0.5,
        "b": 1.0,
        "c": pytest.approx(2 / 3),
        "d": None,
    }
    assert summary["balanced_accuracy"] == pytest.approx(np.mean([0.5, 1.0, 2 / 3]))


def test_write_report(tmp_path):
    summary = summarise([0, 1], [0, 0], ["dog barking", "rain"])
    write_report(summary, tmp_path / "report", "title")
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["accuracy"] == 0.5
    assert (tmp_path / "report" / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_parse_and_plot_train_log(tmp_path):
    log = tmp_path / "train_log.txt"
    log.write_text(
        "epoch: 1, lr: 1.20e-02 - train loss: -4.43e-01 - valid loss: -6.91e-01, valid zs_acc: 4.17e-01\n"
        "epoch: 2, lr: 1.20e-02 - train loss: -6.88e-01 - valid loss: -8.14e-01, valid zs_acc: 6.29e-01\n"
        "Epoch loaded: 2 - test loss: 1.0\n"
    )  # fmt: skip
    rows = parse_train_log(log)
    assert rows == [
        {"epoch": 1, "train_loss": -0.443, "valid_loss": -0.691, "valid_zs_acc": 0.417},
        {"epoch": 2, "train_loss": -0.688, "valid_loss": -0.814, "valid_zs_acc": 0.629},
    ]
    plot_training_curves({"run": log}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_manifest_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        read_manifest(broken)
    no_wav = tmp_path / "no_wav.json"
    no_wav.write_text(json.dumps({"clip1": {"label": "rain"}}))
    with pytest.raises(ValueError, match="'clip1' has no 'wav'"):
        read_manifest(no_wav)
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"a": {"wav": "x", "label": "rain"}, "b": {"wav": "y", "label": "dog"}})
    )
    assert manifest_classes(good) == ["dog", "rain"]


def test_unpad_uses_relative_lengths():
    data = torch.arange(12.0).view(2, 6)
    rows = unpad((data, torch.tensor([1.0, 0.5])))
    assert [r.tolist() for r in rows] == [list(range(6)), [6.0, 7.0, 8.0]]
