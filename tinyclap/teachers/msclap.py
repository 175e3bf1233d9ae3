"""Microsoft CLAP (2022 / 2023) as a frozen teacher, built from ``msclap``'s classes.

Nothing of CLAP is re-implemented here: the model is ``msclap.models.clap.CLAP``
(Cnn14 + BERT for 2022, HTSAT + GPT-2 for 2023) configured from the ``msclap``
package's own yaml files, and it is loaded from a checkpoint in Microsoft's
layout (``torch.load(f)["model"]``). What this module adds:

- **Where the files come from**, in order: an explicit local checkpoint; else
  the Hugging Face hub (``microsoft/msclap``) through ``huggingface_hub``,
  which honours ``HF_HUB_OFFLINE`` and the local cache. The text model and
  tokenizer (``bert-base-uncased`` / ``gpt2``) likewise: a local folder
  (``text_model=DIR``) or the hub. Offline with nothing local, the error says
  which file or folder to provide and where to get it.
- **Safe loading**: ``weights_only=True`` first; a file that needs pickled
  objects is refused unless ``trust_checkpoint=True``. Missing and unexpected
  keys are listed; only the frontend weights msclap recomputes
  (``spectrogram_extractor``, ``logmel_extractor``) may be missing and only the
  legacy buffers of older ``transformers`` versions may be extra.
- **Preprocessing as msclap's** (:meth:`MSCLAPTeacher.windows`): 44.1 kHz
  (torchaudio's default sinc resampler, as ``msclap``), clips shorter than the
  version's window (5 s / 7 s) tiled by repetition. Where we differ, on
  purpose: a longer clip is covered by deterministic windows (averaged, or
  returned per window) instead of msclap's one random crop, so evaluation is
  reproducible; multi-channel audio is averaged to mono instead of msclap's
  channel-after-channel flattening; text longer than the tokenizer's limit is
  truncated instead of overflowing the position table.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from tinyclap.audio.features import CLAP2022_FRONTEND
from tinyclap.audio.windows import pad_to_length
from tinyclap.teachers.base import (
    TeacherLoadError,
    WaveformTeacher,
    file_fingerprint,
    hub_failure_reason,
    hub_offline,
)

VERSIONS = {
    "msclap-2022": {
        "version": "2022",
        "weights": "CLAP_weights_2022.pth",
        "text_model": "bert-base-uncased",
        "text_files": ["config.json", "model.safetensors", "vocab.txt", "tokenizer*.json"],
        # AutoTokenizer needs one of these sets (besides config.json for the model type).
        "tokenizer_files": [["tokenizer.json"], ["vocab.txt"]],
    },
    "msclap-2023": {
        "version": "2023",
        "weights": "CLAP_weights_2023.pth",
        "text_model": "gpt2",
        "text_files": [
            "config.json",
            "model.safetensors",
            "vocab.json",
            "merges.txt",
            "tokenizer*.json",
        ],  # fmt: skip
        "tokenizer_files": [["tokenizer.json"], ["vocab.json", "merges.txt"]],
    },
}
HUB_REPO = "microsoft/msclap"
# The frontend msclap rebuilds from its config (torchlibrosa STFT / mel weights).
RECOMPUTED_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.")
# Buffers that checkpoints saved with older `transformers` carry and newer ones drop.
LEGACY_SUFFIXES = ("embeddings.position_ids", ".attn.bias", ".attn.masked_bias")
# AutoModel needs one of these weight files (sharded checkpoints have an index).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# The student reads audio with the 2022 frontend for both versions (tinyCLAP's).
STUDENT_FRONTEND = CLAP2022_FRONTEND


def msclap_config(name):
    """The ``msclap`` package's own yaml config of a version, as a dict.

    Example
    -------
    >>> cfg = msclap_config("msclap-2022")
    >>> cfg["audioenc_name"], cfg["duration"], cfg["d_proj"]
    ('Cnn14', 5, 1024)
    """
    import msclap

    version = VERSIONS[name]["version"]
    path = Path(msclap.__file__).parent / "configs" / f"config_{version}.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def resolve_checkpoint(name, checkpoint=None, cache_dir=None):
    """Local path of the CLAP weights: ``checkpoint`` or the hub (cache first).

    Raises
    ------
    TeacherLoadError
        The file is not local and cannot be downloaded; the message names the
        file, its URL and the option to pass.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise TeacherLoadError(f"{name}: checkpoint not found: {path}")
        return path
    from huggingface_hub import hf_hub_download

    weights = VERSIONS[name]["weights"]
    offline = hub_offline()
    try:
        return Path(
            hf_hub_download(HUB_REPO, weights, cache_dir=cache_dir, local_files_only=offline)
        )
    except Exception as err:  # offline / no network / no such file in the cache
        raise TeacherLoadError(
            f"{name}: cannot get {weights} ({hub_failure_reason(offline, err)}).\n"
            f"  Download https://huggingface.co/{HUB_REPO}/resolve/main/{weights} on a machine "
            "with internet and pass its path: load_teacher(..., checkpoint=PATH), "
            "or `--teacher_checkpoint PATH` in train.py."
        ) from err


