"""``make demo`` bookkeeping, fast: a killed stage, reruns and ``wall_seconds``.

The stages are faked (``run_stage`` writes a ``results.json``), and so are
the profiling and a clock; ``tests/test_recipes.py`` runs the real demo.
"""

import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

import tinyclap.studies.demo as demo

REPO = Path(__file__).resolve().parents[2]
STAGE_SECONDS = {"teacher": 100.0, "student": 200.0}
PROFILE_SECONDS = 5.0


class Fake:
    """Fake stages, profiling and clock for :func:`tinyclap.studies.demo.main`."""

    def __init__(self, monkeypatch, tmp_path):
        self.now, self.calls, self.kill = 1000.0, [], {}
        self.argv = ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
        self.summary_path = tmp_path / "results" / "summary.json"
        monkeypatch.setattr(demo, "time", types.SimpleNamespace(time=lambda: self.now))
        monkeypatch.setattr(demo, "run_stage", self.run_stage)
        monkeypatch.setattr(
            demo, "load_teacher", lambda *a, **k: types.SimpleNamespace(clip_seconds=2.0)
        )
        monkeypatch.setattr(demo, "load_student", lambda path: "student")
        monkeypatch.setattr(demo, "profile", self.profile)
        monkeypatch.setattr(demo, "plot_training_curves", lambda *a: None)

    def run_stage(self, args):
        name = "teacher" if "train_teacher" in args[0] else "student"
        self.calls.append(name)
        if name in self.kill:  # killed after some seconds
            self.now += self.kill.pop(name)
            raise demo.StageFailed(demo.printable_command(args), -signal.SIGKILL)
        self.now += STAGE_SECONDS[name]
        folder = demo.output_folder(args)
        (folder / "zeroshot_test").mkdir(parents=True, exist_ok=True)
        for file in ("confusion.png", "metrics.json"):
            (folder / "zeroshot_test" / file).write_text("{}")
        results = {
            "command": demo.recorded_command(args),
            "zs_accuracy": 0.9,
            "student_checkpoint": str(folder / "student.ckpt"),
            "student_config": {"alpha": 0.5},
        }
        (folder / "results.json").write_text(json.dumps(results))
        return demo.printable_command(args), results, folder

    def profile(self, encoder, threads):
        self.now += PROFILE_SECONDS / 2
        params = 1000 if encoder != "student" else 100
        return {"params": params, "macs": 10 * params, "cpu_ms_per_clip": 1.0}

    def main(self, *extra):
        self.calls = []
        return demo.main([*self.argv, *extra])


@pytest.fixture
def fake(monkeypatch, tmp_path):
    return Fake(monkeypatch, tmp_path)


def test_first_run_times_everything(fake):
    summary = fake.main()
    assert fake.calls == ["teacher", "student"]
    assert summary["wall_seconds"] == summary["last_run_seconds"] == 305.0
    assert json.loads(fake.summary_path.read_text()) == summary


def test_rerun_over_finished_stages_runs_none_and_keeps_wall_seconds(fake):
    first = fake.main()
    second = fake.main()
    assert fake.calls == []  # no test evaluation run again, only the profiling
    assert second["wall_seconds"] == first["wall_seconds"] == 305.0
    assert second["last_run_seconds"] == PROFILE_SECONDS
    assert second["teacher"]["command"] == first["teacher"]["command"]


def test_killed_stage_stops_the_demo_with_a_message(fake, capsys):
    fake.kill["student"] = 50.0
    with pytest.raises(SystemExit) as stopped:
        fake.main()
    assert stopped.value.code == 128 + signal.SIGKILL
    err = capsys.readouterr().err
    assert "demo stopped: this stage was killed by SIGKILL" in err
    assert "python train.py hparams/distill.yaml --output_folder" in err
    assert "run `make demo` again to resume it" in err
    assert not fake.summary_path.exists()

    summary = fake.main()  # resumes: the teacher is not run again
    assert fake.calls == ["student"]
    # every attempt counts: teacher 100 + killed student 50 + student 200 + profiling 5
    assert summary["wall_seconds"] == 355.0
    assert summary["last_run_seconds"] == 205.0


def test_changed_stage_command_runs_it_again_with_fresh_time(fake):
    fake.main()
    summary = fake.main("--student_args", "--alpha 0.5")
    assert fake.calls == ["student"]
    assert "--alpha 0.5" in summary["student"]["command"]
    assert summary["wall_seconds"] == 100.0 + 200.0 + PROFILE_SECONDS


def test_a_stage_after_one_that_ran_runs_too(fake):
    fake.main()
    fake.main("--teacher_args", "--number_of_epochs 2")
    assert fake.calls == ["teacher", "student"]  # the student depends on the new teacher


def test_unreadable_results_run_the_stage_again(fake):
    fake.main()
    results = Path(fake.argv[1]) / "student" / "results.json"
    results.write_text('{"command": "train.py hparams/dis')  # killed while writing it
    fake.main()
    assert fake.calls == ["student"]


def test_run_stage_raises_on_a_signal_or_an_error(monkeypatch, tmp_path):
    args = ["hparams/distill.yaml", "--output_folder", str(tmp_path)]
    for code, text in ((-signal.SIGKILL, "was killed by SIGKILL"), (1, "exited with status 1")):
        monkeypatch.setattr(
            demo.subprocess, "run", lambda cmd, code=code: subprocess.CompletedProcess(cmd, code)
        )
        with pytest.raises(demo.StageFailed, match=text) as failed:
            demo.run_stage(args)
        assert failed.value.command == "python train.py " + " ".join(args)
        assert failed.value.exit_status == (137 if code < 0 else 1)

    def interrupted(cmd):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.subprocess, "run", interrupted)
    with pytest.raises(demo.StageFailed, match="SIGINT") as failed:
        demo.run_stage(args)
    assert failed.value.exit_status == 130


def test_killed_stage_ends_without_a_traceback(tmp_path):
    """``python -m tinyclap.studies.demo`` whose first stage process kills itself."""
    site = tmp_path / "site"  # sitecustomize: a stage process (-m tinyclap.stages.run) dies
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "if 'tinyclap.stages.run' in getattr(sys, 'orig_argv', []):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tinyclap.studies.demo", "--runs", "runs", "--results", "results"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 128 + signal.SIGKILL
    assert "Traceback" not in done.stderr
    assert "python train.py hparams/train_teacher.yaml" in done.stderr
    assert "make demo" in done.stderr
    times = json.loads((tmp_path / "runs" / "demo_time.json").read_text())
    assert set(times) == {"teacher"}
