"""LAION CLAP (any Hugging Face ``transformers`` ``ClapModel``) as a frozen teacher.

Nothing of CLAP is re-implemented here: the model is ``transformers``'
``ClapModel`` (HTSAT audio tower, RoBERTa text tower, projections), its inputs
come from the checkpoint's own ``ClapProcessor`` (``ClapFeatureExtractor`` +
RoBERTa tokenizer), and the weights load through ``from_pretrained`` from
safetensors files only. Checkpoints: ``laion/clap-htsat-unfused``,
``laion/larger_clap_general``, ``laion/larger_clap_music_and_speech`` (and the
fused ``laion/clap-htsat-fused``), or a folder written by
``ClapModel.save_pretrained`` + ``ClapProcessor.save_pretrained``.

- **Where the files come from**, in order: a local folder; else the local
  Hugging Face cache; else the hub (``huggingface_hub``), unless
  ``HF_HUB_OFFLINE`` is set. Offline with nothing local, the error names the
  files to download and where to put them.
- **Key checks**: weights missing from the file or unexpected in it are listed
  and refused, except the buffers ``transformers`` rebuilds at construction
  (``position_ids``, ``token_type_ids``, ``relative_position_index``).
- **Preprocessing as the checkpoint's** ``ClapFeatureExtractor``: 48 kHz,
  10 s windows (``max_length_s``), its STFT / mel settings and filterbank
  (Slaney for ``rand_trunc`` checkpoints, HTK for ``fusion`` ones), and its
  padding of short clips (``repeatpad``: whole repetitions, then silence; the
  teacher's :attr:`~TransformersClapTeacher.pad_mode`, so caches and students
  pad the same way). Where we differ from ``transformers``, on purpose: a clip
  longer than one window is covered by deterministic windows whose embeddings
  are averaged (per window on request:
  ``tinyclap.zeroshot.scoring.encode_clips(..., per_window=True)``), where the
  extractor takes one *random* crop (``rand_trunc``) or three random crops plus
  a squeezed global view (``fusion``); and ``is_longer`` is always ``False``
  (no window is longer than 10 s), where the extractor marks a random clip of
  a batch as longer when none is, so the same clip would embed differently from
  batch to batch. Audio at another rate is resampled by
  :func:`tinyclap.audio.io.load_audio` (``transformers`` refuses it).

Students read log-mels through :class:`tinyclap.audio.features.LogMel` with
the extractor's settings (48 kHz, n_fft 1024, hop 480, 64 mels, its
``frequency_min`` / ``frequency_max``; 1001 frames per 10 s). It computes the
same Slaney-mel power-to-dB features as a ``rand_trunc`` extractor (in float32
instead of float64); for a ``fusion`` checkpoint the teacher's filterbank is
HTK-scaled while the student's stays Slaney. The teacher itself always reads
the extractor's own features.
"""

import hashlib
import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows
from tinyclap.teachers.base import (
    TeacherLoadError,
    WaveformTeacher,
    file_fingerprint,
    hub_failure_reason,
    hub_offline,
)

# The files a teacher folder needs (what the hub download fetches).
HUB_PATTERNS = [
    "config.json",
    "preprocessor_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
]
# The tokenizer loads from one of these sets.
TOKENIZER_FILES = [["tokenizer.json"], ["vocab.json", "merges.txt"]]
# Buffers transformers rebuilds at construction: older files may lack or carry them.
REBUILT_SUFFIXES = ("position_ids", "token_type_ids", "relative_position_index")
# How the extractor's padding maps to tinyclap.audio.windows.pad_to_length modes.
PAD_MODES = {"repeatpad": "repeatpad", "repeat": "repeat", "pad": "zeros"}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def is_transformers_clap(name_or_path):
    """Whether ``load_teacher`` should treat ``name_or_path`` as a transformers CLAP.

    True for a local folder and for a hub repo id (``owner/name``, not a local
    path, not a checkpoint file name).

    Example
    -------
    >>> is_transformers_clap("laion/clap-htsat-unfused"), is_transformers_clap("mini")
    (True, False)
    >>> is_transformers_clap("runs/teacher.ckpt")
    False
    """
    path = Path(str(name_or_path))
    if path.is_dir():
        return True
    return bool(
        REPO_ID.match(str(name_or_path))
        and not path.exists()
        and path.suffix not in CHECKPOINT_SUFFIXES
    )


