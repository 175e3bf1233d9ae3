"""ESC-50: the official ``ESC-50-master`` layout, folds, the command line."""

import os
from functools import partial

import pytest

from tests.helpers.dataset_trees import load_json as _load
from tinyclap.data.label_sets import ESC50_CLASSES, readable_label
from tinyclap.prepare import main as prepare_main
from tinyclap.prepare.esc50 import prepare_esc50

esc50_main = partial(prepare_main, "esc50")


def test_esc50_manifest(data, tmp_path):
    manifests = prepare_esc50(data["root"], tmp_path)
    assert list(manifests) == ["test"]
    entries = _load(manifests["test"])
    assert len(entries) == 50
    assert {e["label"] for e in entries.values()} == {readable_label(c) for c in ESC50_CLASSES}
    entry = entries["1-100032-A-0"]
    assert entry["label"] == "dog" and entry["category"] == "dog" and entry["target"] == 0
    assert entry["fold"] == 1 and entry["esc10"] is True and entry["duration"] == pytest.approx(0.3)
    assert entries["1-100242-A-30"]["label"] == "door wood knock"
    assert sorted({e["fold"] for e in entries.values()}) == [1, 2, 3, 4, 5]
    assert sum(e["esc10"] for e in entries.values()) == 10
    report = _load(tmp_path / "prepare_report.json")
    assert report["counts"] == {"test": 50} and report["missing_count"] == {}


def test_esc50_folds_and_skip_if_prepared(data, tmp_path):
    manifests = prepare_esc50(data["root"] / "ESC-50-master", tmp_path, [5], [4])
    counts = {split: len(_load(path)) for split, path in manifests.items()}
    assert counts == {"test": 10, "valid": 10, "train": 30}
    assert {e["fold"] for e in _load(manifests["train"]).values()} == {1, 2, 3}
    stamp = os.stat(manifests["train"]).st_mtime_ns
    assert prepare_esc50(data["root"], tmp_path, [5], [4]) == manifests  # same options: skipped
    assert os.stat(manifests["train"]).st_mtime_ns == stamp
    again = prepare_esc50(data["root"], tmp_path, [1])  # other options: prepared again
    assert {split: len(_load(path)) for split, path in again.items()} == {"test": 10, "train": 40}


def test_esc50_cli_and_layout_error(data, tmp_path, capsys):
    esc50_main(
        ["--data_folder", str(data["esc50"]), "--save_folder", str(tmp_path), "--test_folds", "2"]
    )
    assert f"test: {tmp_path / 'test.json'}" in capsys.readouterr().out
    assert {e["fold"] for e in _load(tmp_path / "test.json").values()} == {2}
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv not found"):
        prepare_esc50(tmp_path, tmp_path / "x")
