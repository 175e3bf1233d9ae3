"""Few-shot classes in an exported folder (``tinyclap adapt``).

:func:`adapt_export` copies an exported folder and adds a label set (default
name ``adapted``) to its ``label_embeddings.safetensors``: the text-prompt
classes of an optional label list next to one *prototype* per class of an
examples folder (the normalised mean of the student's embeddings of its
recordings, :mod:`tinyclap.zeroshot.prototypes`), optionally mixed with the
class's text embedding. Each class's kind (``text``, ``prototype``,
``mixed``) is stored with the set. ``export.json`` gets the new hashes, an
``adapted`` record and ``default_labels`` (the new set: what classifying without
labels uses; :mod:`tinyclap.runtime.labels`), the model card a note; with ``calibrate`` the open-set
thresholds are measured for the new set (:mod:`tinyclap.deploy.calibration`),
and with ``onnx`` the ONNX graphs are rewritten, the scores graph ending in
the new set's classes.

The examples folder holds one sub-folder per class, named after the class,
with a few recordings each::

    examples/
        espresso machine/  a.wav  b.flac
        door_creak/        1.wav
"""

import json
import shutil
from pathlib import Path

from tinyclap.data.label_sets import readable_label
from tinyclap.deploy.calibration import CALIBRATION_FILE, calibrate_classifier, write_calibration
from tinyclap.deploy.export import WEIGHTS_FILES, export_files
from tinyclap.deploy.safety import sha256_file
from tinyclap.deploy.text_encoders import TABLES_FORMAT, save_label_tables
from tinyclap.zeroshot.prompts import class_prompts
from tinyclap.zeroshot.prototypes import class_table

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
PROTOTYPE_PROMPT = {"prototype": "<prototype> {label}", "mixed": "<prototype+text> {label}"}


def example_folders(examples):
    """``{class: [audio files]}`` of an examples folder (one sub-folder per class).

    Example
    -------
    >>> example_folders("examples")  # doctest: +SKIP
    {'door_creak': [PosixPath('examples/door_creak/1.wav')], ...}
    """
    root = Path(examples)
    if not root.is_dir():
        raise FileNotFoundError(f"examples folder not found: {root}")
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise ValueError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        classes[folder.name] = files
    if not classes:
        raise ValueError(f"{root}: no class folders (expected {root}/<class>/<clip>.wav)")
    return classes


def embed_examples(classifier, files_by_class):
    """``{class: [k, K]}`` clip embeddings of each class's recordings."""
    return {
        name: classifier.encode_audio([classifier.load_audio(str(f)) for f in files]).cpu()
        for name, files in files_by_class.items()
    }


def adapted_table(classifier, examples, labels=None, text_weight=0.0):
    """Class names, embeddings, kinds and prompts of a set with prototype classes.

    Parameters
    ----------
    classifier : ZeroShotAudioClassifier
        The loaded source folder.
    examples : dict
        ``{class: [k, K] embeddings}`` (see :func:`embed_examples`).
    labels : str or list of str, optional
        Text-prompt classes kept next to the prototypes (a bundled set name,
        ``"a,b,c"`` or a list); a class both here and in ``examples`` becomes
        a prototype (mixed with its text when ``text_weight > 0``).
    text_weight : float
        Weight of the text embedding mixed into each prototype (0: none).

    Returns
    -------
    dict
        ``{"labels", "prompts", "embeddings", "kinds"}``, a label-table entry.
    """
    text = {}
    if labels:
        text = dict(zip(classifier.labels_of(labels), classifier.encode_text(labels).cpu()))
    if float(text_weight) > 0:
        missing = [name for name in examples if name not in text]
        if missing:
            text.update(zip(missing, classifier.encode_text(missing).cpu()))
    names, table, kinds = class_table(examples, text, text_weight)
    template = classifier.hparams.prompt_template
    prompts = [
        class_prompts([readable_label(n)], template)[0]
        if kind == "text"
        else PROTOTYPE_PROMPT[kind].format(label=n)
        for n, kind in zip(names, kinds)
    ]
    return {"labels": names, "prompts": prompts, "embeddings": table, "kinds": kinds}


