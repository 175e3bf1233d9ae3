"""Sound-event timelines: per-window zero-shot scores of a long recording, merged into events.

A long file is read as a stream of fixed windows (:class:`tinyclap.audio.stream.WindowStream`,
memory bounded by the batch size, not the file's length); every window is embedded by
any ``embed_windows(windows [B, T]) -> [B, K]`` function (the PyTorch student, an
onnxruntime session, a teacher...) and scored against the class embeddings. A
:class:`Timeline` holds the per-window scores with their start and end times and the
**events** merged from them:

* each window *owns* the stretch of time closest to its centre (boundaries half way
  between consecutive window centres; the first starts at 0, the last ends with the
  file), so with overlapping windows the owned stretches tile the file;
* a window's label is its best-scoring class (ties go to the class listed first);
  windows whose best score is below ``threshold`` carry no event;
* consecutive windows with the same label form one event ``(label, onset, offset,
  score)``, ``score`` the mean of that label's score over the event's windows;
  events shorter than ``min_duration`` seconds are dropped.

The same file, labels and settings give the same timeline: the windows are
deterministic, and so is every step after them.
"""

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyclap.audio.stream import WindowStream

DECIMALS = 4  # seconds and scores in JSON / CSV / tables


@dataclass(frozen=True)
class Event:
    """One merged event: ``label`` from ``onset`` to ``offset`` seconds, mean ``score``."""

    label: str
    onset: float
    offset: float
    score: float

    @property
    def duration(self):
        """``offset - onset`` in seconds."""
        return self.offset - self.onset

    def to_dict(self):
        """A JSON-ready dict, times and score rounded to 4 decimals."""
        return {
            k: (round(v, DECIMALS) if isinstance(v, float) else v) for k, v in asdict(self).items()
        }


def owned_segments(starts, window_samples, num_samples):
    """``[N, 2]`` sample bounds of the stretch each window owns (closest to its centre).

    Example
    -------
    >>> owned_segments([0, 5, 10], 10, 20).tolist()
    [[0.0, 7.5], [7.5, 12.5], [12.5, 20.0]]
    """
    centres = np.asarray(starts, dtype=np.float64) + window_samples / 2
    edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [float(num_samples)]])
    return np.stack([edges[:-1], edges[1:]], axis=1)


def merge_events(labels, scores, segments, threshold=None, min_duration=0.0):
    """Merge consecutive windows with the same best label into events.

    Parameters
    ----------
    labels : list of str
        Class names, in score-column order (earlier wins ties).
    scores : array-like
        ``[N, C]`` window scores.
    segments : array-like
        ``[N, 2]`` seconds owned by each window (see :func:`owned_segments`).
    threshold : float, optional
        Windows whose best score is below it carry no event.
    min_duration : float
        Events shorter than this (seconds) are dropped.

    Returns
    -------
    list of Event

    Example
    -------
    >>> scores = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.7], [0.3, 0.3]]
    >>> segments = [[0, 1], [1, 2], [2, 3], [3, 4]]
    >>> [(e.label, e.onset, e.offset) for e in merge_events(["dog", "rain"], scores, segments)]
    [('dog', 0.0, 2.0), ('rain', 2.0, 3.0), ('dog', 3.0, 4.0)]
    >>> len(merge_events(["dog", "rain"], scores, segments, threshold=0.5))
    2
    """
    scores = np.asarray(scores, dtype=np.float64)
    segments = np.asarray(segments, dtype=np.float64)
    if len(scores) == 0:
        return []
    winners = scores.argmax(axis=1)  # the first maximum: ties go to the earlier label
    best = scores[np.arange(len(scores)), winners]
    active = np.ones(len(scores), bool) if threshold is None else best >= float(threshold)
    events, first = [], None
    for i in range(len(scores) + 1):
        ends_group = first is not None and (
            i == len(scores) or not active[i] or winners[i] != winners[first]
        )
        if ends_group:
            onset, offset = float(segments[first, 0]), float(segments[i - 1, 1])
            if offset - onset >= float(min_duration):
                label = int(winners[first])
                events.append(Event(labels[label], onset, offset, float(best[first:i].mean())))
            first = None
        if i < len(scores) and active[i] and first is None:
            first = i
    return events


