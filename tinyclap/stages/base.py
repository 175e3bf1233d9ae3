"""The base ``Brain`` of every stage, and what the stage runners share.

:class:`TinyClapBrain` does what the stages' Brains share: zero-shot
accuracy on whole clips (window-averaged), learning-rate annealing on the
validation loss, logging, checkpoint selection, and skipping the optimiser
step of a batch whose loss is not finite. :func:`write_results` writes a
stage's ``results.json``.
"""

import json
import logging
import sys
from pathlib import Path

import speechbrain as sb
import torch

from tinyclap.data.pipelines import unpad
from tinyclap.training.data import data_summary
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
    hparams_prefix = ""  # ProjectionFinetuneBrain: "finetune_"
    class_text_embs = None  # [C, D] prompt embeddings, for the zero-shot accuracy
    shard_epochs = None  # a stages.shard_data.ShardEpochs: a shard stream to position and count

    def __init__(self, *args, **kwargs):
        """``Brain.__init__``; in a multi-process ``--debug`` run, one checkpoint folder.

        In debug mode SpeechBrain 1.1 moves the checkpoints to a temporary folder
        made by each process: the main process saves into its own, the others
        list theirs (empty) before deleting old checkpoints, and the processes
        then wait on different collectives forever. All use the main process's.
        """
        super().__init__(*args, **kwargs)
        if getattr(self.checkpointer, "tempdir", None) is not None:
            folder = sb.utils.distributed.ddp_broadcast(str(self.checkpointer.checkpoints_dir))
            self.checkpointer.checkpoints_dir = Path(folder)

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
            counters = getattr(self.hparams, "step_counters", None)
            if counters is not None:  # checkpointed: the count survives resumes
                counters.increment("skipped_nonfinite_batches")
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
        """Reset the zero-shot records; position a shard stream (at a resumed batch too)."""
        self.predictions, self.targets = [], []
        if stage == sb.Stage.TRAIN and self.shard_epochs is not None:
            self.shard_epochs.start(epoch, self.step)

    def fit_batch(self, batch):
        """``Brain.fit_batch``, counting a shard stream's samples per epoch."""
        if self.shard_epochs is not None:
            self.shard_epochs.count(batch.id)
        return super().fit_batch(batch)

    def stage_stats(self, stage_loss):
        """Loss plus zero-shot accuracy when predictions were recorded."""
        stats = {"loss": stage_loss}
        if self.targets:
            correct = sum(p == t for p, t in zip(self.predictions, self.targets))
            stats["zs_acc"] = correct / len(self.targets)
        return stats

    def hparam(self, key):
        """``hparams[<hparams_prefix><key>]``: stage 2 reads its own ``finetune_*`` keys."""
        return getattr(self.hparams, f"{self.hparams_prefix}{key}")

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log, anneal the learning rate and keep the best checkpoint."""
        stats = self.stage_stats(stage_loss)
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            if self.shard_epochs is not None:
                self.shard_epochs.end(epoch)
        elif stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparam("lr_annealing")(
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
                {"Epoch loaded": self.hparam("epoch_counter").current}, test_stats=stats
            )


def register_run_state(checkpointer, hparams):
    """Add the hparams' ``rng`` and ``step_counters`` to a checkpointer (when declared).

    Optional on load, so that runs checkpointed before they existed still resume.
    """
    for name in ("rng", "step_counters"):
        if hparams.get(name) is not None and name not in checkpointer.recoverables:
            checkpointer.add_recoverable(name, hparams[name], optional_load=True)


def write_results(hparams, stage, record):
    """Write ``results.json`` (stage, command, metrics, data summary); return the record.

    The file is written atomically (a killed run never leaves half a record).
    """
    record = {
        "stage": stage,
        "dataset": hparams.get("dataset"),
        "command": " ".join(sys.argv),
        **record,
        "data": data_summary(hparams),
    }
    path = Path(hparams["output_folder"]) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(path)
    return record
