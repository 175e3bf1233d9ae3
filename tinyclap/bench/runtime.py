"""Time to first result, folder throughput and install size: torch-free runtime vs full install.

Runs each command as a fresh process, in interleaved rounds (every round runs
every command once, so load changes on a shared machine hit them alike), and
records wall time and the child's CPU time (user + system, less sensitive to
other processes). Writes ``results.json`` and ``table.md`` to ``--out``.

    python3 -m venv /tmp/rtvenv && /tmp/rtvenv/bin/pip install ./tinyclap-runtime
    python -m tinyclap.bench.toy_export /tmp/tinyclap_runtime
    python -m tinyclap.bench.runtime --runtime_venv /tmp/rtvenv --data /tmp/tinyclap_runtime \
        --out results/runtime_bench
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from tinyclap.runtime.machine import machine_info

REPO = Path(__file__).resolve().parents[2]


def site_packages_mb(python):
    """Size of the interpreter's site-packages (its whole install), in MB."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    path = subprocess.run([python, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout
    return round(int(out.split()[0]) / 1024, 1), path


def timed(cmd, env):
    """``(wall s, child CPU s, stderr)`` of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.stderr


def main(argv=None):
    """Measure and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runtime_venv", required=True, help="venv with `pip install ./tinyclap-runtime`"
    )
    parser.add_argument("--full_python", default=sys.executable, help="python of the full install")
    parser.add_argument(
        "--data", required=True, help="folder written by python -m tinyclap.bench.toy_export"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "results" / "runtime_bench"))
    args = parser.parse_args(argv)
    data, rt = Path(args.data), Path(args.runtime_venv)
    model, one, clips = str(data / "exported"), str(data / "one.wav"), str(data / "clips")
    full = [args.full_python, "-m", "tinyclap.cli.main", "classify"]
    runtime = [str(rt / "bin" / "tinyclap-runtime"), "classify"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rt_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed copy
    commands = {
        "runtime: tinyclap-runtime classify (1 file)":
            (runtime + [one, "--model", model, "--labels", "esc50"], rt_env),
        "full: tinyclap classify (1 file, backend auto = onnxruntime)":
            (full + [one, "--model", model, "--labels", "esc50"], env),
        "full: tinyclap classify (1 file, backend pytorch)":
            (full + [one, "--model", model, "--labels", "esc50", "--backend", "pytorch"], env),
        "runtime: import tinyclap.runtime.classifier":
            ([str(rt / "bin" / "python"), "-c", "import tinyclap.runtime.classifier"], rt_env),
        "full: import tinyclap.deploy.inference":
            ([args.full_python, "-c", "import tinyclap.deploy.inference"], env),
        "runtime: tinyclap-runtime classify (folder of 32 x 5 s)":
            (runtime + [clips, "--model", model, "--labels", "esc50"], rt_env),
        "full: tinyclap classify (folder of 32 x 5 s, backend auto)":
            (full + [clips, "--model", model, "--labels", "esc50"], env),
        "full: tinyclap classify (folder of 32 x 5 s, backend pytorch)":
            (full + [clips, "--model", model, "--labels", "esc50", "--backend", "pytorch"], env),
    }  # fmt: skip
    results = {name: {"wall": [], "cpu": [], "files_per_s": []} for name in commands}
    for index in range(args.rounds):
        for name, (cmd, cmd_env) in commands.items():
            wall, cpu, err = timed(cmd, cmd_env)
            results[name]["wall"].append(wall)
            results[name]["cpu"].append(cpu)
            found = re.search(r"\(([\d.]+) files/s|: ([\d.]+) files/s", err)
            if found:
                results[name]["files_per_s"].append(float(found.group(1) or found.group(2)))
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rows = []
    for name, values in results.items():
        rows.append({
            "command": name,
            "wall_s": round(statistics.median(values["wall"]), 3),
            "cpu_s": round(statistics.median(values["cpu"]), 3),
            "files_per_s": round(statistics.median(values["files_per_s"]), 1)
            if values["files_per_s"] else None,
        })  # fmt: skip
    rt_mb, rt_path = site_packages_mb(str(rt / "bin" / "python"))
    full_mb, full_path = site_packages_mb(args.full_python)
    sizes = {"runtime_site_packages_mb": rt_mb, "full_site_packages_mb": full_mb,
             "runtime_path": rt_path, "full_path": full_path}  # fmt: skip
    load = os.getloadavg()
    record = {"rows": rows, "install": sizes, "rounds": args.rounds, "loadavg": load,
              "cpus": os.cpu_count(), "python": sysconfig.get_python_version(),
              "machine": machine_info(versions=("numpy", "onnxruntime")),
              "command": "python tinyclap/bench/runtime.py " + " ".join(
                  argv if argv is not None else sys.argv[1:])}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    lines = ["| command | wall s (median) | CPU s (median) | files/s (in-process) |",
             "|---|---|---|---|"]  # fmt: skip
    for row in rows:
        speed = row["files_per_s"] if row["files_per_s"] is not None else ""
        lines.append(f"| {row['command']} | {row['wall_s']} | {row['cpu_s']} | {speed} |")
    lines += [
        "",
        "| install | site-packages MB |",
        "|---|---|",
        "| runtime (`pip install ./tinyclap-runtime`: numpy, soundfile, onnxruntime, "
        "sentencepiece) | "
        f"{rt_mb} |",
        f"| full (the repo's .venv: torch CPU, SpeechBrain, msclap...) | {full_mb} |",
    ]
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
