"""UrbanSound8K: the official layout and every sample format it ships."""

from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.helpers import dataset_trees as trees
from tests.helpers.dataset_trees import load_json as _load
from tinyclap.audio.io import load_audio
from tinyclap.data.label_sets import US8K_CLASSES, readable_label
from tinyclap.prepare.us8k import prepare_us8k


def test_us8k_manifest_and_every_format_loads(data, tmp_path):
    entries = _load(prepare_us8k(data["root"], tmp_path)["test"])
    assert len(entries) == 20
    assert sorted({e["fold"] for e in entries.values()}) == list(range(1, 11))
    assert {e["label"] for e in entries.values()} == {readable_label(c) for c in US8K_CLASSES}
    assert entries["100111-3-1-3"]["label"] == "dog bark"
    subtypes = set()
    for clip_id, entry in entries.items():
        rate, channels, subtype, seconds = data["us8k_formats"][f"{clip_id}.wav"]
        assert f"fold{entry['fold']}" == Path(entry["wav"]).parent.name
        info = sf.info(entry["wav"])
        assert (info.samplerate, info.channels, info.subtype) == (rate, channels, subtype)
        subtypes.add(subtype)
        assert entry["duration"] == pytest.approx(seconds, abs=1 / rate)
        wav = load_audio(entry["wav"], 16000, manifest_id=clip_id)
        assert wav.dtype == torch.float32 and wav.dim() == 1
        assert abs(len(wav) - seconds * 16000) <= 1
        # a 440 Hz tone of amplitude 0.5: RMS 0.354 whatever the rate / depth / channels
        rms = float(wav[200:-200].pow(2).mean().sqrt())
        assert rms == pytest.approx(trees.AMPLITUDE / 2**0.5, rel=0.03), (clip_id, subtype)
    assert subtypes == {"PCM_U8", "PCM_16", "PCM_24", "FLOAT"}
