"""One exported folder for the web tests, its static site, and a local server for the browser.

The folder is the tiny random student with a random-weight text student (as
tests/runtime/test_open_vocabulary.py builds it), exported with its ONNX graphs,
adapted with prototype classes and calibrated (open_set.json), so the page has
every part: label tables, free-form labels, open-set and multi-label thresholds.
"""

import functools
import http.server
import json
import shutil
import subprocess
import threading

import numpy as np
import pytest
import soundfile as sf

from tests.helpers.text_student import CLASSES, export_text_folder
from tests.helpers.tiny import REPO
from tinyclap.data.synth_sounds import example_rng, render_example


def render(path, label, index, split, seconds=1.0, rate=16000):
    """A Synth clip of ``label`` written to ``path`` (16-bit WAV)."""
    wav, _ = render_example(example_rng(7, split, index), label, rate, seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="package")
def web_folder(tmp_path_factory, mini_teacher, tiny_student):
    """``{"root", "folder": adapted + calibrated export with ONNX graphs, "files": wavs}``."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from tinyclap.deploy.adapt import adapt_export

    root = tmp_path_factory.mktemp("web")
    export_text_folder(root, mini_teacher, tiny_student)
    valid = {}
    for c, label in enumerate(CLASSES):
        for i in range(2):
            render(root / "examples" / label / f"{i}.wav", label, c * 100 + i, 0)
            path = render(root / "valid" / f"{c}_{i}.wav", label, c * 100 + i, 2)
            valid[path.stem] = {"wav": str(path), "label": label}
    (root / "valid.json").write_text(json.dumps(valid))
    adapt_export(root / "text", root / "examples", root / "adapted", labels="dog barking",
                 calibrate=root / "valid.json")  # fmt: skip
    files = [render(root / "test" / f"{label}.wav", label, 900 + c, 1, seconds=2.6, rate=22050)
             for c, label in enumerate(CLASSES)]  # fmt: skip
    short = render(root / "test" / "short.wav", "rain", 950, 1, seconds=0.6)
    return {
        "root": root,
        "folder": root / "adapted",
        "plain": root / "text",
        "files": files,
        "short": short,
    }


@pytest.fixture(scope="package")
def web_site(web_folder):
    """The built site of the adapted folder: ``{"out", "files", "bytes"}``."""
    from tinyclap.deploy.web.ortweb import OrtWebError
    from tinyclap.deploy.web.site import build_site

    try:
        return build_site(web_folder["folder"])
    except OrtWebError as err:  # no npm / registry on this machine
        pytest.skip(f"onnxruntime-web unavailable: {err}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="package")
def server(web_site, web_folder):
    """``http://127.0.0.1:PORT/``: the site's folder served, the test wavs under /audio/."""
    root = web_folder["root"]
    audio = root / "adapted" / "web" / "audio"
    audio.mkdir(exist_ok=True)
    for path in [*web_folder["files"], web_folder["short"]]:
        (audio / path.name).write_bytes(path.read_bytes())
    (audio / "not_audio.wav").write_text("this is not a wav file")
    handler = functools.partial(_Quiet, directory=str(root / "adapted" / "web"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def python_scores(folder, files, labels):
    """``(names, scores [N, C])`` of the torch-free runtime on ``files``."""
    from tinyclap.runtime.audio import load_audio
    from tinyclap.runtime.classifier import RuntimeClassifier

    clf = RuntimeClassifier.from_folder(folder)
    clips = [load_audio(f, clf.sample_rate) for f in files]
    scores, names = clf.classify_clips(clips, labels)
    return names, np.asarray(scores, np.float64)


STATIC = REPO / "tinyclap" / "deploy" / "web" / "static"


def run_node(script, payload):
    """Run an ES-module ``script`` under node with ``payload`` as JSON on stdin; its JSON out.

    The script sees ``STATIC`` (the page's modules folder, a file URL) and ``input``.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    prelude = (f"const STATIC = {json.dumps(STATIC.as_uri())};\n"
               "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n")  # fmt: skip
    source = prelude.replace("require('fs')", "(await import('node:fs')).default") + script
    run = subprocess.run([node, "--input-type=module", "-e", source], input=json.dumps(payload),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)
