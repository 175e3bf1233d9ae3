"""Stage ``distill_text``: a tiny text student distilled into the teacher's text space.

``python train.py hparams/distill_text.yaml``: the text side of tinyCLAP. The
corpus (:mod:`tinyclap.data.text_corpus`: the captions of the distillation
corpora, prompt templates over every bundled label set and the AudioSet
vocabulary) trains a SentencePiece tokenizer
(``speechbrain.tokenizers.SentencePiece``, in ``<output_folder>/tokenizer``);
the teacher's text embeddings of every sentence are computed once and cached
(:mod:`tinyclap.training.text_cache`); :class:`TextDistillBrain` then trains the
``text_student`` (any module ``(ids [B, L], mask [B, L]) -> [B, D]``;
:class:`tinyclap.students.text.TextStudent` by default) with
``-cos(teacher_text(x), student_text(x))``. The best checkpoint (valid loss)
is saved as ``text_student.ckpt`` with its tokenizer, and ``results.json``
records the cosine on held-out phrases and on paraphrased Synth labels that
never appear in the corpus, plus the text-only label agreement on the
bundled sets.
"""

import logging
import time
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F

from tinyclap.data.label_sets import LABEL_SETS, SYNTH_CLASSES, readable_label
from tinyclap.data.text_corpus import (
    SYNTH_PARAPHRASES,
    TEMPLATES,
    build_text_corpus,
    manifest_captions,
)
from tinyclap.nn.complexity import count_params
from tinyclap.stages.base import TinyClapBrain, register_run_state, unwrap, write_results
from tinyclap.students.text import PAD_ID, TextTokenizer, embed_texts, save_text_student
from tinyclap.training.cache import debug_max_clips
from tinyclap.training.checks import check_embedding_dim
from tinyclap.training.data import prepare_data
from tinyclap.training.text_cache import TextEmbeddingCache
from tinyclap.zeroshot.prompts import class_prompts

logger = logging.getLogger(__name__)
BUNDLED_SETS = {**LABEL_SETS, "synth": SYNTH_CLASSES}


class TextDataset(torch.utils.data.Dataset):
    """Sentences with their cached teacher embeddings, tokenized on the fly.

    Items are ``{"id", "tokens", "teacher_emb"}`` dicts (SpeechBrain's
    ``PaddedBatch`` pads ``tokens`` with 0, the padding id).
    """

    def __init__(self, texts, cache, tokenizer):
        self.texts, self.cache, self.tokenizer = list(texts), cache, tokenizer

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        text = self.texts[index]
        return {
            "id": str(index),
            "tokens": torch.tensor(self.tokenizer.encode([text])[0], dtype=torch.long),
            "teacher_emb": self.cache.lookup([text])[0],
        }


class TextDistillBrain(TinyClapBrain):
    """Text-only distillation: minimise ``-cos(teacher_text, student_text)``.

    Modules: ``text_student`` (``(ids [B, L], mask [B, L]) -> [B, D]``).
    Hparams: ``loss`` (e.g. :func:`tinyclap.training.losses.distillation_loss`).
    Batches carry ``tokens`` (padded with 0) and the cached ``teacher_emb``.
    """

    def compute_forward(self, batch, stage):
        """Un-normalised student embeddings of the batch's sentences."""
        batch = batch.to(self.device)
        tokens = batch.tokens.data
        return self.modules.text_student(tokens, (tokens != PAD_ID).long())

    def compute_objectives(self, predictions, batch, stage):
        """The distillation loss against the cached teacher embeddings."""
        return self.hparams.loss(predictions, batch.teacher_emb.data)


def loader_options(options):
    """Dataloader options with SpeechBrain's ``PaddedBatch`` as default collation."""
    from speechbrain.dataio.batch import PaddedBatch

    return {"collate_fn": PaddedBatch, **options}


