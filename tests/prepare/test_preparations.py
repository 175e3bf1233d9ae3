"""Real-data preparation: official layouts and quirks, manifests, checks, zero-shot runs.

Every dataset tree is built by ``tests/helpers/dataset_trees.py`` in the exact
official layout (file names, metadata formats, sample formats), with a few
short clips per class. The benchmark runs use an untrained mini teacher (the
numbers are meaningless; the runs check that the data flows end to end).
"""

import json
import logging
import os
from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.helpers import dataset_trees as trees
from tinyclap.audio.io import AudioLoadError, load_audio
from tinyclap.data.label_sets import ESC50_CLASSES, TUT17_CLASSES, US8K_CLASSES, readable_label
from tinyclap.data.manifests import MissingAudioError, hash_split, preparation_report
from tinyclap.prepare.audiocaps import prepare_audiocaps
from tinyclap.prepare.audiofolder import prepare_audiofolder
from tinyclap.prepare.clotho import prepare_clotho
from tinyclap.prepare.esc50 import main as esc50_main
from tinyclap.prepare.esc50 import prepare_esc50
from tinyclap.prepare.fsd50k import prepare_fsd50k
from tinyclap.prepare.macs import main as macs_main
from tinyclap.prepare.macs import prepare_macs, recording_key
from tinyclap.prepare.synth import prepare_synth
from tinyclap.prepare.tut17 import prepare_tut17
from tinyclap.prepare.us8k import prepare_us8k
from tinyclap.stages.run import main
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP
from tinyclap.zeroshot.prompts import class_prompts, ensemble_prompt_embeddings, prompt_embeddings

REPO = Path(__file__).resolve().parents[2]


def _load(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """All dataset trees, built once."""
    root = tmp_path_factory.mktemp("datasets")
    _, us8k_formats = trees.build_us8k(root)
    return {
        "root": root,
        "esc50": trees.build_esc50(root),
        "us8k_formats": us8k_formats,
        "tut17_folds": trees.build_tut17(root),
    }


# ---------------------------------------------------------------- benchmarks


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


def test_us8k_manifest_and_every_format_loads(data, tmp_path):
    entries = _load(prepare_us8k(data["root"], tmp_path)["test"])
    assert len(entries) == 20
    assert sorted({e["fold"] for e in entries.values()}) == list(range(1, 11))
    assert {e["label"] for e in entries.values()} == {readable_label(c) for c in US8K_CLASSES}
    assert entries["100111-3-1-3"]["label"] == "dog bark"
    subtypes = set()
    for clip_id, entry in entries.items():
        rate, channels, subtype, seconds = data["us8k_formats"][f"{clip_id}.wav"]
        assert f"fold{entry['fold']}" == Path(entry["wav"]).parent.name
        info = sf.info(entry["wav"])
        assert (info.samplerate, info.channels, info.subtype) == (rate, channels, subtype)
        subtypes.add(subtype)
        assert entry["duration"] == pytest.approx(seconds, abs=1 / rate)
        wav = load_audio(entry["wav"], 16000, manifest_id=clip_id)
        assert wav.dtype == torch.float32 and wav.dim() == 1
        assert abs(len(wav) - seconds * 16000) <= 1
        # a 440 Hz tone of amplitude 0.5: RMS 0.354 whatever the rate / depth / channels
        rms = float(wav[200:-200].pow(2).mean().sqrt())
        assert rms == pytest.approx(trees.AMPLITUDE / 2**0.5, rel=0.03), (clip_id, subtype)
    assert subtypes == {"PCM_U8", "PCM_16", "PCM_24", "FLOAT"}


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


# ---------------------------------------------------------------- distillation corpora


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


# ---------------------------------------------------------------- zero-shot runs


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """An untrained mini teacher (16 kHz, 1 s windows, 32-d latent)."""
    torch.manual_seed(0)
    model = MiniCLAP(n_mels=64, channels=[8, 16, 32], audio_dim=32, embedding_dim=32)
    frontend = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 320, "win_length": 1024,
                "n_mels": 64, "f_min": 50.0, "f_max": 8000.0}  # fmt: skip
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    save_mini_teacher(path, model, frontend, 1.0)
    return str(path)


