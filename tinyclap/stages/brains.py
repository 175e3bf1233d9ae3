"""SpeechBrain ``Brain`` classes, one per stage, sharing one base class.

- :class:`TeacherBrain`: contrastive training of the embedded mini CLAP.
- :class:`DistillBrain`: the student learns the teacher's audio embeddings
  with ``-cos(teacher, student)`` (teacher embeddings come from the cache).
- :class:`ProjectionFinetuneBrain`: the same loss, only the student's
  projection is trained (tinyCLAP's second stage).
- :class:`ZeroShotBrain`: zero-shot evaluation of any audio encoder against
  the teacher's prompt embeddings.
- :class:`TransferBrain`: a supervised student classifier with the teacher's
  (compressed) embeddings as extra regression targets (EAsT).

The base class :class:`TinyClapBrain` does what they share: zero-shot
accuracy on whole clips (window-averaged), learning-rate annealing on the
validation loss, logging, checkpoint selection, and skipping the optimiser
step of a batch whose loss is not finite.
"""

import logging

import speechbrain as sb
import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows
from tinyclap.data.pipelines import unpad
from tinyclap.stages.losses import contrastive_loss, distillation_loss
from tinyclap.zeroshot.report import summarise, write_report
from tinyclap.zeroshot.scoring import clip_embeddings

logger = logging.getLogger(__name__)


def unwrap(module):
    """The module inside a DDP / DataParallel wrapper (SpeechBrain wraps for multi-process)."""
    return getattr(module, "module", module)


