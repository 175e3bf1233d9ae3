"""Loading what others share: no code runs from a folder, verified weights, careful pushes."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from tinyclap.cli.main import main
from tinyclap.deploy import export as hub
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.deploy.safety import (
    ALLOWED_TARGETS,
    UntrustedCodeError,
    WeightsChecksumError,
    hparams_problems,
    safe_tuples,
)

PROBE = 'pwn: !apply:os.system ["touch pwned"]\n'


@pytest.fixture(scope="module")
def shared(tmp_path_factory, mini_teacher, tiny_student):
    """An exported folder (mini text encoder, us8k table) and a clip."""
    root = tmp_path_factory.mktemp("safe")
    out = root / "out"
    hub.export_student(tiny_student.path, out, teacher="mini",
                       teacher_checkpoint=mini_teacher.path, label_sets=["us8k"])  # fmt: skip
    wav = root / "clip.wav"
    sf.write(wav, 0.3 * np.random.default_rng(0).standard_normal(16000), 16000)
    return out, wav


def _copy(folder, tmp_path, extra=""):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    if extra:
        with open(copy / "hyperparams.yaml", "a", encoding="utf-8") as f:
            f.write(extra)
    return copy


def test_the_probe_is_refused_with_no_side_effect(shared, tmp_path, monkeypatch, capsys):
    out, wav = shared
    folder = _copy(out, tmp_path, PROBE)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(UntrustedCodeError, match=r"hyperparams.yaml: key 'pwn' has the tag "
                       r"!apply:os.system.*trust_remote_code=True"):  # fmt: skip
        ZeroShotAudioClassifier.from_hparams(source=str(folder))
    capsys.readouterr()
    assert main(["classify", str(wav), "--labels", "engine,rain", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinyclap: error: {folder}/hyperparams.yaml: key 'pwn' has the tag")
    assert "--trust_remote_code" in err and "Traceback" not in err
    assert os.listdir(work) == []  # nothing created, `pwned` included

    # with the opt-in it loads (and runs the command, as asked)
    assert main(["classify", str(wav), "--labels", "engine,rain", "--model", str(folder),
                 "--trust_remote_code"]) == 0  # fmt: skip
    assert (work / "pwned").exists()
    (work / "pwned").unlink()
    ZeroShotAudioClassifier.from_hparams(source=str(folder), trust_remote_code=True)
    assert (work / "pwned").exists()


def test_a_hub_repo_is_checked_before_anything_is_built(shared, tmp_path, monkeypatch):
    """The same probe as a hub repo id (the hub mocked by a local folder)."""
    from huggingface_hub.errors import EntryNotFoundError

    folder = _copy(shared[0], tmp_path, PROBE)
    served = []

    def fake_download(repo_id, filename, **kwargs):
        served.append(filename)
        if not (folder / filename).is_file():
            raise EntryNotFoundError(f"{repo_id}/{filename} not found")
        return str(folder / filename)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UntrustedCodeError, match="someone/evil/hyperparams.yaml: key 'pwn'"):
        ZeroShotAudioClassifier.from_hparams(source="someone/evil")
    assert set(served) == {"hyperparams.yaml"} and not (tmp_path / "pwned").exists()
    (folder / "hyperparams.yaml").write_text((shared[0] / "hyperparams.yaml").read_text())
    clf = ZeroShotAudioClassifier.from_hparams(source="someone/clean")  # weights from the "hub"
    assert "student.safetensors" in served and clf.labels_of("us8k")[0] == "air_conditioner"


@pytest.mark.parametrize(
    "extra, what",
    [
        ("x: !new:subprocess.Popen [[touch, pwned]]\n", "x' has the tag !new:subprocess.Popen"),
        ("x: !name:os.system\n", "x' has the tag !name:os.system"),
        ("x: !module:os\n", "x' has the tag !module:os"),
        ("x: !applyref:os.system [touch pwned]\n", "x' has the tag !applyref:os.system"),
        ("x: !include:other.yaml\n", "x' has the tag !include:other.yaml"),
        ('x: !!python/object/apply:os.system ["touch pwned"]\n', "python/object/apply:os.system"),
        ('x: (!!python/object/apply:os.system ["touch pwned"])\n', "a tuple holding the tag"),
        ("x: {a: [1, !apply:os.system [touch pwned]]}\n", "x.a[1]' has the tag !apply:os"),
        ("x: !unknown 3\n", "x' has the tag !unknown"),
    ],
)
def test_every_importing_or_unknown_tag_is_refused(shared, tmp_path, monkeypatch, extra, what):
    folder = _copy(shared[0], tmp_path, extra)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UntrustedCodeError, match=what.replace("[", r"\[")):
        ZeroShotAudioClassifier.from_hparams(source=str(folder))
    assert not (tmp_path / "pwned").exists()


def test_tuples_are_parsed_safely_while_loading(tmp_path, monkeypatch):
    """hyperpyyaml parses ``(...)`` with PyYAML's full loader; the guard makes it safe."""
    from hyperpyyaml import load_hyperpyyaml

    monkeypatch.chdir(tmp_path)
    with safe_tuples(), pytest.raises(Exception, match="python/object/apply"):
        load_hyperpyyaml('t: (!!python/object/apply:os.system ["touch pwned"])\n')
    assert not (tmp_path / "pwned").exists()
    with safe_tuples():
        assert load_hyperpyyaml("t: (1, a, [2])\n")["t"] == (1, "a", [2])