def write_corpus_file(sentences, path):
    """One sentence per line (the tokenizer's training text); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return path


def train_tokenizer(sentences, folder, vocab_size, model_type="unigram", max_length=32):
    """Train (or reuse) a SentencePiece model on ``sentences``; return a :class:`TextTokenizer`.

    Uses ``speechbrain.tokenizers.SentencePiece`` (padding id 0, unknown id 1,
    no BOS / EOS), which skips training when ``folder`` already holds the
    model (a resumed run).
    """
    from speechbrain.tokenizers.SentencePiece import SentencePiece

    folder = Path(folder)
    corpus = write_corpus_file(sentences, folder / "corpus.txt")
    try:
        spm = SentencePiece(
            model_dir=str(folder),
            vocab_size=int(vocab_size),
            model_type=model_type,
            text_file=str(corpus),
            character_coverage=1.0,
            pad_id=PAD_ID,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
        )
    except RuntimeError as err:
        if "Vocabulary size too high" not in str(err):
            raise
        raise ValueError(
            f"vocab_size {vocab_size} is more than the text corpus supports "
            f"({str(err).split('Vocabulary size too high')[-1].strip(' ().')}): "
            "pass a smaller --vocab_size"
        ) from None
    return TextTokenizer.from_file(spm.prefix_model_file + ".model", max_length)


def text_corpus(hparams, manifests):
    """The corpus splits of the stage: captions of the prepared manifests + templates."""
    captions = manifest_captions([manifests[s] for s in ("train", "valid") if s in manifests])
    return build_text_corpus(
        captions=captions,
        templates=hparams.get("corpus_templates") or TEMPLATES,
        include_audioset=hparams.get("corpus_audioset", True),
        valid_percent=hparams.get("corpus_valid_percent", 5),
        test_percent=hparams.get("corpus_test_percent", 5),
    )


def bounded(texts, limit):
    """The first ``limit`` texts (all when ``limit`` is None): ``--debug`` runs read few."""
    return list(texts) if limit is None else list(texts)[: int(limit)]


@torch.no_grad()
def measure(student, tokenizer, teacher, cache, heldout, template):
    """Held-out cosine, paraphrase cosine and text-only label agreement of ``student``.

    Returns
    -------
    dict
        ``heldout_cos`` (mean cosine with the teacher on held-out phrases),
        ``paraphrase_cos`` (on the Synth paraphrase prompts, never in the corpus),
        ``label_agreement`` (per bundled set: the fraction of class prompts
        whose student embedding is nearest to the teacher's embedding of the
        same prompt among the set's) and ``paraphrase_retrieval`` (fraction of
        paraphrase prompts whose student embedding is nearest to the teacher's
        canonical class prompt; the teacher's own figure beside it).
    """
    record = {}
    if heldout:
        student_emb = embed_texts(student, tokenizer, heldout)
        cos = (student_emb * cache.lookup(heldout)).sum(-1)
        record["heldout_cos"] = round(float(cos.mean()), 4)
        record["heldout_phrases"] = len(heldout)
    classes = list(SYNTH_PARAPHRASES)
    canonical = class_prompts(classes, template)
    paraphrased = class_prompts([SYNTH_PARAPHRASES[c] for c in classes], template)
    teacher_para = F.normalize(teacher.embed_text(paraphrased).float().cpu(), dim=-1)
    teacher_canon = F.normalize(teacher.embed_text(canonical).float().cpu(), dim=-1)
    student_para = embed_texts(student, tokenizer, paraphrased)
    record["paraphrase_cos"] = round(float((student_para * teacher_para).sum(-1).mean()), 4)
    target = torch.arange(len(classes))
    record["paraphrase_retrieval"] = {
        "student": round(
            float(((student_para @ teacher_canon.T).argmax(-1) == target).float().mean()), 4
        ),
        "teacher": round(
            float(((teacher_para @ teacher_canon.T).argmax(-1) == target).float().mean()), 4
        ),
    }
    agreement = {}
    for name, labels in sorted(BUNDLED_SETS.items()):
        prompts = class_prompts([readable_label(c) for c in labels], template)
        teacher_emb = F.normalize(teacher.embed_text(prompts).float().cpu(), dim=-1)
        student_emb = embed_texts(student, tokenizer, prompts)
        hits = (student_emb @ teacher_emb.T).argmax(-1) == torch.arange(len(prompts))
        agreement[name] = round(float(hits.float().mean()), 4)
    record["label_agreement"] = agreement
    return record


def run_distill_text(hparams, run_opts):
    """Train the tokenizer and the text student, measure it, save ``text_student.ckpt``."""
    teacher, student = hparams["teacher_model"], hparams["text_student"]
    check_embedding_dim(
        unwrap(student).embedding_dim, teacher, key="text_student (its output size)"
    )
    manifests = prepare_data(hparams, ("train", "valid"))
    corpus = text_corpus(hparams, manifests)
    out = Path(hparams["output_folder"])
    tokenizer = train_tokenizer(  # SpeechBrain's SentencePiece trains on the main process
        corpus["train"], out / "tokenizer", hparams["vocab_size"],
        hparams.get("tokenizer_type", "unigram"), hparams["max_length"],
    )  # fmt: skip
    if tokenizer.vocab_size > unwrap(student).config.get("vocab_size", tokenizer.vocab_size):
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} pieces, the text student's vocab_size "
            f"is {unwrap(student).config['vocab_size']}: make them agree (--vocab_size)"
        )
    splits = {
        split: bounded(corpus[split], debug_max_clips(run_opts, hparams[opts]["batch_size"]))
        for split, opts in (("train", "train_dataloader_opts"), ("valid", "valid_dataloader_opts"),
                            ("test", "valid_dataloader_opts"))
    }  # fmt: skip
    every = [t for split in ("train", "valid", "test") for t in splits[split]]
    cache_args = [teacher, every, Path(hparams["cache_folder"])]
    cache_kwargs = {"dtype": hparams.get("cache_dtype", "float32")}
    if sb.utils.distributed.is_distributed_initialized():  # the main process builds it
        sb.utils.distributed.run_on_main(
            TextEmbeddingCache.build, args=cache_args, kwargs=cache_kwargs
        )
    cache = TextEmbeddingCache.build(*cache_args, **cache_kwargs)
    datasets = {s: TextDataset(splits[s], cache, tokenizer) for s in ("train", "valid")}
    register_run_state(hparams["checkpointer"], hparams)
    brain = TextDistillBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    start = time.time()
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=loader_options(hparams["train_dataloader_opts"]),
        valid_loader_kwargs=loader_options(hparams["valid_dataloader_opts"]),
    )
    train_seconds = time.time() - start
    hparams["checkpointer"].recover_if_possible(min_key="loss")
    if not sb.utils.distributed.if_main_process():
        return {"stage": "distill_text", "rank": sb.utils.distributed.get_rank()}
    model = unwrap(student).cpu().eval()
    metrics = measure(model, tokenizer, teacher, cache, splits["test"], hparams["prompt_template"])
    save_text_student(
        hparams["text_student_checkpoint"],
        model,
        tokenizer,
        teacher=getattr(teacher, "source", getattr(teacher, "name", "")),
        teacher_fingerprint=getattr(teacher, "fingerprint", ""),
        extra={
            "teacher_name": getattr(teacher, "name", ""),
            "metrics": metrics,
            "heldout_phrases": list(splits["test"]),  # for tinyclap.studies.text_student
        },
    )
    return write_results(
        hparams,
        "distill_text",
        {
            "text_student_checkpoint": str(hparams["text_student_checkpoint"]),
            "text_student_config": getattr(model, "config", None),
            "params": count_params(model),
            "tokenizer": {"vocab_size": tokenizer.vocab_size, "max_length": tokenizer.max_length},
            "corpus": {split: len(corpus[split]) for split in corpus},
            "trained_on": {split: len(splits[split]) for split in splits},
            "train_seconds": round(train_seconds, 1),
            "optimizer_steps": brain.optimizer_step,
            **metrics,
        },
    )
