"""Stage ``evaluate``: zero-shot evaluation of a teacher or a student.

``python train.py hparams/evaluate.yaml --model runs/distill/1234/student.ckpt``.
The hparams declare the teacher (its text tower gives the class embeddings),
the model to evaluate (:func:`load_encoder`) and the data preparation.
"""

from pathlib import Path

import torch.nn.functional as F

from tinyclap.data.pipelines import eval_dataset, manifest_classes
from tinyclap.errors import ConfigError
from tinyclap.stages.base import TinyClapBrain, write_results
from tinyclap.students.official import is_any_student, load_any_student
from tinyclap.teachers import load_teacher
from tinyclap.training.checks import check_student_fits_teacher
from tinyclap.training.data import prepare_data
from tinyclap.zeroshot.prompts import ensemble_prompt_embeddings
from tinyclap.zeroshot.report import summarise, write_report


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


def load_encoder(model, teacher):
    """The audio encoder to evaluate: ``teacher``, a student checkpoint, or another teacher.

    Parameters
    ----------
    model : str
        ``teacher`` (the teacher itself), a student checkpoint written by
        tinyclap, an official tinyCLAP checkpoint (``phinet_alpha_*.ckpt``),
        or another teacher checkpoint (its audio side, ``teacher``'s text side).
    teacher : tinyclap.teachers.Teacher
        The hparams' teacher.
    """
    model = str(model)
    if model == "teacher":
        return teacher
    if not Path(model).is_file():
        raise ConfigError(f"model: file not found: {model} (or `teacher` for the teacher itself)")
    encoder = load_any_student(model) if is_any_student(model) else load_teacher(model)
    check_student_fits_teacher(encoder, teacher, model)
    return encoder


def run_evaluate(hparams, run_opts):
    """Zero-shot evaluation of ``hparams["encoder"]`` on the ``split`` of the data."""
    split = hparams["split"]
    manifests = prepare_data(hparams, (split,))
    teacher, encoder = hparams["teacher_model"], hparams["encoder"]
    classes = manifest_classes(manifests[split])
    summary = evaluate_zero_shot(
        encoder,
        teacher,
        manifests[split],
        classes,
        hparams,
        run_opts,
        f"zeroshot_{split}",
        title=Path(str(hparams["model"])).name,
    )
    return write_results(
        hparams,
        "evaluate",
        {
            "model": str(hparams["model"]),
            "split": split,
            "num_clips": summary.get("num_clips", len(summary.get("per_class", {}))),
            "zs_accuracy": summary["accuracy"],
            "balanced_accuracy": summary["balanced_accuracy"],
        },
    )