def _copy_export(source, out):
    """Copy the files of an exported folder (not its calibration) into ``out``."""
    ours, _ = export_files(source)
    for relative in ours:
        if relative == CALIBRATION_FILE:
            continue  # calibrated for the source's labels, not the new set
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target)
    return ours


def _model_card_note(set_name, record):
    counts = ", ".join(
        f"{name} ({info['kind']}, {info['examples']} clip(s))"
        for name, info in record["classes"].items()
        if info["kind"] != "text"
    )
    text = [n for n, info in record["classes"].items() if info["kind"] == "text"]
    return (
        f"\n\n## Adapted label set `{set_name}`\n\n"
        f"Made by `tinyclap adapt` from `{record['source']}` with the examples in "
        f"`{record['examples']}`: prototype classes {counts}"
        + (f"; text-prompt classes: {', '.join(text)}" if text else "")
        + f" (text weight {record['text_weight']}). It is the folder's default label set "
        f"(`tinyclap classify FILE` without `--labels`, `classify_file(path)`); the names of "
        "its prototype classes, typed as labels, take their prototypes.\n"
    )


def adapt_export(
    source,
    examples,
    out,
    labels=None,
    text_weight=0.0,
    set_name="adapted",
    calibrate=None,
    unknown_manifest=None,
    known_accept=0.95,
    onnx=None,
    trust_remote_code=False,
    trust_unverified=False,
    command=None,
):
    """Write a copy of an exported folder whose label tables add few-shot classes.

    Parameters
    ----------
    source : str or Path
        An exported folder (``tinyclap export``) or a hub repo id (resolved
        through the Hugging Face cache, as ``tinyclap classify --model`` does).
    examples : str or Path or dict
        An examples folder (one sub-folder of recordings per class), or
        ``{class: [audio paths]}``.
    out : str or Path
        The new folder (must differ from ``source``).
    labels : str or list of str, optional
        Text-prompt classes of the new set (see :func:`adapted_table`).
    text_weight : float
        Weight of a class's text embedding mixed into its prototype.
    set_name : str
        Name of the new label set.
    calibrate : str or Path, optional
        A labelled validation manifest: measure and store open-set and
        multi-label thresholds for the new set.
    unknown_manifest : str or Path, optional
        Validation clips of classes outside the set (for the rejection threshold).
    known_accept : float
        See :func:`tinyclap.deploy.calibration.calibrate_classifier`.
    onnx : bool, optional
        Rewrite the ONNX graphs (``classifier_scores.onnx`` ends in the new
        set); default: when the source has ``onnx/``.
    trust_remote_code : bool
        Load a source whose yaml names code outside tinyclap (see ``from_hparams``).
    trust_unverified : bool
        Load a source whose ``export.json`` records no SHA-256 for some files
        (see ``from_hparams``); the copy stays unverified.
    command : str, optional
        Recorded in ``export.json``.

    Returns
    -------
    dict
        The new ``export.json``.

    Example
    -------
    >>> info = adapt_export("exported/demo", "examples", "exported/adapted")  # doctest: +SKIP
    >>> info["label_sets"]["adapted"]  # doctest: +SKIP
    3
    """
    from tinyclap.deploy.inference import ZeroShotAudioClassifier, local_model_folder

    named, out = str(source), Path(out)
    source = local_model_folder(source)  # a folder, or a hub repo's cached snapshot
    if not (source / "hyperparams.yaml").is_file():
        raise FileNotFoundError(
            f"{named} is not an exported folder (no hyperparams.yaml); adapt needs a folder "
            "or hub repo written by `tinyclap export`"
        )
    if out.resolve() == source.resolve():
        raise ValueError(f"--out {out} is the source folder: write the adapted copy elsewhere")
    classifier = ZeroShotAudioClassifier.from_hparams(
        source=str(source),
        run_opts={"device": "cpu"},
        trust_remote_code=trust_remote_code,
        trust_unverified=trust_unverified,
    )
    files = examples if isinstance(examples, dict) else example_folders(examples)
    entry = adapted_table(classifier, embed_examples(classifier, files), labels, text_weight)
    tables = classifier.hparams.label_embeddings
    sets = {name: dict(table) for name, table in tables.sets.items()}
    sets[set_name] = entry

    out.mkdir(parents=True, exist_ok=True)
    (out / CALIBRATION_FILE).unlink(missing_ok=True)
    _copy_export(source, out)
    tables_file = out / WEIGHTS_FILES["label_embeddings"]
    tables_file.unlink(missing_ok=True)  # never write through a link into the source
    save_label_tables(
        tables_file, {"format": TABLES_FORMAT, "template": tables.template, "sets": sets}
    )
    info = json.loads((source / "export.json").read_text(encoding="utf-8"))
    info.pop("calibration", None)
    info["weights"]["label_embeddings"] = {
        "file": tables_file.name,
        "sha256": sha256_file(tables_file),
    }
    info.setdefault("label_sets", {})[set_name] = len(entry["labels"])
    info["default_labels"] = set_name  # classify without labels: the adapted set
    record = {
        "source": named,
        "examples": str(examples) if not isinstance(examples, dict) else "(given in Python)",
        "set": set_name,
        "text_weight": float(text_weight),
        "text_labels": labels if isinstance(labels, (str, type(None))) else list(labels),
        "classes": {
            name: {"kind": kind, "examples": len(files.get(name, []))}
            for name, kind in zip(entry["labels"], entry["kinds"])
        },
        "command": command or "tinyclap.deploy.adapt.adapt_export",
    }
    info["adapted"] = record
    (out / "export.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    card = out / "README.md"
    if card.is_file():
        card.write_text(
            card.read_text(encoding="utf-8") + _model_card_note(set_name, record), encoding="utf-8"
        )
    if calibrate is not None:
        adapted = ZeroShotAudioClassifier.from_hparams(
            source=str(out),
            run_opts={"device": "cpu"},
            trust_remote_code=trust_remote_code,
            trust_unverified=trust_unverified,
        )
        calibration = calibrate_classifier(
            adapted, calibrate, set_name, unknown_manifest, known_accept
        )
        write_calibration(out, calibration)
    if onnx or (onnx is None and (source / "onnx").is_dir()):
        from tinyclap.deploy.onnx import export_onnx

        int8 = (source / "onnx" / "audio_encoder.int8.onnx").is_file()
        export_onnx(out, labels=set_name, quantize_int8=int8, trust_remote_code=trust_remote_code,
                    trust_unverified=trust_unverified, **_source_int8_plan(source))  # fmt: skip
    return json.loads((out / "export.json").read_text(encoding="utf-8"))


def _source_int8_plan(source):
    """The source's static int8 recipe and evaluation clips, where they are still there.

    So that an adapted folder gets the same int8 graph and the same check that
    made it the default (``export.json["runtime_graph"]``); otherwise
    :func:`tinyclap.deploy.onnx.export_onnx` falls back to dynamic int8 (fp32 default).
    """
    path = Path(source) / "onnx" / "onnx_report.json"
    report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    plan, kwargs = report.get("int8") or {}, {}
    if plan.get("mode"):
        kwargs["int8_mode"] = plan["mode"]  # static without clips falls back in export_onnx
    calibration = plan.get("calibration_manifest")
    if plan.get("mode") == "static" and calibration and Path(calibration).is_file():
        kwargs["calibration_manifest"] = calibration
    manifest = (report.get("accuracy") or {}).get("manifest")
    if manifest and Path(manifest).is_file():
        kwargs["eval_manifest"] = manifest
    return kwargs
