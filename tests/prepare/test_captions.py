"""Captioned and tagged corpora: AudioCaps, Clotho, MACS, FSD50K."""

import logging

import pytest

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tinyclap.data.manifests import MissingAudioError, hash_split, preparation_report
from tinyclap.prepare.audiocaps import prepare_audiocaps
from tinyclap.prepare.clotho import prepare_clotho
from tinyclap.prepare.fsd50k import prepare_fsd50k
from tinyclap.prepare.macs import prepare_macs, recording_key


def test_audiocaps_missing_clips_fail_unless_allowed(tmp_path, caplog):
    root = trees.build_audiocaps(tmp_path / "AudioCaps")
    with pytest.raises(MissingAudioError) as err:
        prepare_audiocaps(root, tmp_path / "m")
    message = str(err.value)
    assert "audiocaps: 2 of 8 clips listed in the metadata are missing on disk" in message
    assert (
        f"{root / 'audio' / 'train' / 'yt_train_3_30.wav'} (manifest entry yt_train_3_30" in message
    )
    assert "yt_test_1_10" in message and "--allow_missing" in message
    assert not (tmp_path / "m" / "train.json").exists()
    with caplog.at_level(logging.WARNING):
        manifests = prepare_audiocaps(root, tmp_path / "m", allow_missing=True)
    counts = {split: len(_load(path)) for split, path in manifests.items()}
    assert counts == {"train": 3, "valid": 2, "test": 1}
    report = _load(tmp_path / "m" / "prepare_report.json")
    assert report["missing_count"] == {"train": 1, "test": 1} and report["missing_files"] == 2
    assert report["missing"]["train"][0]["id"] == "yt_train_3_30"
    assert "1 clips of split train are missing on disk and were dropped" in caplog.text
    summary = preparation_report(tmp_path / "m")
    assert summary["missing_files"] == 2 and summary["missing_count"] == {"train": 1, "test": 1}
    assert [e["id"] for e in summary["examples"]] == ["yt_train_3_30", "yt_test_1_10"]
    valid = _load(manifests["valid"])["yt_val_1_10"]
    assert len(valid["captions"]) == 5 and valid["caption"] == "val clip 1 caption 0"
    assert len(valid["audiocap_ids"]) == 5


def test_audiocaps_other_file_pattern(tmp_path):
    root = trees.build_audiocaps(tmp_path / "AudioCaps", missing=())
    for wav in (root / "audio").rglob("*.wav"):  # rename clips to {audiocap_id}.wav, flat
        youtube_id = wav.stem.rsplit("_", 1)[0]
        name = youtube_id.split("_")[1]
        rows = (root / "dataset" / f"{name}.csv").read_text().splitlines()[1:]
        audiocap_id = next(r.split(",")[0] for r in rows if r.split(",")[1] == youtube_id)
        wav.rename(root / "audio" / f"{audiocap_id}.wav")
    manifests = prepare_audiocaps(root, tmp_path / "m", audio_pattern="{audiocap_id}.wav")
    assert {split: len(_load(path)) for split, path in manifests.items()} == {
        "train": 4, "valid": 2, "test": 2,
    }  # fmt: skip


def test_clotho_macs_fsd50k(tmp_path):
    clotho = prepare_clotho(trees.build_clotho(tmp_path / "Clotho"), tmp_path / "mc")
    assert {s: len(_load(p)) for s, p in clotho.items()} == {"train": 3, "valid": 2, "test": 2}
    entry = _load(clotho["train"])["development/development sound, take 1.wav"]
    assert len(entry["captions"]) == 5 and entry["caption"].startswith("a development sound")

    macs = prepare_macs(trees.build_macs(tmp_path / "MACS"), tmp_path / "mm", valid_fraction=0.5)
    merged = {k: v for path in macs.values() for k, v in _load(path).items()}
    assert len(merged) == 4
    for split, path in macs.items():  # whole recordings go to one split, chosen by their key
        assert all(hash_split(recording_key(k), 0.5) == split for k in _load(path))
    square = merged["public_square-helsinki-111-3230-a"]
    assert square["label"] == "public square"
    assert square["tags"] == ["adults talking", "traffic noise"]
    assert len(merged["airport-barcelona-0-0-a"]["captions"]) == 2

    fsd = prepare_fsd50k(trees.build_fsd50k(tmp_path / "FSD50K"), tmp_path / "mf")
    assert {s: len(_load(p)) for s, p in fsd.items()} == {"train": 3, "valid": 1, "test": 2}
    assert _load(fsd["train"])["dev_64760"]["labels"] == ["Electric_guitar", "Guitar", "Music"]
    assert "label" not in _load(fsd["test"])["eval_37199"]
