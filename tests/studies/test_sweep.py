"""tinyclap sweep (grid, naming, skipping, failure isolation) and tinyclap report."""

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from tinyclap.cli.main import main
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.studies.report import collect_rows, mark_pareto, pareto_front, write_report
from tinyclap.studies.sweep import (
    SweepManifestError,
    parse_grid,
    plan_points,
    point_name,
    read_top_level,
    run_sweep,
)

REPO = Path(__file__).resolve().parents[2]
FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}

# A stand-in for train.py: records its call, fails for alpha 0.5, "succeeds"
# without results.json for alpha 9, else writes a results.json.
FAKE_TRAIN = """
import json, sys
from pathlib import Path
args = sys.argv[1:]
opts = dict(zip(args[1::2], args[2::2]))
out = Path(opts["--output_folder"])
out.mkdir(parents=True, exist_ok=True)
with open(out.parent / "calls.txt", "a") as f:
    f.write(out.name + "\\n")
print("training", out.name)
if opts.get("--alpha") == "0.5":
    print("Traceback: boom starts")
    for i in range(30):  # tqdm-style progress lines, left out of the reported tail
        print(f"epoch:  50%|#####     | {i}/23 [00:29<00:56,  3.80s/it]", flush=True)
    sys.exit("boom: alpha 0.5 is broken")
if opts.get("--alpha") == "9":
    sys.exit(0)
record = {"stage": "distill", "command": " ".join(sys.argv), "lr": opts.get("--lr")}
(out / "results.json").write_text(json.dumps(record))
"""