def check_clap_folder(folder, name=None):
    """Raise unless ``folder`` holds a complete ``ClapModel`` + ``ClapProcessor``.

    Raises
    ------
    TeacherLoadError
        The message names the folder, the missing files and where to get them.

    Example
    -------
    >>> import tempfile
    >>> check_clap_folder(tempfile.mkdtemp(), "laion/clap-htsat-unfused")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: laion/clap-htsat-unfused: folder ... lacks config...
    """
    folder = Path(folder)
    name = name or str(folder)
    missing = [f for f in ("config.json", "preprocessor_config.json") if not (folder / f).is_file()]
    if not any(folder.glob("*.safetensors")):
        missing.append("model.safetensors (or its shards)")
    if not any(all((folder / f).is_file() for f in files) for files in TOKENIZER_FILES):
        missing.append(" or ".join(" + ".join(f) for f in TOKENIZER_FILES) + " (tokenizer)")
    if not missing:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if model_type.get("model_type") != "clap":
            raise TeacherLoadError(
                f"{name}: {folder} holds a {model_type.get('model_type')!r} model, not a "
                "transformers CLAP (config.json model_type 'clap')"
            )
        return folder
    hint = ""
    if any(folder.glob("*.bin")):
        hint = " (only pickle *.bin weights: they are not loaded; save with safetensors)"
    where = f"folder {folder}" if name == str(folder) else f"{name}: folder {folder}"
    raise TeacherLoadError(f"{where} lacks {'; '.join(missing)}{hint}.\n  {_download_hint(name)}")


def _download_hint(name):
    """How to get a checkpoint onto an offline machine (for error messages)."""
    is_repo = REPO_ID.match(name) and not Path(name).exists()
    repo = name if is_repo else "REPO_ID"
    files = "config.json preprocessor_config.json model.safetensors " + " ".join(HUB_PATTERNS[4:])
    return (
        f"On a machine with internet: `hf download {repo} {files} --local-dir DIR`"
        + ("" if is_repo else " (REPO_ID: e.g. laion/clap-htsat-unfused)")
        + f", or ClapModel / ClapProcessor.from_pretrained({repo!r}).save_pretrained(DIR); "
        "copy DIR here and pass it: load_teacher(DIR), `--teacher DIR` in train.py."
    )


def resolve_clap_folder(name_or_path, checkpoint=None, cache_dir=None):
    """Local folder of a transformers CLAP: the folder itself, the HF cache, or the hub.

    Parameters
    ----------
    name_or_path : str
        A folder, or a hub repo id (``laion/...``).
    checkpoint : str, optional
        A local folder that replaces ``name_or_path`` (``--teacher_checkpoint``).
    cache_dir : str, optional
        Hugging Face cache folder (default: the usual ``HF_HOME`` cache).

    Raises
    ------
    TeacherLoadError
        Not local, and the hub cannot be reached (or ``HF_HUB_OFFLINE`` is set).
    """
    local = Path(str(checkpoint or name_or_path))
    if checkpoint is not None or local.is_dir():
        if not local.is_dir():
            raise TeacherLoadError(f"{name_or_path}: teacher folder not found: {local}")
        return check_clap_folder(local, str(name_or_path))
    from huggingface_hub import snapshot_download

    repo, offline = str(name_or_path), hub_offline()
    kwargs = {"allow_patterns": HUB_PATTERNS, "cache_dir": cache_dir}
    try:  # the cache first: no network call when the files are there
        return check_clap_folder(snapshot_download(repo, local_files_only=True, **kwargs), repo)
    except Exception as err:  # not cached, or cached only in part
        if offline:
            raise TeacherLoadError(
                f"{repo}: cannot get the model ({hub_failure_reason(True, err)}).\n  "
                f"{_download_hint(repo)}"
            ) from err
    try:
        return check_clap_folder(snapshot_download(repo, **kwargs), repo)
    except TeacherLoadError:
        raise
    except Exception as err:
        raise TeacherLoadError(
            f"{repo}: cannot get the model ({hub_failure_reason(False, err)}).\n  "
            f"{_download_hint(repo)}"
        ) from err


def check_loading_info(info, folder):
    """Raise unless the weights file matched the model, up to rebuilt buffers."""
    missing = sorted(k for k in info["missing_keys"] if not k.endswith(REBUILT_SUFFIXES))
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.endswith(REBUILT_SUFFIXES))
    mismatched = [k for k, *_ in info.get("mismatched_keys", [])]
    if missing or unexpected or mismatched:
        raise TeacherLoadError(
            f"{folder}: weights do not match the ClapModel of its config.json.\n"
            f"  missing ({len(missing)}): {missing[:20] or 'none'}\n"
            f"  unexpected ({len(unexpected)}): {unexpected[:20] or 'none'}\n"
            f"  wrong shape ({len(mismatched)}): {mismatched[:20] or 'none'}"
        )


