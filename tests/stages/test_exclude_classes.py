"""``exclude_classes``: train and valid clips holding an excluded class are dropped, test kept."""

import json

import pytest

from tinyclap.data.pipelines import read_manifest
from tinyclap.prepare.synth import prepare_synth_mixtures
from tinyclap.training.data import exclude_classes


def test_excluded_classes_leave_train_and_valid_only(synth_tree, tmp_path):
    manifests = {k: str(v) for k, v in synth_tree["manifests"].items()}
    out = exclude_classes(manifests, ["siren", "rain"], tmp_path / "kept")
    assert out["test"] == manifests["test"]
    for split in ("train", "valid"):
        kept = read_manifest(out[split])
        held = {c for e in kept.values() for c in e.get("labels") or [e["label"]]}
        assert held and not held & {"siren", "rain"}
        before = read_manifest(manifests[split])
        dropped = [e for k, e in before.items() if k not in kept]
        assert dropped and all({"siren", "rain"} & set(e["labels"]) for e in dropped)
    with pytest.raises(ValueError, match="no train/valid clip"):
        exclude_classes(manifests, ["not a class"], tmp_path / "x")


def test_mixture_set_holds_two_classes_per_clip(tmp_path):
    path = prepare_synth_mixtures(tmp_path, n_per_class=1, duration=0.25)
    entries = json.loads(open(path).read())
    assert len(entries) == 24
    assert all(
        len(set(e["labels"])) == 2 and e["label"] == e["labels"][0] for e in entries.values()
    )
    assert prepare_synth_mixtures(tmp_path, n_per_class=1, duration=0.25) == path  # cached
