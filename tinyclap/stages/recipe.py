"""The recipe behind ``train.py``: parse, load hparams, prepare data, run a stage.

``python train.py hparams/<stage>.yaml [--key value ...]`` reads the yaml's
``stage`` key and runs one of

- ``train_teacher``: contrastive training of the mini CLAP, then a zero-shot
  test evaluation; writes ``teacher.ckpt``;
- ``distill``: teacher-embedding cache, distillation, projection finetuning,
  zero-shot test evaluation; writes ``student.ckpt``;
- ``evaluate``: zero-shot evaluation of a teacher or a student.

Data: ``dataset`` names a preparation in :data:`DATASETS` (run on
``data_folder``, manifests in ``manifest_folder`` or next to the data);
``distill_corpora`` (distill and prune stages) lists further corpora whose
train and valid manifests replace the dataset's for distillation (the
dataset then only provides the zero-shot test split). ``--check_audio``
decodes every clip of the run's manifests and reports the unreadable ones
instead of running the stage; ``skip_bad_audio: true`` drops them first.

Each stage writes ``results.json`` and ``zeroshot_<split>/{metrics.json,
confusion.png}`` in its output folder. Training resumes from the last
checkpoint when a run is restarted with the same output folder.
"""

import importlib
import json
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from tqdm import tqdm

from tinyclap.audio.features import LogMel
from tinyclap.audio.io import load_audio
from tinyclap.data.audio_check import check_manifests, clean_manifests, format_report, write_report
from tinyclap.data.manifests import write_manifest
from tinyclap.data.pipelines import (
    distill_datasets,
    eval_dataset,
    manifest_classes,
    read_manifest,
    teacher_datasets,
)
from tinyclap.nn.complexity import count_macs, count_params
from tinyclap.nn.latent import restrict_embeddings
from tinyclap.pruning.ranking import rank_dimensions
from tinyclap.pruning.report import plot_pruning_curve, write_pruning_table
from tinyclap.pruning.surgery import MaskedAudioEncoder, shrink_encoder
from tinyclap.stages.brains import (
    DistillBrain,
    ProjectionFinetuneBrain,
    TeacherBrain,
    ZeroShotBrain,
)
from tinyclap.stages.cache import TeacherEmbeddingCache
from tinyclap.stages.checkpoints import config_hash, read_finished, write_finished
from tinyclap.stages.checks import check_hparams, check_ks, check_student_fits_teacher
from tinyclap.stages.transfer import run_transfer
from tinyclap.students.encoder import (
    StudentAudioEncoder,
    is_student_checkpoint,
    load_student,
    save_student,
    student_frames,
)
from tinyclap.students.phinet import PhiNetStudent, phinet_kwargs
from tinyclap.teachers import (
    file_fingerprint,
    load_teacher,
    load_teacher_from_hparams,
    teacher_source,
)
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.zeroshot.prompts import class_prompts, ensemble_prompt_embeddings
from tinyclap.zeroshot.scoring import encode_clips

# dataset name -> (module, function, hparams keys passed as keyword arguments)
_FOLDS = ("test_folds", "valid_folds")
DATASETS = {
    "synth": ("tinyclap.datasets.synth", "prepare_synth", ("n_train", "n_valid", "n_test")),
    "esc50": ("tinyclap.datasets.esc50", "prepare_esc50", _FOLDS),
    "us8k": ("tinyclap.datasets.us8k", "prepare_us8k", _FOLDS),
    "tut17": ("tinyclap.datasets.tut17", "prepare_tut17", ("tut17_test_set", *_FOLDS)),
    "audiocaps": ("tinyclap.datasets.audiocaps", "prepare_audiocaps", ("audio_pattern",)),
    "clotho": ("tinyclap.datasets.clotho", "prepare_clotho", ()),
    "macs": ("tinyclap.datasets.macs", "prepare_macs", ("valid_fraction",)),
    "fsd50k": ("tinyclap.datasets.fsd50k", "prepare_fsd50k", ()),
    "audiofolder": (
        "tinyclap.datasets.audiofolder",
        "prepare_audiofolder",
        ("valid_fraction", "label_from_folder"),
    ),
}
# hparams keys whose name differs from the preparation function's argument
_ARGUMENT_NAMES = {"tut17_test_set": "test_set"}
# splits each stage reads
STAGE_SPLITS = {
    "train_teacher": ("train", "valid", "test"),
    "distill": ("train", "valid", "test"),
    "prune": ("train", "valid", "test"),
}