def _evaluate(data_root, dataset, teacher, out, *extra):
    return main([
        str(REPO / "hparams/evaluate.yaml"), "--debug", "--dataset", dataset,
        "--data_folder", str(data_root), "--manifest_folder", str(out / "manifests"),
        "--teacher_checkpoint", teacher, "--model", "teacher", "--output_folder", str(out), *extra,
    ])  # fmt: skip


@pytest.mark.parametrize(
    "dataset, classes, extra",
    [
        ("esc50", ESC50_CLASSES, []),
        ("us8k", US8K_CLASSES,
         ["--prompt_template", '["this is the sound of {label}", "a recording of {label}"]']),
        ("tut17", TUT17_CLASSES, ["--prompt_template", "this is the sound of a {label}"]),
    ],
)  # fmt: skip
def test_zero_shot_debug_run_per_benchmark(data, teacher, tmp_path, dataset, classes, extra):
    result = _evaluate(data["root"], dataset, teacher, tmp_path, *extra)
    metrics = _load(tmp_path / "zeroshot_test" / "metrics.json")
    expected = {"esc50": 50, "us8k": 20, "tut17": 15}[dataset]
    assert metrics["num_clips"] == expected
    assert metrics["labels"] == sorted(readable_label(c) for c in classes)
    assert sum(map(sum, metrics["confusion_matrix"])) == expected
    assert result["zs_accuracy"] == metrics["accuracy"] and result["dataset"] == dataset


def test_prompt_ensemble_of_one_template_is_the_template(teacher):
    from tinyclap.teachers import load_teacher

    model = load_teacher("mini", checkpoint=teacher)
    labels = ["dog bark", "rain"]
    single = prompt_embeddings(model, class_prompts(labels, "the sound of {label}"))
    assert torch.equal(ensemble_prompt_embeddings(model, labels, ["the sound of {label}"]), single)
    pair = ensemble_prompt_embeddings(model, labels, ["the sound of {label}", "{label}"])
    other = prompt_embeddings(model, class_prompts(labels, "{label}"))
    expected = torch.nn.functional.normalize(single + other, dim=-1)
    assert torch.allclose(pair, expected, atol=1e-6)


# ---------------------------------------------------------------- bad audio


@pytest.fixture
def broken_esc50(tmp_path):
    """An ESC-50 tree with one file that is not audio and one empty file."""
    base = trees.build_esc50(tmp_path / "data")
    (base / "audio" / "1-100032-A-0.wav").write_bytes(b"RIFF....this is not a wav file")
    (base / "audio" / "2-100039-B-1.wav").write_bytes(b"")
    return tmp_path / "data"


def test_check_audio_reports_bad_files_with_manifest_ids(broken_esc50, teacher, tmp_path):
    record = _evaluate(broken_esc50, "esc50", teacher, tmp_path / "check", "--check_audio")
    assert record["stage"] == "check_audio" and record["checked"] == 50
    assert sorted(bad["id"] for bad in record["bad"]) == ["1-100032-A-0", "2-100039-B-1"]
    report = _load(tmp_path / "check" / "audio_check.json")
    bad = {b["id"]: b for b in report["splits"]["test"]["bad"]}
    assert bad["1-100032-A-0"]["wav"].endswith("audio/1-100032-A-0.wav")
    assert "manifest entry 1-100032-A-0" in bad["1-100032-A-0"]["error"]
    assert not (tmp_path / "check" / "zeroshot_test").exists()  # the stage did not run


def test_loader_names_the_bad_file_and_its_manifest_entry(broken_esc50, teacher, tmp_path):
    with pytest.raises(AudioLoadError, match=r"1-100032-A-0\.wav \(manifest entry 1-100032-A-0\)"):
        _evaluate(broken_esc50, "esc50", teacher, tmp_path / "eval")