@pytest.fixture()
def hparams_file(tmp_path):
    path = tmp_path / "distill.yaml"
    path.write_text(
        "stage: distill\nalpha: 0.75   # width\nbeta: 0.75\nt_zero: 4\nnum_layers: 5\n"
        "opt:\n    alpha: 99\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture()
def fake_train(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAIN, encoding="utf-8")
    return path


def _calls(root):
    path = Path(root) / "calls.txt"
    return path.read_text().split() if path.exists() else []


# --------------------------------------------------------------------------- #
# grid parsing and naming
# --------------------------------------------------------------------------- #


def test_parse_grid_order_values_and_dedup():
    grid = parse_grid(["alpha=0.75,1.5,3", "t_zero=4,6.0", "num_layers=4,7", "lr=1e-3,0.001"])
    assert grid == {
        "alpha": ["0.75", "1.5", "3"],
        "t_zero": ["4", "6"],
        "num_layers": ["4", "7"],
        "lr": ["0.001"],
    }
    assert list(grid) == ["alpha", "t_zero", "num_layers", "lr"]
    assert parse_grid(["teacher=mini,other"]) == {"teacher": ["mini", "other"]}


@pytest.mark.parametrize("spec", [["alpha"], ["alpha="], ["alpha=1,,2"], ["1x=2"]])
def test_parse_grid_rejects_malformed(spec):
    with pytest.raises(ValueError):
        parse_grid(spec)


def test_parse_grid_rejects_repeated_key():
    with pytest.raises(ValueError, match="twice"):
        parse_grid(["alpha=1", "alpha=2"])


def test_point_name():
    assert point_name({"alpha": "0.75", "beta": "0.75", "t_zero": "4", "num_layers": "5"}) == (
        "a0.75_b0.75_t4_N5"
    )
    # PhiNet knobs first in a fixed order, other keys after in given order.
    assert point_name({"lr": "0.01", "num_layers": "7.0", "alpha": "3"}) == "a3_N7_lr0.01"


def test_read_top_level_ignores_nested_keys(hparams_file):
    assert read_top_level(hparams_file, ["alpha", "num_layers", "missing"]) == {
        "alpha": "0.75",
        "num_layers": "5",
    }


def test_plan_points_fills_names_from_hparams_and_overrides(hparams_file, tmp_path):
    points = plan_points(
        parse_grid(["alpha=0.75,1.5", "num_layers=4,7"]),
        hparams_file,
        ["--t_zero", "6", "--n_train", "2"],
        output_root=tmp_path / "root",
    )
    # Cartesian product, last key fastest; beta from the file, t_zero from the overrides.
    assert [p.name for p in points] == [
        "a0.75_b0.75_t6_N4",
        "a0.75_b0.75_t6_N7",
        "a1.5_b0.75_t6_N4",
        "a1.5_b0.75_t6_N7",
    ]
    p = points[2]
    assert p.output_folder == tmp_path / "root" / "a1.5_b0.75_t6_N4"
    assert p.command[0] == sys.executable
    assert p.command[1:] == [
        "-m",
        "tinyclap.stages.run",
        str(hparams_file),
        "--output_folder",
        str(tmp_path / "root" / "a1.5_b0.75_t6_N4"),
        "--alpha",
        "1.5",
        "--num_layers",
        "4",
        "--t_zero",
        "6",
        "--n_train",
        "2",
    ]
    assert p.printable().startswith("python -m tinyclap.stages.run ")


@pytest.mark.parametrize("override", [["--alpha", "1"], ["--output_folder=x"]])
def test_plan_points_rejects_overrides_of_swept_keys(hparams_file, override):
    with pytest.raises(ValueError, match="sets per point"):
        plan_points({"alpha": ["1", "2"]}, hparams_file, override)


# --------------------------------------------------------------------------- #
# running: skip finished points, isolate failures
# --------------------------------------------------------------------------- #


def test_sweep_isolates_failures_and_skips_finished(tmp_path, hparams_file, fake_train, capsys):
    root = tmp_path / "root"
    argv = ["sweep", "--grid", "alpha=0.25,0.5,1,9", "--output_root", str(root),
            "--train_script", str(fake_train), "--", str(hparams_file), "--lr", "0.1"]  # fmt: skip
    assert main(argv) == 1  # some point failed
    # The failing point (second) did not stop the third and fourth.
    assert _calls(root) == ["a0.25_b0.75_t4_N5", "a0.5_b0.75_t4_N5", "a1_b0.75_t4_N5",
                            "a9_b0.75_t4_N5"]  # fmt: skip
    assert (root / "a1_b0.75_t4_N5" / "results.json").is_file()
    assert json.loads((root / "a1_b0.75_t4_N5" / "results.json").read_text())["lr"] == "0.1"
    err = capsys.readouterr().err
    assert "FAILED a0.5_b0.75_t4_N5: exit status 1" in err
    assert "boom: alpha 0.5 is broken" in err  # the log tail is reported
    assert "Traceback: boom starts" in err and "/23 [" not in err  # without progress bars
    assert "FAILED a9_b0.75_t4_N5: exit status 0 but no results.json" in err
    assert "2 done, 0 skipped, 2 failed" in err
    assert "boom" in (root / "a0.5_b0.75_t4_N5" / "sweep.log").read_text()

    manifest = json.loads((root / "sweep_manifest.json").read_text())
    assert manifest["invocations"][0]["command"] == (
        f"tinyclap sweep --grid alpha=0.25,0.5,1,9 --output_root {root} "
        f"--train_script {fake_train} -- {hparams_file} --lr 0.1"
    )
    status = {name: info["status"] for name, info in manifest["points"].items()}
    assert status == {"a0.25_b0.75_t4_N5": "done", "a0.5_b0.75_t4_N5": "failed",
                      "a1_b0.75_t4_N5": "done", "a9_b0.75_t4_N5": "failed"}  # fmt: skip
    assert manifest["points"]["a0.5_b0.75_t4_N5"]["returncode"] == 1
    readme = (root / "README.md").read_text()
    assert "tinyclap sweep --grid alpha=0.25,0.5,1,9" in readme

    # Second run: the finished points are skipped, only the failed ones re-run.
    assert main(argv) == 1
    assert _calls(root)[4:] == ["a0.5_b0.75_t4_N5", "a9_b0.75_t4_N5"]
    err = capsys.readouterr().err
    assert "2 skipped, 2 failed" in err
    assert "warning" not in err  # same commands as the finished runs
    # A finished point made by another command is still skipped, with a warning.
    assert main([*argv[:-2], "--lr", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "warning: a1_b0.75_t4_N5 was made by another command" in err
    assert _calls(root)[6:] == ["a0.5_b0.75_t4_N5", "a9_b0.75_t4_N5"]
    manifest = json.loads((root / "sweep_manifest.json").read_text())
    assert len(manifest["invocations"]) == 3
    assert manifest["points"]["a0.25_b0.75_t4_N5"]["status"] == "skipped"


def test_sweep_all_good_exits_zero_and_runs_in_parallel(tmp_path, hparams_file, fake_train):
    root = tmp_path / "root"
    points = plan_points(
        parse_grid(["alpha=1,2,3", "lr=0.1,0.2"]), hparams_file, [], root, str(fake_train)
    )
    messages = []
    summary = run_sweep(points, jobs=3, log=messages.append)
    assert sorted(summary["done"]) == sorted(p.name for p in points)
    assert summary["failed"] == [] and summary["skipped"] == []
    assert _calls(root)[0] == "a1_b0.75_t4_N5_lr0.1"  # the first point runs alone first
    assert sorted(_calls(root)) == sorted(p.name for p in points)
    assert all(p.status == "done" and p.returncode == 0 for p in points)
    assert main(["sweep", "--grid", "alpha=1,2,3", "lr=0.1,0.2", "--output_root", str(root),
                 "--train_script", str(fake_train), "--", str(hparams_file)]) == 0  # fmt: skip
    assert len(_calls(root)) == 6  # everything was finished: nothing re-run


@pytest.mark.parametrize("content", ['{"invocations": [{"comm', "[1, 2]"])
def test_corrupt_manifest_is_an_error_and_kept(tmp_path, hparams_file, fake_train, content, capsys):
    root = tmp_path / "root"
    points = plan_points(parse_grid(["alpha=1"]), hparams_file, [], root, str(fake_train))
    root.mkdir()
    (root / "sweep_manifest.json").write_text(content)
    with pytest.raises(SweepManifestError) as err:
        run_sweep(points, log=lambda message: None)
    message = str(err.value)
    assert f"corrupt sweep manifest {root / 'sweep_manifest.json'}" in message
    assert "moving it aside" in message
    assert (root / "sweep_manifest.json").read_text() == content  # history not overwritten
    assert not _calls(root)  # nothing ran
    argv = ["sweep", "--grid", "alpha=1", "--output_root", str(root),
            "--train_script", str(fake_train), "--", str(hparams_file)]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"tinyclap: error: corrupt sweep manifest {root / 'sweep_manifest.json'}" in err
    assert (root / "sweep_manifest.json").read_text() == content and not _calls(root)


def test_sweep_without_hparams_is_an_error(capsys):
    assert main(["sweep", "--grid", "alpha=1"]) == 2  # usage: the hparams file goes after --
    assert "after --" in capsys.readouterr().err


def test_sweep_dry_run_lists_points(tmp_path, hparams_file, fake_train, capsys):
    assert main(["sweep", "--grid", "num_layers=4,7", "--dry_run", "--output_root",
                 str(tmp_path), "--train_script", str(fake_train), "--", str(hparams_file)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["a0.75_b0.75_t4_N4", "pending"],
        ["a0.75_b0.75_t4_N7", "pending"],
    ]
    assert not _calls(tmp_path)


# --------------------------------------------------------------------------- #
# Pareto fronts and the report
# --------------------------------------------------------------------------- #


def test_pareto_front_hand_example():
    #          A    B    C    D    E    F    G (tie with B)  H (no score)
    costs = [1.0, 2.0, 2.0, 3.0, 4.0, 1.0, 2.0, 0.5]
    scores = [50, 60, 55, 60, 80, 40, 60, None]
    # C is beaten by B (same cost, better), D by B (cheaper, same score),
    # F by A (same cost, better); B and G tie exactly and both stay.
    assert pareto_front(costs, scores) == [True, True, False, False, True, False, True, False]
    assert pareto_front([], []) == []
    assert pareto_front([3.0], [10]) == [True]
    with pytest.raises(ValueError):
        pareto_front([1.0], [])


def test_mark_pareto_uses_mean_accuracy_and_ignores_teacher():
    rows = [
        {"kind": "student", "macs": 1, "params": 30, "acc_x": 50.0, "acc_y": 70.0},  # 60
        {"kind": "student", "macs": 2, "params": 10, "acc_x": 70.0, "acc_y": 60.0},  # 65
        {"kind": "student", "macs": 3, "params": 20, "acc_x": 60.0, "acc_y": 60.0},  # 60
        {"kind": "teacher", "macs": 0.5, "params": 1, "acc_x": 99.0, "acc_y": 99.0},
    ]
    mark_pareto(rows, ["acc_x", "acc_y"])
    assert [r["score"] for r in rows] == [60.0, 65.0, 60.0, 99.0]
    assert [r["pareto_macs"] for r in rows] == [True, True, False, False]
    assert [r["pareto_params"] for r in rows] == [False, True, False, False]


def _fake_run(root, name, alpha, num_layers, accuracy, recorded_dir="elsewhere"):
    """A distill run folder: a small real student checkpoint and a results.json."""
    folder = root / name
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    student = PhiNetStudent(alpha, 0.75, 4, num_layers, n_frames=101, n_mels=64,
                            head_channels=32, embedding_dim=16)  # fmt: skip
    save_student(folder / "student.ckpt", StudentAudioEncoder(student, FRONTEND, 2.0))
    (folder / "hyperparams.yaml").write_text("stage: distill\ndataset: synth\n")
    record = {
        "stage": "distill",
        "command": f"train.py hparams/distill.yaml --output_folder {folder}",
        # Recorded relative to another working directory: found by name in the run folder.
        "student_checkpoint": f"{recorded_dir}/{name}/student.ckpt",
        "student_config": student.config,
        "params": sum(p.numel() for p in student.parameters()),
        "train_seconds": 1.0,
        "zs_accuracy": accuracy,
    }
    (folder / "results.json").write_text(json.dumps(record))
    return student


def _fake_profile(model):
    """Deterministic stand-in for profile_model: MACs = 100 x params."""
    params = sum(p.numel() for p in model.audio_encoder().parameters())
    return {"params": params, "backbone_params": params - 1, "projection_params": 1,
            "macs": 100 * params, "ms_b1": 1.0, "ms_b16": 8.0, "peak_mem_mb": 0.5,
            "threads": 1}  # fmt: skip


def test_report_table_csv_and_plot_on_synthetic_runs(tmp_path):
    root = tmp_path / "sweep"
    sizes = {}
    for name, alpha, n, acc in [("small", 0.25, 2, 0.40), ("worse", 0.25, 3, 0.30),
                                ("mid", 0.5, 3, 0.60), ("big", 1.0, 3, 0.55)]:  # fmt: skip
        sizes[name] = sum(p.numel() for p in _fake_run(root, name, alpha, n, acc).parameters())
    assert sizes["small"] < sizes["worse"] < sizes["mid"] < sizes["big"]
    (root / "other").mkdir()
    (root / "other" / "results.json").write_text('{"stage": "evaluate", "zs_accuracy": 1}')
    no_ckpt = root / "lost"
    no_ckpt.mkdir()
    (no_ckpt / "hyperparams.yaml").write_text("dataset: synth\n")
    (no_ckpt / "results.json").write_text(
        json.dumps({"stage": "distill", "params": 7, "zs_accuracy": 0.1})
    )

    rows, acc_keys = collect_rows(root, profile=_fake_profile)
    assert acc_keys == ["acc_synth"]
    assert [r["model"] for r in rows] == ["small", "worse", "mid", "big", "lost"]
    assert [r["macs"] for r in rows[:4]] == [
        100 * sizes[k] for k in ("small", "worse", "mid", "big")
    ]
    assert [r["acc_synth"] for r in rows] == [40.0, 30.0, 60.0, 55.0, 10.0]
    # "lost" has no checkpoint: listed, not profiled, never on a front.
    assert rows[-1].get("macs") is None and rows[-1]["params"] == 7
    assert [r["pareto_macs"] for r in rows] == [True, False, True, False, False]
    # Its parameter count (from results.json) still places it on the params front.
    assert [r["pareto_params"] for r in rows] == [True, False, True, False, True]
    assert rows[0]["alpha"] == "0.25" and rows[0]["num_layers"] == 2

    out = tmp_path / "report"
    table = write_report(rows, acc_keys, out, command="tinyclap report x", notes=["A note."])
    lines = table.splitlines()
    assert lines[0].startswith("| model") and "synth acc %" in lines[0] and "Pareto" in lines[0]
    assert lines[2].startswith("| small ") and lines[2].endswith("| MACs, params |")
    assert lines[3].startswith("| worse ") and lines[3].rstrip().endswith("|              |")
    assert "|       40.00 |" in lines[2]
    assert (out / "table.md").read_text() == table + "\n"
    with open(out / "table.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["model"] for r in records] == ["small", "worse", "mid", "big", "lost"]
    assert records[2]["pareto_macs"] == "True" and records[3]["pareto_macs"] == "False"
    assert float(records[2]["acc_synth"]) == 60.0
    assert (out / "pareto.png").stat().st_size > 10_000
    readme = (out / "README.md").read_text()
    assert "tinyclap report x" in readme and "A note." in readme and "pareto.png" in readme


# --------------------------------------------------------------------------- #
# one real point of a real sweep, then a real report (about 30 s)
# --------------------------------------------------------------------------- #


def test_real_sweep_point_and_report(tmp_path, monkeypatch, capsys):
    from tinyclap.teachers.mini import save_mini_teacher
    from tinyclap.teachers.mini_clap import MiniCLAP

    torch.manual_seed(0)
    teacher = tmp_path / "teacher" / "teacher.ckpt"
    model = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16)
    save_mini_teacher(teacher, model, FRONTEND, 2.0)
    (teacher.parent / "results.json").write_text(
        json.dumps({"stage": "train_teacher", "zs_accuracy": 0.5})
    )
    (teacher.parent / "hyperparams.yaml").write_text("dataset: synth\n")
    root = tmp_path / "sweep"
    monkeypatch.chdir(REPO)
    status = main(["sweep", "--grid", "alpha=0.25", "num_layers=2", "--output_root", str(root),
                   "--", "hparams/distill.yaml", "--n_train", "2", "--n_valid", "1",
                   "--n_test", "1", "--number_of_epochs", "1", "--finetune_epochs", "1",
                   "--head_channels", "32", "--data_folder", str(tmp_path / "data"),
                   "--cache_folder", str(tmp_path / "cache"),
                   "--teacher_checkpoint", str(teacher)])  # fmt: skip
    folder = root / "a0.25_b0.75_t4_N2"
    assert status == 0, (folder / "sweep.log").read_text()[-3000:]
    record = json.loads((folder / "results.json").read_text())
    assert record["stage"] == "distill"
    assert record["student_config"]["alpha"] == 0.25
    assert record["student_config"]["num_layers"] == 2
    metrics = json.loads((folder / "zeroshot_test" / "metrics.json").read_text())
    correct = sum(row[i] for i, row in enumerate(metrics["confusion_matrix"]))
    assert (
        record["zs_accuracy"]
        == metrics["accuracy"]
        == pytest.approx(correct / metrics["num_clips"])
    )
    capsys.readouterr()

    out = tmp_path / "report"
    notes = tmp_path / "notes.md"
    notes.write_text("Tiny run, **not** trained.\n")
    assert main(["report", str(root), "--teacher", str(teacher), "--out", str(out),
                 "--repeats", "2", "--notes", str(notes)]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(out / "table.csv", newline="")))
    assert [r["kind"] for r in rows] == ["student", "teacher"]
    student, teacher_row = rows
    assert int(student["params"]) == record["params"]
    assert int(student["params"]) == int(student["backbone_params"]) + int(
        student["projection_params"]
    )
    assert int(student["macs"]) > 0 and float(student["ms_b16"]) > 0
    assert float(student["peak_mem_mb"]) > int(student["params"]) * 4 / 1e6  # weights at least
    assert student["pareto_macs"] == "True"  # alone on its front
    assert float(teacher_row["acc_synth"]) == 50.0
    assert int(teacher_row["params"]) == model.audio_params()
    assert teacher_row["pareto_macs"] == "False"
    readme = (out / "README.md").read_text()
    assert "tinyclap sweep --grid alpha=0.25 num_layers=2" in readme  # from the manifest
    assert "tinyclap report" in readme
    assert "1 torch thread(s)" in readme
    assert readme.rstrip().endswith("Tiny run, **not** trained.")
