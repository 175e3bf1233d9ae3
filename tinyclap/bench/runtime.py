"""Time to first result, folder throughput and install size: torch-free runtime vs full install.

Runs each command as a fresh process, in interleaved rounds (every round runs
every command once, so load changes on a shared machine hit them alike), and
records wall time and the child's CPU time (user + system, less sensitive to
other processes). The commands run in a temporary working directory; the
model and clips are ``--data`` (a folder written by ``python -m
tinyclap.bench.toy_export DIR``), by default written afresh to a temporary folder.

Example
-------
python3 -m venv /tmp/rtvenv && /tmp/rtvenv/bin/pip install ./tinyclap-runtime
tinyclap bench runtime --runtime_venv /tmp/rtvenv --out results/runtime_bench
"""

import os
import re
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from tinyclap.runtime.machine import machine_info

NAME = "runtime"
HELP = "time to first result, files/s and install size: tinyclap-runtime vs the full install"


def site_packages_mb(python):
    """Size of the interpreter's site-packages (its whole install), in MB."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    path = subprocess.run([python, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout
    return round(int(out.split()[0]) / 1024, 1), path


def timed(cmd, env, cwd):
    """``(wall s, child CPU s, stderr)`` of one run of ``cmd`` in folder ``cwd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(cwd))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.stderr


def add_arguments(parser):
    """The options of ``tinyclap bench runtime``."""
    parser.add_argument(
        "--runtime_venv", required=True, help="venv with `pip install ./tinyclap-runtime`"
    )
    parser.add_argument("--full_python", default=sys.executable, help="python of the full install")
    parser.add_argument("--data", help="folder written by python -m tinyclap.bench.toy_export "
                        "(default: written now to a temporary folder)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)


def run(args):
    """Build the toy folder if needed, time every command in interleaved rounds."""
    for path, what in ((args.runtime_venv, "--runtime_venv"), (args.data, "--data")):
        if path and not Path(path).is_dir():
            raise FileNotFoundError(f"{what}: no folder {path}")
    with tempfile.TemporaryDirectory(prefix="tinyclap-runtime-bench-") as tmp:
        if args.data is None:
            from tinyclap.bench.toy_export import build

            build(Path(tmp) / "data")
        return measure(args, Path(args.data or Path(tmp) / "data"), Path(tmp))


def measure(args, data, cwd):
    """The record of :func:`run`: commands run from ``cwd`` on ``data``."""
    rt = Path(args.runtime_venv)
    model, one, clips = str(data / "exported"), str(data / "one.wav"), str(data / "clips")
    full = [args.full_python, "-m", "tinyclap.cli.main", "classify"]
    runtime = [str(rt / "bin" / "tinyclap-runtime"), "classify"]
    env = dict(os.environ)
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
            wall, cpu, err = timed(cmd, cmd_env, cwd)
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
              "machine": machine_info(versions=("numpy", "onnxruntime"))}  # fmt: skip
    return record


def table(record, command):
    """The commands' times and the two installs' sizes (markdown)."""
    lines = [f"Command: `{command}`", "",
             "| command | wall s (median) | CPU s (median) | files/s (in-process) |",
             "|---|---|---|---|"]  # fmt: skip
    for row in record["rows"]:
        speed = row["files_per_s"] if row["files_per_s"] is not None else ""
        lines.append(f"| {row['command']} | {row['wall_s']} | {row['cpu_s']} | {speed} |")
    sizes = record["install"]
    lines += [
        "",
        "| install | site-packages MB |",
        "|---|---|",
        "| runtime (`pip install ./tinyclap-runtime`: numpy, soundfile, onnxruntime, "
        f"sentencepiece) | {sizes['runtime_site_packages_mb']} |",
        f"| full (torch CPU, SpeechBrain, msclap...) | {sizes['full_site_packages_mb']} |",
    ]
    return "\n".join(lines)
