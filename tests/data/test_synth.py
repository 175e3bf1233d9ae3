"""Tests of the procedural Synth dataset: clips, captions, preparation, skipping."""

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from tinyclap.data import synth_sounds as synth
from tinyclap.data.manifests import mark_prepared, skip_if_prepared, write_manifest
from tinyclap.prepare.synth import prepare_synth

CLASSES = synth.SYNTH_CLASSES

# Word stems of which every caption of the class must contain at least one.
CLASS_KEYWORDS = {
    "siren": ("siren",),
    "rain": ("rain",),
    "engine idling": ("engine",),
    "birds chirping": ("bird",),
    "dog barking": ("dog", "bark"),
    "clock ticking": ("clock", "tick"),
    "church bell": ("bell",),
    "knocking": ("knock",),
    "applause": ("applau", "clap"),
    "wind": ("wind",),
    "alarm beeping": ("alarm", "beep"),
    "plucked string": ("string", "pluck"),
    "footsteps": ("steps",),
    "water dripping": ("drip", "water"),
    "crackling fire": ("fire", "crackl", "flame"),
    "heartbeat": ("heart",),
    "phone ringing": ("phone",),
    "whistle": ("whistl",),
    "drum roll": ("drum",),
    "helicopter": ("helicopter",),
    "car horn": ("horn", "honk"),
    "thunder": ("thunder",),
    "bees buzzing": ("bee", "buzz"),
    "cat meowing": ("cat", "kitten", "meow", "mew"),
}

SMALL = {"n_train": 2, "n_valid": 1, "n_test": 2, "duration": 0.5}


def _mentions(caption, label):
    """True when ``caption`` contains a keyword of ``label``."""
    return any(stem in caption for stem in CLASS_KEYWORDS[label])


