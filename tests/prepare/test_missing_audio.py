"""Clips listed but missing on disk: a clear error naming them, or dropped with a count."""

from functools import partial

import pytest

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tinyclap.data.manifests import MissingAudioError, preparation_report
from tinyclap.prepare import main as prepare_main
from tinyclap.prepare.audiofolder import prepare_audiofolder
from tinyclap.prepare.clotho import prepare_clotho
from tinyclap.prepare.esc50 import prepare_esc50
from tinyclap.prepare.fsd50k import prepare_fsd50k
from tinyclap.prepare.synth import prepare_synth
from tinyclap.prepare.tut17 import prepare_tut17
from tinyclap.prepare.us8k import prepare_us8k

esc50_main = partial(prepare_main, "esc50")
macs_main = partial(prepare_main, "macs")


def test_esc50_missing_file_is_an_error_naming_it(tmp_path):
    root = trees.build_esc50(tmp_path)
    (root / "audio" / "1-100032-A-0.wav").unlink()
    with pytest.raises(MissingAudioError) as err:  # a FileNotFoundError
        prepare_esc50(root, tmp_path / "m")
    message = str(err.value)
    assert "esc50: 1 of 50 clips listed in the metadata are missing on disk" in message
    assert f"{root / 'audio' / '1-100032-A-0.wav'} (manifest entry 1-100032-A-0, split test)" in (
        message
    )
    assert not (tmp_path / "m" / "test.json").exists()
    # allowed: dropped, counted in the report, and the choice is part of the options
    manifests = prepare_esc50(root, tmp_path / "m", allow_missing=True)
    assert len(_load(manifests["test"])) == 49
    report = preparation_report(tmp_path / "m")
    assert report["missing_files"] == 1 and report["missing_count"] == {"test": 1}
    assert report["examples"] == [
        {"split": "test", "id": "1-100032-A-0", "wav": str(root / "audio" / "1-100032-A-0.wav")}
    ]
    with pytest.raises(MissingAudioError, match="1-100032-A-0"):  # not reused silently
        prepare_esc50(root, tmp_path / "m")


def test_many_missing_files_name_the_first_few_and_the_count(tmp_path):
    root = trees.build_esc50(tmp_path)
    gone = sorted((root / "audio").glob("*.wav"))[:8]
    for path in gone:
        path.unlink()
    with pytest.raises(MissingAudioError) as err:
        prepare_esc50(root, tmp_path / "m", test_folds=[1], valid_folds=[2])
    message = str(err.value)
    assert "esc50: 8 of 50 clips listed in the metadata are missing on disk" in message
    assert "; and 3 more." in message
    assert sum(path.stem in message for path in gone) == 5
    assert str(tmp_path / "m" / "prepare_report.json") in message  # lists all of them
    assert _load(tmp_path / "m" / "prepare_report.json")["missing_count"] == {"test": 8}


def test_restored_file_prepares_again(tmp_path):
    root = trees.build_esc50(tmp_path)
    wav = root / "audio" / "1-100032-A-0.wav"
    wav.rename(tmp_path / "aside.wav")
    prepare_esc50(root, tmp_path / "m", allow_missing=True)
    (tmp_path / "aside.wav").rename(wav)
    assert len(_load(prepare_esc50(root, tmp_path / "m", allow_missing=True)["test"])) == 50
    assert preparation_report(tmp_path / "m")["missing_files"] == 0


def test_cli_allow_missing(tmp_path, capsys):
    root = trees.build_esc50(tmp_path)
    (root / "audio" / "1-100032-A-0.wav").unlink()
    args = ["--data_folder", str(root), "--save_folder", str(tmp_path / "m")]
    with pytest.raises(MissingAudioError, match="1-100032-A-0"):
        esc50_main(args)
    esc50_main([*args, "--allow_missing"])
    assert f"test: {tmp_path / 'm' / 'test.json'}" in capsys.readouterr().out
    assert preparation_report(tmp_path / "m")["missing_files"] == 1
    macs = trees.build_macs(tmp_path / "MACS")
    (macs / "TAU-urban-acoustic-scenes-2019-development" / "audio" / "tram-vienna-7-700-a.wav"
     ).unlink()  # fmt: skip
    macs_main(["--data_folder", str(macs), "--save_folder", str(tmp_path / "mm"),
               "--allow_missing"])  # fmt: skip
    assert preparation_report(tmp_path / "mm")["examples"][0]["id"] == "tram-vienna-7-700-a"


def test_every_preparation_fails_on_a_missing_file(data, tmp_path):
    us8k = data["root"] / "UrbanSound8K"  # the shared trees are restored afterwards
    wav = next((us8k / "audio" / "fold1").glob("*.wav"))
    wav.rename(tmp_path / "aside.wav")
    try:
        with pytest.raises(MissingAudioError, match=f"manifest entry {wav.stem}"):
            prepare_us8k(data["root"], tmp_path / "u")
        assert prepare_us8k(data["root"], tmp_path / "u", [1], allow_missing=True)
        assert preparation_report(tmp_path / "u")["missing_count"] == {"test": 1}
    finally:
        (tmp_path / "aside.wav").rename(wav)
    tut17 = tmp_path / "tut17"
    trees.build_tut17(tut17)
    (tut17 / "TUT-acoustic-scenes-2017-evaluation" / "audio" / "3.wav").unlink()
    with pytest.raises(MissingAudioError, match=r"manifest entry tut17eval_3, split test"):
        prepare_tut17(tut17, tmp_path / "t")
    prepare_tut17(tut17, tmp_path / "t", allow_missing=True)
    assert preparation_report(tmp_path / "t")["missing_count"] == {"test": 1}
    clotho = trees.build_clotho(tmp_path / "Clotho")
    (clotho / "evaluation" / "evaluation sound, take 1.wav").unlink()
    with pytest.raises(MissingAudioError, match=r"manifest entry evaluation/evaluation sound"):
        prepare_clotho(clotho, tmp_path / "c")
    with pytest.raises(ValueError, match="the last preparation failed"):
        preparation_report(tmp_path / "c")
    prepare_clotho(clotho, tmp_path / "c", allow_missing=True)
    assert preparation_report(tmp_path / "c")["missing_files"] == 1
    fsd = trees.build_fsd50k(tmp_path / "FSD50K")
    (fsd / "FSD50K.dev_audio" / "16401.wav").unlink()
    with pytest.raises(MissingAudioError, match=r"manifest entry dev_16401, split train"):
        prepare_fsd50k(fsd, tmp_path / "f")
    prepare_fsd50k(fsd, tmp_path / "f", allow_missing=True)
    assert preparation_report(tmp_path / "f")["missing_count"] == {"train": 1}
    trees.build_audiofolder(tmp_path / "mine")
    prepare_audiofolder(tmp_path / "mine", tmp_path / "a", allow_missing=True)
    assert preparation_report(tmp_path / "a")["missing_files"] == 0
    prepare_synth(tmp_path / "synth", tmp_path / "s", n_train=1, n_valid=1, n_test=1,
                  duration=0.1, num_workers=0, allow_missing=True)  # fmt: skip
    assert preparation_report(tmp_path / "s") == {
        "missing_files": 0, "missing_count": {}, "examples": [], "allow_missing": True,
    }  # fmt: skip