def check_text_folder(name, folder):
    """Raise unless ``folder`` has the text model's weights and tokenizer files.

    ``transformers`` fails on a folder without tokenizer files with a bare
    ``TypeError`` (a ``None`` vocabulary path); this names what is missing.
    ``AutoTokenizer`` needs ``tokenizer.json`` or the slow tokenizer's files
    (``vocab.json`` + ``merges.txt`` for GPT-2, ``vocab.txt`` for BERT).

    Raises
    ------
    TeacherLoadError
        The message names the folder and the missing files.
    """
    folder = Path(folder)
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES[::2]))
    options = VERSIONS[name]["tokenizer_files"]
    if not any(all((folder / f).is_file() for f in files) for files in options):
        missing.append(" or ".join(" + ".join(files) for files in options) + " (tokenizer)")
    if missing:
        raise TeacherLoadError(
            f"{name}: text model folder {folder} lacks {'; '.join(missing)}.\n"
            f"  Download them from https://huggingface.co/{VERSIONS[name]['text_model']} "
            "into that folder."
        )
    return folder


def resolve_text_model(name, text_model=None, cache_dir=None):
    """Local folder of the text model and tokenizer: ``text_model`` or the hub.

    Raises
    ------
    TeacherLoadError
        The folder is not a model folder, lacks weights or tokenizer files
        (:func:`check_text_folder`), or cannot be downloaded.
    """
    if text_model is not None:
        path = Path(text_model)
        if not (path / "config.json").is_file():
            raise TeacherLoadError(
                f"{name}: text_model={path} is not a Hugging Face model folder (no config.json)"
            )
        return check_text_folder(name, path)
    from huggingface_hub import snapshot_download

    spec, offline = VERSIONS[name], hub_offline()
    try:
        folder = Path(
            snapshot_download(
                spec["text_model"],
                allow_patterns=spec["text_files"],
                cache_dir=cache_dir,
                local_files_only=offline,
            )
        )
    except Exception as err:
        reason = hub_failure_reason(offline, err)
        raise TeacherLoadError(
            f"{name}: cannot get the text model {spec['text_model']!r} ({reason}).\n"
            f"  Download https://huggingface.co/{spec['text_model']} "
            f"({', '.join(spec['text_files'])}) into a folder and pass text_model=DIR, "
            "or `--text_model DIR` in train.py."
        ) from err
    return check_text_folder(name, folder)  # a partial cached snapshot