def test_a_custom_student_class_needs_the_opt_in():
    text = "student: !new:tinycnn_student.TinyCNN\n    n_mels: 64\n"
    assert hparams_problems(text) == [("student", "the tag !new:tinycnn_student.TinyCNN")]
    from tinyclap.deploy.safety import check_hparams

    with pytest.raises(UntrustedCodeError, match="TinyCNN.*custom student class"):
        check_hparams(text, "h.yaml")


def test_every_folder_tinyclap_exports_passes_the_allow_list(shared, mini_teacher, tmp_path):
    """PhiNet (from yaml or built in Python), pruned, mini / text-student encoders, pointer."""
    from hyperpyyaml import load_hyperpyyaml

    from tinyclap.nn.specs import recording_constructions
    from tinyclap.pruning.surgery import shrink_student
    from tinyclap.students.encoder import StudentAudioEncoder, load_student

    texts = [(shared[0] / "hyperparams.yaml").read_text()]
    encoder = load_student(_student_path(shared))
    pruned = StudentAudioEncoder(shrink_student(encoder.student, [3, 1, 7]),
                                 encoder.frontend_config, encoder.clip_seconds, [3, 1, 7])  # fmt: skip
    with recording_constructions():  # as distill.yaml declares it
        yaml_student = load_hyperpyyaml(
            "s: !new:tinyclap.students.PhiNetStudent\n"
            + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in encoder.student.config.items())
        )["s"]
    from_yaml = StudentAudioEncoder(yaml_student, encoder.frontend_config, encoder.clip_seconds)
    mini = {"class": "tinyclap.deploy.text_encoders.MiniTextEncoder", "loadable": 1,
            "kwargs": {"text_dim": 384, "embedding_dim": 16, "dropout": 0.5}}  # fmt: skip
    pointer = {"class": "tinyclap.deploy.text_encoders.TeacherTextEncoder", "loadable": 0,
               "kwargs": {"teacher": "msclap-2022", "kept_dims": None,
                          "checkpoint": hub.RawYaml("!ref <teacher_checkpoint>"),
                          "text_model": hub.RawYaml("!ref <teacher_text_model>")}}  # fmt: skip
    text_student = {"class": "tinyclap.deploy.text_encoders.TextStudentEncoder", "loadable": 1,
                    "kwargs": {"config": {"vocab_size": 40, "embedding_dim": 16},
                               "kept_dims": [3, 1, 7]}}  # fmt: skip
    for student in (encoder, pruned, from_yaml):
        for spec in (mini, pointer, text_student, None):
            texts.append(hub.hparams_text(student, "mini", "{label}", ["us8k"], spec))
    assert "!new:tinyclap.students.PhiNetStudent" in texts[-1]
    for text in texts:
        assert hparams_problems(text) == []
    used = {line.split("!new:")[-1].split("!name:")[-1].strip() for text in texts
            for line in text.splitlines() if "!new:" in line or "!name:" in line}  # fmt: skip
    assert used == ALLOWED_TARGETS  # no entry of the list is unused


def _student_path(shared):
    return json.loads((shared[0] / "export.json").read_text())["student_checkpoint"]