def prepare_one(name, data_folder, manifest_folder=None, **options):
    """Run the preparation of dataset ``name``; return ``{split: manifest_path}``.

    Manifests go to ``manifest_folder`` (default: ``data_folder``, next to the
    audio); preparation is skipped when it already ran with the same options.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    module, function, _ = DATASETS[name]
    prepare = getattr(importlib.import_module(module), function)
    options = {_ARGUMENT_NAMES.get(k, k): v for k, v in options.items()}
    manifests = prepare(data_folder, manifest_folder or data_folder, **options)
    return {split: str(path) for split, path in manifests.items()}


def merge_corpora(corpora, folder):
    """Merge the train and valid manifests of several distillation corpora.

    Parameters
    ----------
    corpora : list of dict
        ``{"dataset": name, "data_folder": path}`` plus optional
        ``manifest_folder`` and preparation options of that dataset.
    folder : str or Path
        Where the merged ``train.json`` and ``valid.json`` go.

    Returns
    -------
    dict
        ``{"train": path, "valid": path}``; ids are ``<corpus>/<id>`` (the
        corpus is the dataset name, numbered when a dataset appears twice);
        clips without a ``label`` get ``label: null``.
    """
    merged = {"train": {}, "valid": {}}
    names = [c["dataset"] for c in corpora]
    for index, corpus in enumerate(corpora):
        corpus = dict(corpus)
        name, data_folder = corpus.pop("dataset"), corpus.pop("data_folder")
        prefix = name if names.count(name) == 1 else f"{name}{index}"
        manifests = prepare_one(name, data_folder, **corpus)
        for split in merged:
            if split in manifests:
                entries = read_manifest(manifests[split])
                # unlabelled audio: label None (no zero-shot target in validation)
                merged[split].update(
                    {f"{prefix}/{k}": {"label": None, **v} for k, v in entries.items()}
                )
    paths = {}
    for split, entries in merged.items():
        if not entries:
            raise ValueError(f"distill_corpora: no {split} clips in {names}")
        paths[split] = str(Path(folder) / f"{split}.json")
        write_manifest(paths[split], entries)
    return paths


def prepare_dataset(hparams):
    """Run the dataset's preparation and return ``{split: manifest_path}``.

    The manifests go to ``manifest_folder`` (default ``data_folder``, next to
    the audio). With ``distill_corpora``, their merged train and valid
    manifests replace the dataset's.
    """
    name = hparams["dataset"]
    keys = DATASETS[name][2] if name in DATASETS else ()
    options = {k: hparams[k] for k in keys if k in hparams}
    manifests = prepare_one(name, hparams["data_folder"], hparams.get("manifest_folder"), **options)
    if hparams.get("distill_corpora"):
        folder = Path(hparams["output_folder"]) / "distill_manifests"
        manifests.update(merge_corpora(hparams["distill_corpora"], folder))
    needed = STAGE_SPLITS.get(hparams["stage"], (hparams.get("split", "test"),))
    missing = [split for split in needed if split not in manifests]
    if missing:
        raise ValueError(
            f"dataset {name!r} in {hparams['data_folder']} has no {'/'.join(missing)} split "
            f"with these options (it has {', '.join(sorted(manifests))}); stage "
            f"{hparams['stage']!r} needs {', '.join(needed)}: choose folds with --test_folds / "
            "--valid_folds, or give distillation audio with --distill_corpora"
        )
    return manifests


def evaluate_zero_shot(encoder, teacher, manifest, classes, hparams, run_opts, name, title):
    """Zero-shot accuracy of ``encoder`` with ``teacher``'s prompt embeddings.

    Returns the :func:`tinyclap.zeroshot.report.summarise` dict; writes
    ``<output_folder>/<name>/{metrics.json, confusion.png}``.
    """
    brain = ZeroShotBrain(
        modules={"encoder": encoder},
        hparams={
            "report_folder": str(Path(hparams["output_folder"]) / name),
            "report_title": f"{title}: zero-shot, {name}",
        },
        run_opts=run_opts,
    )
    brain.class_text_embs = ensemble_prompt_embeddings(
        teacher, classes, hparams["prompt_template"], encoder
    ).cpu()
    brain.labels = classes
    dataset = eval_dataset(manifest, encoder.sample_rate, classes)
    loader_opts = hparams.get("test_dataloader_opts", {"batch_size": 16})
    brain.evaluate(dataset, test_loader_kwargs=loader_opts, progressbar=True)
    return brain.summary


def write_results(hparams, record):
    """Write ``results.json`` (stage, command, metrics) in the output folder."""
    record = {
        "stage": hparams["stage"],
        "dataset": hparams["dataset"],
        "command": " ".join(sys.argv),
        **record,
    }
    path = Path(hparams["output_folder"]) / "results.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def run_train_teacher(hparams, run_opts, manifests):
    """Contrastive training of the mini CLAP; evaluate it; save ``teacher.ckpt``."""
    classes = manifest_classes(manifests["test"])
    templates = hparams["prompt_template"]
    template = templates if isinstance(templates, str) else templates[0]
    hparams["prompts"] = class_prompts(classes, template)
    frontend = LogMel(**hparams["frontend_config"])
    datasets = teacher_datasets(
        {k: manifests[k] for k in ("train", "valid")},
        hparams["sample_rate"],
        int(hparams["window_samples"]),
        classes,
    )
    brain = TeacherBrain(
        modules={**hparams["modules"], "frontend": frontend},
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    start = time.time()
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    train_seconds = time.time() - start
    hparams["checkpointer"].recover_if_possible(min_key="loss")
    model = hparams["model"].cpu()
    save_mini_teacher(
        hparams["teacher_checkpoint"], model, hparams["frontend_config"], hparams["clip_seconds"]
    )
    teacher = load_teacher("mini", checkpoint=hparams["teacher_checkpoint"])
    summary = evaluate_zero_shot(
        teacher,
        teacher,
        manifests["test"],
        classes,
        hparams,
        run_opts,
        "zeroshot_test",
        title="mini teacher",
    )
    return write_results(
        hparams,
        {
            "teacher_checkpoint": str(hparams["teacher_checkpoint"]),
            "audio_params": model.audio_params(),
            "train_seconds": round(train_seconds, 1),
            "zs_accuracy": summary["accuracy"],
        },
    )


def build_caches(teacher, manifests, hparams):
    """Teacher-embedding caches of the train and valid splits.

    In a multi-process run the main process builds them while the others
    wait, then every process opens the finished caches.
    """
    if sb.utils.distributed.is_distributed_initialized():
        sb.utils.distributed.run_on_main(_build_caches, args=[teacher, manifests, hparams])
    return _build_caches(teacher, manifests, hparams)


def _build_caches(teacher, manifests, hparams):
    caches = {}
    for split in ("train", "valid"):
        entries = {k: v["wav"] for k, v in read_manifest(manifests[split]).items()}
        caches[split] = TeacherEmbeddingCache.build(
            hparams["cache_folder"],
            teacher,
            entries,
            teacher.window_samples,
            crops=hparams.get("cache_crops", 1),
            dtype=hparams["cache_dtype"],
        )
    return caches


def distillation_data(teacher, manifests, hparams, classes):
    """Teacher caches of the train / valid splits and the datasets reading them.

    Also sets ``hparams["window_samples"]`` and ``hparams["pad_mode"]`` to the
    teacher's.
    """
    caches = build_caches(teacher, manifests, hparams)
    datasets = distill_datasets(
        {k: manifests[k] for k in ("train", "valid")},
        caches,
        teacher.sample_rate,
        teacher.window_samples,
        classes,
    )
    hparams["window_samples"] = teacher.window_samples
    hparams["pad_mode"] = teacher.pad_mode
    return caches, datasets


def build_student(hparams, teacher):
    """The PhiNet student sized for the teacher's frontend and latent space."""
    return PhiNetStudent(**phinet_kwargs(hparams, teacher), embedding_dim=teacher.embedding_dim)


