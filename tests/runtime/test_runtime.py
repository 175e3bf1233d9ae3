"""The torch-free runtime: host frontend, numpy audio twins, ONNX engine, classifier, CLI."""

import json
import os
import subprocess
import sys
import textwrap

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers.numerics import assert_logmels_agree
from tests.helpers.tiny import FRONTEND, REPO
from tinyclap.audio.features import CLAP2022_FRONTEND, LogMel
from tinyclap.audio.io import resample
from tinyclap.audio.windows import split_windows
from tinyclap.cli.main import main
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.runtime import audio as rt_audio
from tinyclap.runtime import frontend as frontend_module
from tinyclap.runtime.frontend import HostLogMel, mel_filterbank

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

pytestmark = pytest.mark.numerics


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mini_teacher, tiny_student):
    """`tinyclap export` (ONNX by default) of the tiny student, and clips of several lengths."""
    root = tmp_path_factory.mktemp("runtime")
    status = main(["export", str(tiny_student.path), "--out", str(root / "out"), "--teacher",
                   "mini", "--teacher_checkpoint", str(mini_teacher.path), "--no_text_encoder",
                   "--label_sets", "us8k", "synth", "--repeats", "2"])  # fmt: skip
    assert status == 0
    rng = np.random.default_rng(0)
    clips = root / "clips"
    clips.mkdir()
    for i, (seconds, rate) in enumerate([(0.4, 16000), (1.0, 16000), (2.7, 44100), (1.3, 22050)]):
        sf.write(clips / f"c{i}.wav", 0.3 * rng.standard_normal((int(seconds * rate), 1 + i % 2)),
                 rate)  # fmt: skip
    return root / "out", sorted(map(str, clips.glob("*.wav")))


@pytest.mark.parametrize("config", [CLAP2022_FRONTEND, FRONTEND], ids=["msclap2022", "mini"])
def test_host_frontend_equals_logmel(config, monkeypatch):
    torch_frontend, host = LogMel(**config), HostLogMel(**config)
    fb = librosa.filters.mel(sr=config["sample_rate"], n_fft=1024, n_mels=64,
                             fmin=torch_frontend.f_min, fmax=torch_frontend.f_max)  # fmt: skip
    assert np.array_equal(mel_filterbank(config["sample_rate"], 1024, 64, torch_frontend.f_min,
                                         torch_frontend.f_max), fb)  # fmt: skip
    wav = 0.1 * torch.randn(
        3, config["sample_rate"] + 123, generator=torch.Generator().manual_seed(0)
    )
    wav[1, :2000] = 0.0  # silence: the amin floor
    expected, got = torch_frontend(wav).numpy(), host(wav.numpy())
    assert got.shape == expected.shape and got.dtype == np.float32
    assert_logmels_agree(got, expected, torch_frontend, wav)
    assert_logmels_agree(host(wav[0].numpy()), expected[0], torch_frontend, wav[:1])
    # without scipy the runtime falls back to numpy's FFT (complex128 spectra)
    monkeypatch.setattr(frontend_module, "_fft", np.fft)
    monkeypatch.setattr(frontend_module, "_FFT_KW", {})
    assert_logmels_agree(host(wav.numpy()), expected, torch_frontend, wav)
    if config is CLAP2022_FRONTEND:  # 50-14000 Hz at 44.1 kHz: bins 2..325 of 513
        assert host.bins == 324 and host.first_bin == 2


@pytest.mark.parametrize("rates", [(44100, 16000), (16000, 44100), (22050, 16000), (16000, 16000)])
def test_numpy_resample_equals_torchaudio(rates):
    wav = np.random.default_rng(1).standard_normal(9001).astype(np.float32)
    expected = resample(torch.from_numpy(wav), *rates).numpy()
    got = rt_audio.resample(wav, *rates)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("mode", ["zeros", "repeat", "repeatpad"])
