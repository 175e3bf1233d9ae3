"""Stage ``train_teacher``: contrastive training of the embedded mini CLAP.

``python train.py hparams/train_teacher.yaml``: the hparams declare the model
(:class:`tinyclap.teachers.mini_clap.MiniCLAP`), its frontend and the frozen
sentence encoder; the stage trains it, saves ``teacher.ckpt`` and evaluates it
zero-shot on the test split.
"""

import time

import speechbrain as sb
import torch
import torch.nn.functional as F

from tinyclap.data.pipelines import manifest_classes, teacher_datasets
from tinyclap.nn.complexity import count_params
from tinyclap.stages.base import TinyClapBrain, register_run_state, write_results
from tinyclap.stages.evaluate import evaluate_zero_shot
from tinyclap.teachers.mini import load_mini_teacher, save_mini_teacher
from tinyclap.training.data import prepare_data
from tinyclap.training.losses import contrastive_loss
from tinyclap.zeroshot.prompts import class_prompts


class TeacherBrain(TinyClapBrain):
    """Contrastive training of :class:`tinyclap.teachers.mini_clap.MiniCLAP`.

    Modules: ``model`` (MiniCLAP) and ``frontend`` (LogMel). Hparams:
    ``sentence_encoder`` (frozen MiniLM), ``window_samples``. Set ``prompts``
    (one per class) for the zero-shot validation accuracy.
    """

    prompts = ()

    def on_fit_start(self):
        """Embed every caption and prompt once (the text encoder is frozen)."""
        super().on_fit_start()
        for dataset in (self.train_set, self.valid_set):
            if dataset is not None:
                with dataset.output_keys_as(["caption"]):
                    self.hparams.sentence_encoder([item["caption"] for item in dataset])
        self.hparams.sentence_encoder(list(self.prompts))

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """Keep the datasets for :meth:`on_fit_start`, then ``Brain.fit``."""
        self.train_set, self.valid_set = train_set, valid_set
        super().fit(epoch_counter, train_set, valid_set, **kwargs)

    def class_text_embeddings(self):
        """Current prompt embeddings of the model being trained."""
        with torch.no_grad():
            sentence = self.hparams.sentence_encoder(list(self.prompts)).to(self.device)
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


def run_train_teacher(hparams, run_opts):
    """Contrastive training of the mini CLAP; evaluate it; save ``teacher.ckpt``."""
    manifests = prepare_data(hparams, ("train", "valid", "test"))
    classes = manifest_classes(manifests["test"])
    templates = hparams["prompt_template"]
    template = templates if isinstance(templates, str) else templates[0]
    frontend = hparams["frontend"]
    datasets = teacher_datasets(
        {k: manifests[k] for k in ("train", "valid")},
        frontend.sample_rate,
        int(hparams["window_samples"]),
        classes,
    )
    register_run_state(hparams["checkpointer"], hparams)
    brain = TeacherBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.prompts = class_prompts(classes, template)
    start = time.time()
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    train_seconds = time.time() - start
    hparams["checkpointer"].recover_if_possible(min_key="loss")
    if not sb.utils.distributed.if_main_process():
        return {"stage": "train_teacher", "rank": sb.utils.distributed.get_rank()}
    model = hparams["model"].cpu()
    save_mini_teacher(
        hparams["teacher_checkpoint"], model, frontend.config, hparams["clip_seconds"]
    )
    teacher = load_mini_teacher(hparams["teacher_checkpoint"])
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
        "train_teacher",
        {
            "teacher_checkpoint": str(hparams["teacher_checkpoint"]),
            "audio_params": model.audio_params(),
            "params": count_params(model),
            "train_seconds": round(train_seconds, 1),
            "zs_accuracy": summary["accuracy"],
        },
    )