def run_distill(hparams, run_opts, manifests):
    """Distil, finetune the projection, evaluate; save ``student.ckpt``."""
    teacher = load_teacher_from_hparams(hparams, run_opts.get("device", "cpu"))
    classes = manifest_classes(manifests["test"])
    _, datasets = distillation_data(teacher, manifests, hparams, classes)
    class_text_embs = ensemble_prompt_embeddings(teacher, classes, hparams["prompt_template"])
    student = build_student(hparams, teacher)
    encoder = StudentAudioEncoder(
        student, teacher.frontend_config, teacher.clip_seconds, pad_mode=teacher.pad_mode
    )
    modules = {"student": student, "frontend": encoder.frontend}
    stages = (
        (DistillBrain, "", hparams["checkpointer"]),
        (ProjectionFinetuneBrain, "finetune_", hparams["finetune_checkpointer"]),
    )
    start = time.time()
    steps, skipped = {}, 0
    for brain_class, prefix, checkpointer in stages:
        checkpointer.add_recoverable("student", student)
        brain = brain_class(
            modules=modules,
            opt_class=hparams[f"{prefix}opt_class"],
            hparams={
                **hparams,
                "epoch_counter": hparams[f"{prefix}epoch_counter"],
                "lr_annealing": hparams[f"{prefix}lr_annealing"],
            },
            run_opts=run_opts,
            checkpointer=checkpointer,
        )
        brain.class_text_embs = class_text_embs
        brain.fit(
            brain.hparams.epoch_counter,
            datasets["train"],
            datasets["valid"],
            train_loader_kwargs=hparams["train_dataloader_opts"],
            valid_loader_kwargs=hparams["valid_dataloader_opts"],
        )
        steps[prefix.rstrip("_") or "distill"] = brain.optimizer_step  # total, resumes included
        skipped += brain.skipped_batches
        checkpointer.recover_if_possible(min_key="loss")
    train_seconds = time.time() - start
    if not sb.utils.distributed.if_main_process():  # one process saves and evaluates
        return {"stage": "distill", "rank": sb.utils.distributed.get_rank()}
    encoder = encoder.cpu()
    name, checkpoint = teacher_source(hparams)
    save_student(hparams["student_checkpoint"], encoder, teacher=checkpoint or name)
    summary = evaluate_zero_shot(
        encoder,
        teacher,
        manifests["test"],
        classes,
        hparams,
        run_opts,
        "zeroshot_test",
        title=f"student {Path(hparams['student_checkpoint']).name}",
    )
    return write_results(
        hparams,
        {
            "student_checkpoint": str(hparams["student_checkpoint"]),
            "student_config": student.config,
            "params": count_params(student),
            "train_seconds": round(train_seconds, 1),
            "optimizer_steps": steps,
            "skipped_nonfinite_batches": skipped,
            "zs_accuracy": summary["accuracy"],
        },
    )


