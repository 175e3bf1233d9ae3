"""The ``transfer`` stage: embedding-as-target transfer (EAsT) with compression.

``python train.py hparams/transfer.yaml --teacher_checkpoint T`` trains a
supervised PhiNet classifier (:class:`tinyclap.students.phinet.PhiNetClassifier`)
with the loss of :class:`tinyclap.stages.transfer.TransferBrain`::

    (1 - lam) * CE + lam * L_reg(student feature, C(teacher embedding))

(Ding & Lerch 2024; ``L_reg`` in :mod:`tinyclap.training.losses`, ``C`` in
:mod:`tinyclap.training.compression`). Evaluation is fold-wise, ESC-50 style: the clips
of the manifests named by ``pool_splits`` form a pool with folds
(:mod:`tinyclap.data.folds`); for every fold in ``folds`` the student trains on a
labelled subset of the other folds (``labeled_per_class`` clips per class, or
all) and is tested once, after the last epoch, on the held-out fold. The
teacher embeddings of the training clips come from the teacher-embedding
cache. Writes ``fold_<k>/`` (manifests, checkpoints, ``result.json``,
metrics and confusion matrix) and ``results.json`` with the accuracy of each
fold and their mean and standard deviation.
"""

import json
import logging
import statistics
import time
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows
from tinyclap.data.folds import assign_folds, labeled_subset, single_label_pool
from tinyclap.data.pipelines import read_manifest, transfer_datasets, unpad
from tinyclap.nn.complexity import count_params
from tinyclap.stages.base import TinyClapBrain, write_results
from tinyclap.training.cache import build_stage_cache
from tinyclap.training.checkpoints import config_hash, read_finished, write_finished
from tinyclap.training.compression import build_compression
from tinyclap.training.data import prepare_data
from tinyclap.training.losses import regression_loss
from tinyclap.training.random_state import StepCounters
from tinyclap.training.shard_data import uses_shards
from tinyclap.training.shard_pool import COLLATE, pool_datasets, read_shard_pool
from tinyclap.zeroshot.report import summarise, write_report


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
    ``compression`` (:mod:`tinyclap.training.compression`), ``frontend`` (LogMel).
    Hparams: ``transfer_lambda``, ``reg_loss_fn``, ``teacher_model`` (its window and padding),
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
        window = int(self.hparams.teacher_model.window_samples)
        pad_mode = self.hparams.teacher_model.pad_mode  # the teacher's, as the cached crops
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


logger = logging.getLogger(__name__)


def read_pool(manifests, splits, single_label=True):
    """The clips of ``manifests[split]`` for ``split`` in ``splits``, and a dropped count.

    With ``single_label``, clips whose ``labels`` hold more than one class (the
    Synth mixtures) are left out (:func:`tinyclap.data.folds.single_label_pool`)
    and counted, so that every clip has one true class. Each entry records its
    ``split``. Ids must be unique across the splits.

    Returns
    -------
    pool : dict
        ``{id: entry}``.
    dropped : int
        Multi-label clips left out (0 without ``single_label``).
    """
    pool = {}
    for split in splits:
        if split not in manifests:
            raise ValueError(f"pool split {split!r} not prepared; have {sorted(manifests)}")
        for key, entry in read_manifest(manifests[split]).items():
            if key in pool:
                raise ValueError(f"clip id {key!r} appears in two pool splits")
            if "label" not in entry:
                raise ValueError(f"{manifests[split]}: entry {key!r} has no 'label'")
            pool[key] = {**entry, "split": split}
    if not single_label:
        return pool, 0
    pool, dropped = single_label_pool(pool)
    if dropped:
        logger.info("transfer pool: %d multi-label clips left out (single_label)", dropped)
    return pool, dropped


def debug_pool(pool, num_folds):
    """A ``--debug`` pool: the first ``num_folds`` clips of each class (sorted ids).

    Every fold still gets a clip of every class, and the teacher cache covers
    a few clips per class instead of the whole dataset.

    Example
    -------
    >>> pool = {f"{c}{i}": {"label": c} for c in "ab" for i in range(5)}
    >>> sorted(debug_pool(pool, 2))
    ['a0', 'a1', 'b0', 'b1']
    """
    kept, counts = {}, {}
    for key in sorted(pool):
        label = pool[key]["label"]
        if counts.get(label, 0) < int(num_folds):
            kept[key] = pool[key]
            counts[label] = counts.get(label, 0) + 1
    return kept


