"""Timelines through an exported folder: PyTorch and the ONNX graph agree; the CLI."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.recordings import write_recording
from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import split_windows
from tinyclap.deploy.export import export_student
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.tools.cli import main
from tinyclap.zeroshot.timeline import Timeline, file_timeline

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}
HOP = 0.5


def _calibrated_student(windows):
    """A random-weight tiny student whose BatchNorm statistics are those of ``windows``.

    With the default statistics (mean 0, variance 1 on log-mels in dB) a random
    student maps every window to nearly the same embedding (cosines ~0.9999), and
    PyTorch / ONNX rounding could flip near-ties; recalibrated, its window scores
    differ by far more than the two backends do. No weight is trained.
    """
    torch.manual_seed(1)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    encoder = StudentAudioEncoder(student, FRONTEND, 1.0)
    for module in student.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the one pass
    student.train()
    with torch.no_grad():
        student(encoder.frontend(windows))
    return encoder.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mini_teacher):
    pytest.importorskip("onnxruntime")
    from tinyclap.deploy.onnx import export_onnx

    root = tmp_path_factory.mktemp("timeline_export")
    recording = write_recording(root)
    windows = torch.cat([split_windows(load_audio(p, 16000), 16000, 8000)
                         for p in recording["clips"]])  # fmt: skip
    save_student(root / "student.ckpt", _calibrated_student(windows),
                 teacher=str(mini_teacher.path))  # fmt: skip
    export_student(root / "student.ckpt", root / "out", label_sets=["synth"], text_encoder=False)
    export_onnx(root / "out", repeats=5)
    clf = ZeroShotAudioClassifier.from_hparams(source=str(root / "out"), backend="pytorch",
                                               savedir=str(root / "savedir"))  # fmt: skip
    fast = ZeroShotAudioClassifier.from_hparams(source=str(root / "out"), backend="onnxruntime",
                                                savedir=str(root / "savedir_ort"))  # fmt: skip
    return {**recording, "root": root, "out": root / "out", "clf": clf, "fast": fast}


def _onnx_embedder(exported):
    from tinyclap.deploy.onnx import OnnxWindowEmbedder

    return OnnxWindowEmbedder(exported["out"] / "onnx" / "audio_encoder.onnx")


def _assert_same_timeline(a, b, min_events=1):
    diff = float((a.scores - b.scores).abs().max())
    top2 = a.scores.topk(2, dim=1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    # The graphs' frontends differ from torch.stft by up to ~0.1 dB in near-silent bins
    # (< -80 dB, float32 cancellation), which this student (BatchNorm calibrated, not
    # saturated) carries into scores at ~1e-3. Every window's top-two margin must exceed
    # twice the largest score difference, the condition under which no window's best
    # label can differ between the backends: otherwise the comparison would mean nothing.
    assert diff <= 2e-3, diff
    assert margin > 2 * diff, (margin, diff)
    assert len(a.events) >= min_events
    assert [(e.label, e.onset, e.offset) for e in a.events] == [
        (e.label, e.onset, e.offset) for e in b.events]  # fmt: skip
    assert [e.score for e in a.events] == pytest.approx([e.score for e in b.events], abs=2e-3)


def test_pytorch_and_onnx_timelines_give_the_same_events(exported):
    clf, path = exported["clf"], exported["path"]
    assert clf.backend == "pytorch" and exported["fast"].backend == "onnxruntime"
    torch_tl = clf.classify_file(path, "synth", timeline=True, hop=HOP)
    onnx_tl = clf.classify_timeline(path, "synth", hop=HOP, embed_windows=_onnx_embedder(exported))
    assert isinstance(torch_tl, Timeline) and torch_tl.labels == clf.labels_of("synth")
    _assert_same_timeline(torch_tl, onnx_tl)  # the single-file graph
    # the default fast path: host log-mels + onnx/student.onnx under onnxruntime
    _assert_same_timeline(torch_tl, exported["fast"].classify_file(path, "synth", timeline=True,
                                                                   hop=HOP))  # fmt: skip
    # labels = the clips' own embeddings: several events, the same on both backends
    prototypes = F.normalize(torch.stack([
        clf.embed_windows(split_windows(clf.load_audio(p), clf.window_samples)).mean(0).cpu()
        for p in exported["clips"]]), dim=-1)  # fmt: skip
    names = [t[0] for t in exported["truth"][:4]]
    kw = {"hop": HOP, "sample_rate": clf.sample_rate, "window_samples": clf.window_samples}
    _assert_same_timeline(
        file_timeline(clf.embed_windows, path, names, prototypes, **kw),
        file_timeline(_onnx_embedder(exported), path, names, prototypes, **kw),
        min_events=4,
    )


def test_classify_file_without_timeline_is_unchanged(exported):
    clf, path = exported["clf"], exported["path"]
    scores, score, index, labels = clf.classify_file(path, "synth")
    expected = clf.classify_batch([clf.load_audio(path)], "synth")
    assert torch.equal(scores, expected[0]) and labels == expected[3]
    with pytest.raises(TypeError, match="timeline=True"):
        clf.classify_file(path, "synth", hop=1.0)


def test_classify_cli_timeline(exported, tmp_path, capsys):
    # the CLI runs the default backend: onnxruntime, as the folder has onnx/student.onnx
    clf, path, out = exported["fast"], exported["path"], exported["out"]
    expected = clf.classify_file(path, "synth", timeline=True, hop=HOP, min_duration=1.0)
    base = ["classify", str(path), "--labels", "synth", "--model", str(out), "--timeline",
            "--hop", str(HOP), "--min_duration", "1"]  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--json", "--plot", str(tmp_path / "t.png"),
                 "--csv", str(tmp_path / "t.csv")]) == 0  # fmt: skip
    (record,) = json.loads(capsys.readouterr().out)
    assert record["events"] == expected.to_dict()["events"]
    assert record["windows"] == expected.windows and record["file"] == str(path)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "t.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(expected.starts)

    assert main(base) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith(f"{path}: 15.00 s, {len(expected.starts)} windows")
    assert text.splitlines()[1].split() == ["onset", "offset", "label", "score"]
    assert len(text.splitlines()) == 2 + len(expected.events)
    assert main([*base, "--windows"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4 + len(expected.events) + len(
        expected.starts
    )
    assert main([*base[:-4], "--hop", "0"]) == 1
    assert "hop" in capsys.readouterr().err
    without = [a for a in base if a != "--timeline"]
    assert main([*without, "--plot", str(tmp_path / "x.png")]) == 2
    assert "--hop, --min_duration, --plot only apply with --timeline" in capsys.readouterr().err
