"""Exported student folders: loading with from_hparams, parity with the evaluation stage."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from tinyclap.audio.io import AudioLoadError, load_audio, resample
from tinyclap.deploy.export import export_student
from tinyclap.deploy.inference import ZeroShotAudioClassifier, foreign_class
from tinyclap.deploy.safety import UntrustedCodeError, sha256_file
from tinyclap.deploy.text_encoders import bundled_prompts
from tinyclap.pruning.surgery import shrink_student
from tinyclap.stages.evaluate import evaluate_zero_shot
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers import load_teacher
from tinyclap.zeroshot.prompts import class_prompts, prompt_embeddings
from tinyclap.zeroshot.report import summarise
from tinyclap.zeroshot.scoring import clip_embeddings

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}
CLASSES = ["dog barking", "rain", "siren"]


def _student(seed, embedding_dim=16):
    torch.manual_seed(seed)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=embedding_dim)  # fmt: skip
    return StudentAudioEncoder(student, FRONTEND, 1.0).eval()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, mini_teacher):
    """A random-weight mini teacher, a student, a labelled manifest of odd clips."""
    root = tmp_path_factory.mktemp("hub")
    teacher_path = mini_teacher.path
    student_path = root / "run" / "student.ckpt"
    save_student(student_path, _student(1), teacher=str(teacher_path))
    (root / "run" / "results.json").write_text(json.dumps({"zs_accuracy": 0.5, "dataset": "x"}))
    rng = np.random.default_rng(0)
    manifest = {}
    # short, exact, long (3 windows) clips; 16 kHz, 22.05 kHz and stereo files
    for i, (seconds, rate, channels) in enumerate(
        [(0.4, 16000, 1), (1.0, 16000, 1), (2.7, 16000, 1), (1.5, 22050, 1), (1.2, 16000, 2),
         (3.3, 8000, 1)]
    ):  # fmt: skip
        path = root / "clips" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, 0.3 * rng.standard_normal((int(seconds * rate), channels)), rate)
        manifest[f"clip{i}"] = {"wav": str(path), "label": CLASSES[i % 3], "duration": seconds}
    (root / "test.json").write_text(json.dumps(manifest))
    out = root / "exported"
    info = export_student(student_path, out, eval_manifest=root / "test.json")
    return {
        "root": root,
        "teacher": load_teacher("mini", checkpoint=teacher_path),
        "teacher_path": teacher_path,
        "student_path": student_path,
        "manifest": root / "test.json",
        "out": out,
        "info": info,
    }


@pytest.fixture(scope="module")
def classifier(workspace):
    return ZeroShotAudioClassifier.from_hparams(
        source=str(workspace["out"]), savedir=str(workspace["root"] / "savedir")
    )


def test_export_writes_a_complete_folder(workspace):
    out, info = workspace["out"], workspace["info"]
    for name in ("hyperparams.yaml", "student.safetensors", "label_embeddings.safetensors",
                 "text_encoder.safetensors", "custom.py", "export.json", "README.md"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not list(out.glob("*.ckpt"))
    for name, entry in info["weights"].items():  # every weights file, with its SHA-256
        assert entry == {"file": f"{name}.safetensors", "sha256": sha256_file(out / entry["file"])}
    state = load_file(out / "student.safetensors")
    assert all(k.startswith(("base.", "projection.")) for k in state)  # official layout
    assert info["profile"]["params"] == sum(v.numel() for k, v in state.items()
                                            if "running" not in k and "num_batches" not in k)  # fmt: skip
    card = (out / "README.md").read_text()
    assert f"{info['profile']['params']:,}" in card
    assert "| zero-shot accuracy (training run) | 50.0% |" in card
    assert "PhiNet α0.5 β0.75 t0 4 N3" in card
    assert info["label_sets"] == {"esc50": 50, "synth": 24, "tut17": 15, "us8k": 10}
    assert json.loads((out / "export.json").read_text())["teacher"] == "mini"


def test_classify_file_matches_the_evaluation_stage(workspace, classifier, tmp_path):
    teacher, manifest = workspace["teacher"], workspace["manifest"]
    from tinyclap.students.encoder import load_student

    encoder = load_student(workspace["student_path"])
    hparams = {"prompt_template": "this is the sound of {label}", "output_folder": str(tmp_path),
               "test_dataloader_opts": {"batch_size": 4}}  # fmt: skip
    classes = sorted(CLASSES)
    stage = evaluate_zero_shot(encoder, teacher, str(manifest), classes, hparams,
                               {"device": "cpu"}, "zs", "student")  # fmt: skip
    entries = json.loads(manifest.read_text())
    text = prompt_embeddings(teacher, class_prompts(classes), encoder)
    predictions, targets = [], []
    for entry in entries.values():
        scores, score, index, labels = classifier.classify_file(entry["wav"], classes)
        wav = load_audio(entry["wav"], 16000)
        expected = clip_embeddings(encoder.embed_audio, [wav], encoder.window_samples) @ text.T
        assert torch.allclose(scores, expected, atol=1e-5)
        assert labels == [classes[int(index)]] and float(score) == pytest.approx(
            float(scores.max())
        )
        predictions.append(int(index))
        targets.append(classes.index(entry["label"]))
    ours = summarise(targets, predictions, classes)
    assert ours["confusion_matrix"] == stage["confusion_matrix"]
    assert workspace["info"]["exported_eval"]["accuracy"] == stage["accuracy"]


def test_bundled_tables_are_the_teachers_prompt_embeddings(workspace, classifier):
    teacher = workspace["teacher"]
    labels, prompts = bundled_prompts("esc50")
    assert classifier.labels_of("esc50") == labels
    assert torch.allclose(classifier.encode_text("esc50"), teacher.embed_text(prompts), atol=1e-6)
    # a bundled class name as a free-form label is served from the table ...
    assert torch.allclose(classifier.encode_text(["door_wood_knock", "rain"]),
                          teacher.embed_text(class_prompts(["door wood knock", "rain"])),
                          atol=1e-6)  # fmt: skip
    # ... a new one goes through the exported text encoder, equal to the teacher's
    new = ["a purring cat", "dog"]
    assert torch.allclose(classifier.encode_text(new), teacher.embed_text(class_prompts(new)),
                          atol=1e-5)  # fmt: skip
    assert tuple(class_prompts(new)) in classifier._text_cache


def test_batch_with_lengths_and_other_sample_rate(classifier, workspace):
    clips = [0.2 * torch.randn(8000 * 3), 0.2 * torch.randn(4000)]
    padded = torch.stack([clips[0], torch.nn.functional.pad(clips[1], (0, 20000))])
    lens = torch.tensor([1.0, 4000 / 24000])
    scores, _, _, labels = classifier.classify_batch(padded, "us8k", wav_lens=lens,
                                                     sample_rate=8000)  # fmt: skip
    single = [classifier.classify_batch(resample(c, 8000, 16000)[None], "us8k")[0] for c in clips]
    assert torch.allclose(scores, torch.cat(single), atol=1e-5)
    assert len(labels) == 2 and scores.shape == (2, 10)


def test_pruned_student_export_slices_text_embeddings(workspace, tmp_path):
    teacher = workspace["teacher"]
    encoder = _student(1)
    kept = [5, 0, 9, 3, 12, 7, 1, 14]
    pruned = StudentAudioEncoder(shrink_student(encoder.student, kept), FRONTEND, 1.0, kept)
    save_student(tmp_path / "student.ckpt", pruned, teacher=str(workspace["teacher_path"]))
    info = export_student(tmp_path / "student.ckpt", tmp_path / "out")
    assert info["kept_dims"] == kept
    clf = ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "out"))
    _, prompts = bundled_prompts("tut17")
    expected = prompt_embeddings(teacher, prompts, pruned)
    assert expected.shape == (15, 8)
    assert torch.allclose(clf.encode_text("tut17"), expected, atol=1e-6)
    free = ["a purring cat", "wind"]
    assert torch.allclose(clf.encode_text(free),
                          prompt_embeddings(teacher, class_prompts(free), pruned), atol=1e-5)  # fmt: skip
    wav = 0.2 * torch.randn(16000)
    assert clf.classify_batch(wav[None], free)[0].shape == (1, 2)


def test_foreign_class_loads_the_same_model(workspace, classifier, tmp_path):
    """The foreign_class route imports custom.py: only with the opt-in."""
    with pytest.raises(UntrustedCodeError, match="custom.py is Python code"):
        foreign_class(source=str(workspace["out"]), savedir=str(tmp_path))
    other = foreign_class(source=str(workspace["out"]), pymodule_file="custom.py",
                          classname="ZeroShotAudioClassifier", savedir=str(tmp_path),
                          trust_remote_code=True)  # fmt: skip
    wav = 0.2 * torch.randn(1, 20000)
    assert torch.equal(other.encode_audio(wav), classifier.encode_audio(wav))


def test_reexport_into_a_reused_savedir_is_not_stale(workspace, tmp_path):
    source, savedir = tmp_path / "folder", tmp_path / "savedir"
    wav = 0.2 * torch.randn(1, 16000)
    outputs = []
    for seed in (1, 2):
        save_student(tmp_path / "s.ckpt", _student(seed), teacher=str(workspace["teacher_path"]))
        export_student(tmp_path / "s.ckpt", source, text_encoder=False, label_sets=["us8k"])
        clf = ZeroShotAudioClassifier.from_hparams(source=str(source), savedir=str(savedir))
        outputs.append(clf.encode_audio(wav))
        assert torch.allclose(outputs[-1], _student(seed).embed_audio(wav), atol=1e-6)
    assert not torch.allclose(outputs[0], outputs[1])


def test_clear_errors(workspace, tmp_path):
    export_student(workspace["student_path"], tmp_path / "bare", text_encoder=False,
                   label_sets=["us8k"])  # fmt: skip
    assert "\ntext_encoder: null\n" in (tmp_path / "bare" / "hyperparams.yaml").read_text()
    clf = ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "bare"))
    assert clf.label_sets == ["us8k"]
    assert clf.encode_text(["siren", "dog bark"]).shape == (2, 16)  # in the us8k table
    with pytest.raises(ValueError, match="no text encoder"):
        clf.encode_text(["a purring cat"])
    with pytest.raises(KeyError, match="unknown label set 'nope'"):
        bundled_prompts("nope")
    with pytest.raises(AudioLoadError, match="missing.wav"):
        clf.classify_file(str(tmp_path / "missing.wav"), "us8k")
    with pytest.raises(FileNotFoundError, match="no_such.ckpt"):
        export_student(tmp_path / "no_such.ckpt", tmp_path / "x")
    state = load_file(tmp_path / "bare" / "student.safetensors")
    state.pop("projection.linear1.weight")
    save_file(state, tmp_path / "bare" / "student.safetensors")
    with pytest.raises(ValueError, match="student.safetensors: SHA-256"):  # checked first
        ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "bare"))
    info = json.loads((tmp_path / "bare" / "export.json").read_text())
    info["weights"]["student"]["sha256"] = sha256_file(tmp_path / "bare" / "student.safetensors")
    (tmp_path / "bare" / "export.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"missing: \['projection.linear1.weight'\]"):
        ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "bare"))


def test_repeat_padding_students_keep_it_after_export(workspace, tmp_path):
    """A student distilled from an msclap teacher tiles short clips; its export does too."""
    from tinyclap.students.encoder import load_student
    from tinyclap.zeroshot.scoring import encode_clips

    encoder = load_student(workspace["student_path"])
    encoder.pad_mode = "repeat"
    path = tmp_path / "run" / "student.ckpt"
    save_student(path, encoder, teacher=str(workspace["teacher_path"]))
    export_student(path, tmp_path / "out")
    clf = ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "out"),
                                               savedir=str(tmp_path / "savedir"))  # fmt: skip
    assert clf.pad_mode == "repeat"
    short = load_audio(workspace["root"] / "clips" / "clip0.wav", 16000)  # 0.4 s < 1 s window
    expected = encode_clips(load_student(path), [short])
    assert torch.allclose(clf.encode_audio([short]), expected, atol=1e-5)
    zero_padded = encode_clips(load_student(workspace["student_path"]), [short])
    assert not torch.allclose(expected, zero_padded, atol=1e-3)