@pytest.mark.parametrize("length", [3, 10, 25])
def test_numpy_windows_equal_torch_windows(mode, length):
    wav = np.arange(float(length))
    expected = split_windows(torch.from_numpy(wav), 7, pad_mode=mode).numpy()
    assert np.array_equal(rt_audio.split_windows(wav, 7, pad_mode=mode), expected)


def test_export_writes_the_student_graph_by_default(exported, tmp_path, tiny_student):
    folder, _ = exported
    assert (folder / "onnx" / "student.onnx").is_file()
    assert json.loads((folder / "export.json").read_text())["pad_mode"] == "zeros"
    (tmp_path / "out" / "onnx").mkdir(parents=True)
    (tmp_path / "out" / "onnx" / "student.onnx").write_bytes(b"stale graph of another student")
    assert main(["export", str(tiny_student.path), "--out", str(tmp_path / "out"),
                 "--no_text_encoder", "--label_sets", "us8k", "--no_onnx"]) == 0  # fmt: skip
    assert not (tmp_path / "out" / "onnx" / "student.onnx").exists()  # stale graphs go
    clf = ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "out"))
    assert clf.backend == "pytorch"  # auto without the graph
    with pytest.raises(RuntimeError, match="no onnx/student.onnx"):
        ZeroShotAudioClassifier.from_hparams(source=str(tmp_path / "out"), backend="onnxruntime")