class Timeline:
    """Per-window zero-shot scores of a recording and the events merged from them.

    Parameters
    ----------
    labels : list of str
        Class names (score columns).
    starts : list of int
        Window starts, in samples.
    scores : Tensor or array
        ``[N, C]`` cosine scores.
    sample_rate : int
        Rate of ``starts``.
    window_samples, hop_samples : int
        Window length and hop.
    num_samples : int
        Length of the recording.
    threshold, min_duration
        Event merging options (see :func:`merge_events`).
    source : str, optional
        The file the timeline was computed from.

    Example
    -------
    >>> tl = Timeline(["dog", "rain"], [0, 8000, 16000], [[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]],
    ...               sample_rate=16000, window_samples=16000, hop_samples=8000,
    ...               num_samples=32000)
    >>> [(e.label, e.onset, e.offset) for e in tl.events]
    [('dog', 0.0, 0.75), ('rain', 0.75, 2.0)]
    >>> tl.windows[1]["start"], tl.windows[1]["end"], tl.windows[1]["label"]
    (0.5, 1.5, 'rain')
    """

    def __init__(self, labels, starts, scores, sample_rate, window_samples, hop_samples,
                 num_samples, threshold=None, min_duration=0.0, source=None):  # fmt: skip
        self.labels = [str(label) for label in labels]
        self.starts = [int(s) for s in starts]
        self.scores = torch.as_tensor(np.asarray(scores, dtype=np.float32))
        if self.scores.dim() != 2 or self.scores.shape != (len(self.starts), len(self.labels)):
            raise ValueError(
                f"scores of shape {tuple(self.scores.shape)} do not match "
                f"{len(self.starts)} windows x {len(self.labels)} labels"
            )
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.num_samples = int(num_samples)
        self.threshold = None if threshold is None else float(threshold)
        self.min_duration = float(min_duration)
        self.source = None if source is None else str(source)
        segments = owned_segments(self.starts, self.window_samples, self.num_samples)
        self.events = merge_events(self.labels, self.scores.numpy(), segments / self.sample_rate,
                                   self.threshold, self.min_duration)  # fmt: skip

    @property
    def duration(self):
        """Length of the recording in seconds."""
        return self.num_samples / self.sample_rate

    @property
    def windows(self):
        """Per-window dicts: ``start``, ``end`` (s), best ``label``, its ``score``, ``scores``."""
        rows = []
        scores = self.scores.numpy().astype(np.float64)
        for start, row in zip(self.starts, scores):
            best = int(row.argmax())
            end = min(start + self.window_samples, self.num_samples)  # padding is not time
            rows.append({
                "start": round(start / self.sample_rate, DECIMALS),
                "end": round(end / self.sample_rate, DECIMALS),
                "label": self.labels[best],
                "score": round(float(row[best]), DECIMALS),
                "scores": {k: round(float(v), DECIMALS) for k, v in zip(self.labels, row)},
            })  # fmt: skip
        return rows

    def with_events(self, threshold=None, min_duration=0.0):
        """The same window scores with events merged under other options (nothing re-run)."""
        return Timeline(self.labels, self.starts, self.scores, self.sample_rate,
                        self.window_samples, self.hop_samples, self.num_samples, threshold,
                        min_duration, self.source)  # fmt: skip

    def to_dict(self, windows=True):
        """A JSON-ready dict: settings, ``events`` and (with ``windows``) per-window scores."""
        record = {
            "file": self.source,
            "sample_rate": self.sample_rate,
            "duration": round(self.duration, DECIMALS),
            "window_seconds": round(self.window_samples / self.sample_rate, DECIMALS),
            "hop_seconds": round(self.hop_samples / self.sample_rate, DECIMALS),
            "threshold": self.threshold,
            "min_duration": self.min_duration,
            "labels": self.labels,
            "events": [event.to_dict() for event in self.events],
        }
        if windows:
            record["windows"] = self.windows
        return record

    def to_json(self, path=None, windows=True, indent=2):
        """The timeline as JSON text (written to ``path`` too when given)."""
        text = json.dumps(self.to_dict(windows), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_csv(self, path, what="windows"):
        """Write ``windows`` (start, end, label, score, one column per label) or ``events``."""
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if what == "events":
                writer.writerow(["label", "onset", "offset", "score"])
                for e in self.events:
                    row = e.to_dict()
                    writer.writerow([row["label"], row["onset"], row["offset"], row["score"]])
            elif what == "windows":
                writer.writerow(["start", "end", "label", "score", *self.labels])
                for w in self.windows:
                    writer.writerow([w["start"], w["end"], w["label"], w["score"],
                                     *(w["scores"][k] for k in self.labels)])  # fmt: skip
            else:
                raise ValueError(f"to_csv: what={what!r}, expected 'windows' or 'events'")
        return Path(path)

    def format_table(self, windows=False):
        """Events (and, with ``windows``, every window) as aligned text.

        Example
        -------
        >>> tl = Timeline(["dog"], [0], [[0.5]], 16000, 16000, 16000, 16000)
        >>> print(tl.format_table())
         onset  offset  label  score
         0.000   1.000  dog    0.500
        """
        width = max([5, *(len(e.label) for e in self.events)])
        lines = [f"{'onset':>6}  {'offset':>6}  {'label':<{width}}  score"]
        lines += [f"{e.onset:6.3f}  {e.offset:6.3f}  {e.label:<{width}}  {e.score:.3f}"
                  for e in self.events]  # fmt: skip
        if not self.events:
            lines.append("(no events)")
        if windows:
            width = max([5, *(len(label) for label in self.labels)])
            lines += ["", f"{'start':>6}  {'end':>6}  {'label':<{width}}  score  " + "  ".join(
                self.labels)]  # fmt: skip
            for w in self.windows:
                cells = "  ".join(f"{w['scores'][k]:>{max(6, len(k))}.3f}" for k in self.labels)
                lines.append(f"{w['start']:6.3f}  {w['end']:6.3f}  {w['label']:<{width}}  "
                             f"{w['score']:.3f}  {cells}")  # fmt: skip
        return "\n".join(lines)

    def plot(self, path, title=None, max_labels=12):
        """Save a figure: window scores per label over time (top) and the events (bottom).

        Only the labels that win at least one window are drawn (at most
        ``max_labels``, those winning most windows). Needs matplotlib (imported
        here, not by tinyclap).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        centres = (np.asarray(self.starts) + self.window_samples / 2) / self.sample_rate
        # the labels that win windows, most windows first (at most max_labels): a 50-class
        # label set would otherwise be an unreadable tangle
        wins = np.bincount(self.scores.numpy().argmax(1), minlength=len(self.labels))
        shown = [int(k) for k in np.argsort(-wins, kind="stable")[:max_labels] if wins[k]]
        fig, (top, bottom) = plt.subplots(
            2, 1, sharex=True, figsize=(10, 2.5 + 0.3 * len(shown)),
            gridspec_kw={"height_ratios": [3, 1 + 0.2 * len(shown)]},
        )  # fmt: skip
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for row, k in enumerate(shown):
            top.plot(centres, self.scores[:, k].numpy(), label=self.labels[k], lw=1,
                     color=colors[row % len(colors)])  # fmt: skip
        if self.threshold is not None:
            top.axhline(self.threshold, color="k", ls=":", lw=1)
        top.set_ylabel("cosine score")
        top.legend(fontsize="small", ncol=min(4, len(shown)), loc="upper right")
        rows = {self.labels[k]: row for row, k in enumerate(shown)}
        for e in self.events:
            if e.label in rows:
                row = rows[e.label]
                bottom.broken_barh([(e.onset, e.duration)], (row - 0.4, 0.8),
                                   color=colors[row % len(colors)])  # fmt: skip
        bottom.set_yticks(range(len(shown)), [self.labels[k] for k in shown], fontsize="small")
        bottom.set_ylim(-0.6, len(shown) - 0.4)
        bottom.set_xlim(0, self.duration)
        bottom.set_xlabel("time (s)")
        top.set_title(title or (Path(self.source).name if self.source else "timeline"))
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return Path(path)


def hop_in_samples(hop_seconds, sample_rate, window_samples):
    """Hop in samples (default: half a window), checked.

    Example
    -------
    >>> hop_in_samples(None, 16000, 16000), hop_in_samples(0.25, 16000, 16000)
    (8000, 4000)
    """
    if hop_seconds is None:
        return max(1, window_samples // 2)
    seconds = float(hop_seconds)
    if not math.isfinite(seconds) or round(seconds * sample_rate) < 1:
        raise ValueError(f"hop must be a positive number of seconds, got {hop_seconds!r}")
    return int(round(seconds * sample_rate))


@torch.no_grad()
def file_timeline(embed_windows, path, labels, class_embeddings, sample_rate, window_samples,
                  hop=None, pad_mode="zeros", batch_size=32, threshold=None, min_duration=0.0,
                  progress=False):  # fmt: skip
    """Stream a file window by window through ``embed_windows`` into a :class:`Timeline`.

    Memory holds ``batch_size`` windows and the reader's few chunks, whatever
    the file's length (plus the ``[N, C]`` scores).

    Parameters
    ----------
    embed_windows : callable
        ``windows [B, window_samples] -> [B, K]`` L2-normalised embeddings
        (a Tensor or a NumPy array).
    path : str or Path
        The audio file (any format soundfile reads, any rate, channels averaged).
    labels : list of str
        Class names, one per row of ``class_embeddings``.
    class_embeddings : Tensor
        ``[C, K]`` L2-normalised class embeddings.
    sample_rate, window_samples : int
        The encoder's rate and window.
    hop : float, optional
        Seconds between window starts (default: half a window).
    pad_mode : str
        Padding of a file shorter than one window.
    batch_size : int
        Windows per ``embed_windows`` call.
    threshold, min_duration
        Event options (see :func:`merge_events`).
    progress : bool
        Show a tqdm bar.

    Example
    -------
    >>> import tempfile, os, soundfile as sf
    >>> f = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(f, np.ones(32000) * 0.1, 16000)
    >>> embed = lambda w: torch.nn.functional.normalize(torch.ones(len(w), 2), dim=-1)
    >>> tl = file_timeline(embed, f, ["a", "b"], torch.eye(2), 16000, 16000)
    >>> [(e.label, e.onset, e.offset) for e in tl.events]
    [('a', 0.0, 2.0)]
    """
    hop_samples = hop_in_samples(hop, sample_rate, window_samples)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    stream = WindowStream(path, sample_rate, window_samples, hop_samples, pad_mode)
    text = torch.as_tensor(class_embeddings).float().cpu()
    if text.shape[0] != len(labels):
        raise ValueError(f"{len(labels)} labels but {text.shape[0]} class embeddings")
    starts, scores = [], []
    bar = tqdm(total=stream.expected_windows(), desc=f"timeline {Path(path).name}", unit="window",
               disable=not progress)  # fmt: skip
    for batch_starts, windows in stream.batches(batch_size):
        embeddings = embed_windows(windows)
        if not isinstance(embeddings, torch.Tensor):  # e.g. an onnxruntime output
            embeddings = torch.from_numpy(np.asarray(embeddings))
        starts.extend(batch_starts)
        scores.append(embeddings.float().cpu() @ text.T)
        bar.update(len(batch_starts))
    bar.close()
    return Timeline(labels, starts, torch.cat(scores), sample_rate, window_samples, hop_samples,
                    stream.num_samples, threshold, min_duration, source=path)  # fmt: skip