def test_a_tampered_weights_file_fails_its_checksum(shared, tmp_path, capsys):
    out, wav = shared
    folder = _copy(out, tmp_path)
    tables = load_file(folder / "label_embeddings.safetensors")
    tables["us8k"][0, 0] += 1.0
    from safetensors import safe_open

    with safe_open(str(out / "label_embeddings.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    save_file(tables, folder / "label_embeddings.safetensors", metadata=metadata)
    with pytest.raises(WeightsChecksumError, match="label_embeddings.safetensors: SHA-256"):
        ZeroShotAudioClassifier.from_hparams(source=str(folder))
    capsys.readouterr()
    assert main(["classify", str(wav), "--labels", "us8k", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "label_embeddings.safetensors: SHA-256" in err and "re-export" in err


def test_folders_of_the_previous_version_keep_loading(shared, tmp_path, caplog):
    """``.ckpt`` weights (torch.save), no checksums: with the opt-in, weights_only=True."""
    out, _ = shared
    folder = _copy(out, tmp_path)
    torch.save(load_file(folder / "student.safetensors"), folder / "student.ckpt")
    new = ZeroShotAudioClassifier.from_hparams(source=str(out))
    tables = new.hparams.label_embeddings
    torch.save({"format": "tinyclap-label-embeddings", "template": tables.template,
                "sets": tables.sets}, folder / "label_embeddings.ckpt")  # fmt: skip
    projection = new.hparams.text_encoder.projection.state_dict()
    torch.save({"format": "tinyclap-mini-text-encoder", "fingerprint": "",
                "projection": projection}, folder / "text_encoder.ckpt")  # fmt: skip
    for name in ("student", "label_embeddings", "text_encoder"):
        (folder / f"{name}.safetensors").unlink()
    info = json.loads((folder / "export.json").read_text())
    del info["weights"]
    (folder / "export.json").write_text(json.dumps(info))
    # tinyclap 0.1 wrote its class paths before the package was layered
    yaml_text = (folder / "hyperparams.yaml").read_text()
    for new_path, old_path in [("tinyclap.audio.features.", "tinyclap.features."),
                               ("tinyclap.deploy.text_encoders.", "tinyclap.text_encoders."),
                               ("tinyclap.deploy.inference.", "tinyclap.inference.")]:  # fmt: skip
        assert f"!new:{new_path}" in yaml_text or f"!name:{new_path}" in yaml_text
        yaml_text = yaml_text.replace(f":{new_path}", f":{old_path}")
    (folder / "hyperparams.yaml").write_text(yaml_text)
    from tinyclap.runtime.integrity import UnverifiedFileError

    with pytest.raises(UnverifiedFileError, match="no SHA-256 for the student weights"):
        ZeroShotAudioClassifier.from_hparams(source=str(folder))  # unverified: an opt-in
    with caplog.at_level("WARNING"):
        old = ZeroShotAudioClassifier.from_hparams(source=str(folder), trust_unverified=True)
    assert "loaded unverified (trust_unverified=True)" in caplog.text
    wav = 0.2 * torch.randn(1, 16000)
    assert torch.equal(old.encode_audio(wav), new.encode_audio(wav))
    assert torch.equal(old.encode_text(["a purring cat"]), new.encode_text(["a purring cat"]))
    assert hub.export_files(folder)[0] == [
        "README.md", "custom.py", "export.json", "hyperparams.yaml", "label_embeddings.ckpt",
        "student.ckpt", "text_encoder.ckpt"]  # fmt: skip


def test_push_refuses_extra_files_and_dry_run_lists_the_upload(shared, tmp_path, capsys,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)  # dry runs need no token
    folder = _copy(shared[0], tmp_path)
    (folder / "onnx").mkdir()
    (folder / "onnx" / "student.onnx").write_bytes(b"graph")
    capsys.readouterr()
    assert main(["push", str(folder), "someone/tiny", "--dry_run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"would upload 8 files from {folder} to someone/tiny:", "  README.md", "  custom.py",
        "  export.json", "  hyperparams.yaml", "  label_embeddings.safetensors",
        "  onnx/student.onnx", "  student.safetensors", "  text_encoder.safetensors"]  # fmt: skip
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / "save" / "CKPT+1").mkdir(parents=True)
    (folder / "save" / "CKPT+1" / "model.ckpt").write_bytes(b"x")
    for args in ([], ["--dry_run"]):
        assert main(["push", str(folder), "someone/tiny", *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tinyclap: error: ") and "Nothing was uploaded" in err
        assert ".env, save/CKPT+1/model.ckpt" in err
    with pytest.raises(hub.ExtraFilesError, match=r"\.env"):
        hub.push_folder(folder, "someone/tiny", token="t")
