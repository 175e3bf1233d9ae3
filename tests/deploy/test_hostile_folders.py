"""Hostile folders: a yaml bomb, absurd frontend settings, deleted checksums.

Each is refused in one line, by the full loader (``ZeroShotAudioClassifier``,
``tinyclap classify``) and by the torch-free runtime, before anything large
is built or allocated.
"""

import json
import shutil
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.cli.main import main
from tinyclap.deploy.inference import MissingWeightsError, ZeroShotAudioClassifier
from tinyclap.deploy.safety import (
    MAX_YAML_NODES,
    OversizedYamlError,
    check_yaml_bounds,
    expanded_nodes,
)
from tinyclap.runtime.frontend import FrontendSettingsError, HostLogMel
from tinyclap.runtime.integrity import UnverifiedFileError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _laughs(levels=10, width=9, ref=False):
    """A "billion laughs": ``width ** levels`` nodes from a few hundred bytes."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        item = f"!ref <l{i - 1}>" if ref else f"*l{i - 1}"
        lines.append(f"l{i}: &l{i} [{', '.join([item] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mini_teacher, tiny_student):
    """An exported folder with its ONNX graphs (what the runtime loads) and a clip."""
    root = tmp_path_factory.mktemp("hostile")
    assert main(["export", str(tiny_student.path), "--out", str(root / "out"), "--teacher",
                 "mini", "--teacher_checkpoint", str(mini_teacher.path), "--no_text_encoder",
                 "--label_sets", "us8k", "--repeats", "2"]) == 0  # fmt: skip
    assert (root / "out" / "onnx" / "student.onnx").is_file()
    wav = root / "clip.wav"
    sf.write(wav, 0.3 * np.random.default_rng(0).standard_normal(16000), 16000)
    return root / "out", wav


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "copy")


def _edit_json(path, edit):
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def _never_built(*args, **kwargs):
    raise AssertionError("hyperpyyaml was asked to build a refused file")


# (a) yaml bombs ------------------------------------------------------------------------


@pytest.mark.parametrize("ref", [False, True], ids=["aliases", "refs"])
@pytest.mark.parametrize("trust", [False, True], ids=["checked", "trust_remote_code"])
def test_a_yaml_bomb_is_refused_before_anything_is_built(folder, tmp_path, monkeypatch, capsys,
                                                          ref, trust):  # fmt: skip
    copy = _copy(folder[0], tmp_path)
    yaml_path = copy / "hyperparams.yaml"
    yaml_path.write_text(_laughs(ref=ref) + yaml_path.read_text())
    # the regression: hyperpyyaml walked 9**10 nodes for hours; it must never see the file
    monkeypatch.setattr("tinyclap.deploy.inference.load_hyperpyyaml", _never_built)
    start = time.perf_counter()
    with pytest.raises(OversizedYamlError, match=r"hyperparams.yaml: more than 100000 yaml nodes"):
        ZeroShotAudioClassifier.from_hparams(source=str(copy), trust_remote_code=trust)
    # counting is linear in the composed graph (a few hundred nodes): far below a second,
    # 10 s is slack for a loaded machine and still fails fast where the count would expand
    assert time.perf_counter() - start < 10
    capsys.readouterr()
    args = ["classify", str(folder[1]), "--labels", "a,b", "--model", str(copy)]
    assert main(args + (["--trust_remote_code"] if trust else [])) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyclap: error: ") and "billion laughs" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_exported_yaml_is_far_below_the_node_bound(folder):
    import yaml

    text = (folder[0] / "hyperparams.yaml").read_text()
    check_yaml_bounds(text, "h.yaml")
    assert expanded_nodes(yaml.compose(text, Loader=yaml.SafeLoader)) < MAX_YAML_NODES // 100
    # an alias fan-out just under the bound is data, not a bomb: 9**5 = 59049 leaves
    check_yaml_bounds(_laughs(levels=5), "small.yaml")
    with pytest.raises(OversizedYamlError, match="characters"):
        check_yaml_bounds("a: " + "x" * 1_000_001, "big.yaml")
    with pytest.raises(OversizedYamlError, match="nested or chained too deeply"):
        check_yaml_bounds("a: " + "[" * 5000 + "]" * 5000, "deep.yaml")


# (b) frontend and window settings ------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, what",
    [
        ("    f_max: 8000.0\n", "    f_max: 8000.0\n    n_fft: 1000000000\n", "n_fft=1000000000"),
        ("    f_max: 8000.0\n", "    f_max: 8000.0\n    hop_length: 0\n", "hop_length=0"),
        ("    f_max: 8000.0\n", "    f_max: 8000.0\n    n_mels: 100000\n", "n_mels=100000"),
        ("    f_max: 8000.0\n", "    f_max: 1000000.0\n", "f_max=1000000.0"),
        ("    f_max: 8000.0\n", "    f_max: 8000.0\n    win_length: 4096\n", "win_length=4096"),
        ("clip_seconds: 1.0\n", "clip_seconds: 100000.0\n", "clip_seconds=100000.0"),
        ("sample_rate: 16000\n", "sample_rate: 1000000000\n", "sample_rate=1000000000"),
    ],
)
def test_absurd_frontend_settings_are_refused_in_one_line(folder, tmp_path, capsys, old, new,
                                                          what):  # fmt: skip
    copy = _copy(folder[0], tmp_path)
    yaml_path = copy / "hyperparams.yaml"
    text = yaml_path.read_text()
    assert old in text
    yaml_path.write_text(text.replace(old, new, 1))
    with pytest.raises(FrontendSettingsError, match=f"{copy}/hyperparams.yaml: .*{what}"):
        ZeroShotAudioClassifier.from_hparams(source=str(copy))
    capsys.readouterr()
    assert main(["classify", str(folder[1]), "--labels", "us8k", "--model", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinyclap: error: {copy}/hyperparams.yaml: ") and what in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "frontend, clip_seconds, what",
    [
        ({"sample_rate": 16000, "f_max": 8000.0, "n_fft": 1000000000}, 1.0, "n_fft=1000000000"),
        ({"sample_rate": 16000, "f_max": 8000.0, "hop_length": 1}, 500.0, "8000001 frames"),
        ({"sample_rate": 16000, "f_max": 8000.0, "evil": 1}, 1.0, "unknown frontend setting"),
        ({"sample_rate": "16000"}, 1.0, "sample_rate='16000' is not a number"),
    ],
)
def test_the_runtime_refuses_them_too(folder, tmp_path, capsys, frontend, clip_seconds, what):
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.cli import main as runtime_main

    copy = _copy(folder[0], tmp_path)
    _edit_json(copy / "export.json", lambda i: i.update(frontend=frontend,
                                                        clip_seconds=clip_seconds))  # fmt: skip
    with pytest.raises(FrontendSettingsError, match=f"export.json: .*{what}"):
        RuntimeClassifier.from_folder(copy)
    assert runtime_main(["classify", str(folder[1]), "--model", str(copy), "--labels", "us8k"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyclap-runtime: ") and what in err and err.count("\n") == 1


def test_host_frontend_checks_its_own_arguments():
    with pytest.raises(FrontendSettingsError, match="n_fft=1000000000"):
        HostLogMel(n_fft=1000000000)
    with pytest.raises(FrontendSettingsError, match="f_min < f_max"):
        HostLogMel(sample_rate=16000, f_max=14000.0)  # above Nyquist


# (c) checksums deleted from export.json ------------------------------------------------


def test_deleted_weight_hashes_need_the_opt_in(folder, tmp_path, capsys):
    copy = _copy(folder[0], tmp_path)
    _edit_json(copy / "export.json", lambda info: info.pop("weights"))
    with pytest.raises(UnverifiedFileError, match=r"records no SHA-256 for the student weights, "
                       r"the label_embeddings weights.*trust_unverified=True"):  # fmt: skip
        ZeroShotAudioClassifier.from_hparams(source=str(copy))
    capsys.readouterr()
    args = ["classify", str(folder[1]), "--labels", "us8k", "--model", str(copy)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--trust_unverified" in err and err.count("\n") == 1
    # opted in: the very same model (today's file names found without export.json's record)
    reference = ZeroShotAudioClassifier.from_hparams(source=str(folder[0]), backend="pytorch")
    trusted = ZeroShotAudioClassifier.from_hparams(source=str(copy), trust_unverified=True,
                                                   backend="pytorch")  # fmt: skip
    wav = 0.2 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(trusted.encode_audio(wav), reference.encode_audio(wav))
    assert main([*args, "--trust_unverified"]) == 0
    # and a folder lacking the weights says so, not "[Errno 2] ... student.ckpt"
    (copy / "student.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match=r"no weights for 'student'.*neither "
                       r"student.safetensors nor student.ckpt.*incomplete"):  # fmt: skip
        ZeroShotAudioClassifier.from_hparams(source=str(copy), trust_unverified=True)
    capsys.readouterr()
    assert main([*args, "--trust_unverified"]) == 1
    err = capsys.readouterr().err
    assert "Errno" not in err and "no weights for 'student'" in err


def test_a_deleted_graph_hash_needs_the_opt_in_in_both_loaders(folder, tmp_path, capsys):
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.cli import main as runtime_main

    copy = _copy(folder[0], tmp_path)
    _edit_json(copy / "export.json", lambda info: info.pop("onnx_graphs"))
    with pytest.raises(UnverifiedFileError, match="onnx/student.onnx"):
        ZeroShotAudioClassifier.from_hparams(source=str(copy))  # backend auto takes the graph
    assert ZeroShotAudioClassifier.from_hparams(source=str(copy), trust_unverified=True).backend \
        == "onnxruntime"  # fmt: skip
    with pytest.raises(UnverifiedFileError, match="onnx/student.onnx"):
        RuntimeClassifier.from_folder(copy)
    capsys.readouterr()
    args = ["classify", str(folder[1]), "--model", str(copy), "--labels", "us8k", "--json"]
    assert runtime_main(args) == 1  # bad input (the CLI policy: 1, usage 2)
    assert "--trust_unverified" in capsys.readouterr().err
    assert runtime_main([*args, "--trust_unverified"]) == 0
    trusted = json.loads(capsys.readouterr().out)
    assert runtime_main([*args[:3], str(folder[0]), *args[4:]]) == 0
    assert trusted[0]["top"] == json.loads(capsys.readouterr().out)[0]["top"]
    # the label tables of the runtime: same rule
    _edit_json(copy / "export.json", lambda info: info["weights"].pop("label_embeddings"))
    with pytest.raises(UnverifiedFileError, match="label_embeddings.safetensors"):
        RuntimeClassifier.from_folder(copy, trust_unverified=False)