def run_evaluate(hparams, run_opts, manifests):
    """Zero-shot evaluation of ``model`` (a student or a teacher)."""
    teacher = load_teacher_from_hparams(hparams, run_opts.get("device", "cpu"))
    model = str(hparams["model"])
    if model in ("teacher", *map(str, teacher_source(hparams))):
        encoder = teacher
    elif is_student_checkpoint(model):
        encoder = load_student(model)
    else:  # another teacher checkpoint: its own audio side, the text side of `teacher`
        encoder = load_teacher(model)
    check_student_fits_teacher(encoder, teacher, model)
    split = hparams["split"]
    classes = manifest_classes(manifests[split])
    summary = evaluate_zero_shot(
        encoder,
        teacher,
        manifests[split],
        classes,
        hparams,
        run_opts,
        f"zeroshot_{split}",
        title=Path(model).name,
    )
    return write_results(
        hparams,
        {
            "model": model,
            "split": split,
            "zs_accuracy": summary["accuracy"],
            "balanced_accuracy": summary["balanced_accuracy"],
        },
    )


def student_train_embeddings(encoder, manifest, batch_clips=128):
    """L2-normalised student embeddings ``[windows, D]`` of every clip's windows."""
    items = list(read_manifest(manifest).items())
    embeddings = []
    for start in tqdm(range(0, len(items), batch_clips), desc="student embeddings"):
        wavs = [
            load_audio(entry["wav"], encoder.sample_rate, manifest_id=clip_id)
            for clip_id, entry in items[start : start + batch_clips]
        ]
        _, per_window = encode_clips(encoder, wavs, per_window=True)
        embeddings.extend(per_window)
    return torch.cat(embeddings)


