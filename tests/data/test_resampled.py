"""Resampling once at preparation: exact samples, idempotent, keyed on the source, in the stage."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from tinyclap.audio.io import load_audio
from tinyclap.data.resampled import resample_manifests, resample_report
from tinyclap.training.data import data_summary, prepare_data

RATE = 16000
# id -> (extension, rate, subtype, channels); "ready" is already a mono WAV at RATE
CLIPS = {
    "flac22": ("flac", 22050, "PCM_16", 1),
    "ogg32": ("ogg", 32000, "VORBIS", 1),
    "wav48_24bit_stereo": ("wav", 48000, "PCM_24", 2),
    "ready": ("wav", RATE, "PCM_16", 1),
}


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    entries = {}
    for clip_id, (ext, rate, subtype, channels) in CLIPS.items():
        wav = 0.3 * rng.standard_normal((int(0.3 * rate), channels)).astype(np.float32)
        path = tmp_path / "audio" / f"{clip_id}.{ext}"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), wav, rate, subtype=subtype)
        entries[clip_id] = {"wav": str(path), "label": "x"}
    manifest = tmp_path / "train.json"
    manifest.write_text(json.dumps(entries))
    return {"train": str(manifest)}


def _resample(corpus, tmp_path):
    out = resample_manifests(corpus, RATE, tmp_path / "copies", tmp_path / "manifests",
                             progressbar=False)  # fmt: skip
    return json.loads(open(out["train"]).read()), resample_report(tmp_path / "manifests")


def test_copies_hold_the_samples_epochs_would_read(corpus, tmp_path):
    original = json.loads(open(corpus["train"]).read())
    resampled, report = _resample(corpus, tmp_path)
    assert report["splits"]["train"] == {"written": 3, "up_to_date": 0, "kept": 1}
    assert resampled["ready"]["wav"] == original["ready"]["wav"]  # used as it is
    for clip_id, entry in resampled.items():
        assert entry["label"] == "x"
        info = sf.info(entry["wav"])
        assert (info.format, info.samplerate, info.channels) == ("WAV", RATE, 1)
        # FLOAT copies: exactly what load_audio gives from the source, no resampling left
        assert torch.equal(load_audio(entry["wav"]), load_audio(original[clip_id]["wav"], RATE))


def test_second_run_writes_nothing_and_a_changed_source_gets_a_new_copy(corpus, tmp_path):
    first, _ = _resample(corpus, tmp_path)
    stamps = {k: os.stat(e["wav"]).st_mtime_ns for k, e in first.items()}
    again, report = _resample(corpus, tmp_path)
    assert again == first
    assert report["splits"]["train"] == {"written": 0, "up_to_date": 3, "kept": 1}
    assert {k: os.stat(e["wav"]).st_mtime_ns for k, e in again.items()} == stamps
    source = json.loads(open(corpus["train"]).read())["flac22"]["wav"]
    sf.write(source, np.zeros(1000, np.float32), 22050, subtype="PCM_16")  # edited
    third, report = _resample(corpus, tmp_path)
    assert report["splits"]["train"] == {"written": 1, "up_to_date": 2, "kept": 1}
    assert third["flac22"]["wav"] != first["flac22"]["wav"]
    assert len(load_audio(third["flac22"]["wav"])) == round(1000 * RATE / 22050)
    assert not list((tmp_path / "copies").rglob("*.tmp"))


def test_stage_option_reads_the_copies_and_reports_counts(corpus, tmp_path):
    hparams = {
        "prepare": lambda: corpus,
        "resample_to_teacher_rate": True,
        "sample_rate": RATE,
        "output_folder": str(tmp_path / "run"),
    }
    manifests = prepare_data(hparams, ("train",))
    assert manifests["train"] == str(tmp_path / "run" / "resampled_manifests" / "train.json")
    wavs = [e["wav"] for e in json.loads(open(manifests["train"]).read()).values()]
    copies = [w for w in wavs if str(tmp_path / "run" / f"resampled_{RATE}Hz") in w]
    assert len(copies) == 3  # no save_folder: beside the run's outputs
    summary = data_summary(hparams)
    assert summary["resampled"]["splits"]["train"]["written"] == 3
    # off (the default): the prepared manifests as they are
    assert prepare_data({**hparams, "resample_to_teacher_rate": False}, ("train",)) == corpus
