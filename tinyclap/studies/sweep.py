"""Grid sweeps of the distillation recipe: one ``train.py`` run per grid point.

``tinyclap sweep --grid alpha=0.75,1.5 num_layers=4,7 -- hparams/distill.yaml
[--key value ...]`` expands the grid (the cartesian product, last key varying
fastest) and, for every point, runs ::

    python -m tinyclap.stages.run hparams/distill.yaml --output_folder ROOT/<point> \
        --alpha 0.75 --num_layers 4 [--key value ...]

(what ``python train.py`` runs; the hparams file is found in the package when the
working directory has none). Each point gets its own
output folder, named after its PhiNet settings (``a0.75_b0.75_t4_N5``; other
grid keys are appended as ``<key><value>``). The knobs that the grid does not
vary are read from the overrides, else from the hparams file's top-level keys,
so that every name is complete.

- A point whose folder already holds ``results.json`` is *skipped* (finished;
  a warning is printed if that file records another command than the planned
  one); an interrupted point is simply re-run and resumes from its checkpoints.
- A failing point does not stop the others: its output goes to
  ``ROOT/<point>/sweep.log``, its error is reported at the end, and the sweep
  returns a non-zero status.
- ``--jobs N`` runs N points at once. The first pending point then runs alone
  first, so that shared preparation (dataset files, teacher-embedding cache)
  is built once and not by concurrent writers; each parallel run gets
  ``OMP_NUM_THREADS = cores // N`` unless that variable is already set.
- ``ROOT/sweep_manifest.json`` records every invocation (the exact command)
  and each point's command, status, return code and duration;
  ``ROOT/README.md`` repeats the commands in prose.

Example
-------
tinyclap sweep --grid alpha=0.5,0.75 num_layers=4,5 --output_root runs/sweep \
    -- hparams/distill.yaml --teacher_checkpoint runs/demo/teacher/teacher.ckpt
"""

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tinyclap.errors import UsageError
from tinyclap.stages.run import resolve_hparams, stage_command
from tinyclap.studies.entry import module_main

NAME = "sweep"
HELP = "run train.py over a hyperparameter grid"
REST = "train_args"  # after --: the hparams file and its overrides

__all__ = [
    "PHINET_KEYS",
    "SweepPoint",
    "format_value",
    "parse_grid",
    "plan_points",
    "point_name",
    "read_top_level",
    "run_sweep",
]

# Grid keys that name a point, in naming order, with their short prefixes.
PHINET_KEYS = {"alpha": "a", "beta": "b", "t_zero": "t", "num_layers": "N"}
MANIFEST = "sweep_manifest.json"
RESULTS = "results.json"
LOG = "sweep.log"


def format_value(value):
    """Canonical text of a grid value: numbers in shortest form, else as given.

    Examples
    --------
    >>> format_value("0.750"), format_value("4.0"), format_value("1e-3"), format_value("mini")
    ('0.75', '4', '0.001', 'mini')
    """
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:g}"


def parse_grid(specs):
    """Parse ``key=v1,v2,...`` strings into an ordered ``{key: [values]}``.

    Parameters
    ----------
    specs : list of str
        One string per hparam, e.g. ``["alpha=0.75,1.5", "num_layers=4,7"]``.

    Returns
    -------
    dict
        Keys in the given order, each with its values as canonical strings
        (:func:`format_value`), duplicates removed, order kept.

    Raises
    ------
    ValueError
        On a malformed spec, an empty value or a repeated key.

    Examples
    --------
    >>> parse_grid(["alpha=0.75,1.5,3", "num_layers=4,7"])
    {'alpha': ['0.75', '1.5', '3'], 'num_layers': ['4', '7']}
    >>> parse_grid(["t_zero=4,4.0,6"])
    {'t_zero': ['4', '6']}
    """
    grid = {}
    for spec in specs:
        key, sep, values = str(spec).partition("=")
        key = key.strip().lstrip("-")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"grid entry {spec!r} is not of the form key=v1,v2,...")
        if key in grid:
            raise ValueError(f"grid key {key!r} given twice")
        items = [format_value(v) for v in values.split(",")]
        if not items or any(not v for v in items):
            raise ValueError(f"grid entry {spec!r} has an empty value")
        grid[key] = list(dict.fromkeys(items))
    return grid


def read_top_level(hparams_file, keys):
    r"""Top-level scalar values of ``keys`` in a (hyperpyyaml) hparams file.

    Only lines ``key: value`` without indentation are read (comments removed);
    nothing is instantiated, so no object of the file is built.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write("alpha: 0.75  # width\nopt:\n    beta: 2\nnum_layers: 5\n")
    >>> read_top_level(f.name, ["alpha", "beta", "num_layers"])
    {'alpha': '0.75', 'num_layers': '5'}
    """
    found = {}
    text = Path(hparams_file).read_text(encoding="utf-8")
    for key in keys:
        match = re.search(rf"^{re.escape(key)}:[ \t]*([^#\n]*)", text, flags=re.MULTILINE)
        if match and match.group(1).strip():
            found[key] = match.group(1).strip().strip("'\"")
    return found