def finetune_projection(encoder, datasets, class_text_embs, hparams, run_opts, folder):
    """Projection-only finetuning of a (pruned) student; returns the best one."""
    checkpointer = hparams["finetune_checkpointer"](
        checkpoints_dir=Path(folder) / "save", recoverables={"student": encoder.student}
    )
    epoch_counter = hparams["finetune_epoch_counter"]()
    lr_annealing = hparams["finetune_lr_annealing"]()
    checkpointer.add_recoverable("counter", epoch_counter)
    checkpointer.add_recoverable("lr_annealing", lr_annealing)
    brain = ProjectionFinetuneBrain(
        modules={"student": encoder.student, "frontend": encoder.frontend},
        opt_class=hparams["finetune_opt_class"],
        hparams={
            **hparams,
            "epoch_counter": epoch_counter,
            "lr_annealing": lr_annealing,
            "train_logger": hparams["train_logger"](save_file=Path(folder) / "train_log.txt"),
        },
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    brain.kept_dims = encoder.kept_dims
    brain.class_text_embs = class_text_embs
    brain.fit(
        epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    checkpointer.recover_if_possible(min_key="loss")
    return encoder.cpu().eval()


def run_prune(hparams, run_opts, manifests):
    """Rank, mask, shrink and finetune a student for every K and ranking."""
    teacher = load_teacher_from_hparams(hparams, run_opts.get("device", "cpu"))
    full = load_student(hparams["student_checkpoint"])
    if full.kept_dims is not None:
        raise ValueError(f"{hparams['student_checkpoint']} is already pruned")
    check_student_fits_teacher(full, teacher, hparams["student_checkpoint"])
    check_ks(hparams["ks"], full.embedding_dim)
    classes = manifest_classes(manifests["test"])
    caches, datasets = distillation_data(teacher, manifests, hparams, classes)
    sources = {
        "student": lambda: student_train_embeddings(full, manifests["train"]),
        "teacher": lambda: caches["train"].embeddings,
        "random": lambda: torch.zeros(1, full.embedding_dim),
    }
    orders = {
        name: rank_dimensions(sources[name](), name, seed=hparams["seed"])
        for name in hparams["rankings"]
    }
    out = Path(hparams["output_folder"])
    test_wavs = [
        load_audio(e["wav"], full.sample_rate, manifest_id=i)
        for i, e in read_manifest(manifests["test"]).items()
    ]
    shape = (1, student_frames(full.frontend_config, full.clip_seconds), full.frontend.n_mels)

    def accuracy(encoder, name):
        return evaluate_zero_shot(
            encoder, teacher, manifests["test"], classes, hparams, run_opts, name, title=name
        )["accuracy"]

    references = {
        "teacher": accuracy(teacher, "zeroshot_teacher"),
        "unpruned student": accuracy(full, "zeroshot_unpruned"),
    }
    rows = []
    for ranking, order in orders.items():
        for k in hparams["ks"]:
            point = out / f"{ranking}_K{k}"
            config = config_hash(hparams, exclude=("ks", "rankings"), ranking=ranking, k=k,
                                 student=file_fingerprint(hparams["student_checkpoint"]),
                                 teacher=teacher.fingerprint)  # fmt: skip
            finished = read_finished(point / "row.json", config)
            if finished is not None:  # done in an earlier run, with these settings
                rows.append(finished)
                continue
            kept = order[: int(k)]
            masked = MaskedAudioEncoder(full, kept)
            shrunk = shrink_encoder(full, kept)
            cosine = F.cosine_similarity(
                encode_clips(shrunk, test_wavs),
                restrict_embeddings(encode_clips(masked, test_wavs), kept),
            )
            row = {
                "ranking": ranking,
                "k": int(k),
                "params": count_params(shrunk.student),
                "macs": count_macs(shrunk.student, shape),
                "acc_mask": accuracy(masked, f"{point.name}/zeroshot_mask"),
                "acc_shrunk": accuracy(shrunk, f"{point.name}/zeroshot_shrunk"),
                "cos_shrunk_vs_mask": float(cosine.mean()),
                "acc_finetuned": None,
            }
            if hparams["finetune_epochs"] > 0:
                text = ensemble_prompt_embeddings(
                    teacher, classes, hparams["prompt_template"], shrunk
                )
                shrunk = finetune_projection(shrunk, datasets, text, hparams, run_opts, point)
                row["acc_finetuned"] = accuracy(shrunk, f"{point.name}/zeroshot_finetuned")
            save_student(point / "student.ckpt", shrunk, teacher=full.teacher)
            rows.append(write_finished(point / "row.json", row, config))
    command = "python " + " ".join(sys.argv)
    write_pruning_table(rows, out, command)
    plot_pruning_curve(rows, out / "pruning_curve.png", references)
    return write_results(
        hparams,
        {
            "student_checkpoint": str(hparams["student_checkpoint"]),
            "unpruned_params": count_params(full.student),
            "references": references,
            "rows": rows,
        },
    )


STAGES = {
    "train_teacher": run_train_teacher,
    "distill": run_distill,
    "evaluate": run_evaluate,
    "prune": run_prune,
    "transfer": run_transfer,
}


def _pop_flag(argv, flag):
    """Remove ``flag`` (optionally followed by true/false) from ``argv``; return its value."""
    if flag not in argv:
        return False
    index = argv.index(flag)
    del argv[index]
    if index < len(argv) and argv[index].lower() in ("true", "false"):
        return argv.pop(index).lower() == "true"
    return True


def run_check_audio(hparams, manifests):
    """Decode every clip of ``manifests``; write and print the report of bad ones."""
    report = check_manifests(manifests)
    path = write_report(report, hparams["output_folder"])
    print(format_report(report))
    print(f"report: {path}")
    return {
        "stage": "check_audio",
        "dataset": hparams["dataset"],
        "checked": report["checked"],
        "bad_count": report["bad_count"],
        "report": str(path),
        "bad": [bad for result in report["splits"].values() for bad in result["bad"]],
    }


def main(argv=None):
    """Entry point of ``train.py``: run the stage named in the hparams file.

    ``--check_audio`` (a flag) checks the run's audio files instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    check_audio = _pop_flag(argv, "--check_audio")
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)  # under torchrun: join the process group
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    stage = hparams.get("stage")
    if stage not in STAGES:
        raise ValueError(f"{hparams_file}: stage must be one of {sorted(STAGES)}, got {stage!r}")
    check_hparams(hparams)  # cheap: a bad option fails before any data or model work
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if sb.utils.distributed.is_distributed_initialized():
        # The main process prepares the data while the others wait; they then
        # read the same manifests (a prepared dataset is skipped at once).
        sb.utils.distributed.run_on_main(prepare_dataset, args=[hparams])
    manifests = prepare_dataset(hparams)
    if check_audio or hparams.get("check_audio"):
        record = run_check_audio(hparams, manifests)
        print(json.dumps({k: v for k, v in record.items() if k != "bad"}, indent=2))
        return record
    if hparams.get("skip_bad_audio"):
        manifests = clean_manifests(manifests, hparams["output_folder"])
    record = STAGES[stage](hparams, run_opts, manifests)
    print(json.dumps(record, indent=2))
    return record
