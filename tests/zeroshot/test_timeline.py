"""Timelines: events of a file made of known clips, merging rules, outputs, determinism."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.recordings import CLASSES, CLIP_SECONDS, write_recording
from tinyclap.audio.features import LogMel
from tinyclap.audio.io import load_audio
from tinyclap.audio.windows import split_windows
from tinyclap.zeroshot.timeline import (
    Timeline,
    file_timeline,
    hop_in_samples,
    merge_events,
    owned_segments,
)

RATE, WINDOW, HOP = 16000, 16000, 0.5


class SpectralEncoder:
    """A training-free window encoder: the window's mean log-mel, gain removed, normalised.

    It separates the Synth classes by their spectra, so the test checks the
    timeline machinery (streaming, windows, merging, times), not a model's training.
    """

    def __init__(self):
        self.frontend = LogMel(sample_rate=RATE, f_max=8000.0)
        self.calls = []

    def __call__(self, windows):
        self.calls.append(len(windows))
        mels = self.frontend(windows).mean(1)
        return F.normalize(mels - mels.mean(1, keepdim=True), dim=-1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Clips of four Synth classes end to end (then the first again), at 44.1 kHz, stereo."""
    recording = write_recording(tmp_path_factory.mktemp("timeline"))
    encoder = SpectralEncoder()
    # the labels' embeddings: each clip's own (window-averaged) embedding
    prototypes = torch.stack([encoder(split_windows(load_audio(p, RATE), WINDOW)).mean(0)
                              for p in recording["clips"]])  # fmt: skip
    return {**recording, "classes": F.normalize(prototypes, dim=-1)}


def _timeline(recording, encoder=None, **kw):
    return file_timeline(encoder or SpectralEncoder(), recording["path"], CLASSES,
                         recording["classes"], RATE, WINDOW, **{"hop": HOP, **kw})  # fmt: skip


def test_known_clips_give_their_events_back_within_one_hop(recording):
    timeline = _timeline(recording)
    assert abs(timeline.duration - 5 * CLIP_SECONDS) < 1e-3
    events = [(e.label, e.onset, e.offset) for e in timeline.events]
    assert [e[0] for e in events] == [t[0] for t in recording["truth"]], timeline.format_table()
    for (_, onset, offset), (_, true_onset, true_offset) in zip(events, recording["truth"]):
        assert abs(onset - true_onset) <= HOP and abs(offset - true_offset) <= HOP, events
    # owned stretches tile the file: events (no threshold) cover it end to end
    assert events[0][1] == 0.0 and events[-1][2] == pytest.approx(timeline.duration)
    assert all(a[2] == b[1] for a, b in zip(events, events[1:]))


def test_deterministic_and_independent_of_batch_size(recording):
    encoder = SpectralEncoder()
    small = _timeline(recording, encoder, batch_size=3)
    assert max(encoder.calls) <= 3  # memory: at most batch_size windows embedded at once
    again = _timeline(recording, batch_size=3)
    assert small.to_json() == again.to_json()
    big = _timeline(recording, batch_size=64)
    assert [e.label for e in big.events] == [e.label for e in small.events]
    assert torch.allclose(big.scores, small.scores, atol=1e-5)


def test_windows_carry_times_and_scores(recording):
    timeline = _timeline(recording, hop=1.0)
    windows = timeline.windows
    assert len(windows) == 15  # 15 s: 1 s windows every 1 s, the last one ending at 15 s
    assert windows[0]["start"] == 0.0 and windows[0]["end"] == 1.0
    assert windows[-1]["end"] == 15.0
    for w in windows:
        assert set(w["scores"]) == set(CLASSES)
        assert w["score"] == max(w["scores"].values())
        assert w["scores"][w["label"]] == w["score"]


