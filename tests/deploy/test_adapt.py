"""Few-shot classes (tinyclap adapt) and open-set thresholds (tinyclap calibrate) in exported folders.

The fixture student and teacher have random weights: no class's text embedding
says anything about its sound, so every class is one "the teacher never
learned", and zero-shot accuracy sits at chance. A prototype built from a few
recordings must do better than chance on other recordings of the same classes.
"""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.cli.main import main
from tinyclap.data.synth_sounds import example_rng, render_example
from tinyclap.deploy.adapt import adapt_export
from tinyclap.deploy.calibration import CALIBRATION_FILE
from tinyclap.deploy.export import export_files, export_student
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.deploy.safety import WeightsChecksumError, sha256_file

CLASSES = ["church bell", "clock ticking", "rain", "siren"]  # sorted, as the folders are read
K_SHOTS = 3
N_TEST = 6


def _render(path, label, index, split):
    wav, _ = render_example(example_rng(7, split, index), label, 16000, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, 16000)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_student):
    root = tmp_path_factory.mktemp("adapt")
    export_student(tiny_student.path, root / "exported", threads=1)
    tests, valid = {}, {}
    for c, label in enumerate(CLASSES):
        for i in range(K_SHOTS):
            _render(root / "examples" / label / f"{i}.wav", label, c * 100 + i, 0)
        for i in range(N_TEST):
            path = _render(root / "test" / f"{c}_{i}.wav", label, c * 100 + i, 1)
            tests[path.stem] = {"wav": str(path), "label": label}
            path = _render(root / "valid" / f"{c}_{i}.wav", label, c * 100 + i, 2)
            valid[path.stem] = {"wav": str(path), "label": label}
    (root / "test.json").write_text(json.dumps(tests))
    (root / "valid.json").write_text(json.dumps(valid))
    adapt_export(root / "exported", root / "examples", root / "adapted", labels="dog barking")
    return root


def _accuracy(classifier, manifest, labels):
    entries = list(json.loads(manifest.read_text()).values())
    _, _, _, predicted = classifier.classify_batch(
        [classifier.load_audio(e["wav"]) for e in entries], labels
    )
    return float(np.mean([p == e["label"] for p, e in zip(predicted, entries)]))


def test_adapted_folder_loads_and_holds_prototypes(workspace):
    folder = workspace / "adapted"
    info = json.loads((folder / "export.json").read_text())
    assert info["weights"]["label_embeddings"]["sha256"] == sha256_file(
        folder / "label_embeddings.safetensors"
    )
    assert info["label_sets"]["adapted"] == len(CLASSES) + 1
    kinds = {name: c["kind"] for name, c in info["adapted"]["classes"].items()}
    assert kinds == {"dog barking": "text", **{c: "prototype" for c in CLASSES}}
    assert export_files(folder)[1] == []  # nothing push would refuse
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder))
    assert clf.labels_of("adapted") == ["dog barking", *CLASSES]
    source = ZeroShotAudioClassifier.from_hparams(source=str(workspace / "exported"))
    table = clf.encode_text("adapted")
    # the text class is the source's prompt embedding; a prototype is the mean of its examples
    assert torch.allclose(table[0], source.encode_text(["dog barking"])[0], atol=1e-6)
    wavs = [clf.load_audio(str(p)) for p in sorted((workspace / "examples/siren").iterdir())]
    mean = torch.nn.functional.normalize(clf.encode_audio(wavs).mean(0), dim=0)
    assert torch.allclose(table[1 + CLASSES.index("siren")], mean, atol=1e-5)
    assert "adapted" not in source.label_sets  # the source folder is untouched


def test_prototypes_of_classes_the_teacher_never_learned_beat_chance(workspace):
    clf = ZeroShotAudioClassifier.from_hparams(source=str(workspace / "adapted"))
    source = ZeroShotAudioClassifier.from_hparams(source=str(workspace / "exported"))
    chance = 1 / len(CLASSES)
    zero_shot = _accuracy(source, workspace / "test.json", CLASSES)  # text prompts only
    few_shot = _accuracy(clf, workspace / "test.json", "adapted")
    assert few_shot >= chance + 0.25, (few_shot, zero_shot)
    assert few_shot > zero_shot


def test_text_weight_mixes_and_the_source_is_not_modified(workspace, tmp_path):
    before = sha256_file(workspace / "exported" / "label_embeddings.safetensors")
    info = adapt_export(workspace / "exported", workspace / "examples", tmp_path / "mixed",
                        text_weight=0.5, set_name="mine")  # fmt: skip
    assert {c["kind"] for c in info["adapted"]["classes"].values()} == {"mixed"}
    assert sha256_file(workspace / "exported" / "label_embeddings.safetensors") == before
    with pytest.raises(ValueError, match="source folder"):
        adapt_export(workspace / "exported", workspace / "examples", workspace / "exported")


