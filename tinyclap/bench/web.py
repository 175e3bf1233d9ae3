"""The web page's numbers: site size, time to first result, ms per window in the browser.

Builds the page of an exported folder, serves it on 127.0.0.1, and loads it in
headless Chromium (:mod:`tinyclap.deploy.web.browser`) with ``?audio=`` a
recording of several windows, ``--rounds`` times; between browser rounds it
times the Python runtime (:class:`tinyclap.runtime.RuntimeClassifier`, host
log-mels + onnxruntime, 1 thread) on the same windows, so both sides see the
same load on a shared machine. Writes ``results/web/results.json``,
``table.md`` and a screenshot of the page, ``screenshot.png``.

Example
-------
python -m tinyclap.bench.web --folder exported/demo --out results/web
"""

import argparse
import functools
import http.server
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder):
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def _python_ms_per_window(clf, wav):
    from tinyclap.runtime.audio import split_windows

    windows = split_windows(wav, clf.engine.window_samples, clf.engine.window_samples // 2)
    start = time.perf_counter()
    clf.engine.embed_windows(windows)
    return 1000 * (time.perf_counter() - start) / len(windows)


def bench(folder, out, seconds=10.0, rounds=3, labels=None):
    """Measure the page of ``folder`` (see the module docstring); return the record."""
    from tinyclap.deploy.web.browser import chromium, console_errors
    from tinyclap.deploy.web.site import build_site
    from tinyclap.runtime.audio import load_audio
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.machine import cpu_line, machine_info

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    site = build_site(folder, Path(tempfile.mkdtemp(prefix="tinyclap_web_")) / "web")
    clf = RuntimeClassifier.from_folder(folder)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * clf.sample_rate)) / clf.sample_rate
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    (Path(site["out"]) / "bench.wav").unlink(missing_ok=True)
    sf.write(Path(site["out"]) / "bench.wav", audio.astype(np.float32), clf.sample_rate)
    wav = load_audio(Path(site["out"]) / "bench.wav", clf.sample_rate)
    labels = labels or clf.label_sets[0]
    httpd, url = _serve(site["out"])
    browser, python = [], []
    try:
        with chromium() as driver:
            for _ in range(rounds):
                driver.get(f"{url}?audio=bench.wav&labels={labels}")
                end = time.time() + 120
                while not driver.execute_script("return window.tinyclap && window.tinyclap.done"):
                    if time.time() > end:
                        raise RuntimeError("the page did not finish in 120 s")
                    time.sleep(0.05)
                stats = driver.execute_script(
                    "const s = window.tinyclap; return {first: s.firstResultMs, "
                    "windows: s.model.stats.windows, frontend: s.model.stats.frontendMs, "
                    "model: s.model.stats.modelMs, error: document.getElementById('error')"
                    ".textContent}"
                )
                if stats["error"]:
                    raise RuntimeError(f"the page says: {stats['error']}")
                browser.append(stats)
                python.append(_python_ms_per_window(clf, wav))
            driver.save_screenshot(str(out / "screenshot.png"))
            errors = console_errors(driver)
    finally:
        httpd.shutdown()
    per = [(s["frontend"] + s["model"]) / s["windows"] for s in browser]
    record = {
        "folder": str(folder),
        "audio_seconds": seconds,
        "windows": browser[0]["windows"],
        "rounds": rounds,
        "site_bytes": site["bytes"],
        "site_files": site["files"],
        "first_result_ms_after_load": statistics.median(s["first"] for s in browser),
        "browser_ms_per_window": statistics.median(per),
        "browser_frontend_ms_per_window": statistics.median(
            s["frontend"] / s["windows"] for s in browser
        ),
        "browser_model_ms_per_window": statistics.median(
            s["model"] / s["windows"] for s in browser
        ),
        "python_ms_per_window": statistics.median(python),
        "console_errors": errors,
        "machine": machine_info(),
    }
    record["browser_vs_python"] = record["browser_ms_per_window"] / record["python_ms_per_window"]
    (out / "results.json").write_text(json.dumps(record, indent=2))
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| site size (all files) | {site['bytes'] / 1e6:.2f} MB |",
        f"| of which onnxruntime-web wasm | "
        f"{site['files']['ort/ort-wasm-simd-threaded.wasm'] / 1e6:.2f} MB |",
        f"| of which model/ | "
        f"{sum(v for k, v in site['files'].items() if k.startswith('model/')) / 1e3:.0f} kB |",
        f"| first result after load ({seconds:g} s file) | "
        f"{record['first_result_ms_after_load']:.0f} ms |",
        f"| browser ms / window (log-mels + student, wasm 1 thread) | "
        f"{record['browser_ms_per_window']:.2f} "
        f"({record['browser_frontend_ms_per_window']:.2f} + "
        f"{record['browser_model_ms_per_window']:.2f}) |",
        f"| Python runtime ms / window (numpy + onnxruntime, 1 thread) | "
        f"{record['python_ms_per_window']:.2f} |",
        f"| browser / Python | {record['browser_vs_python']:.1f}x |",
    ]
    table = cpu_line(record["machine"]) + "\n\n" + "\n".join(rows) + "\n"
    (out / "table.md").write_text(table)
    print(table)
    return record


def main(argv=None):
    """``python -m tinyclap.bench.web --folder DIR [--out results/web]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="an exported folder with ONNX graphs")
    parser.add_argument("--out", default="results/web")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--labels", help="labels typed in the page (default: a label set)")
    args = parser.parse_args(argv)
    bench(args.folder, args.out, args.seconds, args.rounds, args.labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
