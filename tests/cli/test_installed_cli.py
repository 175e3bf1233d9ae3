"""A non-editable install gives a ``tinyclap`` command that runs stages from any folder.

The package is installed (``pip install --no-deps --target``: a real copy, not
the source tree) and the installed console script runs
``tinyclap train <clone>/hparams/evaluate.yaml`` on an audio folder from an
unrelated working directory: the library must not need the clone's
``recipes/`` folder (it once imported it) nor its working directory.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "tinyclap"  # a copy: the build writes next to it
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "runs", "data", "build", "*.egg-info", "__pycache__", "results"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "--target", str(target), str(source)],
        check=True, capture_output=True, cwd=source,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )  # fmt: skip
    return target


def _env(target):
    return {**os.environ, "PYTHONPATH": str(target)}


def test_installed_package_is_the_copy(installed, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import tinyclap, sys; print(tinyclap.__file__)"],
        env=_env(installed), cwd=tmp_path, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert Path(out.stdout.strip()).is_relative_to(installed)
    assert (installed / "bin" / "tinyclap").is_file()


def test_tinyclap_train_runs_from_another_folder(installed, tmp_path):
    audio = tmp_path / "my_audio"
    rng = np.random.default_rng(0)
    for label in ("bird", "engine"):
        (audio / label).mkdir(parents=True)
        for i in range(2):
            sf.write(audio / label / f"{i}.wav", 0.1 * rng.standard_normal(16000), 16000)
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.ckpt"
    save_mini_teacher(teacher, MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16),
                      {"sample_rate": 16000, "f_max": 8000.0}, 2.0)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [
        str(installed / "bin" / "tinyclap"), "train", str(REPO / "hparams/evaluate.yaml"),
        "--dataset", "audiofolder", "--label_from_folder", "true", "--split", "all",
        "--data_folder", str(audio), "--model", "teacher", "--mini_checkpoint", str(teacher),
        "--output_folder", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, env=_env(installed), cwd=elsewhere, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    metrics = json.loads((tmp_path / "out" / "zeroshot_all" / "metrics.json").read_text())
    assert results["split"] == "all" and metrics["num_clips"] == 4
    assert results["zs_accuracy"] == metrics["accuracy"]
    assert not list(elsewhere.iterdir())  # nothing written in the working directory
