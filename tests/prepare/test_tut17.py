"""TUT Acoustic Scenes 2017: development and evaluation releases, folds."""

from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tinyclap.data.label_sets import TUT17_CLASSES, readable_label
from tinyclap.prepare.tut17 import prepare_tut17


def test_tut17_both_releases(data, tmp_path):
    manifests = prepare_tut17(data["root"], tmp_path)  # auto: evaluation release is the test set
    test, train = _load(manifests["test"]), _load(manifests["train"])
    assert len(test) == 15 and len(train) == 30
    assert {e["release"] for e in test.values()} == {"evaluation"}
    assert {e["label"] for e in test.values()} == {readable_label(c) for c in TUT17_CLASSES}
    assert test["tut17eval_3"]["label"] == "cafe or restaurant"
    assert test["tut17eval_3"]["scene"] == "cafe/restaurant"
    for entry in train.values():
        relative = "audio/" + Path(entry["wav"]).name
        assert entry["fold"] == data["tut17_folds"][relative]
        assert entry["identifier"] == Path(entry["wav"]).stem.split("_")[0]
        assert sf.info(entry["wav"]).channels == 2 and sf.info(entry["wav"]).subtype == "PCM_24"


def test_tut17_development_folds(data, tmp_path):
    everything = _load(prepare_tut17(data["root"], tmp_path / "a", "development")["test"])
    assert len(everything) == 30
    assert sorted({e["fold"] for e in everything.values()}) == [1, 2, 3, 4]
    manifests = prepare_tut17(data["root"], tmp_path / "b", "development", [1], [2])
    counts = {split: len(_load(path)) for split, path in manifests.items()}
    assert counts == {"test": 8, "valid": 8, "train": 14}
    fold1 = (data["root"] / "TUT-acoustic-scenes-2017-development" / "evaluation_setup"
             / "fold1_evaluate.txt").read_text().splitlines()  # fmt: skip
    assert {Path(e["wav"]).name for e in _load(manifests["test"]).values()} == {
        Path(line.split("\t")[0]).name for line in fold1
    }


def test_tut17_evaluation_release_alone_and_unlabelled_meta(tmp_path):
    trees.build_tut17(tmp_path / "only_eval", development=False, eval_meta_labels=False)
    # meta.txt without labels: they come from evaluation_setup/evaluate.txt
    manifests = prepare_tut17(tmp_path / "only_eval" / "TUT-acoustic-scenes-2017-evaluation",
                              tmp_path / "m")  # fmt: skip
    assert list(manifests) == ["test"] and len(_load(manifests["test"])) == 15
    trees.build_tut17(tmp_path / "dev_only", evaluation=False)
    with pytest.raises(FileNotFoundError, match="no labelled TUT-acoustic-scenes-2017-evaluation"):
        prepare_tut17(tmp_path / "dev_only", tmp_path / "m2", test_set="evaluation")
