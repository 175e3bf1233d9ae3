"""The Student contract: a custom module in place of PhiNet, with no change to tinyclap.

A copy of ``hparams/distill.yaml`` whose ``student:`` is a small CNN of the
user's own (a module on ``sys.path``, as a user's would be) distils with
``--debug``; ``hparams/evaluate.yaml --model <its student.ckpt>`` rebuilds it
from the checkpoint and scores it; the export loads through ``from_hparams``.
"""

import json
import textwrap
from pathlib import Path

import pytest
import torch

from tinyclap.deploy.export import export_student
from tinyclap.deploy.safety import UntrustedCodeError
from tinyclap.inference import ZeroShotAudioClassifier
from tinyclap.stages.run import main
from tinyclap.students.encoder import load_student
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP

REPO = Path(__file__).resolve().parents[2]
TINY_DATA = ["--n_train", "2", "--n_valid", "1", "--n_test", "1"]

CUSTOM_MODULE = '''
"""A user's own student: log-mels [B, frames, n_mels] -> embeddings [B, D]."""

import torch


class TinyCNN(torch.nn.Module):
    def __init__(self, n_mels, embedding_dim, channels=8):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.norm = torch.nn.BatchNorm2d(channels)
        self.head = torch.nn.Linear(channels, embedding_dim)

    def forward(self, logmels):
        x = torch.relu(self.norm(self.conv(logmels.unsqueeze(1))))
        return self.head(x.mean((-1, -2)))
'''

STUDENT_BLOCK = """student: !new:tinycnn_student.TinyCNN
    n_mels: !ref <n_mels>
    embedding_dim: !ref <embedding_dim>
    channels: 6
"""


@pytest.fixture
def custom_setup(tmp_path, monkeypatch):
    (tmp_path / "tinycnn_student.py").write_text(textwrap.dedent(CUSTOM_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    text = (REPO / "hparams/distill.yaml").read_text()
    start = text.index("student: !new:tinyclap.students.PhiNetStudent")
    end = text.index("loss: ", start)
    hparams = tmp_path / "distill_custom.yaml"
    hparams.write_text(text[:start] + STUDENT_BLOCK + text[end:])
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.ckpt"
    save_mini_teacher(
        teacher, MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16),
        {"sample_rate": 16000, "f_max": 8000.0}, 2.0,
    )  # fmt: skip
    common = [
        "--data_folder",
        str(tmp_path / "data"),
        *TINY_DATA,
        "--mini_checkpoint",
        str(teacher),
    ]
    return tmp_path, hparams, [*common, "--cache_folder", str(tmp_path / "cache")], common


def test_custom_student_distils_evaluates_and_exports(custom_setup):
    tmp_path, hparams, common, data_only = custom_setup
    distilled = main([str(hparams), "--debug", *common, "--output_folder", str(tmp_path / "d")])
    assert distilled["student_class"] == "tinycnn_student.TinyCNN"
    assert "finetune" not in distilled["optimizer_steps"]  # no `projection`: no stage 2
    checkpoint = tmp_path / "d" / "student.ckpt"
    payload = torch.load(checkpoint, weights_only=True)
    assert payload["build"] == {
        "class": "tinycnn_student.TinyCNN",
        "args": [],
        "kwargs": {"n_mels": 64, "embedding_dim": 16, "channels": 6},
    }

    # evaluate.yaml rebuilds the student from its checkpoint and scores the same test split
    evaluated = main([str(REPO / "hparams/evaluate.yaml"), *data_only, "--model", str(checkpoint),
                      "--output_folder", str(tmp_path / "e")])  # fmt: skip
    assert evaluated["zs_accuracy"] == distilled["zs_accuracy"]
    metrics = json.loads((tmp_path / "e" / "zeroshot_test" / "metrics.json").read_text())
    assert metrics["num_clips"] == len(json.loads((tmp_path / "data" / "test.json").read_text()))

    # the exported folder declares the same class and gives the same embeddings
    exported = tmp_path / "exported"
    export_student(checkpoint, exported, text_encoder=True)
    assert "student: !new:tinycnn_student.TinyCNN" in (exported / "hyperparams.yaml").read_text()
    # a class outside tinyclap's allow-list: loading it runs its code, so it needs the opt-in
    with pytest.raises(UntrustedCodeError, match=r"'student' has the tag "
                       r"!new:tinycnn_student.TinyCNN.*trust_remote_code=True"):  # fmt: skip
        ZeroShotAudioClassifier.from_hparams(source=str(exported))
    classifier = ZeroShotAudioClassifier.from_hparams(source=str(exported),
                                                      savedir=str(tmp_path / "pretrained"),
                                                      trust_remote_code=True)  # fmt: skip
    wavs = torch.randn(2, 32000)
    encoder = load_student(checkpoint)
    torch.testing.assert_close(classifier.encode_audio(wavs), encoder.embed_audio(wavs),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


def test_a_student_with_the_wrong_output_size_fails_before_training(custom_setup):
    tmp_path, hparams, common, _ = custom_setup
    text = hparams.read_text().replace("    embedding_dim: !ref <embedding_dim>\n    channels",
                                       "    embedding_dim: 5\n    channels")  # fmt: skip
    hparams.write_text(text)
    with pytest.raises(ValueError, match=r"student \(its output size\): 5, but the teacher's"):
        main([str(hparams), "--debug", *common, "--output_folder", str(tmp_path / "d")])
    assert not (tmp_path / "cache").exists()  # failed before the teacher cache
