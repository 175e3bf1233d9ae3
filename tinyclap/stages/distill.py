"""Stage ``distill``: tinyCLAP's unimodal distillation, then projection finetuning.

``python train.py hparams/distill.yaml``: the hparams declare the frozen
teacher (``teacher_model``), the student (``student: !new:...``, any module
mapping log-mels ``[B, frames, n_mels]`` to ``[B, D]``), its frontend, the
loss, the data preparation and the checkpointers. The stage caches the
teacher's audio embeddings once, trains the whole student
(:class:`DistillBrain`), then its projection only (:class:`ProjectionFinetuneBrain`,
skipped for a student without a ``projection``), saves ``student.ckpt`` and
evaluates it zero-shot on the test split.
"""

import logging
import time
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F

from tinyclap.data.pipelines import (
    count_unscored,
    distill_datasets,
    manifest_classes,
    read_manifest,
)
from tinyclap.nn.complexity import count_params
from tinyclap.stages.base import TinyClapBrain, register_run_state, unwrap, write_results
from tinyclap.stages.evaluate import evaluate_zero_shot
from tinyclap.students.encoder import StudentAudioEncoder, save_student, student_output_dim
from tinyclap.training.cache import build_stage_cache, cached_manifest, debug_max_clips
from tinyclap.training.checks import check_embedding_dim
from tinyclap.training.data import prepare_data
from tinyclap.training.shard_data import (
    ShardEpochs,
    shard_distill_datasets,
    shard_loader_opts,
    shard_summary,
    uses_shards,
)
from tinyclap.zeroshot.prompts import ensemble_prompt_embeddings

logger = logging.getLogger(__name__)


class DistillBrain(TinyClapBrain):
    """Audio-only distillation: minimise ``-cos(teacher, student)``.

    Modules: ``student`` (any module ``[B, frames, n_mels] -> [B, D]``) and
    ``frontend`` (the teacher's LogMel settings). Hparams: ``teacher_model``
    (its window and padding) and ``loss`` (e.g.
    :func:`tinyclap.training.losses.distillation_loss`). Batches carry cached
    ``teacher_emb``. Set
    ``class_text_embs`` (teacher prompt embeddings) for the zero-shot
    validation accuracy, and ``kept_dims`` for a pruned student: the targets
    are then the teacher embeddings restricted to those dimensions (the loss
    re-normalises them).
    """

    kept_dims = None

    @property
    def window_samples(self):
        """The teacher's window (clips are embedded window by window)."""
        return int(self.hparams.teacher_model.window_samples)

    @property
    def pad_mode(self):
        """The teacher's padding of short clips."""
        return self.hparams.teacher_model.pad_mode

    def encode_windows(self, wavs):
        """L2-normalised student embeddings of ``[B, T]`` windows."""
        return F.normalize(self.modules.student(self.modules.frontend(wavs)), dim=-1)

    def compute_forward(self, batch, stage):
        """Student embeddings of windows (training) or whole clips."""
        batch = batch.to(self.device)
        if stage == sb.Stage.TRAIN:
            return self.modules.student(self.modules.frontend(batch.sig.data))
        return self.embed_clips(batch.sig, self.encode_windows, self.window_samples, self.pad_mode)

    def compute_objectives(self, predictions, batch, stage):
        """Distillation loss; zero-shot predictions outside training."""
        if stage != sb.Stage.TRAIN:
            self.record_zero_shot(F.normalize(predictions, dim=-1), batch.label_index)
        target = batch.teacher_emb.data
        if self.kept_dims is not None:
            target = target[:, torch.as_tensor(self.kept_dims, device=target.device)]
        return self.hparams.loss(predictions, target)


class ProjectionFinetuneBrain(DistillBrain):
    """tinyCLAP stage 2: only the student's ``projection`` is trained.

    Everything else in the student stays in eval mode (BatchNorm statistics
    frozen) and is not given to the optimizer. Reads the ``finetune_*``
    hparams (epoch counter, annealing).
    """

    hparams_prefix = "finetune_"

    def on_fit_start(self):
        """Freeze the backbone, then start as SpeechBrain does.

        Under DDP, SpeechBrain wraps the student next, and DDP must see only
        the parameters that will receive gradients.
        """
        student = unwrap(self.modules.student)
        student.requires_grad_(False)
        student.projection.requires_grad_(True)
        super().on_fit_start()

    def init_optimizers(self):
        """Optimise ``student.projection`` only."""
        self.optimizer = self.opt_class(unwrap(self.modules.student).projection.parameters())
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def on_fit_batch_start(self, batch, should_step):
        """Keep all but the projection in eval mode (BatchNorm statistics frozen).

        ``Brain`` puts every module in train mode after ``on_stage_start``, so
        this is done before each training batch.
        """
        student = unwrap(self.modules.student)
        student.eval()
        student.projection.train()


