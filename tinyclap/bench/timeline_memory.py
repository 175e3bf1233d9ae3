"""Peak memory (RSS) of a timeline on long files: streamed vs. whole-file loading.

Writes long noise recordings to disk block by block (44.1 kHz, 16-bit, mono), then,
each in a fresh process so that ``ru_maxrss`` is that run's own peak:

* ``timeline``: ``clf.classify_file(path, labels, timeline=True)`` (streamed);
* ``whole``: ``load_audio(path, rate)`` + ``split_windows`` + the same scoring, what a
  timeline would cost without the streaming reader (run on the shorter files only);
* ``idle``: loading the model and nothing else (the floor).

Each row gives the resident memory once the model is loaded, its maximum while the
work runs (``/proc/self/status`` sampled every 20 ms) and the process's peak
(``ru_maxrss``, which also holds the brief transient of importing torch and loading).

The model is an exported folder (``--model``) or, by default, a random-weight tiny
student of a random mini teacher (16 kHz, 1 s windows) exported to a temporary folder:
memory does not depend on the weights.

Example
-------
tinyclap bench timeline_memory --minutes 1 10 60 --whole_up_to 60 --save
"""

import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

NAME = "timeline_memory"
HELP = "peak memory of a timeline on long files: streamed vs whole-file loading"


def write_long_file(path, minutes, rate=44100):
    """Noise with a tone every other minute, written 10 s at a time."""
    rng = np.random.default_rng(0)
    block = 10 * rate
    t = np.arange(block) / rate
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for i in range(int(round(minutes * 6))):
            wav = 0.05 * rng.standard_normal(block)
            if (i // 6) % 2:
                wav += 0.3 * np.sin(2 * np.pi * 880 * t)
            handle.write(wav.astype(np.float32))
    return path


def build_model(folder):
    """A random tiny student of a random mini teacher, exported to ``folder``."""
    import torch

    from tinyclap.deploy.export import export_student
    from tinyclap.students.encoder import StudentAudioEncoder, save_student
    from tinyclap.students.phinet import PhiNetStudent
    from tinyclap.teachers.mini import save_mini_teacher
    from tinyclap.teachers.mini_clap import MiniCLAP

    frontend = {"sample_rate": 16000, "f_max": 8000.0}
    torch.manual_seed(0)
    teacher = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=16).eval()
    save_mini_teacher(folder / "teacher.ckpt", teacher, frontend, 1.0)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=32,
                            embedding_dim=16)  # fmt: skip
    save_student(folder / "student.ckpt", StudentAudioEncoder(student, frontend, 1.0),
                 teacher=str(folder / "teacher.ckpt"))  # fmt: skip
    export_student(folder / "student.ckpt", folder / "exported", label_sets=["synth"],
                   text_encoder=False)  # fmt: skip
    return folder / "exported"


def current_rss_mb():
    """Resident memory of this process now (Linux ``/proc``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode, model, path, hop, batch_size):
    """One measurement in this process; prints a JSON record."""
    import torch

    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    torch.set_num_threads(1)
    clf = ZeroShotAudioClassifier.from_hparams(source=model, savedir=tempfile.mkdtemp())
    clf.encode_text("synth")
    loaded_mb = current_rss_mb()
    sampled, done = [loaded_mb], threading.Event()

    def sample():  # resident memory every 20 ms while the work runs
        while not done.wait(0.02):
            sampled.append(current_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    windows = None
    if mode == "timeline":
        tl = clf.classify_file(path, "synth", timeline=True, hop=hop, batch_size=batch_size)
        windows = len(tl.starts)
    elif mode == "whole":
        from tinyclap.audio.windows import split_windows

        wav = clf.load_audio(path)
        hop_samples = int(round(hop * clf.sample_rate))
        cut = split_windows(wav, clf.window_samples, hop_samples)
        text = clf.encode_text("synth")
        scores = torch.cat([clf.embed_windows(b) @ text.T for b in cut.split(batch_size)])
        windows = len(scores)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    sampled.append(current_rss_mb())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    record = {"mode": mode, "windows": windows, "seconds": round(seconds, 1)}
    record.update(loaded_rss_mb=round(loaded_mb), work_rss_mb=round(max(sampled)))
    print(json.dumps({**record, "peak_rss_mb": round(peak_mb)}))


def add_arguments(parser):
    """The options of ``tinyclap bench timeline_memory``."""
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--whole_up_to", type=float, default=10,
                        help="whole-file loading only for files this long or shorter")  # fmt: skip
    parser.add_argument("--model", help="an exported folder (default: a random tiny student)")
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--workdir", help="where the long files go (default: a temp folder)")


def run(args):
    """Write the files, run every measurement in its own process; return the rows."""
    if args.model and not Path(args.model).is_dir():
        raise FileNotFoundError(f"--model: no folder {args.model}")
    with tempfile.TemporaryDirectory(prefix="timeline_memory_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model or str(build_model(work))
        rows = []
        for minutes in args.minutes:
            path = write_long_file(work / f"long_{minutes:g}min.wav", minutes)
            modes = ["idle", "timeline"] + (["whole"] if minutes <= args.whole_up_to else [])
            for mode in modes:
                out = subprocess.run(
                    [sys.executable, "-m", __name__, "--hop", str(args.hop), "--batch_size",
                     str(args.batch_size), mode, model, str(path)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                record = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append({"minutes": minutes, **record})
                print(json.dumps(rows[-1]), file=sys.stderr)
            path.unlink()
    return {"rows": rows, "hop": args.hop, "batch_size": args.batch_size,
            "model": args.model or "random tiny student (16 kHz, 1 s windows)"}  # fmt: skip


def table(record, command):
    """The rows as a markdown table."""
    lines = [f"Command: `{command}`", "",
             "| file (44.1 kHz mono) | mode | windows | seconds | RSS loaded (MB) "
             "| RSS while working, max (MB) | peak RSS, ru_maxrss (MB) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in record["rows"]:
        lines.append(f"| {r['minutes']:g} min | {r['mode']} | {r['windows'] or ''} "
                     f"| {r['seconds']} | {r['loaded_rss_mb']} | {r['work_rss_mb']} "
                     f"| {r['peak_rss_mb']} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":  # one measurement, in a fresh process (see run)
    import argparse

    child_parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}")
    child_parser.add_argument("--hop", type=float, required=True)
    child_parser.add_argument("--batch_size", type=int, required=True)
    child_parser.add_argument("mode", choices=["idle", "timeline", "whole"])
    child_parser.add_argument("model")
    child_parser.add_argument("path")
    a = child_parser.parse_args()
    child(a.mode, a.model, a.path, a.hop, a.batch_size)
