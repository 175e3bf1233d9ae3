"""A folder of the user's own audio, labelled by sub-folder."""

import pytest

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tinyclap.audio.io import load_audio
from tinyclap.prepare.audiofolder import prepare_audiofolder


def test_audiofolder_recursive_with_labels(tmp_path):
    clips = trees.build_audiofolder(tmp_path / "mine")
    manifests = prepare_audiofolder(tmp_path / "mine", tmp_path / "mine" / "manifests",
                                    valid_fraction=0.3, label_from_folder=True)  # fmt: skip
    everything = _load(manifests["all"])
    assert sorted(everything) == clips  # hidden files, non-audio and the manifests skipped
    train, valid = _load(manifests["train"]), _load(manifests["valid"])
    assert sorted([*train, *valid]) == clips and train and valid
    assert everything["dog_bark/deep/c.flac"]["label"] == "dog bark"
    assert {e["label"] for e in everything.values()} == {"dog bark", "rain"}
    for clip_id, entry in everything.items():
        assert len(load_audio(entry["wav"], 16000, manifest_id=clip_id)) == pytest.approx(
            4800, abs=1
        )
    # a second preparation is skipped; a new file prepares again, old files keep their split
    assert prepare_audiofolder(tmp_path / "mine", tmp_path / "mine" / "manifests",
                               valid_fraction=0.3, label_from_folder=True) == manifests  # fmt: skip
    trees.write_tone(tmp_path / "mine" / "rain" / "g.wav", 0.3)
    again = prepare_audiofolder(tmp_path / "mine", tmp_path / "mine" / "manifests",
                                valid_fraction=0.3, label_from_folder=True)  # fmt: skip
    assert len(_load(again["all"])) == len(clips) + 1
    assert set(valid) <= set(_load(again["valid"]))
