"""The ``tinyclap`` command line."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from tinyclap.cli.main import main
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent

PROFILE_KEYS = {"model", "params", "backbone_params", "projection_params", "macs", "ms_b1",
                "ms_b16", "peak_mem_mb", "threads"}  # fmt: skip


def test_bench_grid_prints_json(capsys):
    main(["bench", "--alpha", "0.25", "0.5", "--num_layers", "3", "--head_channels", "32",
          "--embedding_dim", "16", "--repeats", "2", "--json"])  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["command"].startswith("tinyclap bench model --alpha")  # bench alone = model
    assert record["machine"]["cpu"] and record["threads"] == 1
    rows = record["rows"]
    assert [r["model"] for r in rows] == ["phinet a0.25 b0.75 t0 4 N3", "phinet a0.5 b0.75 t0 4 N3"]
    assert all(set(r) == PROFILE_KEYS for r in rows)
    assert rows[0]["params"] < rows[1]["params"]  # alpha widens the network
    assert rows[0]["macs"] < rows[1]["macs"]
    # Same head and projection: alpha changes the backbone only.
    assert rows[0]["projection_params"] == rows[1]["projection_params"] == 32 * 16 + 16 * 16 + 32
    assert all(r["params"] == r["backbone_params"] + r["projection_params"] for r in rows)
    assert all(r["ms_b1"] > 0 and r["ms_b16"] > 0 and r["threads"] == 1 for r in rows)
    assert all(r["peak_mem_mb"] > 4 * r["params"] / 1e6 for r in rows)  # weights at least


def test_bench_table_for_a_5s_44k_input(capsys):
    main(["bench", "--alpha", "0.25", "--num_layers", "3", "--head_channels", "32",
          "--embedding_dim", "16", "--sample_rate", "44100", "--f_max", "14000",
          "--clip_seconds", "5", "--repeats", "2", "--batch_sizes", "1", "2"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("CPU: ") and out[1].startswith("Command: `tinyclap bench model")
    header = [cell.strip() for cell in out[3].strip("|").split("|")]
    assert header == ["model", "params", "backbone", "projection", "MACs", "ms b1", "ms b2",
                      "peak MB"]  # fmt: skip
    assert "phinet a0.25" in out[5] and "1 thread(s)" in out[-1]


def test_bench_model_student_and_teacher_checkpoints(tiny_student, mini_teacher, capsys):
    main(["bench", "model", str(tiny_student.path), str(mini_teacher.path),
          "--repeats", "2", "--json"])  # fmt: skip
    rows = json.loads(capsys.readouterr().out)["rows"]
    student, mini = tiny_student.model().student, mini_teacher.model()
    assert [r["model"].split()[0] for r in rows] == ["student", "teacher"]
    assert rows[0]["params"] == sum(p.numel() for p in student.parameters())
    assert rows[0]["backbone_params"] == sum(p.numel() for p in student.base.parameters())
    assert rows[1]["params"] == mini.audio_params()
    assert rows[1]["projection_params"] == sum(
        p.numel() for p in mini.audio_encoder.projection.parameters()
    )
    assert all(set(r) == PROFILE_KEYS for r in rows)


def test_bench_model_official_checkpoint(tmp_path, capsys):
    """Official tinyCLAP files (plain base.* / projection.* state dicts) load as in export."""
    torch.manual_seed(0)
    official = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=690, n_mels=64, head_channels=48,
                             embedding_dim=24)  # fmt: skip
    path = tmp_path / "phinet_alpha_0.50_beta_0.75_t0_4_N_3.ckpt"
    torch.save(official.state_dict(), path)
    for argv in (["bench", "model", str(path)], ["bench", str(path)]):
        assert main([*argv, "--repeats", "1", "--batch_sizes", "1", "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["rows"]
        assert row["model"] == f"student {path}"
        assert row["params"] == sum(p.numel() for p in official.parameters())


def test_bench_model_corrupt_student_is_a_clear_error(tmp_path, capsys):
    student = PhiNetStudent(0.25, 0.75, 4, 2, n_frames=101, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    path = tmp_path / "student.ckpt"
    save_student(path, StudentAudioEncoder(student, {"sample_rate": 16000, "f_max": 8000.0}, 2.0))
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    assert main(["bench", "model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinyclap: error: corrupt or unreadable checkpoint {path}: ")
    assert "teacher" not in err and "Traceback" not in err


def test_bench_distill_cached_and_online_agree(tmp_path, capsys):
    """Both ways train the same student on the same crops: same losses, cache faster."""
    status = main([
        "bench", "distill", "--clips", "4", "--batch_size", "2", "--epochs", "1",
        "--alpha", "0.25", "--num_layers", "2", "--head_channels", "32", "--text_layers", "1",
        "--threads", "2", "--out", str(tmp_path / "bench"),
    ])  # fmt: skip
    assert status == 0
    record = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert record["command"].startswith("tinyclap bench distill --clips 4")
    assert record["clips"] == 4 and record["clip_seconds"] == 5.0
    assert record["teacher_audio_params"] > 80e6  # the real Cnn14 + projection
    assert record["cached_seconds_per_epoch"] < record["online_seconds_per_epoch"]
    assert abs(record["online_last_train_loss"] - record["cached_last_train_loss"]) < 1e-3
    assert "| speedup_per_epoch |" in (tmp_path / "bench" / "table.md").read_text()


def test_wheel_packages_every_module_and_the_console_script(tmp_path):
    """``pip wheel`` (offline, no build isolation) ships every tinyclap/**/*.py and the script."""
    repo = Path(__file__).resolve().parents[2]
    source = sorted(p.relative_to(repo).as_posix() for p in (repo / "tinyclap").rglob("*.py"))
    missing_init = sorted(
        str(d.relative_to(repo))
        for d in (repo / "tinyclap").rglob("*")
        if d.is_dir() and any(d.glob("*.py")) and not (d / "__init__.py").is_file()
    )
    assert missing_init == []  # find_packages skips folders of modules without one
    src = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info next to setup.py
    shutil.copytree(repo / "tinyclap", src / "tinyclap",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "wheel"), "."],
        cwd=src, env=env, check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("tinyclap-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert sorted(n for n in names if n.startswith("tinyclap/") and n.endswith(".py")) == source
    assert "tinyclap/data/audioset_labels.txt" in names  # the text corpus' vocabulary
    assert "tinyclap/deploy/web/static/index.html" in names  # the page of export --web
    assert "tinyclap/hparams/distill.yaml" in names  # the stages run from any working directory
    assert "[console_scripts]" in scripts
    assert "tinyclap = tinyclap.cli.main:main" in scripts.splitlines()