def weights_fingerprint(folder):
    """SHA-256 over the folder's safetensors files (their names and bytes)."""
    parts = [f"{p.name}:{file_fingerprint(p)}" for p in sorted(Path(folder).glob("*.safetensors"))]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


class TransformersClapTeacher(WaveformTeacher):
    """A frozen ``transformers`` ``ClapModel`` with tinyclap's teacher interface.

    Parameters
    ----------
    name : str
        The repo id or folder it came from.
    model : transformers.ClapModel
        The loaded model.
    processor : transformers.ClapProcessor
        Its feature extractor and tokenizer (the checkpoint's own settings).
    fingerprint : str
        Identifies the weights (keys the embedding cache).

    Attributes
    ----------
    sample_rate, clip_seconds : int, float
        The extractor's ``sampling_rate`` (48 kHz) and ``max_length_s`` (10 s).
    embedding_dim : int
        ``projection_dim`` (512 for the LAION checkpoints).
    pad_mode : str
        The extractor's padding (``repeatpad``).
    frontend_config : dict
        The students' :class:`~tinyclap.audio.features.LogMel` settings.
    """

    def __init__(self, name, model, processor, fingerprint=""):
        super().__init__()
        self.name = str(name)
        self.model = model
        self.processor = processor
        self.fingerprint = fingerprint
        fe = processor.feature_extractor
        if fe.padding not in PAD_MODES:
            raise TeacherLoadError(f"{name}: unknown extractor padding {fe.padding!r}")
        self.pad_mode = PAD_MODES[fe.padding]
        self.fused = bool(model.config.audio_config.enable_fusion)
        self.frontend_config = {
            "sample_rate": int(fe.sampling_rate),
            "n_fft": int(fe.fft_window_size),
            "hop_length": int(fe.hop_length),
            "win_length": int(fe.fft_window_size),
            "n_mels": int(fe.feature_size),
            "f_min": float(fe.frequency_min),
            "f_max": float(fe.frequency_max),
        }

    @property
    def sample_rate(self):
        """Input sample rate in Hz (48 kHz for LAION CLAP)."""
        return int(self.processor.feature_extractor.sampling_rate)

    @property
    def clip_seconds(self):
        """Window length in seconds (the extractor's ``max_length_s``, 10)."""
        return float(self.processor.feature_extractor.max_length_s)

    @property
    def embedding_dim(self):
        """Size of the shared latent space (``projection_dim``)."""
        return int(self.model.config.projection_dim)

    def audio_encoder(self):
        """The audio tower on waveforms, for profiling (see :class:`ClapAudioTower`)."""
        from tinyclap.audio.features import LogMel

        frontend = LogMel.from_config(self.frontend_config).to(self.device)
        return ClapAudioTower(frontend, self.model.audio_model, self.model.audio_projection)

    def features(self, wavs):
        """The extractor's inputs for windows ``[B, T]`` (``T`` at most one window).

        ``is_longer`` is all ``False`` (deterministic, see the module docstring).
        """
        wavs = wavs.detach().to("cpu", torch.float32)
        inputs = self.processor.feature_extractor(
            [w.numpy() for w in wavs], sampling_rate=self.sample_rate, return_tensors="pt"
        )
        return {
            "input_features": inputs["input_features"].to(self.device, torch.float32),
            "is_longer": torch.zeros(len(wavs), 1, dtype=torch.bool, device=self.device),
        }

    @torch.no_grad()
    def embed_audio(self, wavs):
        """L2-normalised embeddings ``[B, D]`` of 48 kHz waveforms ``[B, T]``.

        Windows shorter than :attr:`window_samples` are padded by the extractor
        (``repeatpad``); longer inputs are cut into deterministic windows
        (:func:`tinyclap.audio.windows.split_windows`) whose embeddings are
        averaged.
        """
        self.eval()
        if wavs.shape[-1] > self.window_samples:
            windows = [split_windows(w, self.window_samples, pad_mode=self.pad_mode) for w in wavs]
            embs = self.embed_audio(torch.cat(windows)).split([len(w) for w in windows])
            return F.normalize(torch.stack([e.mean(0) for e in embs]), dim=-1)
        return self.model.get_audio_features(**self.features(wavs))  # L2-normalised

    @torch.no_grad()
    def embed_text(self, texts):
        """L2-normalised embeddings ``[B, D]`` of sentences (with the checkpoint's tokenizer)."""
        self.eval()
        tokenizer = self.processor.tokenizer
        limit = self.model.config.text_config.max_position_embeddings - 2  # RoBERTa's offset
        tokens = tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=min(int(tokenizer.model_max_length), limit),
            return_tensors="pt",
        )
        return self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=tokens["attention_mask"].to(self.device),
        )