def _read_manifests(manifest_paths):
    """Load every split's manifest."""
    return {
        split: json.loads(Path(path).read_text("utf-8")) for split, path in manifest_paths.items()
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small preparation (0.5 s clips) with mixtures in train and valid."""
    root = tmp_path_factory.mktemp("synth")
    manifest_paths = prepare_synth(
        root / "data", root / "save", mixture_prob=0.5, seed=7, num_workers=0, **SMALL
    )
    return root, manifest_paths


# --------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------


def test_class_list_is_large_unique_and_readable():
    assert len(CLASSES) >= 16
    assert len(set(CLASSES)) == len(CLASSES)
    assert set(CLASS_KEYWORDS) == set(CLASSES)
    assert all(name == name.strip().lower() and name for name in CLASSES)


@pytest.mark.parametrize("sample_rate, duration", [(16000, 2.0), (8000, 0.37)])
def test_generate_clip_length_dtype_and_range(sample_rate, duration):
    expected_length = round(sample_rate * duration)
    for index, label in enumerate(CLASSES):
        clip = synth.generate_clip(label, np.random.default_rng(index), sample_rate, duration)
        assert clip.shape == (expected_length,), label
        assert clip.dtype == np.float32, label
        assert np.all(np.isfinite(clip)), label
        assert 0.0 < np.max(np.abs(clip)) <= 1.0, label


def test_generate_clip_rejects_unknown_label():
    with pytest.raises(ValueError, match="unknown synth class"):
        synth.generate_clip("lawnmower", np.random.default_rng(0))


def test_render_example_mixture_noise_and_peak():
    for index, label in enumerate(CLASSES):
        second = CLASSES[(index + 5) % len(CLASSES)]
        rng = synth.example_rng(3, 0, index)
        wav, labels = synth.render_example(rng, label, 16000, 1.0, second_label=second)
        assert labels == [label, second]
        assert wav.shape == (16000,) and wav.dtype == np.float32
        assert np.all(np.isfinite(wav))
        peak = np.max(np.abs(wav))
        assert synth.PEAK_RANGE[0] - 1e-6 <= peak <= synth.PEAK_RANGE[1] + 1e-6
        # The noise bed leaves no digitally silent stretch.
        assert np.min(np.abs(wav[:1600])) < peak and np.std(wav[:1600]) > 0
    with pytest.raises(ValueError):
        synth.render_example(np.random.default_rng(0), "rain", second_label="rain")


def test_same_seed_is_bit_identical_and_seeds_differ():
    for index, label in enumerate(CLASSES):
        first = synth.sample_example(synth.example_rng(11, 1, index), label, 16000, 1.0, 0.5)
        again = synth.sample_example(synth.example_rng(11, 1, index), label, 16000, 1.0, 0.5)
        other = synth.sample_example(synth.example_rng(12, 1, index), label, 16000, 1.0, 0.5)
        assert np.array_equal(first[0], again[0]) and first[1:] == again[1:]
        assert not np.array_equal(first[0], other[0])


# --------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------


def test_captions_vary_and_mention_their_labels():
    rng = np.random.default_rng(0)
    captions = []
    for _ in range(10):
        for label in CLASSES:
            caption = synth.make_caption([label], rng)
            assert _mentions(caption, label), (label, caption)
            captions.append(caption)
    assert len(set(captions)) >= 0.8 * len(captions)
    dog_captions = {synth.make_caption("dog barking", rng) for _ in range(40)}
    assert len(dog_captions) >= 20


def test_mixture_captions_mention_both_classes():
    rng = np.random.default_rng(1)
    for index, first in enumerate(CLASSES):
        for offset in (1, 7, 13):
            second = CLASSES[(index + offset) % len(CLASSES)]
            caption = synth.make_caption([first, second], rng)
            assert _mentions(caption, first) and _mentions(caption, second), caption


def test_captions_never_use_the_zero_shot_prompt():
    rng = np.random.default_rng(2)
    for label in CLASSES:
        for _ in range(30):
            caption = synth.make_caption([label], rng)
            assert "this is the sound of" not in caption
            assert caption == " ".join(caption.split()) and caption.islower()


# --------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------


def test_manifest_counts_files_and_fields(prepared):
    _, manifest_paths = prepared
    manifests = _read_manifests(manifest_paths)
    per_class = {"train": SMALL["n_train"], "valid": SMALL["n_valid"]}
    per_class["test"] = SMALL["n_test"]
    for split, entries in manifests.items():
        assert len(entries) == per_class[split] * len(CLASSES)
        label_counts = Counter(entry["label"] for entry in entries.values())
        assert label_counts == {label: per_class[split] for label in CLASSES}
        for example_id, entry in entries.items():
            assert example_id.startswith(f"synth_{split}_")
            assert set(entry) == {"wav", "duration", "label", "labels", "caption"}
            assert os.path.isabs(entry["wav"]) and entry["labels"][0] == entry["label"]
            audio, rate = sf.read(entry["wav"], dtype="float32")
            assert rate == 16000 and len(audio) == 8000
            assert entry["duration"] == pytest.approx(0.5)
            assert np.max(np.abs(audio)) <= 1.0
    assert all(len(entry["labels"]) == 1 for entry in manifests["test"].values())


def test_full_mixture_probability_mixes_train_and_valid_only(tmp_path):
    manifest_paths = prepare_synth(
        tmp_path / "data",
        tmp_path / "save",
        n_train=1,
        n_valid=1,
        n_test=1,
        duration=0.25,
        mixture_prob=1.0,
        num_workers=0,
    )
    manifests = _read_manifests(manifest_paths)
    for split in ("train", "valid"):
        for entry in manifests[split].values():
            first, second = entry["labels"]
            assert first != second
            assert _mentions(entry["caption"], first), entry["caption"]
            assert _mentions(entry["caption"], second), entry["caption"]
    assert all(len(entry["labels"]) == 1 for entry in manifests["test"].values())
    captions = [entry["caption"] for entry in manifests["train"].values()]
    assert len(set(captions)) >= 0.8 * len(captions)


def test_parallel_preparation_gives_identical_files(tmp_path, prepared):
    _, manifest_paths = prepared
    parallel_paths = prepare_synth(
        tmp_path / "data",
        tmp_path / "save",
        mixture_prob=0.5,
        seed=7,
        num_workers=2,
        **SMALL,
    )
    serial, parallel = _read_manifests(manifest_paths), _read_manifests(parallel_paths)
    for split in serial:
        assert list(serial[split]) == list(parallel[split])
        for example_id, entry in serial[split].items():
            twin = parallel[split][example_id]
            assert (entry["caption"], entry["labels"]) == (
                twin["caption"],
                twin["labels"],
            )
            assert Path(entry["wav"]).read_bytes() == Path(twin["wav"]).read_bytes()


def test_second_call_skips_and_changed_options_regenerate(tmp_path):
    def run(**overrides):
        options = {"n_train": 1, "n_valid": 1, "n_test": 1, "duration": 0.25}
        options.update(overrides)
        return prepare_synth(tmp_path / "data", tmp_path / "save", num_workers=0, **options)

    manifest_paths = run()
    train_manifest = Path(manifest_paths["train"])
    first_wav = Path(next(iter(json.loads(train_manifest.read_text()).values()))["wav"])
    stamps = (train_manifest.stat().st_mtime_ns, first_wav.stat().st_mtime_ns)
    before = train_manifest.read_text()

    assert run() == manifest_paths
    assert (train_manifest.stat().st_mtime_ns, first_wav.stat().st_mtime_ns) == stamps

    run(seed=99)
    assert train_manifest.read_text() != before
    assert first_wav.stat().st_mtime_ns != stamps[1]

    run(seed=99, n_train=2)
    entries = json.loads(train_manifest.read_text())
    assert len(entries) == 2 * len(CLASSES)
    assert len(list((tmp_path / "data" / "train").glob("*.wav"))) == len(entries)


def test_deleted_clip_triggers_regeneration(tmp_path):
    options = {"n_train": 1, "n_valid": 1, "n_test": 1, "duration": 0.25}
    manifest_paths = prepare_synth(tmp_path / "data", tmp_path / "save", num_workers=0, **options)
    entries = json.loads(Path(manifest_paths["test"]).read_text())
    missing = Path(next(iter(entries.values()))["wav"])
    missing.unlink()
    prepare_synth(tmp_path / "data", tmp_path / "save", num_workers=0, **options)
    assert missing.is_file()


def test_prepare_utils_round_trip(tmp_path):
    options = {"seed": 1, "sizes": (2, 3), "folder": tmp_path}
    assert not skip_if_prepared(tmp_path, options, ["a.json"])
    write_manifest(tmp_path / "a.json", {"x": {"wav": "/x.wav", "duration": 1.0}})
    assert not skip_if_prepared(tmp_path, options, ["a.json"])
    mark_prepared(tmp_path, options)
    assert skip_if_prepared(tmp_path, options, ["a.json"])
    assert skip_if_prepared(tmp_path, {**options, "sizes": [2, 3]}, ["a.json"])
    assert not skip_if_prepared(tmp_path, {**options, "seed": 2}, ["a.json"])
    assert not skip_if_prepared(tmp_path, options, ["a.json", "b.json"])
    (tmp_path / "prepare_options.json").write_text("{not json")
    assert not skip_if_prepared(tmp_path, options, ["a.json"])
    assert json.loads((tmp_path / "a.json").read_text())["x"]["duration"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json",
        "prepare_options.json",
    ]


# --------------------------------------------------------------------------
# Separability
# --------------------------------------------------------------------------


def _mel_filterbank(sample_rate, n_fft, n_mels):
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)``."""
    mel_max = 2595 * np.log10(1 + sample_rate / 2 / 700)
    edges = 700 * (10 ** (np.linspace(0, mel_max, n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0, None)


def _clip_features(wav, filterbank):
    """Per-band mean, std and mean absolute change of a 40 dB-floored log-mel."""
    _, _, stft = signal.stft(wav, fs=16000, nperseg=512, noverlap=352)
    mel = filterbank @ np.abs(stft) ** 2
    log_mel = np.log(np.maximum(mel, mel.max() * 1e-4))
    change = np.abs(np.diff(log_mel, axis=1)).mean(axis=1)
    return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1), change])


def test_classes_are_separable_by_nearest_centroid():
    n_per_class, n_fit = 10, 6
    filterbank = _mel_filterbank(16000, 512, 64)
    features, targets, is_fit = [], [], []
    for class_index, label in enumerate(CLASSES):
        for index in range(n_per_class):
            rng = synth.example_rng(2024, 0, class_index * n_per_class + index)
            wav, _ = synth.render_example(rng, label, 16000, 2.0)
            features.append(_clip_features(wav, filterbank))
            targets.append(class_index)
            is_fit.append(index < n_fit)
    features, targets, is_fit = map(np.array, (features, targets, is_fit))
    mean, std = features[is_fit].mean(0), features[is_fit].std(0) + 1e-6
    standard = (features - mean) / std
    centroids = np.stack([standard[is_fit & (targets == k)].mean(0) for k in range(len(CLASSES))])
    held_out = standard[~is_fit]
    distances = ((held_out[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = np.mean(distances.argmin(1) == targets[~is_fit])
    assert accuracy >= 0.6, f"nearest-centroid accuracy {accuracy:.2f}"
