"""Shared fixtures of the preparation tests: dataset trees in the official layouts, a mini teacher."""

import pytest
import torch

from tests.helpers import dataset_trees as trees
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP


@pytest.fixture(scope="package")
def data(tmp_path_factory):
    """All dataset trees, built once."""
    root = tmp_path_factory.mktemp("datasets")
    _, us8k_formats = trees.build_us8k(root)
    return {
        "root": root,
        "esc50": trees.build_esc50(root),
        "us8k_formats": us8k_formats,
        "tut17_folds": trees.build_tut17(root),
    }


@pytest.fixture(scope="package")
def teacher(tmp_path_factory):
    """An untrained mini teacher (16 kHz, 1 s windows, 32-d latent)."""
    torch.manual_seed(0)
    model = MiniCLAP(n_mels=64, channels=[8, 16, 32], audio_dim=32, embedding_dim=32)
    frontend = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 320, "win_length": 1024,
                "n_mels": 64, "f_min": 50.0, "f_max": 8000.0}  # fmt: skip
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    save_mini_teacher(path, model, frontend, 1.0)
    return str(path)


@pytest.fixture
def broken_esc50(tmp_path):
    """An ESC-50 tree with one file that is not audio and one empty file."""
    base = trees.build_esc50(tmp_path / "data")
    (base / "audio" / "1-100032-A-0.wav").write_bytes(b"RIFF....this is not a wav file")
    (base / "audio" / "2-100039-B-1.wav").write_bytes(b"")
    return tmp_path / "data"