def test_thresholds_round_trip_through_the_folder(workspace, tmp_path):
    folder = tmp_path / "calibrated"
    info = adapt_export(workspace / "exported", workspace / "examples", folder,
                        calibrate=workspace / "valid.json")  # fmt: skip
    written = json.loads((folder / CALIBRATION_FILE).read_text())
    assert info["calibration"]["sha256"] == sha256_file(folder / CALIBRATION_FILE)
    assert written["labels"] == CLASSES and set(written["label_thresholds"]) == set(CLASSES)
    assert CALIBRATION_FILE in export_files(folder)[0]
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder))
    assert clf.calibration == written
    wav = clf.load_audio(str(workspace / "test" / "0_0.wav"))
    scores, score, index, labels = clf.classify_open_set([wav], "adapted")
    assert (labels[0] is None) == (float(score[0]) < written["reject_threshold"])
    _, _, _, labels = clf.classify_open_set([wav], "adapted", threshold=2.0)
    assert labels == [None] and clf.classify_open_set([wav], "adapted", threshold=-2.0)[3][0]
    scores, present, names = clf.classify_multi_label([wav], "adapted")
    limits = torch.tensor([written["label_thresholds"][c] for c in CLASSES])
    assert present[0].tolist() == (scores[0] >= limits).tolist()
    assert set(names[0]) == {c for c, p in zip(CLASSES, present[0].tolist()) if p}
    # a modified threshold file is refused
    payload = {**written, "reject_threshold": -1.0}
    (folder / CALIBRATION_FILE).write_text(json.dumps(payload))
    with pytest.raises(WeightsChecksumError, match=CALIBRATION_FILE):
        ZeroShotAudioClassifier.from_hparams(source=str(folder))