def test_skip_bad_audio_drops_them_with_a_logged_count(broken_esc50, teacher, tmp_path, capfd):
    # SpeechBrain's experiment set-up routes logging to the console, not to caplog
    _evaluate(broken_esc50, "esc50", teacher, tmp_path / "eval", "--skip_bad_audio", "true")
    assert "skipped 2 unreadable clips of 50 in split test" in capfd.readouterr().out
    assert len(_load(tmp_path / "eval" / "clean_manifests" / "test.json")) == 48
    metrics = _load(tmp_path / "eval" / "zeroshot_test" / "metrics.json")
    assert metrics["num_clips"] == 48


# ---------------------------------------------------------------- combined distillation


def _distill(data, teacher, tmp_path, corpora, out, *extra):
    return main([
        str(REPO / "hparams/distill.yaml"), "--debug", "--dataset", "esc50",
        "--data_folder", str(data["root"]), "--manifest_folder", str(tmp_path / "esc50"),
        "--distill_corpora", corpora, "--teacher_checkpoint", teacher,
        "--output_folder", str(out), "--cache_folder", str(tmp_path / "cache"),
        "--alpha", "0.5", "--num_layers", "3", "--head_channels", "32", "--batch_size", "4", *extra,
    ])  # fmt: skip


def test_distill_on_combined_corpora_then_zero_shot_on_esc50(data, teacher, tmp_path):
    audiofolder = tmp_path / "mine"
    trees.build_audiofolder(audiofolder)
    (audiofolder / "rain" / "broken.wav").write_bytes(b"RIFF, but no audio")
    clotho = trees.build_clotho(tmp_path / "Clotho")
    corpora = (f"[{{dataset: audiofolder, data_folder: {audiofolder}, valid_fraction: 0.3}}, "
               f"{{dataset: clotho, data_folder: {clotho}}}]")  # fmt: skip
    # the training side fails on the unreadable file, naming it and its merged manifest id
    with pytest.raises(AudioLoadError, match=r"broken\.wav \(manifest entry audiofolder/rain/"):
        _distill(data, teacher, tmp_path, corpora, tmp_path / "failed")
    out = tmp_path / "distill"
    result = _distill(data, teacher, tmp_path, corpora, out, "--skip_bad_audio", "true")
    train = _load(out / "distill_manifests" / "train.json")
    valid = _load(out / "distill_manifests" / "valid.json")
    assert len(train) + len(valid) == 7 + 5  # AudioFolder files + Clotho development/validation
    assert {k.split("/")[0] for k in train} == {"audiofolder", "clotho"}
    assert any(k.startswith("clotho/") for k in valid)
    cleaned = {}  # a cleaned copy is written for the split that held the bad file only
    for split in ("train", "valid"):
        path = out / "clean_manifests" / f"{split}.json"
        cleaned.update(_load(path) if path.exists() else {})
    assert len(cleaned) == len(train if "audiofolder/rain/broken.wav" in train else valid) - 1
    assert "audiofolder/rain/broken.wav" in {**train, **valid}
    assert "audiofolder/rain/broken.wav" not in cleaned
    assert Path(result["student_checkpoint"]).is_file()
    metrics = _load(out / "zeroshot_test" / "metrics.json")  # ESC-50 test: --debug reads
    assert metrics["num_clips"] == 32 and len(metrics["labels"]) == 50  # 2 batches of 16


def test_stage_without_needed_split_is_a_clear_error(data, teacher, tmp_path):
    with pytest.raises(ValueError, match="no train/valid split"):
        main([
            str(REPO / "hparams/distill.yaml"), "--dataset", "esc50",
            "--data_folder", str(data["root"]), "--manifest_folder", str(tmp_path / "m"),
            "--teacher_checkpoint", teacher, "--output_folder", str(tmp_path / "o"),
        ])  # fmt: skip


def test_zero_shot_on_own_labelled_folder(teacher, tmp_path):
    trees.build_audiofolder(tmp_path / "mine")
    result = _evaluate(tmp_path / "mine", "audiofolder", teacher, tmp_path / "out",
                       "--label_from_folder", "true", "--split", "all")  # fmt: skip
    metrics = _load(tmp_path / "out" / "zeroshot_all" / "metrics.json")
    assert metrics["num_clips"] == 6 and metrics["labels"] == ["dog bark", "rain"]
    assert result["split"] == "all"