def read_state_dict(path, trust_checkpoint=False):
    """The ``model`` state dict of a Microsoft CLAP checkpoint, loaded safely.

    Parameters
    ----------
    path : Path
        ``CLAP_weights_*.pth`` (``{"model": state_dict, ...}``).
    trust_checkpoint : bool
        Allow a full (pickle) load for files that need it. Only for files from
        a source you trust: unpickling can run arbitrary code.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except Exception as err:
        if not trust_checkpoint and "weights_only" in str(err):
            raise TeacherLoadError(
                f"{path} holds pickled Python objects besides tensors, so it was not loaded "
                "with weights_only=True. If you trust its source, pass trust_checkpoint=True "
                "(`--trust_checkpoint True` in train.py) to allow a full load."
            ) from err
        raise TeacherLoadError(f"cannot read checkpoint {path}: {err}") from err
    state = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        keys = sorted(payload)[:10] if isinstance(payload, dict) else type(payload).__name__
        raise TeacherLoadError(
            f"{path} is not a Microsoft CLAP checkpoint: expected a dict with a 'model' "
            f"state dict, found {keys}"
        )
    return state


def check_keys(model, state_dict, path):
    """Raise unless the keys match, up to recomputed frontend and legacy buffers."""
    expected, given = set(model.state_dict()), set(state_dict)
    missing = sorted(k for k in expected - given if not any(p in k for p in RECOMPUTED_PREFIXES))
    unexpected = sorted(
        k
        for k in given - expected
        if not (k.startswith("caption_encoder.base.") and k.endswith(LEGACY_SUFFIXES))
    )
    if missing or unexpected:
        raise TeacherLoadError(
            f"{path}: checkpoint keys do not match the msclap model.\n"
            f"  missing ({len(missing)}): {missing[:20] or 'none'}\n"
            f"  unexpected ({len(unexpected)}): {unexpected[:20] or 'none'}"
        )


def build_clap(name, text_folder):
    """An ``msclap`` CLAP model of version ``name`` with the text model from a folder."""
    from msclap.models.clap import CLAP
    from transformers import AutoConfig

    cfg = msclap_config(name)
    clap = CLAP(
        audioenc_name=cfg["audioenc_name"],
        sample_rate=cfg["sampling_rate"],
        window_size=cfg["window_size"],
        hop_size=cfg["hop_size"],
        mel_bins=cfg["mel_bins"],
        fmin=cfg["fmin"],
        fmax=cfg["fmax"],
        classes_num=cfg["num_classes"],
        out_emb=cfg["out_emb"],
        text_model=str(text_folder),
        transformer_embed_dim=AutoConfig.from_pretrained(text_folder).hidden_size,
        d_proj=cfg["d_proj"],
    )
    # msclap picks the text pooling by searching "gpt" / "bert" in the model *name*;
    # a local folder's path need not contain it, so restore the canonical name.
    clap.caption_encoder.text_model = VERSIONS[name]["text_model"]
    return clap, cfg


class MSCLAPTeacher(WaveformTeacher):
    """A frozen Microsoft CLAP with tinyclap's teacher interface.

    Parameters
    ----------
    name : str
        ``msclap-2022`` or ``msclap-2023``.
    clap : msclap.models.clap.CLAP
        The loaded model.
    tokenizer : transformers tokenizer
        The text model's tokenizer (GPT-2's gets msclap's ``!`` pad token).
    config : dict
        msclap's yaml config of the version.
    fingerprint : str
        Identifies the weights (keys the embedding cache).
    """

    pad_mode = "repeat"  # msclap tiles clips shorter than its window

    def __init__(self, name, clap, tokenizer, config, fingerprint=""):
        super().__init__()
        self.name = name
        self.clap = clap
        self.tokenizer = tokenizer
        self.config = dict(config)
        self.fingerprint = fingerprint
        self.frontend_config = dict(STUDENT_FRONTEND)
        self.is_gpt = "gpt" in VERSIONS[name]["text_model"]
        keys = ["input_ids", "attention_mask"]
        self.token_keys = keys if self.is_gpt else ["input_ids", "token_type_ids", *keys[1:]]

    @property
    def sample_rate(self):
        """Input sample rate in Hz (44.1 kHz for both versions)."""
        return int(self.config["sampling_rate"])

    @property
    def clip_seconds(self):
        """Window length in seconds (5 for 2022, 7 for 2023)."""
        return float(self.config["duration"])

    @property
    def window_samples(self):
        """Samples per analysis window."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def embedding_dim(self):
        """Size of the shared latent space (1024)."""
        return int(self.config["d_proj"])

    def audio_encoder(self):
        """The audio tower (msclap's own frontend, Cnn14 / HTSAT, projection) on waveforms."""
        return _AudioTower(self.clap.audio_encoder)

    @torch.no_grad()
    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of 44.1 kHz windows ``[B, T]``.

        Windows shorter than :attr:`window_samples` are tiled to it first, as
        msclap does; use :func:`tinyclap.zeroshot.scoring.clip_embeddings` (with
        ``pad_mode="repeat"``) for clips of any length.
        """
        self.eval()
        wavs = pad_to_length(wavs, self.window_samples, self.pad_mode)
        audio_embeds, _ = self.clap.audio_encoder(wavs.to(self.device, torch.float32))
        return F.normalize(audio_embeds, dim=-1)

    @torch.no_grad()
    def embed_text(self, texts):
        """L2-normalised embeddings ``[B, D]`` of a list of sentences (msclap's tokenization)."""
        self.eval()
        texts = [t + " <|endoftext|>" if self.is_gpt else t for t in texts]
        tokens = self.tokenizer(
            texts,
            add_special_tokens=True,
            max_length=int(self.config["text_len"]),
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        )
        batch = {k: tokens[k].to(self.device) for k in self.token_keys}
        return F.normalize(self.clap.caption_encoder(batch), dim=-1)


class _AudioTower(torch.nn.Module):
    """msclap's audio encoder returning the projected embeddings only."""

    def __init__(self, audio_encoder):
        super().__init__()
        self.base = audio_encoder.base
        self.projection = audio_encoder.projection
        self._encoder = audio_encoder

    def forward(self, wavs):
        """Un-normalised ``[B, D]`` embeddings of ``[B, T]`` waveforms."""
        return self._encoder(wavs)[0]


def load_msclap_teacher(
    name,
    checkpoint=None,
    text_model=None,
    device="cpu",
    trust_checkpoint=False,
    cache_dir=None,
):
    """Load ``msclap-2022`` or ``msclap-2023`` (see the module docstring for sources).

    Parameters
    ----------
    name : str
        ``msclap-2022`` or ``msclap-2023``.
    checkpoint : str or Path, optional
        Local ``CLAP_weights_*.pth``; downloaded from ``microsoft/msclap`` if omitted.
    text_model : str or Path, optional
        Local folder with the text model's config, weights and tokenizer
        (``bert-base-uncased`` for 2022, ``gpt2`` for 2023); from the hub if omitted.
    device : str
        Torch device.
    trust_checkpoint : bool
        Allow a pickle load of a checkpoint that needs one (trusted files only).
    cache_dir : str, optional
        Hugging Face cache folder (default: the usual ``HF_HOME`` cache).

    Returns
    -------
    MSCLAPTeacher
        In eval mode, gradients disabled.

    Example
    -------
    >>> load_msclap_teacher("msclap-2022", checkpoint="missing.pth")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: msclap-2022: checkpoint not found: missing.pth
    """
    from transformers import AutoTokenizer

    if name not in VERSIONS:
        raise TeacherLoadError(f"unknown msclap version {name!r}: use {', '.join(VERSIONS)}")
    path = resolve_checkpoint(name, checkpoint, cache_dir)
    state_dict = read_state_dict(path, trust_checkpoint)
    text_folder = resolve_text_model(name, text_model, cache_dir)
    clap, cfg = build_clap(name, text_folder)
    check_keys(clap, state_dict, path)
    clap.load_state_dict(state_dict, strict=False)  # strict up to the tolerated keys above
    tokenizer = AutoTokenizer.from_pretrained(text_folder)
    if "gpt" in VERSIONS[name]["text_model"]:
        tokenizer.add_special_tokens({"pad_token": "!"})  # as msclap
    teacher = MSCLAPTeacher(name, clap, tokenizer, cfg, fingerprint=file_fingerprint(path))
    return teacher.to(device).eval().requires_grad_(False)


def random_audio_tower(name):
    """``(callable [B, T] -> [B, D], params)``: msclap's audio tower with random weights.

    For the deploy bench (timing needs the architecture, not the weights).

    Example
    -------
    >>> tower, params = random_audio_tower("msclap-2022")  # doctest: +SKIP
    >>> params > 80e6  # doctest: +SKIP
    True
    """
    from msclap.models.clap import AudioEncoder

    cfg = msclap_config(name)
    torch.manual_seed(0)
    model = AudioEncoder(cfg["audioenc_name"], cfg["out_emb"], cfg["d_proj"],
                         cfg["sampling_rate"], cfg["window_size"], cfg["hop_size"],
                         cfg["mel_bins"], cfg["fmin"], cfg["fmax"],
                         cfg["num_classes"]).eval()  # fmt: skip
    return (lambda wavs: model(wavs)[0]), sum(p.numel() for p in model.parameters())
