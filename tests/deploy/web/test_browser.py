"""The built page in headless Chromium: scores equal the Python runtime's; bad input is told.

The site of the package's exported folder is served from 127.0.0.1; the page
classifies wavs given as ``?audio=URL``, through the file input and through
Chromium's fake microphone (a wav file), and must agree with
:class:`tinyclap.runtime.RuntimeClassifier` on the same files. Every test also
asserts that nothing reached the console as an error.

Tolerance on scores, 1e-4: the JS frontend equals the runtime's log-mels to ~1e-5 dB
(test_js_units), and onnxruntime-web's wasm kernels sum the float32 convolutions
in another order than the native ones (relative differences ~1e-6 per layer);
cosines of unit vectors then move by well under 1e-4 (measured: ~1e-7).
"""

import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from tests.deploy.web.conftest import python_scores
from tinyclap.deploy.web.browser import chromium, console_errors, ensure_chromium

WHY = ensure_chromium()
pytestmark = pytest.mark.skipif(bool(WHY), reason=f"no headless browser: {WHY}")
# text labels: the adapted classes' own names would take their prototypes (tested below)
LABELS = ["rain falling", "a siren nearby", "bells ringing", "a purring kitten", "clock ticking"]
TOL = 1e-4


def wait(driver, condition, timeout=60):
    """Poll the page's ``condition`` (a JS expression) until true; return its value."""
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(f"return {condition}")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {condition}: {page_text(driver)}")


def page_text(driver):
    return driver.execute_script(
        "return ['status', 'error'].map(id => document.getElementById(id).textContent)"
    )