def test_backends_agree(exported):
    folder, files = exported
    fast = ZeroShotAudioClassifier.from_hparams(source=str(folder))
    slow = ZeroShotAudioClassifier.from_hparams(source=str(folder), backend="pytorch")
    assert fast.backend == "onnxruntime" and slow.backend == "pytorch"
    windows = 0.2 * torch.randn(5, fast.window_samples, generator=torch.Generator().manual_seed(2))
    emb = fast.embed_windows(windows)
    assert emb.shape == (5, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert (emb - slow.embed_windows(windows)).abs().max() < 1e-4
    got, want = fast.classify_files(files, "us8k", 3), slow.classify_files(files, "us8k", 2)
    assert (got[0] - want[0]).abs().max() < 1e-4 and got[3] == want[3]
    one = slow.classify_file(files[2], "us8k")[0][0]
    assert (want[0][2] - one).abs().max() < 1e-5  # batching files changes nothing
    with pytest.raises(ValueError, match="backend"):
        ZeroShotAudioClassifier.from_hparams(source=str(folder), backend="tpu")


def test_runtime_classifier_matches_the_pytorch_path(exported):
    from tinyclap.runtime.classifier import MissingTextEncoderError, RuntimeClassifier

    folder, files = exported
    clf = RuntimeClassifier.from_folder(folder)
    reference = ZeroShotAudioClassifier.from_hparams(source=str(folder), backend="pytorch")
    for labels in ("us8k", "rain,siren,dog barking"):  # a set; free-form words in the tables
        records, speed = clf.classify_folder([str(folder.parent / "clips")], labels, top=2,
                                             files_per_call=3)  # fmt: skip
        scores = reference.classify_files(files, labels)[0]
        names = reference.labels_of(labels)
        assert [r["file"] for r in records] == files and speed["files"] == len(files)
        for record, row in zip(records, scores):
            best = row.topk(2)
            assert [t["label"] for t in record["top"]] == [names[i] for i in best.indices]
            assert [t["score"] for t in record["top"]] == pytest.approx(best.values.tolist(),
                                                                        abs=2e-4)  # fmt: skip
    with pytest.raises(MissingTextEncoderError, match="a purring cat"):
        clf.classify_files(files[:1], "a purring cat,rain")


def test_runtime_runs_with_torch_unimportable(exported):
    """`tinyclap-runtime classify` in a process where importing torch fails."""
    folder, files = exported
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "speechbrain", "hyperpyyaml", "torchaudio",
                                          "scipy", "librosa"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from tinyclap.runtime.cli import main
        status = main(["classify", {str(folder.parent / "clips")!r}, "--model", {str(folder)!r},
                       "--labels", "us8k", "--json", "--top", "1"])
        assert not any(m.split(".")[0] in ("torch", "speechbrain") for m in sys.modules)
        sys.exit(status)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = json.loads(run.stdout)
    assert [r["file"] for r in records] == files
    assert "files/s" in run.stderr
    reference = ZeroShotAudioClassifier.from_hparams(source=str(folder), backend="pytorch")
    assert [r["top"][0]["label"] for r in records] == reference.classify_files(files, "us8k")[3]


def test_classify_cli_on_a_folder_prints_files_per_second(exported, capsys):
    folder, files = exported
    capsys.readouterr()
    assert main(["classify", str(folder.parent / "clips"), "--labels", "synth", "--model",
                 str(folder), "--json", "--batch_size", "3"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert [r["file"] for r in json.loads(captured.out)] == files
    assert "4 files in" in captured.err and "backend onnxruntime" in captured.err


def test_the_runtime_runs_the_graph_the_export_chose(exported, tmp_path):
    """precision='auto' follows export.json["runtime_graph"]; fp32 / int8 insist; bad records fail."""
    import shutil

    from tinyclap.deploy.onnx import record_graph_checksums, record_runtime_graph
    from tinyclap.deploy.quantize import quantize_static_graph
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.cli import main as runtime_main
    from tinyclap.runtime.graphs import student_graph

    folder, files = exported
    info = json.loads((folder / "export.json").read_text())
    # an export without int8 records fp32, and says why
    assert info["runtime_graph"]["precision"] == "fp32"
    assert "no int8 graphs" in info["runtime_graph"]["why"]
    assert RuntimeClassifier.from_folder(folder).precision == "fp32"
    for load in (lambda: RuntimeClassifier.from_folder(folder, precision="int8"),
                 lambda: ZeroShotAudioClassifier.from_hparams(source=str(folder),
                                                              precision="int8")):  # fmt: skip
        with pytest.raises(
            FileNotFoundError, match=r"student\.int8\.onnx.*--quantize --eval_manifest"
        ):
            load()
    assert runtime_main(["classify", files[0], "--model", str(folder), "--labels", "us8k",
                         "--precision", "int8"]) == 1  # fmt: skip
    # a folder whose export recorded static int8 runs it, by default
    copy = tmp_path / "int8"
    shutil.copytree(folder, copy)
    fp32 = RuntimeClassifier.from_folder(copy)
    windows = 0.2 * np.random.default_rng(3).standard_normal((16, fp32.engine.window_samples))
    logmels = fp32.engine.frontend(windows.astype(np.float32))
    quantize_static_graph(copy / "onnx" / "student.onnx", logmels)
    record_graph_checksums(copy)
    record_runtime_graph(copy, {"precision": "int8", "graph": "onnx/student.int8.onnx",
                                "why": "test"})  # fmt: skip
    int8 = RuntimeClassifier.from_folder(copy)
    assert int8.precision == "int8" and int8.engine.path.endswith("student.int8.onnx")
    assert ZeroShotAudioClassifier.from_hparams(source=str(copy)).precision == "int8"
    assert RuntimeClassifier.from_folder(copy, precision="fp32").precision == "fp32"
    # int8 embeddings point where fp32's do (cosine >= 0.99 on these windows; measured
    # ~0.9999 on the random-weight tiny student; unrelated 16-d unit vectors are near 0)
    a, b = int8.engine.embed_logmels(logmels), fp32.engine.embed_logmels(logmels)
    assert 0 < np.abs(a - b).max() and (np.sum(a * b, -1) > 0.99).all()
    # a hand-edited record is refused, not followed
    info = json.loads((copy / "export.json").read_text())
    info["runtime_graph"]["precision"] = "../../etc/passwd"
    (copy / "export.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="runtime_graph precision"):
        RuntimeClassifier.from_folder(copy)
    with pytest.raises(ValueError, match="choose one of auto, fp32, int8"):
        student_graph({}, "int4")
