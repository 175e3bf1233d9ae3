"""Tiny dataset trees in the exact official layouts, with the real file quirks.

Used by ``tests/test_datasets.py``. Every clip is a short sine tone of
amplitude :data:`AMPLITUDE` written with soundfile in the format the real
dataset uses (ESC-50: 44.1 kHz mono 16-bit; UrbanSound8K: a mix of rates,
channels and sample formats; TUT17: 44.1 kHz stereo 24-bit), so tests can
check that every file decodes to the right length and level.
"""

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from tinyclap.data.label_sets import ESC50_CLASSES, TUT17_CLASSES, US8K_CLASSES

AMPLITUDE = 0.5
ESC10 = {"dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "clock_tick",
         "sneezing", "helicopter", "chainsaw"}  # fmt: skip
# (sample rate, channels, soundfile subtype): the mix found in UrbanSound8K
US8K_FORMATS = [
    (44100, 2, "PCM_16"), (48000, 2, "PCM_24"), (96000, 2, "PCM_24"), (22050, 1, "PCM_U8"),
    (11025, 1, "PCM_16"), (8000, 1, "PCM_U8"), (16000, 1, "FLOAT"), (32000, 2, "FLOAT"),
    (24000, 1, "PCM_24"), (44100, 1, "PCM_16"), (48000, 1, "PCM_U8"), (96000, 1, "PCM_16"),
]  # fmt: skip


def write_tone(path, seconds, sample_rate=16000, channels=1, subtype="PCM_16", freq=440.0):
    """Write a sine tone of amplitude ``AMPLITUDE``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    tone = AMPLITUDE * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def build_esc50(root):
    """``root/ESC-50-master``: one 0.3 s clip per class (50), folds 1-5 in turn."""
    base = Path(root) / "ESC-50-master"
    rows = []
    for target, category in enumerate(ESC50_CLASSES):
        fold, src, take = target % 5 + 1, str(100032 + 7 * target), "ABC"[target % 3]
        filename = f"{fold}-{src}-{take}-{target}.wav"
        write_tone(base / "audio" / filename, 0.3, 44100, 1, "PCM_16", 200 + 10 * target)
        rows.append([filename, fold, target, category, category in ESC10, src, take])
    header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    _write_csv(base / "meta" / "esc50.csv", header, rows)
    return base


def build_us8k(root):
    """``root/UrbanSound8K``: two clips per class over folds 1-10, mixed file formats.

    Returns the tree and ``{slice_file_name: (rate, channels, subtype, seconds)}``.
    """
    base = Path(root) / "UrbanSound8K"
    rows, formats = [], {}
    for index in range(2 * len(US8K_CLASSES)):
        class_id = index % len(US8K_CLASSES)
        fold, fs_id = index % 10 + 1, 100000 + 37 * index
        rate, channels, subtype = US8K_FORMATS[index % len(US8K_FORMATS)]
        seconds = 0.2 + 0.05 * (index % 4)
        name = f"{fs_id}-{class_id}-{index % 2}-{index}.wav"
        write_tone(base / "audio" / f"fold{fold}" / name, seconds, rate, channels, subtype)
        formats[name] = (rate, channels, subtype, seconds)
        start = 1.5 * index
        rows.append([name, fs_id, start, start + seconds, 1 + index % 2, fold, class_id,
                     US8K_CLASSES[class_id]])  # fmt: skip
    header = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    _write_csv(base / "metadata" / "UrbanSound8K.csv", header, rows)
    return base, formats


def _write_lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


def build_tut17(root, development=True, evaluation=True, eval_meta_labels=True):
    """TUT17 releases: development (2 clips per scene, folds 1-4) and evaluation (1 per scene).

    The development release has ``meta.txt`` and ``evaluation_setup/fold*_{train,
    evaluate,test}.txt``; the evaluation release ``meta.txt`` (with labels when
    ``eval_meta_labels``, else file names only) plus ``evaluation_setup/test.txt``
    and ``evaluate.txt``. Returns ``{relative dev path: fold}``.
    """
    root = Path(root)
    folds = {}
    if development:
        dev = root / "TUT-acoustic-scenes-2017-development"
        meta = []
        for index in range(2 * len(TUT17_CLASSES)):
            scene = TUT17_CLASSES[index % len(TUT17_CLASSES)]
            recording = f"{scene[0]}{index:03d}"
            relative = f"audio/{recording}_{10 * index}_{10 * index + 10}.wav"
            write_tone(dev / relative, 0.3, 44100, 2, "PCM_24")
            meta.append([relative, scene, recording])
            folds[relative] = index % 4 + 1
        _write_lines(dev / "meta.txt", meta)
        setup = dev / "evaluation_setup"
        for k in range(1, 5):
            _write_lines(setup / f"fold{k}_train.txt", [r[:2] for r in meta if folds[r[0]] != k])
            _write_lines(setup / f"fold{k}_evaluate.txt", [r[:2] for r in meta if folds[r[0]] == k])
            _write_lines(setup / f"fold{k}_test.txt", [r[:1] for r in meta if folds[r[0]] == k])
    if evaluation:
        base = root / "TUT-acoustic-scenes-2017-evaluation"
        rows = []
        for index, scene in enumerate(TUT17_CLASSES, start=1):
            relative = f"audio/{index}.wav"
            write_tone(base / relative, 0.3, 44100, 2, "PCM_24")
            rows.append([relative, scene])
        _write_lines(base / "meta.txt", rows if eval_meta_labels else [r[:1] for r in rows])
        _write_lines(base / "evaluation_setup" / "test.txt", [r[:1] for r in rows])
        _write_lines(base / "evaluation_setup" / "evaluate.txt", rows)
    return folds


def build_audiocaps(root, missing=("yt_train_3", "yt_test_1")):
    """AudioCaps csvs (train: 4 clips x 1 caption; val, test: 2 clips x 5) and audio.

    Clips whose youtube id is in ``missing`` have no audio file (as when a
    YouTube video is gone).
    """
    root = Path(root)
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    audiocap_id = 1000
    for name, n_clips, n_captions in (("train", 4, 1), ("val", 2, 5), ("test", 2, 5)):
        rows = []
        for clip in range(n_clips):
            youtube_id, start = f"yt_{name}_{clip}", 10 * clip
            for caption in range(n_captions):
                audiocap_id += 1
                rows.append(
                    [audiocap_id, youtube_id, start, f"{name} clip {clip} caption {caption}"]
                )
            if youtube_id not in missing:
                write_tone(root / "audio" / name / f"{youtube_id}_{start}.wav", 0.4, 32000)
        _write_csv(root / "dataset" / f"{name}.csv", header, rows)
    return root


def build_clotho(root):
    """Clotho v2 caption csvs (3 / 2 / 2 files) and the three audio folders."""
    root = Path(root)
    header = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
    for subset, n_files in (("development", 3), ("validation", 2), ("evaluation", 2)):
        rows = []
        for index in range(n_files):
            name = f"{subset} sound, take {index}.wav"  # real names have spaces and commas
            write_tone(root / subset / name, 0.5, 44100)
            rows.append(
                [name] + [f"a {subset} sound number {index}, caption {c}" for c in range(5)]
            )
        _write_csv(root / f"clotho_captions_{subset}.csv", header, rows)
    return root


MACS_YAML = """files:
- filename: airport-barcelona-0-0-a.wav
  annotations:
  - annotator_id: 12
    sentence: people talk while a suitcase rolls by
    tags: [adults talking, footsteps]
  - annotator_id: 34
    sentence: a busy hall with announcements
    tags: [announcement jingle]
