"""tinyclap export / classify / push round trips, offline; official tinyCLAP checkpoints."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.cli.main import main
from tinyclap.deploy import export as hub
from tinyclap.deploy.inference import ModelSourceError, ZeroShotAudioClassifier
from tinyclap.students.official import load_any_student, load_official_student, parse_official_name
from tinyclap.students.phinet import PhiNetStudent

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mini_teacher, tiny_student):
    root = tmp_path_factory.mktemp("cli")
    shutil.copyfile(mini_teacher.path, root / "teacher.ckpt")
    shutil.copyfile(tiny_student.path, root / "student.ckpt")
    status = main(["export", str(root / "student.ckpt"), "--out", str(root / "out"),
                   "--teacher", "mini", "--teacher_checkpoint", str(root / "teacher.ckpt"),
                   "--repo_id", "someone/tiny", "--no_text_encoder"])  # fmt: skip
    assert status == 0
    rng = np.random.default_rng(0)
    wavs = []
    for i, rate in enumerate((16000, 44100)):
        wavs.append(root / f"clip{i}.flac")
        sf.write(wavs[-1], 0.3 * rng.standard_normal(int(1.7 * rate)), rate)
    return root, wavs


def test_export_records_the_command_and_repo(exported):
    root, _ = exported
    info = json.loads((root / "out" / "export.json").read_text())
    assert info["command"].startswith("tinyclap export ")
    assert "--no_text_encoder" in info["command"]
    card = (root / "out" / "README.md").read_text()
    assert 'source="someone/tiny"' in card and "no text encoder" in card


def test_classify_cli_round_trip(exported, capsys):
    root, wavs = exported
    capsys.readouterr()
    args = ["classify", *map(str, wavs), "--labels", "us8k", "--model", str(root / "out"),
            "--top", "3", "--json"]  # fmt: skip
    assert main(args) == 0
    records = json.loads(capsys.readouterr().out)
    clf = ZeroShotAudioClassifier.from_hparams(source=str(root / "out"))
    for record, wav in zip(records, wavs):
        scores = clf.classify_file(str(wav), "us8k")[0][0]
        best = scores.topk(3)
        names = clf.labels_of("us8k")
        assert record["file"] == str(wav)
        assert [t["label"] for t in record["top"]] == [names[i] for i in best.indices.tolist()]
        assert [t["score"] for t in record["top"]] == pytest.approx(best.values.tolist(), abs=1e-4)
    assert main(["classify", str(wavs[0]), "--labels", "siren,dog bark", "--model",
                 str(root / "out"), "--top", "1"]) == 0  # fmt: skip
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{wavs[0]}: ") and line.count("(") == 1


def test_classify_without_model_is_a_clear_error(exported, capsys, monkeypatch):
    monkeypatch.delenv("TINYCLAP_MODEL", raising=False)
    assert main(["classify", str(exported[1][0]), "--labels", "a,b"]) == 2
    assert "no model: pass --model" in capsys.readouterr().err


def test_unreachable_hub_source_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelSourceError, match="not a local folder"):
        ZeroShotAudioClassifier.from_hparams(source="someone/not-cached-anywhere",
                                             savedir=str(tmp_path))  # fmt: skip


def test_push_without_token_is_a_clear_error(exported, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(hub.HubTokenError, match="HF_TOKEN"):
        hub.push_folder(exported[0] / "out", "someone/tiny")
    capsys.readouterr()
    assert main(["push", str(exported[0] / "out"), "someone/tiny"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyclap: error: ") and "HF_TOKEN" in err and "Traceback" not in err


def test_classify_errors_are_one_line_without_traceback(exported, capsys, monkeypatch, tmp_path):
    root, _ = exported
    missing = tmp_path / "missing.wav"
    capsys.readouterr()
    args = ["classify", str(missing), "--labels", "a,b", "--model", str(root / "out"),
            "--savedir", str(tmp_path / "saved")]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err == f"tinyclap: error: audio file not found: {missing}\n"
    assert "Traceback" not in captured.out + captured.err
    for verbose in ([*args, "--verbose"], ["--verbose", *args]):  # after or before the command
        assert main(verbose) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "AudioLoadError" in err
        assert err.endswith(f"tinyclap: error: audio file not found: {missing}\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # an unreachable --model repo id
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert main([*args[:4], "--model", "someone/not-cached-anywhere",
                 "--savedir", str(tmp_path / "saved2")]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("tinyclap: error: cannot load 'someone/not-cached-anywhere'")
    assert "Traceback" not in err


def test_cli_bugs_keep_their_traceback(monkeypatch):
    """Only expected errors are shortened: anything else (a bug) is raised as is."""

    def broken(args):
        raise KeyError("bug")

    monkeypatch.setattr("tinyclap.cli.main.add_hub_commands",
                        lambda sub: sub.add_parser("boom").set_defaults(func=broken))  # fmt: skip
    with pytest.raises(KeyError, match="bug"):
        main(["boom"])


def test_push_uploads_the_folder(exported, monkeypatch, capsys):
    calls = []

    class FakeApi:
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return type("Commit", (), {"commit_url": "https://hf.co/someone/tiny/commit/1"})()

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_secret")
    folder = exported[0] / "out"
    assert main(["push", str(folder), "someone/tiny", "--private"]) == 0
    assert capsys.readouterr().out.strip() == "https://hf.co/someone/tiny/commit/1"
    assert calls[0] == ("token", "hf_secret")
    assert calls[1] == ("create_repo", "someone/tiny",
                        {"repo_type": "model", "private": True, "exist_ok": True})  # fmt: skip
    upload = calls[2][1]
    assert upload["folder_path"] == str(folder) and upload["repo_id"] == "someone/tiny"
    assert upload["allow_patterns"] == hub.export_files(folder)[0]  # only the export's files
    assert "student.safetensors" in upload["allow_patterns"]
    with pytest.raises(FileNotFoundError, match="not an exported student folder"):
        hub.push_folder(exported[0], "someone/tiny", token="t")


def test_official_checkpoint_name_and_weights_load(tmp_path):
    assert parse_official_name("phinet_alpha_1.50_beta_0.75_t0_6_N_7.ckpt") == {
        "alpha": 1.5, "beta": 0.75, "t_zero": 6.0, "num_layers": 7}  # fmt: skip
    torch.manual_seed(0)
    # the official input (5 s at 44.1 kHz: 690 x 64 log-mels), a narrow head to stay fast
    official = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=690, n_mels=64, head_channels=48,
                             embedding_dim=24).eval()  # fmt: skip
    for module in official.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    path = tmp_path / "phinet_alpha_0.50_beta_0.75_t0_4_N_3.ckpt"
    torch.save(official.state_dict(), path)  # a plain state dict: base.*, projection.*
    encoder = load_any_student(path)
    assert encoder.student.config["head_channels"] == 48 and encoder.embedding_dim == 24
    assert (encoder.sample_rate, encoder.window_samples, encoder.teacher) == (
        44100,
        220500,
        "msclap-2022",
    )
    wav = 0.1 * torch.randn(2, 220500)
    expected = torch.nn.functional.normalize(official(encoder.frontend(wav)), dim=-1)
    assert torch.allclose(encoder.embed_audio(wav), expected, atol=1e-6)


def test_official_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not an official tinyCLAP checkpoint name"):
        parse_official_name("student.ckpt")
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=690, n_mels=64, head_channels=48,
                            embedding_dim=24)  # fmt: skip
    state = student.state_dict()
    state["classifier.weight"] = torch.zeros(1)
    wrong = tmp_path / "phinet_alpha_0.50_beta_0.75_t0_4_N_4.ckpt"  # N differs from weights
    torch.save(state, wrong)
    with pytest.raises(ValueError, match=r"unexpected: \[.*'classifier.weight'"):
        load_official_student(wrong)
    with pytest.raises(FileNotFoundError, match="nothere.ckpt"):
        load_any_student(tmp_path / "nothere.ckpt")


def test_exporting_an_official_checkpoint_asks_its_teacher(tmp_path, monkeypatch):
    """The recorded teacher (msclap-2022) is loaded by name: offline it must say so."""
    from tinyclap.teachers import TeacherLoadError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=690, n_mels=64, head_channels=48,
                            embedding_dim=24)  # fmt: skip
    path = tmp_path / "phinet_alpha_0.50_beta_0.75_t0_4_N_3.ckpt"
    torch.save(student.state_dict(), path)
    with pytest.raises(TeacherLoadError, match="HF_HUB_OFFLINE"):  # offline: says what to get
        hub.export_student(path, tmp_path / "out")


def test_teacher_pointer_text_encoder_loads_the_teacher_on_first_use(exported, tmp_path):
    """For teachers other than mini the folder stores a pointer (name + weights)."""
    from hyperpyyaml import load_hyperpyyaml

    from tinyclap.deploy.text_encoders import TeacherTextEncoder
    from tinyclap.students.encoder import load_student
    from tinyclap.teachers import load_teacher
    from tinyclap.zeroshot.prompts import class_prompts

    root, _ = exported
    encoder = load_student(root / "student.ckpt")
    spec = {"class": "tinyclap.deploy.text_encoders.TeacherTextEncoder", "loadable": 0,
            "kwargs": {"teacher": "mini", "checkpoint": hub.RawYaml("!ref <teacher_checkpoint>"),
                       "text_model": hub.RawYaml("!ref <teacher_text_model>"),
                       "kept_dims": [3, 1]}}  # fmt: skip
    text = hub.hparams_text(encoder, "mini", "this is the sound of {label}", ["us8k"], spec)
    hparams = load_hyperpyyaml(text, {"teacher_checkpoint": str(root / "teacher.ckpt")})
    pointer = hparams["text_encoder"]
    assert isinstance(pointer, TeacherTextEncoder) and pointer._model is None
    prompts = class_prompts(["rain", "a purring cat"])
    full = load_teacher("mini", checkpoint=root / "teacher.ckpt").embed_text(prompts)
    expected = torch.nn.functional.normalize(full[:, [3, 1]], dim=-1)
    assert torch.allclose(pointer.embed_text(prompts), expected, atol=1e-6)
    assert "text_encoder" not in text.split("pretrainer:")[1]  # nothing to collect
