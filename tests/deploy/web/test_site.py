"""``tinyclap web`` / ``build_site``: what the site holds, and the folders it refuses."""

import json
import shutil

import pytest

from tinyclap.cli.main import main as cli_main
from tinyclap.deploy.web.site import STATIC, WebBuildError, build_site


def test_site_files_and_model_settings(web_site, web_folder):
    files = web_site["files"]
    for name in (*STATIC, "ort/ort.wasm.bundle.min.mjs", "ort/ort-wasm-simd-threaded.wasm",
                 "model/student.onnx", "model/text_encoder.onnx", "model/tokenizer.json",
                 "model/label_embeddings.safetensors", "model/model.json"):  # fmt: skip
        assert files.get(name, 0) > 0, name
    settings = json.loads((web_folder["folder"] / "web" / "model" / "model.json").read_text())
    export = json.loads((web_folder["folder"] / "export.json").read_text())
    assert settings["frontend"] == export["frontend"]
    assert settings["window_samples"] == 16000 and settings["timeline_hop_samples"] == 8000
    assert settings["calibration"] == json.loads(
        (web_folder["folder"] / "open_set.json").read_text()
    )
    assert "adapted" in settings["label_sets"] and settings["text_encoder"] == "text_encoder.onnx"


def test_folders_without_graphs_or_export_are_refused(web_folder, tmp_path, capsys):
    folder = shutil.copytree(web_folder["plain"], tmp_path / "no_onnx")
    shutil.rmtree(folder / "onnx")
    with pytest.raises(WebBuildError, match="no ONNX graphs"):
        build_site(folder)
    assert cli_main(["web", str(folder)]) == 2
    assert "no ONNX graphs (onnx/student.onnx)" in capsys.readouterr().err
    assert cli_main(["web", str(tmp_path)]) == 2
    assert "no export.json" in capsys.readouterr().err


def test_cli_adds_web_to_an_exported_folder(web_folder, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "site"
    assert cli_main(["web", str(web_folder["plain"]), "--out", str(out)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["out"] == str(out) and (out / "index.html").is_file()
    settings = json.loads((out / "model" / "model.json").read_text())
    assert settings["calibration"] is None  # the plain export has no open_set.json
