"""Stages on prepared benchmarks: zero-shot --debug runs, bad audio, combined corpora (untrained mini teacher: the numbers are meaningless, the data flow is checked)."""

from pathlib import Path

import pytest
import torch

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tests.helpers.tiny import REPO
from tinyclap.audio.io import AudioLoadError
from tinyclap.data.label_sets import ESC50_CLASSES, TUT17_CLASSES, US8K_CLASSES, readable_label
from tinyclap.stages.run import main
from tinyclap.zeroshot.prompts import class_prompts, ensemble_prompt_embeddings, prompt_embeddings


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