- filename: public_square-helsinki-111-3230-a.wav
  annotations:
  - annotator_id: 56
    sentence: people are talking and traffic passes
    tags: [traffic noise, adults talking]
- filename: park-stockholm-3-120-a.wav
  annotations:
  - annotator_id: 78
    sentence: birds sing in a quiet park
    tags: [birds singing]
- filename: tram-vienna-7-700-a.wav
  annotations:
  - annotator_id: 90
    sentence: a tram rattles along the rails
    tags: [brakes squeaking]
"""


def build_macs(root):
    """``MACS.yaml`` (4 clips) and the TAU 2019 development audio they describe."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "MACS.yaml").write_text(MACS_YAML, encoding="utf-8")
    audio = root / "TAU-urban-acoustic-scenes-2019-development" / "audio"
    for line in MACS_YAML.splitlines():
        if "filename:" in line:
            write_tone(audio / line.split("filename:")[1].strip(), 0.3, 48000, 2, "PCM_24")
    return root


def build_fsd50k(root):
    """FSD50K ground truth (dev: 3 train + 1 val, eval: 2) and audio folders."""
    root = Path(root)
    gt = root / "FSD50K.ground_truth"
    dev = [
        ["64760", "Electric_guitar,Guitar,Music", "/m/02sgy,/m/0342h,/m/04rlf", "train"],
        ["16399", "Bark,Dog,Animal", "/m/05tny_,/m/0bt9lr,/m/0jbk", "train"],
        ["16401", "Rain,Water", "/m/06mb1,/m/0838f", "train"],
        ["16402", "Siren,Alarm", "/m/03kmc9,/m/07pp8cl", "val"],
    ]
    _write_csv(gt / "dev.csv", ["fname", "labels", "mids", "split"], dev)
    evaluation = [["37199", "Speech,Human_voice", "/m/09x0r,/m/09l8g"],
                  ["175151", "Applause,Clapping", "/m/028ght,/m/0l15bq"]]  # fmt: skip
    _write_csv(gt / "eval.csv", ["fname", "labels", "mids"], evaluation)
    for row in dev:
        write_tone(root / "FSD50K.dev_audio" / f"{row[0]}.wav", 0.3, 44100)
    for row in evaluation:
        write_tone(root / "FSD50K.eval_audio" / f"{row[0]}.wav", 0.3, 44100)
    return root


def build_audiofolder(root):
    """A nested folder of mixed audio files plus files that are not clips.

    Returns the relative paths of the clips.
    """
    root = Path(root)
    clips = {
        "dog_bark/a.wav": (16000, "PCM_16"),
        "dog_bark/b.WAV": (22050, "PCM_24"),
        "dog_bark/deep/c.flac": (44100, "PCM_16"),
        "rain/d.ogg": (32000, "VORBIS"),
        "rain/e.flac": (48000, "PCM_24"),
        "rain/f.wav": (8000, "PCM_U8"),
    }
    for relative, (rate, subtype) in clips.items():
        write_tone(root / relative, 0.3, rate, 1, subtype)
    write_tone(root / ".cache" / "hidden.wav", 0.3)  # hidden folder: skipped
    write_tone(root / "rain" / ".hidden.wav", 0.3)  # hidden file: skipped
    (root / "rain" / "notes.txt").write_text("not audio\n")
    return sorted(clips)


def load_json(path):
    """The JSON document at ``path`` (a manifest, a report)."""
    import json

    return json.loads(Path(path).read_text())