def test_cli_adapt_calibrate_classify(workspace, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["adapt", "--examples", str(workspace / "examples"), "--model",
                 str(workspace / "exported"), "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["prototype"] == len(CLASSES)
    wav = str(workspace / "test" / "3_0.wav")
    assert main(["classify", wav, "--labels", "adapted", "--model", str(out), "--open_set"]) == 1
    assert "no open-set calibration" in capsys.readouterr().err
    assert main(["calibrate", str(out), "--manifest", str(workspace / "valid.json")]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == len(CLASSES)
    assert main(["classify", wav, "--labels", "adapted", "--model", str(out), "--open_set",
                 "--multi_label", "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)[0]
    assert "open_set" in record and isinstance(record["labels"], list)
    assert record["open_set"] in (None, *CLASSES)


@pytest.fixture(scope="module")
def onnx_adapted(workspace):
    pytest.importorskip("onnxruntime")
    folder = workspace / "onnx_adapted"
    adapt_export(workspace / "exported", workspace / "examples", folder, onnx=True,
                 labels="dog barking")  # fmt: skip
    return folder


def test_onnx_scores_graph_ends_in_the_adapted_classes(workspace, onnx_adapted):
    from tinyclap.deploy.onnx import session

    folder = onnx_adapted
    assert json.loads((folder / "onnx" / "labels.json").read_text()) == ["dog barking", *CLASSES]
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder))
    window = torch.zeros(1, clf.window_samples)
    window[0, :16000] = clf.load_audio(str(workspace / "test" / "0_0.wav"))[:16000]
    expected = clf.embed_windows(window) @ clf.encode_text("adapted").T
    got = session(folder / "onnx" / "classifier_scores.onnx").run(
        None, {"waveform": window.numpy()}
    )
    assert np.allclose(got[0], expected.numpy(), atol=1e-4)
    assert "onnx/classifier_scores.onnx" in export_files(folder)[0]


def test_typed_names_of_adapted_classes_take_their_prototypes(workspace, capsys):
    """The trap: typing the adapted class names used to give their text prompts silently."""
    clf = ZeroShotAudioClassifier.from_hparams(source=str(workspace / "adapted"))
    source = ZeroShotAudioClassifier.from_hparams(source=str(workspace / "exported"))
    table = clf.encode_text("adapted")  # ["dog barking", *CLASSES]
    typed = ["Siren", "rain", "dog barking", "a purring cat"]  # any case; text classes stay text
    plan = clf.label_plan(typed)
    assert [s[0] for s in plan.sources] == ["set", "set", "prompt", "prompt"]
    assert plan.note.startswith("2 labels use few-shot prototypes") and "Siren, rain" in plan.note
    got = clf.encode_text(typed)
    assert torch.equal(got[0], table[1 + CLASSES.index("siren")])
    assert torch.equal(got[1], table[1 + CLASSES.index("rain")])
    # the source's text embeddings; the text encoder saw other batches (1 vs 2 prompts, other
    # padding), so float32 sums differ in the last bits: 1e-5 on unit vectors, far below the
    # distance between two prompts' embeddings
    assert torch.allclose(got[2:], source.encode_text(typed[2:]), atol=1e-5)
    # typed names score as the adapted set: same accuracy, not the zero-shot one
    by_name = _accuracy(clf, workspace / "test.json", CLASSES)
    assert by_name == _accuracy(clf, workspace / "test.json", "adapted")
    # the adapted set is the folder's default label set
    assert clf.default_labels == "adapted" and source.default_labels is None
    assert clf.labels_of(None) == clf.labels_of("adapted")
    wav = str(workspace / "test" / "3_0.wav")
    assert clf.classify_file(wav)[3] == clf.classify_file(wav, "adapted")[3]
    with pytest.raises(ValueError, match="no default label set"):
        source.classify_file(wav)
    capsys.readouterr()
    model = ["--model", str(workspace / "adapted"), "--json"]
    assert main(["classify", wav, "--labels", "siren,church bell", *model]) == 0
    captured = capsys.readouterr()
    assert "note: 2 labels use few-shot prototypes" in captured.err
    assert main(["classify", wav, *model, "--top", "5"]) == 0
    captured = capsys.readouterr()
    assert "note: no labels given: the folder's default label set 'adapted'" in captured.err
    record = json.loads(captured.out)[0]
    assert {t["label"] for t in record["top"]} == {"dog barking", *CLASSES}
    assert main(["classify", wav, "--model", str(workspace / "exported")]) == 1
    assert "no default label set" in capsys.readouterr().err


def test_the_runtime_applies_the_same_rule(onnx_adapted, capsys):
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.cli import main as runtime_main

    full = ZeroShotAudioClassifier.from_hparams(source=str(onnx_adapted))
    runtime = RuntimeClassifier.from_folder(onnx_adapted)
    assert runtime.default_labels == "adapted"
    typed = ["church bell", "Clock_Ticking", "dog barking"]
    names, table = runtime.resolve_labels(typed)
    assert names == typed and runtime.label_plan(typed).note == full.label_plan(typed).note
    # the same float32 rows of the same tables: equal, not merely close
    assert np.array_equal(table, full.encode_text(typed).numpy())
    assert runtime.labels_of(None) == full.labels_of(None) == ["dog barking", *CLASSES]
    capsys.readouterr()
    assert runtime_main(["classify", str(onnx_adapted.parent / "test" / "0_0.wav"), "--model",
                         str(onnx_adapted), "--labels", "siren,rain", "--json"]) == 0  # fmt: skip
    assert "note: 2 labels use few-shot prototypes" in capsys.readouterr().err


def test_adapt_takes_a_hub_repo_id_like_classify(workspace, tmp_path, monkeypatch, capsys):
    """A repo in the local hub cache, offline: the same resolution as ``classify --model``."""
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny"
    shutil.copytree(workspace / "exported", repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    out = tmp_path / "from_hub"
    examples = ["--examples", str(workspace / "examples")]
    assert main(["adapt", *examples, "--model", "someone/tiny", "--out", str(out)]) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["adapted"]["source"] == "someone/tiny" and info["default_labels"] == "adapted"
    local = tmp_path / "from_folder"
    adapt_export(workspace / "exported", workspace / "examples", local)
    hub_clf = ZeroShotAudioClassifier.from_hparams(source=str(out))
    local_clf = ZeroShotAudioClassifier.from_hparams(source=str(local))
    assert torch.equal(hub_clf.encode_text("adapted"), local_clf.encode_text("adapted"))
    wav = str(workspace / "test" / "0_0.wav")
    capsys.readouterr()
    assert main(["classify", wav, "--labels", "us8k", "--model", "someone/tiny",
                 "--savedir", str(tmp_path / "saved")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["adapt", *examples, "--model", "someone/not-cached",
                 "--out", str(tmp_path / "x")]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("tinyclap: error: cannot load 'someone/not-cached': it is not a local")
    assert "HF_HUB_OFFLINE=1" in err and err.count("\n") == 1


def test_adapt_keeps_the_static_int8_recipe_where_its_clips_remain(tmp_path):
    """An adapted folder is re-quantized as its source was, and checked on the same clips."""
    from tinyclap.deploy.adapt import _source_int8_plan

    (tmp_path / "onnx").mkdir()
    calib, test = tmp_path / "valid.json", tmp_path / "test.json"
    calib.write_text("{}")
    test.write_text("{}")
    report = {"int8": {"mode": "static", "calibration_manifest": str(calib)},
              "accuracy": {"manifest": str(test)}}  # fmt: skip
    (tmp_path / "onnx" / "onnx_report.json").write_text(json.dumps(report))
    assert _source_int8_plan(tmp_path) == {"int8_mode": "static", "calibration_manifest": str(calib),
                                           "eval_manifest": str(test)}  # fmt: skip
    calib.unlink()  # calibration clips gone: export_onnx calibrates on the evaluation clips
    assert _source_int8_plan(tmp_path) == {"int8_mode": "static", "eval_manifest": str(test)}
    assert _source_int8_plan(tmp_path / "nowhere") == {}