def page_scores(driver):
    """``{label: score}`` of the page's #scores list, and the labels in displayed order."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#scores li')].map(l => [l.dataset.label, "
        "Number(l.dataset.score)])"
    )
    return dict(rows), [r[0] for r in rows]


def load(driver, server, query):
    driver.get(server + "?" + query)
    wait(driver, "window.tinyclap && window.tinyclap.done")


def test_audio_url_scores_equal_the_python_runtime(server, web_folder):
    files = web_folder["files"]
    names, want = python_scores(web_folder["folder"], files, LABELS)
    with chromium() as driver:
        for path, row in zip(files, want):
            load(driver, server, f"audio=audio/{path.name}&labels={','.join(LABELS)}")
            assert driver.find_element("id", "error").text == ""
            got, order = page_scores(driver)
            assert order == [names[i] for i in np.argsort(-row, kind="stable")]
            assert np.abs(np.array([got[n] for n in names]) - row).max() < TOL
            assert driver.find_element("id", "top-label").text == names[int(row.argmax())]
            # the timeline: the windows of classify --timeline (hop half a window)
            timeline = driver.execute_script("return window.tinyclap.last.timeline.length")
            assert timeline == len(np.arange(0, 2.6 * 16000 - 16000 + 1, 8000)) + 1
        assert console_errors(driver) == []
    sorted_rows = np.sort(want, axis=1)
    assert (sorted_rows[:, -1] - sorted_rows[:, -2]).min() > 10 * TOL  # the order is decided


def test_names_of_adapted_classes_take_their_prototypes(server, web_folder):
    """As in the runtime (tinyclap.runtime.labels): a typed class name uses its prototype."""
    from tinyclap.runtime.classifier import RuntimeClassifier

    path = web_folder["files"][0]
    names = [str(n) for n in RuntimeClassifier.from_folder(web_folder["folder"]).tables[
        "adapted"]["labels"][:3]]  # fmt: skip
    plan = RuntimeClassifier.from_folder(web_folder["folder"]).label_plan(",".join(names))
    assert plan.prototypes, "the fixture's adapted set has prototype classes"
    _, want = python_scores(web_folder["folder"], [path], ",".join(names))
    with chromium() as driver:
        load(driver, server, f"audio=audio/{path.name}&labels={','.join(names)}")
        assert driver.find_element("id", "error").text == ""
        got, _ = page_scores(driver)
        assert np.abs(np.array([got[n] for n in names]) - want[0]).max() < TOL
        assert console_errors(driver) == []


def test_file_input_and_open_set_decisions(server, web_folder):
    from tinyclap.runtime.classifier import RuntimeClassifier
    from tinyclap.runtime.decisions import multi_label_decisions, open_set_decisions

    path = web_folder["files"][2]
    clf = RuntimeClassifier.from_folder(web_folder["folder"])
    names, scores = python_scores(web_folder["folder"], [path], "adapted")
    with chromium() as driver:
        load(driver, server, "labels=adapted")
        driver.find_element("id", "file").send_keys(str(path))
        wait(driver, "window.tinyclap.last")
        got, _ = page_scores(driver)
        assert np.abs(np.array([got[n] for n in names]) - scores[0]).max() < TOL
        decisions = driver.find_element("id", "decisions")
        want_open = open_set_decisions(scores, names, clf.calibration)[2][0]
        want_multi = multi_label_decisions(scores, names, clf.calibration)[1][0]
        # the calibrated thresholds of this random student sit within 1e-5 of its scores:
        # compare the decisions where no score is within the tolerance of a threshold
        limits = [
            clf.calibration["reject_threshold"],
            *clf.calibration["label_thresholds"].values(),
        ]
        if np.abs(scores[0][:, None] - np.array(limits)[None]).min() > TOL:
            assert decisions.get_attribute("data-open-set") == (want_open or "none of these")
            assert decisions.get_attribute("data-multi-label") == str(want_multi).replace("'", '"')
        assert "Open set:" in decisions.text and "Multi-label:" in decisions.text
        assert console_errors(driver) == []


def test_microphone_through_chromium_fake_capture(server, web_folder, tmp_path):
    """A steady tone as the microphone: every live window must give the runtime's winner."""
    rate, seconds = 48000, 3.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, rate, subtype="PCM_16")
    labels = "us8k"
    names, want = python_scores(web_folder["folder"], [tmp_path / "tone.wav"], labels)
    top = names[int(want[0].argmax())]
    with chromium(fake_audio=tmp_path / "tone.wav") as driver:
        load(driver, server, f"labels={labels}")
        driver.find_element("id", "listen").click()
        wait(driver, "window.tinyclap.live.length >= 3", timeout=30)
        live = driver.execute_script("return window.tinyclap.live.map(r => r.scores)")
        rows = driver.find_elements("css selector", "#timeline .row")
        assert len(rows) >= 3
        # a steady tone: any 1 s window has the same spectrum, up to Chromium's capture path
        winners = [names[int(np.argmax(s))] for s in live[1:]]
        assert winners == [top] * len(winners), (winners, top)
        assert driver.find_element("id", "error").text == ""
        assert console_errors(driver) == []


def test_bad_input_is_a_clear_message_on_the_page(server, web_site, web_folder):
    broken = web_folder["folder"] / "web" / "broken"
    shutil.copytree(web_folder["folder"] / "web" / "model", broken, dirs_exist_ok=True)
    (broken / "student.onnx").unlink()
    cases = [
        (f"audio=audio/not_audio.wav&labels={LABELS[0]}", "not an audio file"),
        (f"audio=audio/{web_folder['short'].name}&labels=,, ,", "no labels given"),
        ("audio=audio/missing.wav&labels=rain", "HTTP 404"),
        ("model=broken/&labels=rain", "no ONNX graphs"),
    ]
    with chromium() as driver:
        for query, message in cases:
            load(driver, server, query)
            assert message in driver.find_element("id", "error").text, query
            assert driver.find_element("id", "top-label").text == "–"
        errors = [e for e in console_errors(driver) if "Failed to load resource" not in e]
        assert errors == []  # the 404s above are the browser's network log, not the page's
    with chromium(deny_microphone=True) as driver:
        load(driver, server, "labels=rain")
        driver.find_element("id", "listen").click()
        wait(driver, "document.getElementById('error').textContent")
        assert "microphone access was denied" in driver.find_element("id", "error").text
        assert console_errors(driver) == []
