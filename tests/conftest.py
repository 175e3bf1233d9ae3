"""Shared fixtures: tiny checkpoints and data built once per test session.

Every fixture here is session-scoped, so its files are shared by all the tests
that ask for it. Tests must treat them as read-only: the checkpoint files are
made read-only on disk, ``.model()`` hands out a fresh copy of the weights, and
a test that writes next to a checkpoint or into a data tree copies it to its
own ``tmp_path`` first (see :func:`copy_to`).
"""

import copy
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny import FRONTEND, REPO, SMALL_TEACHER, TINY_DATA


@dataclass(frozen=True)
class TinyCheckpoint:
    """A checkpoint file and the module it was saved from."""

    path: Path
    _model: torch.nn.Module

    def model(self):
        """A fresh copy of the saved module (in eval mode), free to modify."""
        return copy.deepcopy(self._model).eval()


def _read_only(path):
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def copy_to(path, folder):
    """Copy a shared file or folder into ``folder`` (writable) and return the copy."""
    path, folder = Path(path), Path(folder)
    target = folder / path.name
    if path.is_dir():
        shutil.copytree(path, target, copy_function=shutil.copy)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    for item in [target, *target.rglob("*")] if target.is_dir() else [target]:
        item.chmod(item.stat().st_mode | stat.S_IWUSR)
    return target


@pytest.fixture(scope="session")
def mini_teacher(tmp_path_factory):
    """A random-weight mini-teacher: 16 kHz, 1 s windows, 16-d latent."""
    from tinyclap.teachers.mini import save_mini_teacher
    from tinyclap.teachers.mini_clap import MiniCLAP

    torch.manual_seed(0)
    model = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16).eval()
    path = tmp_path_factory.mktemp("mini_teacher") / "teacher.ckpt"
    save_mini_teacher(path, model, FRONTEND, 1.0)
    _read_only(path)
    return TinyCheckpoint(path, model)


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, mini_teacher):
    """A random-weight PhiNet student of ``mini_teacher`` (same input and latent sizes)."""
    from tinyclap.students.encoder import StudentAudioEncoder, save_student
    from tinyclap.students.phinet import PhiNetStudent

    torch.manual_seed(1)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    encoder = StudentAudioEncoder(student, FRONTEND, 1.0).eval()
    path = tmp_path_factory.mktemp("tiny_student") / "student.ckpt"
    save_student(path, encoder, teacher=str(mini_teacher.path))
    _read_only(path)
    return TinyCheckpoint(path, encoder)


@pytest.fixture(scope="session")
def synth_tree(tmp_path_factory):
    """A tiny Synth tree (2/1/1 clips per class, 0.5 s): ``{"folder", "manifests"}``."""
    from tinyclap.prepare.synth import prepare_synth

    folder = tmp_path_factory.mktemp("synth")
    manifests = prepare_synth(folder, folder, n_train=2, n_valid=1, n_test=1, duration=0.5,
                              num_workers=0)  # fmt: skip
    for item in folder.rglob("*"):
        if item.is_file():
            _read_only(item)
    return {"folder": folder, "manifests": {k: Path(v) for k, v in manifests.items()}}


@pytest.fixture(scope="session")
def debug_teacher(tmp_path_factory):
    """A small mini-teacher trained by ``hparams/train_teacher.yaml --debug`` on tiny Synth.

    Returns ``{"root", "data", "result"}``: ``data`` is the command-line data
    options (folder and sizes) the later stages must reuse, ``result`` what the
    stage returned. The smoke runs of every stage start from it.
    """
    from tinyclap.stages.run import main

    root = tmp_path_factory.mktemp("debug_teacher")
    data = ["--data_folder", str(root / "data"), *TINY_DATA]
    result = main([str(REPO / "hparams/train_teacher.yaml"), "--debug", *data, *SMALL_TEACHER,
                   "--output_folder", str(root / "teacher")])  # fmt: skip
    return {"root": root, "data": data, "result": result}
