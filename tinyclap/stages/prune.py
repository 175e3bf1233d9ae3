"""Stage ``prune``: keep K of the D latent dimensions of a distilled student.

``python train.py hparams/prune.yaml --student_checkpoint runs/distill/1234/student.ckpt``.
For every ranking (:mod:`tinyclap.pruning.ranking`) and every K: mask only,
shrunk (fewer parameters, no training), and shrunk + projection finetuning
against the teacher's embeddings restricted to the same K dimensions. Writes a
table and an accuracy-vs-K curve. A finished point is reused on rerun only when
it was made with the same settings.
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from tinyclap.audio.io import load_audio
from tinyclap.data.pipelines import manifest_classes, read_manifest
from tinyclap.nn.complexity import count_macs, count_params
from tinyclap.nn.latent import restrict_embeddings
from tinyclap.pruning.ranking import RANKINGS, rank_dimensions
from tinyclap.pruning.report import plot_pruning_curve, write_pruning_table
from tinyclap.pruning.surgery import MaskedAudioEncoder, shrink_encoder
from tinyclap.stages.base import register_run_state, write_results
from tinyclap.stages.distill import ProjectionFinetuneBrain, distillation_data, fit
from tinyclap.stages.evaluate import evaluate_zero_shot
from tinyclap.students.encoder import load_student, save_student
from tinyclap.teachers import file_fingerprint
from tinyclap.training.checkpoints import config_hash, read_finished, write_finished
from tinyclap.training.checks import check_ks, check_student_fits_teacher
from tinyclap.training.data import prepare_data
from tinyclap.zeroshot.prompts import ensemble_prompt_embeddings
from tinyclap.zeroshot.scoring import encode_clips


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
    """Projection-only finetuning of a (pruned) student; returns the best one.

    Every point gets fresh training objects from the hparams' factories
    (``finetune_*: !name:...``) and its own checkpoint folder.
    """
    epoch_counter = hparams["finetune_epoch_counter"]()
    lr_annealing = hparams["finetune_lr_annealing"]()
    checkpointer = hparams["finetune_checkpointer"](
        checkpoints_dir=Path(folder) / "save",
        recoverables={
            "student": encoder.student,
            "counter": epoch_counter,
            "lr_annealing": lr_annealing,
        },
    )
    register_run_state(checkpointer, hparams)
    point_hparams = {
        **hparams,
        "finetune_epoch_counter": epoch_counter,
        "finetune_lr_annealing": lr_annealing,
        "train_logger": hparams["train_logger"](save_file=Path(folder) / "train_log.txt"),
    }
    brain = ProjectionFinetuneBrain(
        modules={"student": encoder.student, "frontend": encoder.frontend},
        opt_class=hparams["finetune_opt_class"],
        hparams=point_hparams,
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    brain.kept_dims = encoder.kept_dims
    brain.class_text_embs = class_text_embs
    fit(brain, datasets, hparams, epoch_counter)
    checkpointer.recover_if_possible(min_key="loss")
    return encoder.cpu().eval()


def ranking_embeddings(name, full, caches, manifests):
    """The embeddings a ranking reads (:data:`tinyclap.pruning.ranking.RANKINGS`)."""
    source = RANKINGS[name].source
    if source == "student":
        return student_train_embeddings(full, manifests["train"])
    if source == "teacher":
        return caches["train"].embeddings
    return torch.zeros(1, full.embedding_dim)  # the ranking reads the shape only


def run_prune(hparams, run_opts):
    """Rank, mask, shrink and finetune a student for every K and ranking."""
    teacher = hparams["teacher_model"]
    full = load_student(hparams["student_checkpoint"])
    if full.kept_dims is not None:
        raise ValueError(f"{hparams['student_checkpoint']} is already pruned")
    check_student_fits_teacher(full, teacher, hparams["student_checkpoint"])
    check_ks(hparams["ks"], full.embedding_dim)
    manifests = prepare_data(hparams, ("train", "valid", "test"))
    classes = manifest_classes(manifests["test"])
    caches, datasets, manifests = distillation_data(teacher, manifests, hparams, run_opts, classes)
    orders = {
        name: rank_dimensions(
            ranking_embeddings(name, full, caches, manifests), name, seed=hparams["seed"]
        )
        for name in hparams["rankings"]
    }
    out = Path(hparams["output_folder"])
    test_wavs = [
        load_audio(e["wav"], full.sample_rate, manifest_id=i)
        for i, e in read_manifest(manifests["test"]).items()
    ]
    shape = (1, full.n_frames, full.frontend.n_mels)

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
            config = config_hash(
                hparams,
                exclude=("ks", "rankings"),
                ranking=ranking,
                k=k,
                student=file_fingerprint(hparams["student_checkpoint"]),
                teacher=teacher.fingerprint,
            )
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
        "prune",
        {
            "student_checkpoint": str(hparams["student_checkpoint"]),
            "unpruned_params": count_params(full.student),
            "references": references,
            "rows": rows,
        },
    )
