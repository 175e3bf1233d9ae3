"""ONNX graphs of an exported student match PyTorch under onnxruntime."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers.numerics import assert_logmels_agree
from tinyclap.audio.features import LogMel
from tinyclap.cli.main import main
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.deploy.onnx import OnnxLogMel, export_onnx, onnx_clip_embeddings, session
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent

pytest.importorskip("onnxruntime")

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}

pytestmark = pytest.mark.numerics


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mini_teacher):
    root = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    for module in student.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    save_student(root / "student.ckpt", StudentAudioEncoder(student, FRONTEND, 1.0),
                 teacher=str(mini_teacher.path))  # fmt: skip
    rng = np.random.default_rng(0)
    manifest = {}
    for i, label in enumerate(["rain", "siren", "rain", "wind"]):
        path = root / f"c{i}.wav"
        sf.write(path, 0.3 * rng.standard_normal(int(16000 * (0.6 + i))), 16000)
        manifest[f"c{i}"] = {"wav": str(path), "label": label}
    (root / "m.json").write_text(json.dumps(manifest))
    status = main(["export", str(root / "student.ckpt"), "--out", str(root / "out"),
                   "--no_text_encoder", "--onnx", "--onnx_labels", "us8k", "--quantize",
                   "--label_sets", "us8k", "synth"])  # fmt: skip
    assert status == 0
    from tinyclap.deploy.export import export_files

    ours, others = export_files(root / "out")  # tinyclap push uploads every graph, nothing else
    assert others == [] and {"onnx/student.int8.onnx", "onnx/labels.json"} <= set(ours)
    return root


@pytest.mark.parametrize("frontend", [FRONTEND, {"sample_rate": 44100}])
def test_conv_frontend_equals_the_stft_one(frontend):
    logmel = LogMel(**frontend)
    wav = 0.1 * torch.randn(2, frontend["sample_rate"])
    assert_logmels_agree(OnnxLogMel(logmel)(wav), logmel(wav), logmel, wav)


def test_onnxruntime_matches_pytorch(folder):
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder / "out"))
    report = json.loads((folder / "out" / "onnx" / "onnx_report.json").read_text())
    # export --quantize without clips to calibrate on: the dynamic recipe, and it says so
    assert report["int8"]["mode"] == "dynamic" and "calibration" in report["int8"]["note"]
    # ... which never becomes the folder's default graph (the projection only)
    info = json.loads((folder / "out" / "export.json").read_text())
    assert report["runtime_graph"] == info["runtime_graph"]
    assert report["runtime_graph"]["precision"] == "fp32"
    assert "projection only" in report["runtime_graph"]["why"]
    assert clf.precision == "fp32"
    assert report["frontend"] == "FactoredLogMel"
    for name in ("audio_encoder", "student", "classifier_scores"):
        assert report["graphs"][name]["max_abs_diff_vs_torch"] <= 1e-4, name
    assert set(report["latency_ms_batch1"]) >= {"pytorch_waveform", "onnxruntime_audio_encoder"}
    windows = 0.2 * torch.randn(7, clf.window_samples)  # a batch size not seen at export
    emb = session(folder / "out" / "onnx" / "audio_encoder.onnx").run(
        None, {"waveform": windows.numpy()})[0]  # fmt: skip
    assert np.abs(emb - clf.embed_windows(windows).numpy()).max() <= 1e-4
    scores = session(folder / "out" / "onnx" / "classifier_scores.onnx").run(
        None, {"waveform": windows.numpy()})[0]  # fmt: skip
    expected = clf.embed_windows(windows) @ clf.encode_text("us8k").T
    assert np.abs(scores - expected.numpy()).max() <= 1e-4
    assert json.loads((folder / "out" / "onnx" / "labels.json").read_text()) == clf.labels_of(
        "us8k"
    )
    # long clips: the ONNX audio path with the deterministic windows = classify_batch
    clips = [0.2 * torch.randn(40000), 0.2 * torch.randn(9000)]
    sess = session(folder / "out" / "onnx" / "audio_encoder.onnx")
    onnx_emb = onnx_clip_embeddings(sess, clips, clf.window_samples)
    assert torch.allclose(onnx_emb, clf.encode_audio(clips), atol=1e-4)


def text_of(clf, manifest):
    return clf.encode_text(sorted({e["label"] for e in manifest.values()}))


def test_int8_graphs_stay_close_and_accuracy_is_reported(folder):
    report = export_onnx(folder / "out", labels="rain,siren,wind", quantize_int8=True,
                         int8_mode="static", eval_manifest=folder / "m.json", repeats=3)  # fmt: skip
    int8 = report["graphs"]["audio_encoder_int8"]
    import onnx

    ops = {n.op_type for n in onnx.load(str(folder / "out" / "onnx" / int8["path"])).graph.node}
    # static QDQ convolutions, calibrated here on the evaluation clips (none other given)
    assert report["int8"]["mode"] == "static" and "evaluation" in report["int8"]["note"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
    # int8 changes the numbers (how much is measured on the real student in results/export)
    fp32 = report["graphs"]["audio_encoder"]["max_abs_diff_vs_torch"]
    assert fp32 < int8["max_abs_diff_vs_torch"]
    # ... but little: int8 clip embeddings point where the fp32 ones do (measured: cosine
    # >= 0.999 on these clips; unrelated unit vectors of this size are near 0)
    clf = ZeroShotAudioClassifier.from_hparams(source=str(folder / "out"))
    manifest = json.loads((folder / "m.json").read_text())
    wavs = [clf.load_audio(e["wav"]) for e in manifest.values()]
    int8_sess = session(folder / "out" / "onnx" / int8["path"])
    int8_emb = onnx_clip_embeddings(int8_sess, wavs, clf.window_samples, pad_mode=clf.pad_mode)
    fp32_emb = clf.encode_audio(wavs)
    cosine = torch.nn.functional.cosine_similarity(int8_emb, fp32_emb, dim=-1)
    assert cosine.min() > 0.99, cosine
    assert (int8_emb @ text_of(clf, manifest).T).argmax(-1).tolist() == (
        fp32_emb @ text_of(clf, manifest).T
    ).argmax(-1).tolist()  # same predictions as fp32 on every clip
    # the reported int8 accuracy is the accuracy of the int8 predictions
    classes = sorted({e["label"] for e in manifest.values()})
    text = clf.encode_text(classes)
    predicted = [classes[i] for i in (int8_emb @ text.T).argmax(-1).tolist()]
    expected_accuracy = np.mean([p == e["label"] for p, e in zip(predicted, manifest.values())])
    accuracy = report["accuracy"]
    assert accuracy["pytorch"] == accuracy["audio_encoder"] == accuracy["runtime"]
    assert accuracy["audio_encoder_int8"] == pytest.approx(expected_accuracy)
    # the runtime path on the static int8 graph is measured too, and decides the default
    loss = accuracy["runtime"] - accuracy["runtime_int8"]
    choice = report["runtime_graph"]
    assert choice["precision"] == ("int8" if loss <= 0.005 else "fp32"), choice
    assert json.loads((folder / "out" / "export.json").read_text())["runtime_graph"] == choice
    from tinyclap.runtime.classifier import RuntimeClassifier

    assert RuntimeClassifier.from_folder(folder / "out").precision == choice["precision"]
    loaded = ZeroShotAudioClassifier.from_hparams(source=str(folder / "out"))
    assert loaded.precision == choice["precision"]
    for precision in ("fp32", "int8"):  # either graph on demand
        runtime = RuntimeClassifier.from_folder(folder / "out", precision=precision)
        assert runtime.precision == precision
        assert runtime.engine.path.endswith(
            "student.int8.onnx" if precision == "int8" else "student.onnx"
        )


def test_graph_checksums_are_recorded_and_checked(folder, tmp_path):
    """The default backend runs onnx/student.onnx: a modified graph is refused, as weights are."""
    import shutil

    from tinyclap.deploy.safety import WeightsChecksumError
    from tinyclap.runtime.classifier import RuntimeClassifier

    info = json.loads((folder / "out" / "export.json").read_text())
    graphs = info["onnx_graphs"]
    assert set(graphs) == {f"onnx/{p.name}" for p in (folder / "out" / "onnx").glob("*.onnx")}
    assert "onnx/student.onnx" in graphs and all(len(h) == 64 for h in graphs.values())
    copy = tmp_path / "copy"
    shutil.copytree(folder / "out", copy)
    assert ZeroShotAudioClassifier.from_hparams(source=str(copy)).backend == "onnxruntime"
    with open(copy / "onnx" / "student.onnx", "ab") as handle:
        handle.write(b"\0")  # a graph that is not the exported one
    with pytest.raises(WeightsChecksumError, match="student.onnx"):
        ZeroShotAudioClassifier.from_hparams(source=str(copy), savedir=str(tmp_path / "sd"),
                                             precision="fp32")  # fmt: skip
    with pytest.raises(ValueError, match="student.onnx: SHA-256"):
        RuntimeClassifier.from_folder(copy, precision="fp32")
    # the int8 graph is checked as well, when it is the one loaded
    with open(copy / "onnx" / "student.int8.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ValueError, match=r"student\.int8\.onnx: SHA-256"):
        RuntimeClassifier.from_folder(copy, precision="int8")
    # the PyTorch backend does not read the graph: it still loads
    clf = ZeroShotAudioClassifier.from_hparams(source=str(copy), backend="pytorch",
                                               savedir=str(tmp_path / "sd2"))  # fmt: skip
    assert clf.backend == "pytorch"
