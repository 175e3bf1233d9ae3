"""Few-shot classes (tinyclap adapt) and open-set thresholds (tinyclap calibrate) in exported folders.

The fixture student and teacher have random weights: no class's text embedding
says anything about its sound, so every class is one "the teacher never
learned", and zero-shot accuracy sits at chance. A prototype built from a few
recordings must do better than chance on other recordings of the same classes.
"""

import json

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
    chance = 1 / len(CLASSES)
    zero_shot = _accuracy(clf, workspace / "test.json", CLASSES)
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


def test_onnx_scores_graph_ends_in_the_adapted_classes(workspace, tmp_path):
    pytest.importorskip("onnxruntime")
    from tinyclap.deploy.onnx import session

    folder = tmp_path / "onnx_adapted"
    adapt_export(workspace / "exported", workspace / "examples", folder, onnx=True)
    assert json.loads((folder / "onnx" / "labels.json").read_text()) == CLASSES
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder))
    window = torch.zeros(1, clf.window_samples)
    window[0, :16000] = clf.load_audio(str(workspace / "test" / "0_0.wav"))[:16000]
    expected = clf.embed_windows(window) @ clf.encode_text("adapted").T
    got = session(folder / "onnx" / "classifier_scores.onnx").run(
        None, {"waveform": window.numpy()}
    )
    assert np.allclose(got[0], expected.numpy(), atol=1e-4)
    assert "onnx/classifier_scores.onnx" in export_files(folder)[0]