def pool_caches(teacher, manifests, pool, hparams, whole_manifests=True):
    """``{clip_id: cache}``: teacher-embedding caches of the pool's manifests.

    One cache per manifest: all its clips (the same caches as the other
    stages build for that manifest), or only the pool's clips with
    ``whole_manifests=False`` (``--debug``).
    """
    caches = {}
    for split in sorted({e["split"] for e in pool.values()}):
        entries = {k: v["wav"] for k, v in read_manifest(manifests[split]).items()}
        if not whole_manifests:
            entries = {k: wav for k, wav in entries.items() if k in pool}
        cache = build_stage_cache(teacher, entries, hparams)
        caches.update({key: cache for key, e in pool.items() if e["split"] == split})
    return caches


def cached_embeddings(caches, keys):
    """``[N, D]`` float32 teacher embeddings of every cached window of ``keys``."""
    rows = [
        caches[key].get(key, window)
        for key in keys
        for window in range(caches[key].num_windows(key))
    ]
    return torch.stack(rows)


def write_fold_manifests(pool, train_keys, test_keys, folder):
    """Write ``train.json`` / ``test.json`` of one fold; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, keys in (("train", train_keys), ("test", test_keys)):
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps({k: pool[k] for k in keys}, indent=1), encoding="utf-8")
    return {name: str(path) for name, path in paths.items()}


def fold_seed(seed, fold):
    """Seed of one fold's run (independent of which folds ran before).

    Example
    -------
    >>> fold_seed(3, 2)
    3002
    """
    return int(seed) * 1000 + int(fold)


def run_fold(fold, pool, folds, caches, teacher, classes, hparams, run_opts, shard_audio=None):
    """Train and test the student of one fold; return its result dict.

    ``shard_audio``: the pool's audio read from shards (``data_source: shards``,
    :mod:`tinyclap.training.shard_pool`); ``caches`` is then its teacher rows.
    """
    folder = Path(hparams["output_folder"]) / f"fold_{fold}"
    config = config_hash(hparams, exclude=("folds",), fold=fold, teacher=teacher.fingerprint)
    finished = read_finished(folder / "result.json", config)
    if finished is not None:  # done in an earlier run, with these settings
        return finished
    test_keys = sorted(k for k, f in folds.items() if f == fold)
    train_pool = sorted(k for k, f in folds.items() if f != fold)
    if not test_keys:
        raise ValueError(f"fold {fold} is empty; folds present: {sorted(set(folds.values()))}")
    train_keys = labeled_subset(
        train_pool, pool, hparams["labeled_per_class"], seed=fold_seed(hparams["split_seed"], fold)
    )
    manifests = write_fold_manifests(pool, train_keys, test_keys, folder)

    reg_fn, needs_regressor = regression_loss(hparams["reg_loss"])
    fit_keys = train_keys if hparams["pca_fit_on"] == "labeled" else train_pool
    sb.utils.seed.seed_everything(fold_seed(hparams["seed"], fold))
    student = hparams["student"](num_classes=len(classes))
    compression = build_compression(
        hparams["compression"],
        teacher.embedding_dim,
        int(hparams["compression_dim"]),
        len(classes),
        fit_embeddings=(
            cached_embeddings(caches, fit_keys) if hparams["compression"] == "pca" else None
        ),
    )
    regressor = (
        torch.nn.Linear(int(hparams["head_channels"]), compression.out_dim)
        if needs_regressor
        else torch.nn.Identity()
    )
    modules = {
        "student": student,
        "regressor": regressor,
        "compression": compression,
        "frontend": hparams["frontend"],
    }
    epoch_counter = hparams["epoch_counter"]()
    checkpointer = hparams["checkpointer"](
        checkpoints_dir=folder / "save",
        recoverables={
            "student": student,
            "regressor": regressor,
            "compression": compression,
            "counter": epoch_counter,
        },
    )
    counters = StepCounters(["skipped_nonfinite_batches"])  # this fold's own count
    checkpointer.add_recoverable("step_counters", counters, optional_load=True)
    if hparams.get("rng") is not None:
        checkpointer.add_recoverable("rng", hparams["rng"], optional_load=True)
    brain = TransferBrain(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams={
            **hparams,
            "reg_loss_fn": reg_fn,
            "step_counters": counters,
            "epoch_counter": epoch_counter,
            "lr_annealing": hparams["lr_annealing"](),
            "train_logger": hparams["train_logger"](save_file=folder / "train_log.txt"),
        },
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    brain.labels = classes
    train_opts, test_opts = hparams["train_dataloader_opts"], hparams["test_dataloader_opts"]
    if shard_audio is None:
        datasets = transfer_datasets(
            manifests, caches, teacher.sample_rate, teacher.window_samples, classes
        )
    else:  # the in-memory pool read from shards (one sequential read)
        rows = caches[train_keys[0]]
        datasets = pool_datasets(train_keys, test_keys, pool, shard_audio, rows, classes,
                                 teacher.sample_rate)  # fmt: skip
        train_opts, test_opts = {**train_opts, **COLLATE}, {**test_opts, **COLLATE}
    start = time.time()
    brain.fit(epoch_counter, datasets["train"], None, train_loader_kwargs=train_opts)
    train_seconds = time.time() - start
    brain.evaluate(datasets["test"], test_loader_kwargs=test_opts)
    write_report(brain.summary, folder / "test", f"transfer fold {fold}")
    result = {
        "fold": int(fold),
        "accuracy": brain.summary["accuracy"],
        "balanced_accuracy": brain.summary["balanced_accuracy"],
        "student_config": student.config,
        "params": count_params(student),  # deployed: backbone + classifier
        "num_train_clips": len(train_keys),
        "num_test_clips": len(test_keys),
        "train_seconds": round(train_seconds, 1),
        "skipped_nonfinite_batches": counters["skipped_nonfinite_batches"],
        "final_train_stats": getattr(brain, "train_stats", None),
    }
    if hparams["compression"] == "pca":
        result["pca_explained_variance"] = compression.explained_variance_ratio
    result = write_finished(folder / "result.json", result, config)
    return result


def summarise_folds(accuracies):
    """Mean and sample standard deviation (0 for one fold) of fold accuracies.

    Example
    -------
    >>> summarise_folds([0.5, 0.7])
    {'mean': 0.6, 'std': 0.1414}
    """
    mean = statistics.fmean(accuracies)
    std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    return {"mean": round(mean, 4), "std": round(std, 4)}


def run_transfer(hparams, run_opts):
    """The ``transfer`` stage: fold-wise EAsT training and testing.

    Its options are checked when the hparams are loaded, before any data or
    model work (:func:`tinyclap.training.checks.check_transfer_options`).
    """
    teacher = hparams["teacher_model"]
    shard_audio = None
    if uses_shards(hparams):  # the pool from <shards_folder>/<split>, read once
        manifests = None
        pool, shard_audio, rows = read_shard_pool(teacher, hparams, hparams["pool_splits"])
        pool, dropped = single_label_pool(pool) if hparams["single_label"] else (pool, 0)
    else:
        manifests = prepare_data(hparams, tuple(hparams["pool_splits"]))
        pool, dropped = read_pool(manifests, hparams["pool_splits"], hparams["single_label"])
    debug = bool(run_opts.get("debug"))
    if debug:  # a few clips per class: --debug bounds the teacher cache too
        pool = debug_pool(pool, hparams["num_folds"])
    folds = assign_folds(pool, hparams["num_folds"], hparams["fold_seed"])
    classes = sorted({e["label"] for e in pool.values()})
    if shard_audio is None:
        caches = pool_caches(teacher, manifests, pool, hparams, whole_manifests=not debug)
    else:
        caches = {key: rows for key in pool}
    eval_folds = hparams["folds"] or sorted(set(folds.values()))
    results = [
        run_fold(int(f), pool, folds, caches, teacher, classes, hparams, run_opts, shard_audio)
        for f in eval_folds
    ]
    return write_results(
        hparams,
        "transfer",
        {
            "variant": {
                key: hparams[key]
                for key in ("transfer_lambda", "reg_loss", "compression", "compression_dim")
            },
            "labeled_per_class": hparams["labeled_per_class"],
            "pool_clips": len(pool),
            "dropped_multi_label_clips": dropped,
            "seed": hparams["seed"],
            "student_config": results[0]["student_config"],
            "params": results[0]["params"],
            "folds": results,
            "accuracy": summarise_folds([r["accuracy"] for r in results]),
        },
    )