class TinyClapBrain(sb.Brain):
    """Shared behaviour: zero-shot bookkeeping, annealing, logging, checkpoints.

    Subclasses implement ``compute_forward`` / ``compute_objectives`` and
    :meth:`class_text_embeddings`; they call :meth:`record_zero_shot` with
    clip embeddings during validation and test.
    """

    skipped_batches = 0  # optimiser steps skipped for a non-finite loss, whole run
    _skip_step = False

    def class_text_embeddings(self):
        """``[C, D]`` L2-normalised prompt embeddings of the classes."""
        return self.class_text_embs

    def _wrap_distributed(self):
        """SpeechBrain's DDP wrapping, minus SyncBatchNorm on CPU.

        SpeechBrain 1.1 converts every BatchNorm to SyncBatchNorm, which only
        runs on GPUs; on CPU (``--distributed_backend gloo``) the modules are
        wrapped in DDP as they are, so BatchNorm statistics stay per process.
        """
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                    module, find_unused_parameters=self.find_unused_parameters
                )

    def check_loss_isfinite(self, loss):
        """SpeechBrain's count against ``--nonfinite_patience``, and mark the step for skipping.

        Brain alone would still step the optimiser with NaN gradients (unless
        ``--skip_nonfinite_grads``), turning every weight into NaN.
        """
        self._skip_step = self._skip_step or not bool(torch.isfinite(loss))
        super().check_loss_isfinite(loss)

    def optimizers_step(self):
        """``Brain.optimizers_step``, except after a non-finite loss: drop the gradients."""
        if self._skip_step:
            self.zero_grad(set_to_none=True)
            self._skip_step = False
            self.skipped_batches += 1
            logger.warning(
                "skipped a batch with a non-finite loss (%d so far)", self.skipped_batches
            )
            return
        super().optimizers_step()

    def record_zero_shot(self, clip_embs, label_index):
        """Store zero-shot predictions of L2-normalised ``clip_embs``.

        Clips with ``label_index < 0`` (unlabelled distillation audio, or a
        label outside the zero-shot classes) are not scored.
        """
        text = self.class_text_embeddings().to(clip_embs.device)
        scored = label_index >= 0
        self.predictions.extend((clip_embs[scored] @ text.T).argmax(-1).tolist())
        self.targets.extend(label_index[scored].tolist())

    def embed_clips(self, padded_sig, embed_audio, window_samples, pad_mode="zeros"):
        """Window-averaged embeddings of the (padded) clips of a batch."""
        wavs = [w.to(self.device) for w in unpad(padded_sig)]
        return clip_embeddings(embed_audio, wavs, window_samples, pad_mode=pad_mode)

    def on_stage_start(self, stage, epoch=None):
        """Reset the zero-shot records."""
        self.predictions, self.targets = [], []

    def stage_stats(self, stage_loss):
        """Loss plus zero-shot accuracy when predictions were recorded."""
        stats = {"loss": stage_loss}
        if self.targets:
            correct = sum(p == t for p, t in zip(self.predictions, self.targets))
            stats["zs_acc"] = correct / len(self.targets)
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log, anneal the learning rate and keep the best checkpoint."""
        stats = self.stage_stats(stage_loss)
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(
                [self.optimizer], current_epoch=epoch, current_loss=stage_loss
            )
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                {"epoch": epoch, "lr": old_lr},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(meta=stats, min_keys=["loss"], num_to_keep=1)
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats
            )


class TeacherBrain(TinyClapBrain):
    """Contrastive training of :class:`tinyclap.teachers.mini_clap.MiniCLAP`.

    Modules: ``model`` (MiniCLAP) and ``frontend`` (LogMel). Hparams:
    ``sentence_encoder`` (frozen MiniLM), ``prompts`` (one per class),
    ``window_samples``.
    """

    def on_fit_start(self):
        """Embed every caption and prompt once (the text encoder is frozen)."""
        super().on_fit_start()
        for dataset in (self.train_set, self.valid_set):
            if dataset is not None:
                with dataset.output_keys_as(["caption"]):
                    self.hparams.sentence_encoder([item["caption"] for item in dataset])
        self.hparams.sentence_encoder(self.hparams.prompts)

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """Keep the datasets for :meth:`on_fit_start`, then ``Brain.fit``."""
        self.train_set, self.valid_set = train_set, valid_set
        super().fit(epoch_counter, train_set, valid_set, **kwargs)

    def class_text_embeddings(self):
        """Current prompt embeddings of the model being trained."""
        with torch.no_grad():
            sentence = self.hparams.sentence_encoder(self.hparams.prompts).to(self.device)
            return F.normalize(self.modules.model.encode_sentence_embeddings(sentence), dim=-1)

    def encode_windows(self, wavs):
        """L2-normalised audio embeddings of ``[B, T]`` windows."""
        audio = self.modules.model.encode_audio(self.modules.frontend(wavs))
        return F.normalize(audio, dim=-1)

    def compute_forward(self, batch, stage):
        """Audio embeddings (whole clips outside training) and caption embeddings."""
        batch = batch.to(self.device)
        if stage == sb.Stage.TRAIN:
            audio = self.encode_windows(batch.sig.data)
        else:
            audio = self.embed_clips(
                batch.sig, self.encode_windows, int(self.hparams.window_samples)
            )
        sentence = self.hparams.sentence_encoder(batch.caption).to(self.device)
        text = self.modules.model.encode_sentence_embeddings(sentence)
        return audio, text

    def compute_objectives(self, predictions, batch, stage):
        """Symmetric contrastive loss; zero-shot predictions outside training."""
        audio, text = predictions
        if stage != sb.Stage.TRAIN:
            self.record_zero_shot(F.normalize(audio, dim=-1), batch.label_index)
        return contrastive_loss(audio, text, self.modules.model.logit_scale)


class DistillBrain(TinyClapBrain):
    """Audio-only distillation: minimise ``-cos(teacher, student)``.

    Modules: ``student`` (PhiNetStudent) and ``frontend`` (the teacher's
    LogMel settings). Hparams: ``window_samples`` and ``pad_mode`` (the
    teacher's). Batches carry cached ``teacher_emb``. Set
    ``class_text_embs`` (teacher prompt embeddings) for the zero-shot
    validation accuracy, and ``kept_dims`` for a pruned student: the targets
    are then the teacher embeddings restricted to those dimensions (the loss
    re-normalises them).
    """

    kept_dims = None

    def encode_windows(self, wavs):
        """L2-normalised student embeddings of ``[B, T]`` windows."""
        return F.normalize(self.modules.student(self.modules.frontend(wavs)), dim=-1)

    def compute_forward(self, batch, stage):
        """Student embeddings of windows (training) or whole clips."""
        batch = batch.to(self.device)
        if stage == sb.Stage.TRAIN:
            return self.modules.student(self.modules.frontend(batch.sig.data))
        return self.embed_clips(
            batch.sig, self.encode_windows, int(self.hparams.window_samples), self.hparams.pad_mode
        )

    def compute_objectives(self, predictions, batch, stage):
        """Distillation loss; zero-shot predictions outside training."""
        if stage != sb.Stage.TRAIN:
            self.record_zero_shot(F.normalize(predictions, dim=-1), batch.label_index)
        target = batch.teacher_emb.data
        if self.kept_dims is not None:
            target = target[:, torch.as_tensor(self.kept_dims, device=target.device)]
        return distillation_loss(predictions, target)


class ProjectionFinetuneBrain(DistillBrain):
    """tinyCLAP stage 2: only the student's projection is trained.

    The backbone stays in eval mode (BatchNorm statistics frozen) and is not
    given to the optimizer.
    """

    def on_fit_start(self):
        """Freeze the backbone, then start as SpeechBrain does.

        Under DDP, SpeechBrain wraps the student next, and DDP must see only
        the parameters that will receive gradients.
        """
        unwrap(self.modules.student).base.requires_grad_(False)
        super().on_fit_start()

    def init_optimizers(self):
        """Optimise ``student.projection`` only."""
        self.optimizer = self.opt_class(unwrap(self.modules.student).projection.parameters())
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def on_fit_batch_start(self, batch, should_step):
        """Keep the backbone in eval mode (BatchNorm statistics frozen).

        ``Brain`` puts every module in train mode after ``on_stage_start``, so
        this is done before each training batch.
        """
        unwrap(self.modules.student).base.eval()


class ZeroShotBrain(TinyClapBrain):
    """Zero-shot evaluation of an audio encoder (teacher or student).

    Modules: ``encoder`` with ``embed_audio``, ``window_samples`` and
    ``pad_mode``. Set
    ``class_text_embs`` and ``labels``; hparams ``report_folder`` and
    ``report_title`` say where the metrics and confusion matrix go.
    """

    def compute_forward(self, batch, stage):
        """Window-averaged clip embeddings."""
        batch = batch.to(self.device)
        encoder = self.modules.encoder
        return self.embed_clips(
            batch.sig, encoder.embed_audio, encoder.window_samples, encoder.pad_mode
        )

    def compute_objectives(self, predictions, batch, stage):
        """Cross-entropy of the (scaled) similarities; records predictions."""
        self.record_zero_shot(predictions, batch.label_index)
        logits = 100.0 * predictions @ self.class_text_embeddings().to(self.device).T
        return F.cross_entropy(logits, batch.label_index)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Write metrics.json and the confusion matrix; keep the summary."""
        self.summary = summarise(self.targets, self.predictions, self.labels)
        self.summary["loss"] = stage_loss
        write_report(self.summary, self.hparams.report_folder, self.hparams.report_title)


class TransferBrain(TinyClapBrain):
    """Embedding-as-target transfer (EAsT): a supervised student with teacher targets.

    Training loss per batch::

        (1 - lam) * CE(student logits, y)
        + lam * L_reg(regressor(student feature), C(teacher embedding).detach())
        + L_teacher(C)

    ``L_teacher`` (only for the learned compression) trains ``C`` and its probe
    and nothing else; the detach keeps the student's loss out of ``C``.

    Modules: ``student`` (:class:`tinyclap.students.phinet.PhiNetClassifier`),
    ``regressor`` (a linear map to ``C``'s size, or ``Identity`` for dCor),
    ``compression`` (:mod:`tinyclap.stages.compression`), ``frontend`` (LogMel).
    Hparams: ``transfer_lambda``, ``reg_loss_fn``, ``window_samples``, ``pad_mode``,
    ``epoch_counter``, ``lr_annealing`` (per-epoch, e.g.
    ``LinearScheduler``), ``train_logger``. Set ``labels`` (class names) for
    the test report. Training runs a fixed number of epochs (no validation
    split: the held-out fold is only used once, at the end).
    """

    def on_stage_start(self, stage, epoch=None):
        """Reset predictions and the per-term loss sums."""
        super().on_stage_start(stage, epoch)
        self.terms = {}

    def add_term(self, name, value):
        """Accumulate a detached loss term for the epoch's log."""
        total, count = self.terms.get(name, (0.0, 0))
        self.terms[name] = (total + float(value.detach()), count + 1)

    def clip_logits(self, padded_sig):
        """Window-averaged logits of the (padded) whole clips of a batch."""
        window = int(self.hparams.window_samples)
        pad_mode = self.hparams.pad_mode  # the teacher's, as the cached training crops
        windows = [split_windows(w, window, pad_mode=pad_mode) for w in unpad(padded_sig)]
        logits, _ = self.modules.student(self.modules.frontend(torch.cat(windows)))
        return torch.stack([chunk.mean(0) for chunk in logits.split([len(w) for w in windows])])

    def compute_forward(self, batch, stage):
        """``(logits, features)`` of training windows; clip logits at test time."""
        batch = batch.to(self.device)
        if stage == sb.Stage.TRAIN:
            return self.modules.student(self.modules.frontend(batch.sig.data))
        return self.clip_logits(batch.sig), None

    def compute_objectives(self, predictions, batch, stage):
        """The EAsT loss in training; cross-entropy at test time."""
        logits, features = predictions
        labels = batch.label_index
        self.predictions.extend(logits.argmax(-1).tolist())
        self.targets.extend(labels.tolist())
        ce = F.cross_entropy(logits, labels)
        if stage != sb.Stage.TRAIN:
            return ce
        teacher = batch.teacher_emb.data
        target = self.modules.compression(teacher).detach()
        reg = self.hparams.reg_loss_fn(self.modules.regressor(features), target)
        lam = float(self.hparams.transfer_lambda)
        loss = (1.0 - lam) * ce + lam * reg
        self.add_term("ce", ce)
        self.add_term("reg", reg)
        teacher_loss = self.modules.compression.teacher_loss(teacher, labels)
        if teacher_loss is not None:
            self.add_term("teacher_loss", teacher_loss)
            loss = loss + teacher_loss
        return loss

    def stage_stats(self, stage_loss):
        """Loss, its terms and the accuracy of the recorded predictions."""
        stats = {"loss": stage_loss}
        stats.update({name: total / count for name, (total, count) in self.terms.items()})
        if self.targets:
            correct = sum(p == t for p, t in zip(self.predictions, self.targets))
            stats["acc"] = correct / len(self.targets)
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Train: anneal, log, checkpoint. Test: log and keep the summary."""
        stats = self.stage_stats(stage_loss)
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            old_lr, new_lr = self.hparams.lr_annealing(epoch)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats({"epoch": epoch, "lr": old_lr}, train_stats=stats)
            self.checkpointer.save_and_keep_only(meta=stats, num_to_keep=1)
        else:
            self.summary = summarise(self.targets, self.predictions, self.labels)
            self.summary["loss"] = stage_loss
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats
            )