def build_caches(teacher, manifests, hparams, run_opts):
    """Teacher-embedding caches of the train and valid splits, and the manifests they cover.

    In a multi-process run every process embeds a shard of each split and
    the main process merges them (:meth:`TeacherEmbeddingCache.build
    <tinyclap.training.cache.TeacherEmbeddingCache.build>` is collective), then
    every process opens the finished caches. A ``--debug`` run
    caches only the clips its few batches read
    (:func:`tinyclap.training.cache.debug_max_clips`) and trains on the
    manifests restricted to them.

    Returns
    -------
    caches : dict
        ``{split: TeacherEmbeddingCache}``.
    manifests : dict
        The input manifests, with the train / valid ones restricted to the
        cached clips in a ``--debug`` run.
    """
    caches, manifests = {}, dict(manifests)
    loader_opts = {"train": "train_dataloader_opts", "valid": "valid_dataloader_opts"}
    for split in ("train", "valid"):
        entries = {k: v["wav"] for k, v in read_manifest(manifests[split]).items()}
        batch_size = hparams[loader_opts[split]].get("batch_size", 1)
        max_clips = debug_max_clips(run_opts, batch_size)
        caches[split] = build_stage_cache(teacher, entries, hparams, max_clips)
        if len(caches[split]) < len(entries):  # --debug: only the cached clips
            out = Path(hparams["output_folder"]) / "debug_manifests" / f"{split}.json"
            args = [manifests[split], caches[split], out]
            sb.utils.distributed.run_on_main(cached_manifest, args=args)  # one writer
            manifests[split] = str(out)
    return caches, manifests


def distillation_data(teacher, manifests, hparams, run_opts, classes):
    """Teacher caches of the train / valid splits, the datasets reading them, the manifests.

    Returns ``(caches, datasets, manifests)``; see :func:`build_caches`.
    """
    caches, manifests = build_caches(teacher, manifests, hparams, run_opts)
    datasets = distill_datasets(
        {k: manifests[k] for k in ("train", "valid")},
        caches,
        teacher.sample_rate,
        teacher.window_samples,
        classes,
    )
    return caches, datasets, manifests


def fit(brain, datasets, hparams, counter):
    """``brain.fit`` on the distillation datasets with the hparams' loader options."""
    train_opts, valid_opts = hparams["train_dataloader_opts"], hparams["valid_dataloader_opts"]
    if uses_shards(hparams):
        train_opts, valid_opts = shard_loader_opts(train_opts), shard_loader_opts(valid_opts)
    brain.fit(
        counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_opts,
        valid_loader_kwargs=valid_opts,
    )


def skipped_batches(hparams):
    """Optimiser steps skipped for a non-finite loss, over the whole run (resumes included)."""
    counters = hparams.get("step_counters")
    return counters["skipped_nonfinite_batches"] if counters is not None else None


def run_distill(hparams, run_opts):
    """Distil, finetune the projection, evaluate; save ``student.ckpt``."""
    teacher, student, frontend = hparams["teacher_model"], hparams["student"], hparams["frontend"]
    out_dim = student_output_dim(student, teacher.window_frames, frontend.n_mels)
    check_embedding_dim(out_dim, teacher, key="student (its output size)")
    shards = uses_shards(hparams)  # train / valid from shard sets, test from its manifest
    manifests = prepare_data(hparams, ("test",) if shards else ("train", "valid", "test"))
    classes = manifest_classes(manifests["test"])
    if shards:
        datasets, unscored = shard_distill_datasets(teacher, hparams, classes), None
    else:
        _, datasets, manifests = distillation_data(teacher, manifests, hparams, run_opts, classes)
        unscored = count_unscored(manifests["valid"], classes)
    if unscored:
        logger.info("%d validation clips have no label among the test classes: unscored", unscored)
    class_text_embs = ensemble_prompt_embeddings(teacher, classes, hparams["prompt_template"])
    start = time.time()
    steps = {}
    stages = [(DistillBrain, "")]
    if isinstance(getattr(student, "projection", None), torch.nn.Module):
        stages.append((ProjectionFinetuneBrain, "finetune_"))
    else:
        logger.info("the student has no `projection`: projection finetuning skipped")
    for brain_class, prefix in stages:
        register_run_state(hparams[f"{prefix}checkpointer"], hparams)
        brain = brain_class(
            modules=hparams["modules"],
            opt_class=hparams[f"{prefix}opt_class"],
            hparams=hparams,
            run_opts=run_opts,
            checkpointer=hparams[f"{prefix}checkpointer"],
        )
        brain.class_text_embs = class_text_embs
        if shards:  # positioned per epoch (exact resume), samples counted per rank
            brain.shard_epochs = ShardEpochs(
                datasets["train"],
                hparams["train_dataloader_opts"],
                Path(hparams["output_folder"]) / "shard_epochs",
                prefix.rstrip("_") or "distill",
                hparams[f"{prefix}checkpointer"],
            )
        fit(brain, datasets, hparams, hparams[f"{prefix}epoch_counter"])
        steps[prefix.rstrip("_") or "distill"] = brain.optimizer_step  # total, resumes included
        hparams[f"{prefix}checkpointer"].recover_if_possible(min_key="loss")
    train_seconds = time.time() - start
    if not sb.utils.distributed.if_main_process():  # one process saves and evaluates
        return {"stage": "distill", "rank": sb.utils.distributed.get_rank()}
    encoder = StudentAudioEncoder(
        unwrap(student).cpu(), frontend.config, teacher.clip_seconds, pad_mode=teacher.pad_mode
    )
    save_student(hparams["student_checkpoint"], encoder, teacher=teacher.source)
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
        "distill",
        {
            "student_checkpoint": str(hparams["student_checkpoint"]),
            "student_config": getattr(student, "config", None),
            "student_class": f"{type(student).__module__}.{type(student).__qualname__}",
            "params": count_params(student),
            "train_seconds": round(train_seconds, 1),
            "optimizer_steps": steps,
            "skipped_nonfinite_batches": skipped_batches(hparams),
            "valid_unscored_clips": unscored,
            "zs_accuracy": summary["accuracy"],
            **({"shards": shard_summary(hparams, datasets)} if shards else {}),
        },
    )