class ClapAudioTower(torch.nn.Module):
    """Waveforms ``[B, T]`` to *un-normalised* audio embeddings ``[B, D]`` (for profiling).

    The extractor is numpy code that profilers cannot see, so the tower runs
    :class:`~tinyclap.audio.features.LogMel` with the extractor's settings in
    its place (the same features for ``rand_trunc`` checkpoints; see the module
    docstring), then HTSAT and the audio projection, with ``is_longer`` false.
    A fused checkpoint's four input channels are copies of the one mel, as the
    extractor makes them for a clip of at most 10 s.
    """

    def __init__(self, frontend, audio_model, projection):
        super().__init__()
        self.frontend = frontend
        self.audio_model = audio_model
        self.projection = projection
        self.channels = 4 if audio_model.config.enable_fusion else 1

    def forward(self, wavs):
        """Un-normalised ``[B, D]`` projections of ``[B, T]`` waveforms."""
        mel = self.frontend(wavs).unsqueeze(1).expand(-1, self.channels, -1, -1)
        is_longer = torch.zeros(len(wavs), 1, dtype=torch.bool, device=wavs.device)
        pooled = self.audio_model(input_features=mel, is_longer=is_longer).pooler_output
        return self.projection(pooled)


def load_transformers_clap_teacher(
    name_or_path,
    checkpoint=None,
    device="cpu",
    cache_dir=None,
    text_model=None,
    trust_checkpoint=False,
):
    """Load a transformers CLAP (see the module docstring for sources and checks).

    Parameters
    ----------
    name_or_path : str or Path
        A folder written by ``ClapModel.save_pretrained`` + ``ClapProcessor.save_pretrained``,
        or a hub repo id (``laion/clap-htsat-unfused``, ``laion/larger_clap_general``, ...).
    checkpoint : str or Path, optional
        A local folder to load instead (``--teacher_checkpoint DIR``).
    device : str
        Torch device.
    cache_dir : str, optional
        Hugging Face cache folder.
    text_model : None
        Not used (the text tower is in the checkpoint); must be None.
    trust_checkpoint : bool
        Not used: weights load from safetensors only, which hold no code.

    Returns
    -------
    TransformersClapTeacher
        In eval mode, gradients disabled.

    Example
    -------
    >>> load_transformers_clap_teacher("laion/clap", checkpoint="missing")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: laion/clap: teacher folder not found: missing
    """
    from transformers import ClapModel, ClapProcessor

    if text_model is not None:
        raise TeacherLoadError(
            f"{name_or_path}: text_model is for msclap teachers; a transformers CLAP "
            "folder holds its own text tower and tokenizer"
        )
    del trust_checkpoint  # safetensors only: nothing to trust
    folder = resolve_clap_folder(name_or_path, checkpoint, cache_dir)
    try:
        model, info = ClapModel.from_pretrained(
            folder, use_safetensors=True, output_loading_info=True
        )
        processor = ClapProcessor.from_pretrained(folder)
    except Exception as err:
        raise TeacherLoadError(f"cannot load the CLAP in {folder}: {err}") from err
    check_loading_info(info, folder)
    teacher = TransformersClapTeacher(
        name_or_path, model, processor, fingerprint=weights_fingerprint(folder)
    )
    return teacher.to(device).eval().requires_grad_(False)


def random_audio_tower(name="transformers-clap"):
    """``(ClapAudioTower, params)``: LAION CLAP's default audio tower with random weights.

    For the deploy bench; the frontend is the teacher table's (48 kHz, hop 480, 64 mels).
    """
    from transformers import ClapAudioConfig, ClapAudioModelWithProjection

    from tinyclap.audio.features import LAION_FRONTEND, LogMel

    del name
    torch.manual_seed(0)
    model = ClapAudioModelWithProjection(ClapAudioConfig()).eval()
    tower = ClapAudioTower(LogMel(**LAION_FRONTEND), model.audio_model, model.audio_projection)
    return tower.eval(), sum(p.numel() for p in model.parameters())


__all__ = [
    "ClapAudioTower",
    "TransformersClapTeacher",
    "is_transformers_clap",
    "load_transformers_clap_teacher",
    "random_audio_tower",
]
