"""The torch-free runtime as an open-vocabulary classifier: text graph, open set, multi-label.

One tiny fixture: the tiny student with a random-weight text student beside it
(as tests/deploy/test_text_student.py builds it), exported with its ONNX
graphs, then adapted with prototype classes and calibrated (as
tests/deploy/test_adapt.py does). The runtime must give the full install's
scores and decisions.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from tests.helpers.text_student import CLASSES, export_text_folder
from tests.helpers.tiny import REPO
from tinyclap.data.label_sets import readable_label as full_readable_label
from tinyclap.data.synth_sounds import example_rng, render_example
from tinyclap.data.text_corpus import normalise as full_normalise
from tinyclap.deploy.adapt import adapt_export
from tinyclap.deploy.inference import ZeroShotAudioClassifier
from tinyclap.runtime import audio as rt_audio
from tinyclap.runtime import text as rt_text
from tinyclap.runtime.classifier import MissingTextEncoderError, RuntimeClassifier
from tinyclap.runtime.cli import main as runtime_main
from tinyclap.runtime.decisions import MissingCalibrationError
from tinyclap.students.text import embed_texts, load_text_student
from tinyclap.zeroshot.prompts import class_prompts

pytestmark = pytest.mark.numerics

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# free-form text labels of the same sounds: typed bare, the class names of the adapted
# folder take its prototypes (tinyclap.runtime.labels), so these are worded differently
FREE_FORM = ["a purring kitten", *(f"{c} nearby" for c in CLASSES)]
FREE = ["a purring kitten", "Door_Wood_Knock/knock", "rain", "siren wailing loudly far away"]
TEXTS = ["A Door   Creaking", "", "   ", "Café naïve ÜBER", "dog " * 40, "this is the sound of x"]
BLOCK = ("torch", "speechbrain", "hyperpyyaml", "torchaudio", "scipy", "librosa")


def _render(path, label, index, split):
    wav, _ = render_example(example_rng(7, split, index), label, 16000, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, 16000)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory, mini_teacher, tiny_student):
    """``{"text": exported folder with a text student, "adapted": adapted + calibrated, ...}``."""

    root = tmp_path_factory.mktemp("open_vocabulary")
    export_text_folder(root, mini_teacher, tiny_student)
    files, valid = [], {}
    for c, label in enumerate(CLASSES):
        for i in range(3):
            _render(root / "examples" / label / f"{i}.wav", label, c * 100 + i, 0)
            path = _render(root / "valid" / f"{c}_{i}.wav", label, c * 100 + i, 2)
            valid[path.stem] = {"wav": str(path), "label": label}
        for i in range(2):
            files.append(str(_render(root / "test" / f"{c}_{i}.wav", label, c * 100 + i, 1)))
    (root / "valid.json").write_text(json.dumps(valid))
    adapt_export(root / "text", root / "examples", root / "adapted", labels="dog barking",
                 calibrate=root / "valid.json", onnx=False)  # fmt: skip
    return {"root": root, "text": root / "text", "adapted": root / "adapted",
            "files": sorted(files),
            "text_student": root / "run" / "text_student" / "text_student.ckpt"}  # fmt: skip


def _full(folder):
    return ZeroShotAudioClassifier.from_hparams(source=str(folder), backend="pytorch")


def test_prompt_helpers_are_twins_of_the_full_install():
    names = ["door_wood_knock", "cafe/restaurant", " a_b / c_d ", "Dog", "x//y", ""]
    assert [rt_text.readable_label(n) for n in names] == [full_readable_label(n) for n in names]
    assert rt_text.class_prompts(names, "a {label} b") == class_prompts(
        [full_readable_label(n) for n in names], "a {label} b"
    )
    assert [rt_text.normalise(t) for t in TEXTS] == [full_normalise(t) for t in TEXTS]


def test_runtime_tokens_and_text_embeddings_equal_the_pytorch_student(folders):
    student, tokenizer, _ = load_text_student(folders["text_student"])
    encoder, why = RuntimeClassifier.text_encoder(folders["text"])
    assert why == "" and encoder.tokenizer.max_length == 16
    ids, mask = encoder.tokenizer(TEXTS)
    want_ids, want_mask = tokenizer(TEXTS)
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    assert np.array_equal(ids, want_ids.numpy()) and np.array_equal(mask, want_mask.numpy())
    assert mask.sum(1).tolist()[1:3] == [1, 1] and ids.shape[1] == 16  # empty: [unk]; truncated
    prompts = class_prompts(FREE) + TEXTS
    expected = embed_texts(student, tokenizer, prompts).numpy()
    encoder.batch_size = 4  # batches padded to other lengths give the same embeddings
    np.testing.assert_allclose(encoder(prompts), expected, atol=1e-5)


def test_free_form_scores_equal_the_full_install_with_torch_unimportable(folders):
    """A subprocess where importing torch fails embeds free-form labels and scores clips."""
    files = folders["files"]
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCK!r}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from tinyclap.runtime.audio import load_audio
        from tinyclap.runtime.classifier import RuntimeClassifier
        clf = RuntimeClassifier.from_folder({str(folders["text"])!r})
        clips = [load_audio(f, clf.sample_rate) for f in {files!r}]
        scores, names = clf.classify_clips(clips, {FREE!r})
        assert not any(m.split(".")[0] in ("torch", "speechbrain") for m in sys.modules)
        print(json.dumps({{"scores": scores.tolist(), "names": names}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout)
    reference = _full(folders["text"])
    want = reference.classify_files(files, FREE)[0].numpy()
    assert got["names"] == reference.labels_of(FREE) == FREE
    assert np.abs(np.array(got["scores"]) - want).max() < 1e-4
    assert np.ptp(want) > 0.05  # the labels really score differently


def test_free_form_labels_mix_with_tables_and_the_cli(folders, capsys):
    clf = RuntimeClassifier.from_folder(folders["text"])
    reference = _full(folders["text"])
    mixed = ["rain", "dog barking", "a purring kitten"]  # two in the synth table, one not
    _, text = clf.resolve_labels(mixed)
    np.testing.assert_allclose(text, reference.encode_text(mixed).numpy(), atol=1e-5)
    assert runtime_main(["classify", folders["files"][0], "--model", str(folders["text"]),
                         "--labels", "a purring kitten, rain", "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)[0]
    assert {t["label"] for t in record["top"]} == {"a purring kitten", "rain"}


def test_without_sentencepiece_or_graph_the_clear_error(folders, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import fails
    clf = RuntimeClassifier.from_folder(folders["text"])
    assert not clf.has_text_encoder
    with pytest.raises(MissingTextEncoderError, match="pip install sentencepiece"):
        clf.resolve_labels("a purring kitten")
    assert clf.resolve_labels("rain,siren")[0] == ["rain", "siren"]  # in the tables: fine
    monkeypatch.undo()
    folder = shutil.copytree(folders["text"], tmp_path / "no_graph")
    (folder / "onnx" / "text_encoder.onnx").unlink()
    with pytest.raises(MissingTextEncoderError, match="no text student graph"):
        RuntimeClassifier.from_folder(folder).resolve_labels("a purring kitten")


@pytest.mark.parametrize("name", ["onnx/text_encoder.onnx", "text_tokenizer.model",
                                  "open_set.json"])  # fmt: skip
def test_modified_files_are_refused(folders, tmp_path, name):
    folder = shutil.copytree(folders["adapted"], tmp_path / "copy")
    with open(folder / name, "ab") as f:
        f.write(b" ")
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        RuntimeClassifier.from_folder(folder)


def _clear_threshold(values, margin=1e-4):
    """The midpoint of the widest gap between the sorted ``values`` (not at the ends).

    The tiny random student's prototype scores all sit within 1e-5 of 1, so
    the end-to-end comparisons use thresholds far (> ``margin``) from every score:
    a float difference between two correct implementations cannot flip them.
    """
    values = np.sort(np.asarray(values, np.float64).ravel())
    gaps = np.diff(values)
    i = int(np.argmax(gaps))
    assert gaps[i] > 2 * margin, values
    return float((values[i] + values[i + 1]) / 2)


def test_decisions_on_the_same_scores_equal_the_full_install(folders):
    """The decision rules alone: the full install's scores through the runtime's rules."""
    from tinyclap.runtime.decisions import multi_label_decisions, open_set_decisions

    clf, full = RuntimeClassifier.from_folder(folders["adapted"]), _full(folders["adapted"])
    written = json.loads((folders["adapted"] / "open_set.json").read_text())
    assert clf.calibration == full.calibration == written
    wavs = [full.load_audio(f) for f in folders["files"]]
    for labels in ("adapted", FREE_FORM):  # prototypes; free-form text
        names = full.labels_of(labels)
        scores = full.classify_batch(wavs, labels)[0]
        best = np.sort(scores.max(-1).values.numpy())
        middle = float(best[len(best) // 2])  # rejects some clips, accepts others
        for threshold in (None, middle, 2.0):
            want = full.classify_open_set(wavs, labels, threshold=threshold)
            got = open_set_decisions(scores.numpy(), names, clf.calibration, threshold)
            assert got[2] == want[3] and got[1] == want[2].tolist()
        rejected = open_set_decisions(scores.numpy(), names, None, middle)[2]
        assert None in rejected and any(label is not None for label in rejected)
        all_scores = np.sort(scores.numpy().ravel())
        for thresholds in (None, float(all_scores[len(all_scores) // 2]), [0.5] * len(names)):
            want = full.classify_multi_label(wavs, labels, thresholds)
            got = multi_label_decisions(scores.numpy(), names, clf.calibration, thresholds)
            assert got[0].tolist() == want[1].tolist() and got[1] == want[2]


def test_open_set_and_multi_label_end_to_end_equal_the_full_install(folders):
    clf, full = RuntimeClassifier.from_folder(folders["adapted"]), _full(folders["adapted"])
    files, labels = folders["files"], FREE_FORM
    clips = [rt_audio.load_audio(f, clf.sample_rate) for f in files]
    wavs = [full.load_audio(f) for f in files]
    for spec in ("adapted", labels):
        got, want = clf.classify_open_set(clips, spec), full.classify_open_set(wavs, spec)
        assert np.abs(got[0] - want[0].numpy()).max() < 1e-4
    scores = want[0].numpy()
    reject = _clear_threshold(scores.max(-1))
    got = clf.classify_open_set(clips, labels, threshold=reject)
    assert got[3] == full.classify_open_set(wavs, labels, threshold=reject)[3]
    assert None in got[3] and any(label is not None for label in got[3])
    calibrated = clf.classify_open_set(clips, labels)[3]  # far from every free-form score
    assert calibrated == full.classify_open_set(wavs, labels)[3]
    present = _clear_threshold(scores)
    got = clf.classify_multi_label(clips, labels, present)
    want = full.classify_multi_label(wavs, labels, present)
    assert got[1].tolist() == want[1].tolist() and got[2] == want[2]
    assert 0 < got[1].sum() < got[1].size


def test_runtime_cli_decisions_equal_tinyclap_classify(folders, capsys):
    from tinyclap.cli.main import main as full_main

    folder, files = str(folders["adapted"]), folders["files"]
    labels = ",".join(FREE_FORM)
    scores = _full(folder).classify_files(files, labels)[0].numpy()
    for extra in ([], ["--threshold", str(_clear_threshold(scores.max(-1)))]):
        args = ["--labels", labels, "--model", folder, "--open_set", "--multi_label", "--json"]
        assert runtime_main(["classify", *files, *args, *extra]) == 0
        got = json.loads(capsys.readouterr().out)
        assert full_main(["classify", *files, *args, *extra]) == 0
        want = json.loads(capsys.readouterr().out)
        decisions = [(r["open_set"], r["labels"]) for r in got]
        assert decisions == [(r["open_set"], r["labels"]) for r in want]
    assert {d[0] for d in decisions} - {None} and None in {d[0] for d in decisions}
    assert runtime_main(["classify", files[0], "--labels", "adapted", "--model", folder,
                         "--open_set", "--multi_label", "--threshold", "2.0"]) == 0  # fmt: skip
    assert "[none of these] [{}]" in capsys.readouterr().out
    assert runtime_main(["classify", files[0], "--labels", "adapted", "--model", folder,
                         "--threshold", "0.5"]) == 2  # fmt: skip
    assert "only applies with --open_set" in capsys.readouterr().err
    no_calibration = RuntimeClassifier.from_folder(folders["text"])
    with pytest.raises(MissingCalibrationError, match="tinyclap calibrate"):
        no_calibration.classify_files(files[:1], "us8k", open_set=True)
    assert runtime_main(["classify", files[0], "--labels", "us8k", "--model",
                         str(folders["text"]), "--multi_label"]) == 1  # fmt: skip
    assert "no multi-label calibration" in capsys.readouterr().err
