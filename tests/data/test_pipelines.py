"""Labels outside the class list: a clear error for evaluation, -1 (counted) for distillation."""

import json

import numpy as np
import pytest
import soundfile as sf

from tinyclap.data.pipelines import count_unscored, eval_dataset, label_index_pipeline


def _manifest(tmp_path, labels):
    entries = {}
    for i, label in enumerate(labels):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, np.zeros(1600), 16000)
        entries[f"c{i}"] = {"wav": str(path), "label": label}
    path = tmp_path / "test.json"
    path.write_text(json.dumps(entries))
    return path


def test_evaluation_names_the_entry_with_an_unknown_label(tmp_path):
    manifest = _manifest(tmp_path, ["rain", "siren"])
    dataset = eval_dataset(manifest, 16000, ["dog", "rain"])
    assert dataset[0]["label_index"] == 1
    with pytest.raises(ValueError, match=r"test.json: entry 'c1' has label 'siren', not one"):
        dataset[1]


def test_distillation_audio_may_be_unlabelled():
    index = label_index_pipeline(["dog", "rain"], "valid.json", unknown_ok=True)
    assert [index("a", "dog"), index("b", None), index("c", "siren")] == [0, -1, -1]


def test_count_unscored_counts_the_clips_that_get_minus_one(tmp_path):
    manifest = _manifest(tmp_path, ["rain", "siren", None, "dog", "siren"])
    classes = ["dog", "rain"]
    index = label_index_pipeline(classes, manifest, unknown_ok=True)
    entries = json.loads(manifest.read_text())
    expected = sum(index(k, e["label"]) == -1 for k, e in entries.items())
    assert count_unscored(manifest, classes) == expected == 3
    assert count_unscored(manifest, ["dog", "rain", "siren"]) == 1  # the unlabelled clip
    entries["c5"] = {"wav": entries["c0"]["wav"]}  # no label field at all
    manifest.write_text(json.dumps(entries))
    assert count_unscored(manifest, classes) == 4