def _override_values(overrides):
    """``{key: value}`` of ``--key value`` / ``--key=value`` pairs in ``overrides``."""
    values, i = {}, 0
    while i < len(overrides):
        token = overrides[i]
        if token.startswith("--"):
            key, sep, value = token[2:].partition("=")
            if sep:
                values[key] = value
            elif i + 1 < len(overrides) and not overrides[i + 1].startswith("--"):
                values[key] = overrides[i + 1]
                i += 1
            else:
                values[key] = "True"
        i += 1
    return values


def point_name(values):
    """Folder name of a grid point: PhiNet knobs first, then the other keys.

    Parameters
    ----------
    values : dict
        ``{hparam: value}`` of the point (knobs missing from it are left out).

    Examples
    --------
    >>> point_name({"num_layers": "5", "alpha": "0.75", "beta": "0.75", "t_zero": "4"})
    'a0.75_b0.75_t4_N5'
    >>> point_name({"alpha": "1.5", "lr": "0.01", "teacher": "runs/t.ckpt"})
    'a1.5_lr0.01_teacherruns-t.ckpt'
    """
    parts = [f"{PHINET_KEYS[k]}{format_value(values[k])}" for k in PHINET_KEYS if k in values]
    for key, value in values.items():
        if key not in PHINET_KEYS:
            safe = re.sub(r"[^A-Za-z0-9._=+-]", "-", format_value(value))
            parts.append(f"{key}{safe}")
    return "_".join(parts)


@dataclass
class SweepPoint:
    """One grid point: its name, the hparams it sets and its command line.

    Attributes
    ----------
    name : str
        Output sub-folder name (see :func:`point_name`).
    values : dict
        Grid values of this point (``{hparam: value}``, strings).
    output_folder : Path
        ``output_root / name``.
    command : list of str
        The ``python -m tinyclap.stages.run ...`` command, ``sys.executable`` first.
    status : str
        ``pending``, ``skipped``, ``done`` or ``failed``.
    """

    name: str
    values: dict
    output_folder: Path
    command: list
    status: str = "pending"
    returncode: object = None
    seconds: float = 0.0
    error: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def finished(self):
        """Whether the point's ``results.json`` exists."""
        return (self.output_folder / RESULTS).is_file()

    def printable(self):
        """The command as one shell line, starting ``python -m tinyclap.stages.run``."""
        return shlex.join(["python", *self.command[1:]])


def plan_points(grid, hparams_file, overrides=(), output_root="runs/sweep", train_script=None):
    r"""Expand ``grid`` into :class:`SweepPoint` s with their commands.

    Parameters
    ----------
    grid : dict
        ``{hparam: [values]}`` as returned by :func:`parse_grid`.
    hparams_file : str
        The stage's hparams file (e.g. ``hparams/distill.yaml``).
    overrides : sequence of str
        Extra ``--key value`` arguments given to every point (after the grid's).
    output_root : str or Path
        Parent of the points' output folders.
    train_script : str, optional
        Script run with the current Python instead of ``python -m tinyclap.stages.run``
        (what ``train.py`` runs; works from any working directory).

    Returns
    -------
    list of SweepPoint
        In grid order (cartesian product, last key fastest).

    Raises
    ------
    ValueError
        If the grid is empty, or an override sets a grid key or
        ``--output_folder`` (the sweep sets those), or two points would share
        a folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write("alpha: 0.75\nbeta: 0.75\nt_zero: 4\nnum_layers: 5\n")
    >>> points = plan_points({"alpha": ["0.5", "1"], "num_layers": ["4"]}, f.name,
    ...                      ["--beta", "1"], output_root="out")
    >>> [p.name for p in points]
    ['a0.5_b1_t4_N4', 'a1_b1_t4_N4']
    >>> points[0].printable().split("tinyclap.stages.run ")[1].replace(f.name, "H")
    'H --output_folder out/a0.5_b1_t4_N4 --alpha 0.5 --num_layers 4 --beta 1'
    """
    if not grid:
        raise ValueError("empty grid: give at least one key=v1,v2,... entry")
    overrides = list(overrides)
    given = _override_values(overrides)
    clash = sorted((set(grid) | {"output_folder"}) & set(given))
    if clash:
        raise ValueError(
            f"overrides set {', '.join('--' + k for k in clash)}, which the sweep sets per point"
        )
    fixed = {k: format_value(v) for k, v in read_top_level(hparams_file, PHINET_KEYS).items()}
    fixed.update({k: format_value(given[k]) for k in PHINET_KEYS if k in given})
    root = Path(output_root)
    points, names = [], set()
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        named = {**{k: v for k, v in fixed.items() if k not in values}, **values}
        name = point_name(named)
        if name in names:
            raise ValueError(f"two grid points share the folder name {name!r}")
        names.add(name)
        folder = root / name
        runner = [sys.executable, train_script] if train_script else stage_command()
        command = [*runner, str(hparams_file)]
        command += ["--output_folder", str(folder)]
        for key, value in values.items():
            command += [f"--{key}", value]
        points.append(SweepPoint(name, values, folder, command + overrides))
    return points


