"""A long recording made of known Synth clips end to end, for timeline tests."""

import numpy as np
import soundfile as sf

from tinyclap.data.synth_sounds import generate_clip

CLASSES = ["siren", "rain", "engine idling", "bees buzzing"]
ORDER = [0, 1, 2, 3, 0]  # the first clip comes back at the end
CLIP_SECONDS = 3.0


def write_recording(root, rate=44100):
    """Write ``long.wav`` (stereo, ``rate``) and ``clip{i}.wav``; return paths and the truth.

    Returns ``{"path", "clips": [Path], "truth": [(label, onset, offset)]}``.
    """
    clips = [generate_clip(c, np.random.default_rng(i), rate, CLIP_SECONDS)
             for i, c in enumerate(CLASSES)]  # fmt: skip
    signal = np.concatenate([clips[i] for i in ORDER])
    sf.write(root / "long.wav", np.stack([signal, signal], axis=1), rate)
    paths = []
    for i, clip in enumerate(clips):
        paths.append(root / f"clip{i}.wav")
        sf.write(paths[-1], clip, rate)
    truth = [(CLASSES[i], k * CLIP_SECONDS, (k + 1) * CLIP_SECONDS) for k, i in enumerate(ORDER)]
    return {"path": root / "long.wav", "clips": paths, "truth": truth}