def test_threshold_and_min_duration(recording):
    timeline = _timeline(recording)
    scores = timeline.scores.max(1).values
    cut = float(scores.sort().values[len(scores) // 3])
    gapped = timeline.with_events(threshold=cut)
    assert len(gapped.events) >= 1
    owned = owned_segments(timeline.starts, WINDOW, timeline.num_samples) / RATE
    for event in gapped.events:  # every window inside an event scores at least the threshold
        inside = [(a >= event.onset - 1e-9) and (b <= event.offset + 1e-9) for a, b in owned]
        assert float(scores[torch.tensor(inside)].min()) >= cut
    assert sum(e.duration for e in gapped.events) < timeline.duration
    long_only = timeline.with_events(min_duration=2.0)
    assert all(e.duration >= 2.0 for e in long_only.events)
    assert len(long_only.events) <= len(timeline.events)
    assert timeline.with_events(threshold=2.0).events == []  # cosines never reach 2


def test_merge_rules_ties_and_gaps():
    segments = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    scores = [[0.5, 0.5], [0.5, 0.5], [0.1, 0.9], [0.9, 0.1], [0.2, 0.3]]
    events = merge_events(["a", "b"], scores, segments)
    assert [(e.label, e.onset, e.offset) for e in events] == [
        ("a", 0.0, 2.0), ("b", 2.0, 3.0), ("a", 3.0, 4.0), ("b", 4.0, 5.0)]  # fmt: skip
    assert events[0].score == pytest.approx(0.5) and events[3].score == pytest.approx(0.3)
    gaps = merge_events(["a", "b"], scores, segments, threshold=0.4)
    assert [(e.label, e.onset, e.offset) for e in gaps] == [
        ("a", 0.0, 2.0), ("b", 2.0, 3.0), ("a", 3.0, 4.0)]  # fmt: skip
    assert merge_events(["a", "b"], [], []) == []
    # owned stretches: boundaries half way between window centres, first at 0, last at the end
    assert owned_segments([0, 4000, 8000, 10000], 8000, 18000).tolist() == [
        [0, 6000], [6000, 10000], [10000, 13000], [13000, 18000]]  # fmt: skip


def test_outputs_json_csv_table_plot(recording, tmp_path):
    timeline = _timeline(recording)
    record = json.loads(timeline.to_json(tmp_path / "t.json"))
    assert json.loads((tmp_path / "t.json").read_text()) == record
    assert record["labels"] == CLASSES and record["hop_seconds"] == HOP
    assert record["events"] == [e.to_dict() for e in timeline.events]
    assert len(record["windows"]) == len(timeline.starts)
    assert "windows" not in timeline.to_dict(windows=False)
    with open(timeline.to_csv(tmp_path / "w.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(timeline.starts) and float(rows[0]["start"]) == 0.0
    assert float(rows[3][CLASSES[1]]) == record["windows"][3]["scores"][CLASSES[1]]
    with open(timeline.to_csv(tmp_path / "e.csv", what="events"), newline="") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == [e.label for e in timeline.events]
    with pytest.raises(ValueError, match="what"):
        timeline.to_csv(tmp_path / "x.csv", what="frames")
    table = timeline.format_table(windows=True)
    assert table.splitlines()[0].split() == ["onset", "offset", "label", "score"]
    assert len(table.splitlines()) == 1 + len(timeline.events) + 2 + len(timeline.starts)
    pytest.importorskip("matplotlib")
    png = timeline.plot(tmp_path / "t.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bad_options(recording):
    for hop in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="hop"):
            hop_in_samples(hop, RATE, WINDOW)
    with pytest.raises(ValueError, match="batch_size"):
        _timeline(recording, batch_size=0)
    with pytest.raises(ValueError, match="labels"):
        file_timeline(SpectralEncoder(), recording["path"], CLASSES[:2], recording["classes"],
                      RATE, WINDOW)  # fmt: skip
    with pytest.raises(ValueError, match="do not match"):
        Timeline(["a"], [0, 1], [[0.1]], RATE, WINDOW, WINDOW, 2 * WINDOW)