class SweepManifestError(ValueError):
    """An existing ``sweep_manifest.json`` cannot be read; it is left untouched."""


def read_manifest(path):
    """The recorded sweep history in ``path`` (``{}`` if there is no such file).

    Raises
    ------
    SweepManifestError
        The file is not valid JSON or not a manifest. It is never overwritten
        (it holds the sweep's history): the message says how to move it aside.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    except (OSError, ValueError) as err:
        raise SweepManifestError(
            f"corrupt sweep manifest {path} ({err}); it was left untouched. "
            f"Keep its history by moving it aside (mv {path} {path}.bad) and re-run: "
            f"points with a {RESULTS} are still skipped and a new manifest is started."
        ) from err
    return data


class _Manifest:
    """``sweep_manifest.json`` and ``README.md`` of an output root (thread-safe)."""

    def __init__(self, root, invocation):
        self.root = Path(root)
        self.path = self.root / MANIFEST
        self.lock = threading.Lock()
        data = read_manifest(self.path)
        self.data = {
            "invocations": list(data.get("invocations", [])) + [invocation],
            "points": dict(data.get("points", {})),
        }

    def update(self, point):
        with self.lock:
            self.data["points"][point.name] = {
                "values": point.values,
                "output_folder": str(point.output_folder),
                "command": point.printable(),
                "status": point.status,
                "returncode": point.returncode,
                "seconds": round(point.seconds, 1),
                "error": point.error,
            }
            self.write()

    def write(self):
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)
        lines = [
            "# Sweep",
            "",
            "Made by (most recent last; finished points are skipped on a re-run):",
            "",
            "```bash",
            *[inv["command"] for inv in self.data["invocations"]],
            "```",
            "",
            "| point | status | seconds | command |",
            "|---|---|---:|---|",
        ]
        for name, info in sorted(self.data["points"].items()):
            lines.append(f"| {name} | {info['status']} | {info['seconds']} | `{info['command']}` |")
        lines += ["", f"Details: `{MANIFEST}`; each point's output: `<point>/{LOG}`.", ""]
        (self.root / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _recorded_command(point):
    """The ``command`` stored in a finished point's ``results.json`` (or ``None``)."""
    try:
        record = json.loads((point.output_folder / RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("command") if isinstance(record, dict) else None


_PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+ \[")  # tqdm lines: "|  12/23 [00:29<..."


def _tail(path, lines=15):
    """Last ``lines`` lines of a text file, progress bars left out ("" if missing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip() and not _PROGRESS_BAR.search(line)]
    return "\n".join(kept[-lines:])


def _describe_exit(returncode):
    """``exit status 1`` or ``killed by signal 15 (SIGTERM)``.

    Examples
    --------
    >>> _describe_exit(2), _describe_exit(-9)
    ('exit status 2', 'killed by signal 9 (SIGKILL)')
    """
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown"
    return f"killed by signal {-returncode} ({name})"


_LIVE = set()  # running point processes, stopped if the sweep itself is interrupted
_LIVE_LOCK = threading.Lock()


def _stop(proc, timeout=10):
    """Terminate ``proc`` (then kill it if it does not exit within ``timeout`` s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_all():
    """Stop every running point process (the sweep was interrupted)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _stop(proc)


def _run_point(point, env, log):
    """Run one point's command; fill in its status, return code and duration."""
    point.output_folder.mkdir(parents=True, exist_ok=True)
    log_path = point.output_folder / LOG
    start = time.time()
    log(f"[sweep] start {point.name}: {point.printable()}")
    try:
        with open(log_path, "a", encoding="utf-8") as out:
            out.write(f"\n$ {point.printable()}\n")
            out.flush()
            proc = subprocess.Popen(point.command, stdout=out, stderr=subprocess.STDOUT, env=env)
            with _LIVE_LOCK:
                _LIVE.add(proc)
            try:
                proc.wait()
            except BaseException:  # interrupted: do not leave the run behind
                _stop(proc)
                raise
            finally:
                with _LIVE_LOCK:
                    _LIVE.discard(proc)
        point.returncode = proc.returncode
        if proc.returncode != 0:
            point.error = f"{_describe_exit(proc.returncode)}; last lines of {log_path}:\n"
            point.error += _tail(log_path)
        elif not point.finished:
            point.error = f"exit status 0 but no {RESULTS} in {point.output_folder}"
    except Exception as err:  # e.g. the interpreter or script is missing
        point.error = f"{type(err).__name__}: {err}"
    point.seconds = time.time() - start
    point.status = "failed" if point.error else "done"
    log(f"[sweep] {point.status} {point.name} in {point.seconds:.0f} s")
    return point


def run_sweep(points, jobs=1, invocation="", output_root=None, log=None):
    """Run the pending points of a sweep; skip the finished ones.

    Parameters
    ----------
    points : list of SweepPoint
        From :func:`plan_points`.
    jobs : int
        Points run at the same time (1: one after the other).
    invocation : str
        The sweep's own command line, recorded in the manifest.
    output_root : str or Path, optional
        Where the manifest goes (default: the first point's parent folder).
    log : callable, optional
        ``log(message)`` for progress lines (default: print to stderr).

    Returns
    -------
    dict
        ``{"done": [...], "skipped": [...], "failed": [...]}`` point names;
        every point's ``status`` / ``returncode`` / ``error`` are filled in.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if log is None:

        def log(message):
            print(message, file=sys.stderr, flush=True)

    if not points:
        return {"done": [], "skipped": [], "failed": []}
    root = Path(output_root) if output_root is not None else points[0].output_folder.parent
    manifest = _Manifest(root, {"command": invocation, "started": time.strftime("%FT%T")})
    pending = []
    for point in points:
        if point.finished:
            point.status = "skipped"
            log(f"[sweep] skip {point.name}: {RESULTS} present")
            recorded = _recorded_command(point)
            if recorded is not None and recorded != " ".join(point.command[1:]):
                log(f"[sweep] warning: {point.name} was made by another command: {recorded}")
        else:
            pending.append(point)
        manifest.update(point)
    log(f"[sweep] {len(pending)} to run, {len(points) - len(pending)} finished, jobs={jobs}")

    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))

    def work(point):
        _run_point(point, env if jobs > 1 else None, log)
        manifest.update(point)

    if jobs == 1 or len(pending) <= 1:
        for point in pending:
            work(point)
    else:
        work(pending[0])  # builds shared data / caches alone, then the rest in parallel
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                list(pool.map(work, pending[1:]))
            except BaseException:  # Ctrl-C / SIGTERM: stop the running points, then exit
                _stop_all()
                raise

    summary = {s: [p.name for p in points if p.status == s] for s in ("done", "skipped", "failed")}
    log(
        f"[sweep] finished: {len(summary['done'])} done, {len(summary['skipped'])} skipped, "
        f"{len(summary['failed'])} failed"
    )
    for point in points:
        if point.status == "failed":
            log(f"[sweep] FAILED {point.name}: {point.error}")
    return summary


def _raise_system_exit(signum, frame):
    """Signal handler: exit with ``128 + signum`` through the normal unwinding."""
    raise SystemExit(128 + signum)


def add_arguments(s):
    """The options of ``tinyclap sweep`` (after ``--``: the hparams file and its overrides)."""
    s.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2")
    s.add_argument("--output_root", default="runs/sweep", help="one sub-folder per point")
    s.add_argument("--jobs", type=int, default=1, help="points run in parallel")
    s.add_argument("--train_script", default=None,
                   help="script per point (default: python -m tinyclap.stages.run)")  # fmt: skip
    s.add_argument("--dry_run", action="store_true", help="print the points and stop")


def main(argv=None):
    """``python -m tinyclap.studies.sweep``: the same as ``tinyclap sweep``."""
    return module_main(sys.modules[__name__], argv)


def run(args):
    """``tinyclap sweep``: parse the grid, run the points, return the exit status."""
    if not args.train_args:
        raise UsageError(
            "sweep: give the hparams file and its overrides after --, e.g. "
            "tinyclap sweep --grid alpha=0.75,1.5 -- hparams/distill.yaml"
        )
    hparams_file, *overrides = args.train_args
    hparams_file = str(resolve_hparams(hparams_file))
    if args.train_script and not Path(args.train_script).is_file():
        raise FileNotFoundError(f"sweep: --train_script {args.train_script} not found")
    points = plan_points(
        parse_grid(args.grid), hparams_file, overrides, args.output_root, args.train_script
    )
    if args.dry_run:
        for point in points:
            state = "finished" if point.finished else "pending"
            print(f"{point.name}\t{state}\t{point.printable()}")
        return 0
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        # SIGTERM (kill, job schedulers) unwinds like Ctrl-C, stopping the running points.
        previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        summary = run_sweep(
            points, jobs=args.jobs, invocation=args.invocation, output_root=args.output_root
        )
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 1 if summary["failed"] else 0
