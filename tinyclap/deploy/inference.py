"""Zero-shot audio classification with a shared student (SpeechBrain ``Pretrained``).

An exported student folder (``tinyclap export``; a local folder or a hub repo)
loads in two lines, on CPU, offline when the files are local::

    from tinyclap.deploy.inference import ZeroShotAudioClassifier
    clf = ZeroShotAudioClassifier.from_hparams(source="exported_dir", savedir="tmp/clf")
    scores, score, index, labels = clf.classify_file("dog.wav", ["dog barking", "rain"])

Labels are free-form words (filled into the prompt template, ``this is the
sound of {label}``, after :func:`tinyclap.data.label_sets.readable_label`, so
``door_wood_knock`` reads "door wood knock") or the name of a bundled label
set (``esc50``, ``us8k``, ``tut17``, ``synth``). Prompts found in the bundled tables need no text
encoder; others go through the folder's text encoder (see
:mod:`tinyclap.deploy.text_encoders`). In a folder made by ``tinyclap adapt``,
a label that names one of its few-shot classes takes that class's prototype,
not its text prompt, and labels left out (``None``) mean the adapted set:
the rule of :mod:`tinyclap.runtime.labels`, shared with the torch-free runtime.
Files are read with soundfile, mixed to mono and resampled to the student's
rate; clips of any length are covered by the deterministic evaluation windows
whose embeddings are averaged, so predictions equal those of the evaluation stage.

Backends (``backend=`` of :meth:`ZeroShotAudioClassifier.from_hparams`):
``"auto"`` (default) runs the folder's ``onnx/student.onnx`` under onnxruntime
fed by the numpy host frontend (:mod:`tinyclap.runtime`) when onnxruntime is
importable, the folder has that graph and the model is on the CPU; otherwise
PyTorch. ``"onnxruntime"`` insists on the former, ``"pytorch"`` on the latter.
Both give the same predictions with the fp32 graph (the tests compare them).
``precision=`` picks the graph (:mod:`tinyclap.runtime.graphs`): ``"auto"``
(default) follows ``export.json["runtime_graph"]``, static int8
``onnx/student.int8.onnx`` where the export measured it within 0.5 point of
fp32's zero-shot accuracy, else fp32; ``"fp32"`` or ``"int8"`` insist.
"""

import contextlib
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig, LocalStrategy, fetch

from tinyclap.audio.io import load_audio, resample
from tinyclap.deploy.safety import (
    OPT_IN,
    UntrustedCodeError,
    check_hparams,
    check_yaml_bounds,
    load_tensors,
    safe_tuples,
    upgrade_legacy_paths,
    verify_sha256,
)
from tinyclap.runtime.frontend import FrontendSettingsError, check_frontend_settings
from tinyclap.runtime.graphs import PRECISIONS, student_graph
from tinyclap.runtime.integrity import require_recorded
from tinyclap.runtime.labels import default_label_set, plan_labels
from tinyclap.zeroshot.scoring import clip_embeddings
from tinyclap.zeroshot.timeline import file_timeline

logger = logging.getLogger(__name__)


class ModelSourceError(RuntimeError):
    """A model source is neither a local folder nor a fetchable hub repo."""


class MissingWeightsError(FileNotFoundError):
    """A folder lacks the weights its ``hyperparams.yaml`` loads."""


def _source_error(source, err):
    """The :class:`ModelSourceError` of a source that is no folder and no reachable repo."""
    return ModelSourceError(
        f"cannot load {source!r}: it is not a local folder, and fetching it from the "
        f"Hugging Face hub failed ({type(err).__name__}: {str(err).splitlines()[0]}). "
        "Pass an exported folder (tinyclap export) or a reachable repo id; offline "
        "(HF_HUB_OFFLINE=1) only repos already in the hub cache load."
    )


def local_model_folder(source, cache_dir=None):
    """A local folder holding every file of ``source``: the folder itself, or a repo's snapshot.

    A hub repo id resolves through the Hugging Face cache exactly as
    :meth:`ZeroShotAudioClassifier.from_hparams` fetches it (offline with
    ``HF_HUB_OFFLINE=1``: only a cached repo), for the commands that need the
    whole folder (``tinyclap adapt`` copies it).

    Raises
    ------
    ModelSourceError
        ``source`` is neither a folder nor a reachable (or, offline, cached) repo;
        the same message as :meth:`~ZeroShotAudioClassifier.from_hparams`.

    Example
    -------
    >>> local_model_folder("exported/demo")  # doctest: +SKIP
    PosixPath('exported/demo')
    >>> local_model_folder("someone/tinyclap-demo")  # doctest: +SKIP
    PosixPath('/home/me/.cache/huggingface/hub/models--someone--tinyclap-demo/snapshots/0123abcd')
    """
    if Path(str(source)).is_dir():
        return Path(str(source))
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(huggingface_hub.snapshot_download(repo_id=str(source), cache_dir=cache_dir))
    except (LocalEntryNotFoundError, HfHubHTTPError, ValueError, OSError) as err:
        raise _source_error(source, err) from err


def strict_state_dict_transfer(module, path):
    """Pretrainer hook: load a plain state dict into ``module``, every key matching.

    SpeechBrain's default transfer hook loads non-strictly (a mismatch only
    logs a warning); a shared student must load exactly. ``path`` holds
    safetensors or (earlier exports) a ``torch.save`` state dict, read with
    ``weights_only=True``.

    Raises
    ------
    ValueError
        Naming the file and the missing / unexpected keys.
    """
    state_dict, _ = load_tensors(path)
    expected, given = set(module.state_dict()), set(state_dict)
    if expected != given:
        raise ValueError(
            f"{path}: checkpoint keys do not match {type(module).__name__}.\n"
            f"  missing: {sorted(expected - given) or 'none'}\n"
            f"  unexpected: {sorted(given - expected) or 'none'}"
        )
    module.load_state_dict(state_dict)


def _fetch_optional(filename, source, **fetch_kwargs):
    """Local path of ``source/filename``, or None when the folder or repo lacks it."""
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        path = fetch(filename=filename, source=source, **fetch_kwargs)
    except (EntryNotFoundError, LocalEntryNotFoundError, FileNotFoundError):
        return None
    return path if Path(path).is_file() else None


def recorded_weights(export_json):
    """``{loadable: {"file", "sha256"}}`` recorded in an ``export.json`` (``{}`` if none).

    Example
    -------
    >>> recorded_weights({"weights": {"student": {"file": "student.safetensors",
    ...                                           "sha256": "ab"}}})["student"]["file"]
    'student.safetensors'
    """
    weights = (export_json or {}).get("weights") or {}
    for name, entry in weights.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError(f"export.json: malformed weights entry for {name!r}")
        if "/" in entry["file"] or "\\" in entry["file"] or entry["file"].startswith("."):
            raise ValueError(f"export.json: weights file {entry['file']!r} is not in the folder")
    return weights


class ZeroShotAudioClassifier(Pretrained):
    """Zero-shot classifier: a PhiNet student, its frontend and label embeddings.

    Built by :meth:`from_hparams` from an exported folder (its
    ``hyperparams.yaml`` defines the ``frontend`` and ``student`` modules, the
    ``label_embeddings`` tables, an optional ``text_encoder`` and the
    ``pretrainer``).

    Example
    -------
    >>> clf = ZeroShotAudioClassifier.from_hparams(  # doctest: +SKIP
    ...     source="exported_student", savedir="pretrained/student")
    >>> clf.classify_file("dog.wav", "esc50")[3]  # doctest: +SKIP
    ['dog']
    """

    MODULES_NEEDED = ["frontend", "student"]
    HPARAMS_NEEDED = ["sample_rate", "clip_seconds", "prompt_template", "label_embeddings"]
    BACKENDS = ("auto", "onnxruntime", "pytorch")

    def __init__(self, *args, backend=None, precision=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._text_cache = {}
        self.backend_choice = str(backend or getattr(self.hparams, "backend", None) or "auto")
        if self.backend_choice not in self.BACKENDS:
            raise ValueError(f"backend {self.backend_choice!r}: use one of {self.BACKENDS}")
        self.precision_choice = str(precision or "auto")
        if self.precision_choice not in PRECISIONS:
            raise ValueError(f"precision {self.precision_choice!r}: use one of {PRECISIONS}")
        self.student_onnx = None  # set by from_hparams when the folder has the student graph
        self.precision = None  # that graph's ("fp32" or "int8"; None on PyTorch)
        self._engine = None

    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file="hyperparams.yaml",
        trust_remote_code=False,
        trust_unverified=False,
        **kwargs,
    ):
        """Load from a local folder or a hub repo id, running no code from it.

        Unlike SpeechBrain's ``Pretrained.from_hparams``, the folder's yaml is
        first read as data and every tag checked against
        :data:`tinyclap.deploy.safety.ALLOWED_TARGETS` (what tinyclap exports);
        weights recorded in ``export.json`` are checked against their SHA-256.

        Parameters
        ----------
        source : str or Path
            An exported folder or a hub repo id (``user/name``).
        hparams_file : str
            The yaml in ``source``.
        trust_remote_code : bool
            Build whatever the yaml names (e.g. a custom student class of your
            own): only for sources you trust.
        trust_unverified : bool
            Load weights, graphs or thresholds that ``export.json`` records no
            SHA-256 for (a folder of an earlier tinyclap, or one whose hashes were
            removed): only for sources you trust.
        **kwargs
            ``backend`` and ``precision`` (see the module docstring); ``overrides``
            (trusted: they come from the caller), ``savedir``, ``fetch_config``,
            ``local_strategy``, ``run_opts``... as for SpeechBrain.

        Raises
        ------
        UntrustedCodeError
            A tag outside the allow-list (the key, the tag and the file named).
        WeightsChecksumError
            A weights file that does not match ``export.json``.
        UnverifiedFileError
            A file with no SHA-256 in ``export.json``, without ``trust_unverified``.
        OversizedYamlError, FrontendSettingsError
            A yaml bomb, or log-mel / window settings outside sane bounds.
        ModelSourceError
            ``source`` is neither a folder nor a reachable repo.

        For a local folder, files already in ``savedir`` are refreshed from the
        folder: SpeechBrain's fetch would otherwise keep whatever an earlier
        load left there, so a re-exported folder loaded into the same
        ``savedir`` would silently serve the old student. (Local files are
        only symlinked, so this costs nothing and needs no network.)
        """
        if Path(str(source)).is_dir():
            if "fetch_config" not in kwargs:
                kwargs["fetch_config"] = FetchConfig(overwrite=True, allow_network=False)
            return cls._load_checked(source, hparams_file, trust_remote_code, trust_unverified,
                                     **kwargs)  # fmt: skip
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return cls._load_checked(source, hparams_file, trust_remote_code, trust_unverified,
                                     **kwargs)  # fmt: skip
        except (LocalEntryNotFoundError, HfHubHTTPError, ValueError) as err:
            hub_error = isinstance(err, (LocalEntryNotFoundError, HfHubHTTPError))
            if not hub_error and "HF hub" not in str(err):
                raise  # not a fetch error (e.g. a checkpoint that does not match)
            raise _source_error(source, err) from err

    @classmethod
    def _load_checked(
        cls,
        source,
        hparams_file,
        trust_remote_code=False,
        trust_unverified=False,
        overrides=None,
        overrides_must_match=True,
        savedir=None,
        download_only=False,
        local_strategy=LocalStrategy.SYMLINK,
        fetch_config=None,
        **kwargs,
    ):
        """SpeechBrain's ``pretrained_from_hparams`` with the checks before anything is built.

        The yaml text that is checked is the text that is loaded (it is read
        once), and the weights are verified after they are collected and
        before they are loaded.
        """
        fetch_kwargs = {
            "savedir": savedir,
            "local_strategy": local_strategy,
            "fetch_config": fetch_config or FetchConfig(),
        }
        yaml_path = fetch(filename=hparams_file, source=source, save_filename=None, **fetch_kwargs)
        text = upgrade_legacy_paths(Path(yaml_path).read_text(encoding="utf-8"))
        if trust_remote_code:  # code is trusted; a yaml bomb never is
            check_yaml_bounds(text, f"{source}/{hparams_file}")
        else:
            check_hparams(text, f"{source}/{hparams_file}")
        info_path = _fetch_optional("export.json", source, **fetch_kwargs)
        info = json.loads(Path(info_path).read_text(encoding="utf-8")) if info_path else None
        weights = recorded_weights(info)
        guard = safe_tuples() if not trust_remote_code else _no_guard()
        with guard:
            try:
                hparams = load_hyperpyyaml(text, overrides or {}, overrides_must_match)
            except FrontendSettingsError as err:  # raised by LogMel before it allocates
                raise FrontendSettingsError(f"{source}/{hparams_file}: {err}") from None
        _check_window(hparams, f"{source}/{hparams_file}")
        hparams["savedir"] = savedir
        pretrainer = hparams["pretrainer"]
        pretrainer.set_collect_in(savedir)
        source_text = str(source).rstrip("/")
        loadables = [name for name in pretrainer.loadables if pretrainer.is_loadable(name)]
        unrecorded = [name for name in loadables if name not in weights]
        require_recorded([f"the {name} weights" for name in unrecorded], source_text,
                         trust_unverified)  # fmt: skip
        files = {name: weights[name]["file"] for name in loadables if name in weights}
        for name in unrecorded:  # opted in: today's file name, else an earlier export's
            files[name] = _unrecorded_weights(name, source, source_text, fetch_kwargs)
        pretrainer.add_paths({name: f"{source_text}/{file}" for name, file in files.items()})
        pretrainer.collect_files(default_source=source, **{
            k: v for k, v in fetch_kwargs.items() if k != "savedir"})  # fmt: skip
        for name in loadables:
            if name in weights:
                verify_sha256(pretrainer.paths[name], weights[name]["sha256"],
                              name=f"{source_text}/{weights[name]['file']}")  # fmt: skip
        if download_only:
            return None
        hparams["export_info"] = info  # default label set (tinyclap adapt), provenance
        hparams["open_set"] = _load_calibration(source, source_text, info, fetch_kwargs,
                                                trust_unverified)  # fmt: skip
        pretrainer.load_collected()
        classifier = cls(modules=hparams["modules"], hparams=hparams, **kwargs)
        if classifier.backend_choice != "pytorch":
            classifier.student_onnx, classifier.precision = _student_graph(
                source, fetch_kwargs, info, trust_unverified, classifier.precision_choice
            )
            classifier.runtime_engine  # noqa: B018 (decide now: session built, or a clear error)
        return classifier

    @property
    def sample_rate(self):
        """Sample rate the student reads, in Hz."""
        return int(self.hparams.sample_rate)

    @property
    def window_samples(self):
        """Samples per analysis window."""
        return int(round(float(self.hparams.clip_seconds) * self.sample_rate))

    @property
    def pad_mode(self):
        """How clips shorter than a window are padded (``zeros`` or ``repeat``)."""
        return str(getattr(self.hparams, "pad_mode", "zeros"))

    @property
    def label_sets(self):
        """Names of the bundled label sets."""
        return self.hparams.label_embeddings.names

    def load_audio(self, path, savedir=None):
        """Read ``path`` as mono float32 at the student's rate (soundfile + resampling)."""
        return load_audio(path, self.sample_rate).to(self.device)

    @property
    def backend(self):
        """The backend in use: ``"onnxruntime"`` (host frontend + ONNX student) or ``"pytorch"``.

        Raises
        ------
        RuntimeError
            ``backend="onnxruntime"`` was asked for but is not available (the reason named).
        """
        return "onnxruntime" if self.runtime_engine is not None else "pytorch"

    @property
    def runtime_engine(self):
        """The :class:`tinyclap.runtime.engine.OnnxStudentEngine` of the fast path, or None."""
        if self._engine is None and self.backend_choice != "pytorch":
            reason = self._runtime_unavailable()
            if reason is None:
                from tinyclap.runtime.engine import OnnxStudentEngine

                self._engine = OnnxStudentEngine(
                    self.student_onnx, self.mods.frontend.config, self.window_samples,
                    self.pad_mode, threads=torch.get_num_threads())  # fmt: skip
            elif self.backend_choice == "onnxruntime":
                raise RuntimeError(f"backend='onnxruntime' is not available: {reason}")
            else:
                self.backend_choice = "pytorch"  # auto: decided once
        return self._engine

    def _runtime_unavailable(self):
        """Why the onnxruntime backend cannot run (None when it can)."""
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install onnxruntime)"
        if self.student_onnx is None:
            return "the model folder has no onnx/student.onnx (tinyclap export --onnx)"
        if str(self.device) != "cpu":
            return f"the model is on {self.device}; the runtime is CPU only"
        if type(self.mods.frontend).__name__ != "LogMel":
            return f"the frontend is {type(self.mods.frontend).__name__}, not LogMel"
        return None

    @torch.no_grad()
    def embed_windows(self, windows):
        """L2-normalised embeddings ``[N, K]`` of windows ``[N, window_samples]``.

        Runs the backend in use (see :attr:`backend`).
        """
        engine = self.runtime_engine
        if engine is not None:
            embs = engine.embed_windows(windows.detach().float().cpu().numpy())
            return torch.from_numpy(embs).to(self.device)
        return F.normalize(self.mods.student(self.mods.frontend(windows.to(self.device))), dim=-1)

    def _as_clips(self, wavs, wav_lens=None, sample_rate=None):
        """A list of 1-D clips at the student's rate from ``[B, T]`` (+ relative lengths)."""
        if isinstance(wavs, torch.Tensor):
            wavs = wavs.unsqueeze(0) if wavs.dim() == 1 else wavs
            lengths = [wavs.shape[1]] * wavs.shape[0]
            if wav_lens is not None:
                lengths = [int(round(float(r) * wavs.shape[1])) for r in wav_lens]
            clips = [w[:n] for w, n in zip(wavs, lengths)]
        else:
            clips = [torch.as_tensor(w) for w in wavs]
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            clips = [resample(c.float(), int(sample_rate), self.sample_rate) for c in clips]
        return [c.float().to(self.device) for c in clips]

    @torch.no_grad()
    def encode_audio(self, wavs, wav_lens=None, sample_rate=None):
        """Window-averaged, L2-normalised clip embeddings ``[B, K]``.

        Parameters
        ----------
        wavs : Tensor or list of Tensor
            ``[B, T]`` padded batch (or ``[T]``), or a list of 1-D clips.
        wav_lens : Tensor, optional
            Relative lengths of a padded batch (SpeechBrain convention).
        sample_rate : int, optional
            Rate of ``wavs`` if not the student's (they are resampled).
        """
        clips = self._as_clips(wavs, wav_lens, sample_rate)
        return clip_embeddings(
            self.embed_windows, clips, self.window_samples, pad_mode=self.pad_mode
        )

    @property
    def default_labels(self):
        """The label set used when none is given: an adapted folder's set (else None)."""
        info = getattr(self.hparams, "export_info", None)
        return default_label_set(info, self.hparams.label_embeddings.sets)

    def label_plan(self, labels=None):
        """Where each label's embedding comes from (:mod:`tinyclap.runtime.labels`).

        Free-form labels that name a prototype class of an adapted set (``tinyclap
        adapt``) take the prototype, not their text prompt; no labels take
        :attr:`default_labels`. The plan's ``note`` says so in one line (logged at
        INFO by :meth:`encode_text`; ``tinyclap classify`` prints it).

        Example
        -------
        >>> clf.label_plan("siren,dog").note  # doctest: +SKIP
        "label 'siren' uses the few-shot prototype of 'siren' in the set 'adapted' ..."
        """
        tables = self.hparams.label_embeddings
        return plan_labels(labels, tables.sets, self.hparams.prompt_template, self.default_labels)

    @torch.no_grad()
    def encode_text(self, labels=None):
        """L2-normalised class embeddings ``[C, K]`` of ``labels`` (cached per label set).

        Parameters
        ----------
        labels : str or list of str, optional
            A bundled label-set name, ``"a,b,c"``, or a list of labels (names of
            an adapted set's prototype classes take the prototype); default: the
            folder's default set (:attr:`default_labels`).
        """
        plan = self.label_plan(labels)
        tables = self.hparams.label_embeddings
        if plan.set_name is not None:
            return tables.label_set(plan.set_name)[1].to(self.device)
        if plan.note:
            logger.info(plan.note)
        prompts = plan.prompts
        key = tuple(prompts)
        if prompts and key not in self._text_cache:
            self._text_cache[key] = self._embed_prompts(prompts)
        embedded = iter(self._text_cache[key] if prompts else [])
        rows = [tables.sets[s[1]]["embeddings"][s[2]].float() if s[0] == "set" else next(embedded)
                for s in plan.sources]  # fmt: skip
        return torch.stack(rows).to(self.device)

    def _embed_prompts(self, prompts):
        """Prompt embeddings from the bundled tables, the rest from the text encoder."""
        tables = self.hparams.label_embeddings
        found = tables.lookup(prompts)
        if found is not None:
            return found
        missing = [p for p in prompts if tables.lookup([p]) is None]
        encoder = getattr(self.hparams, "text_encoder", None)
        if encoder is None:
            raise ValueError(
                f"{len(missing)} prompt(s) are not in the bundled label sets "
                f"({', '.join(tables.names)}) and this model has no text encoder: "
                f"{missing[:5]}"
            )
        encoded = dict(zip(missing, encoder.embed_text(missing).float().cpu()))
        return torch.stack([encoded[p] if p in encoded else tables.lookup([p])[0] for p in prompts])

    @torch.no_grad()
    def classify_batch(self, wavs, labels=None, wav_lens=None, sample_rate=None):
        """Zero-shot scores of a batch of clips.

        Parameters
        ----------
        wavs : Tensor or list of Tensor
            ``[B, T]`` (padded, see ``wav_lens``) or a list of 1-D clips.
        labels : str or list of str
            Candidate labels (see :meth:`encode_text`).
        wav_lens : Tensor, optional
            Relative lengths.
        sample_rate : int, optional
            Rate of ``wavs`` when it is not the student's.

        Returns
        -------
        scores : Tensor
            ``[B, C]`` cosine similarities between clips and class prompts.
        score : Tensor
            ``[B]`` best score.
        index : Tensor
            ``[B]`` index of the best class.
        text_lab : list of str
            Best class name of each clip.
        """
        names = self.labels_of(labels)
        text = self.encode_text(labels)
        scores = self.encode_audio(wavs, wav_lens, sample_rate) @ text.T
        score, index = scores.max(dim=-1)
        return scores, score, index, [names[i] for i in index.tolist()]

    def classify_file(
        self,
        path,
        labels=None,
        timeline=False,
        open_set=False,
        multi_label=False,
        **timeline_options,
    ):
        """Zero-shot scores of one audio file (any format soundfile reads, any rate).

        Returns the same tuple as :meth:`classify_batch` for a batch of one;
        with ``timeline=True``, a :class:`tinyclap.zeroshot.timeline.Timeline`
        (see :meth:`classify_timeline`, which takes ``timeline_options``); with
        ``open_set=True`` that of :meth:`classify_open_set` (label ``None``:
        "none of these"), with ``multi_label=True`` that of
        :meth:`classify_multi_label`.
        """
        if timeline:
            return self.classify_timeline(path, labels, **timeline_options)
        if timeline_options:
            raise TypeError(f"{sorted(timeline_options)} only apply with timeline=True")
        if multi_label:
            return self.classify_multi_label([self.load_audio(path)], labels)
        if open_set:
            return self.classify_open_set([self.load_audio(path)], labels)
        return self.classify_batch([self.load_audio(path)], labels)

    def classify_timeline(self, path, labels=None, hop=None, batch_size=32, threshold=None,
                          min_duration=0.0, progress=False, embed_windows=None):  # fmt: skip
        """Per-window scores and merged events of a (long) file, streamed from disk.

        The file is read, resampled and cut into windows a chunk at a time, so
        memory stays bounded by ``batch_size`` windows whatever its length.

        Parameters
        ----------
        path : str or Path
            The audio file.
        labels : str or list of str
            Candidate labels (see :meth:`encode_text`).
        hop : float, optional
            Seconds between window starts (default: half a window).
        batch_size : int
            Windows embedded per call.
        threshold : float, optional
            Windows whose best score is below it carry no event.
        min_duration : float
            Events shorter than this (seconds) are dropped.
        progress : bool
            Show a progress bar.
        embed_windows : callable, optional
            ``[B, window_samples] -> [B, K]`` (default: :meth:`embed_windows`), e.g.
            :class:`tinyclap.deploy.onnx.OnnxWindowEmbedder` for the exported graph.

        Returns
        -------
        tinyclap.zeroshot.timeline.Timeline
            ``.events`` (label, onset, offset, score), ``.windows``, ``to_json()``,
            ``to_csv()``, ``format_table()``, ``plot()``.

        Example
        -------
        >>> tl = clf.classify_file("street.wav", "us8k", timeline=True, hop=1.0)  # doctest: +SKIP
        >>> print(tl.format_table())  # doctest: +SKIP
        """
        names = self.labels_of(labels)
        return file_timeline(embed_windows or self.embed_windows, path, names,
                             self.encode_text(labels), self.sample_rate, self.window_samples,
                             hop=hop, pad_mode=self.pad_mode, batch_size=batch_size,
                             threshold=threshold, min_duration=min_duration,
                             progress=progress)  # fmt: skip

    @property
    def calibration(self):
        """The folder's open-set / multi-label thresholds (``open_set.json``), or None."""
        return getattr(self.hparams, "open_set", None)

    @torch.no_grad()
    def classify_open_set(self, wavs, labels=None, threshold=None, wav_lens=None, sample_rate=None):
        """:meth:`classify_batch` with "none of these": clips whose best cosine is too low.

        Parameters
        ----------
        threshold : float, optional
            Rejection threshold on the best cosine (default: the folder's
            calibrated one, see ``tinyclap calibrate``).

        Returns
        -------
        scores, score, index, text_lab
            As :meth:`classify_batch`, with ``index`` -1 and label ``None``
            for rejected clips.

        Example
        -------
        >>> clf.classify_open_set([wav], "synth")[3]  # doctest: +SKIP
        [None]
        """
        from tinyclap.runtime.decisions import open_set_decisions

        scores, score, _, _ = self.classify_batch(wavs, labels, wav_lens, sample_rate)
        names = self.labels_of(labels)
        _, index, text_lab = open_set_decisions(scores.cpu().numpy(), names, self.calibration,
                                                threshold)  # fmt: skip
        return scores, score, torch.tensor(index, device=scores.device), text_lab

    @torch.no_grad()
    def classify_multi_label(
        self, wavs, labels=None, thresholds=None, wav_lens=None, sample_rate=None
    ):
        """Every label whose cosine reaches its threshold (none: "none of these").

        Parameters
        ----------
        thresholds : float or list of float, optional
            One threshold, or one per label (default: the folder's calibrated
            per-class thresholds; labels it does not know get its shared one).

        Returns
        -------
        scores : Tensor
            ``[B, C]`` cosines.
        present : Tensor
            ``[B, C]`` booleans.
        text_labs : list of list of str
            The labels present in each clip, best first.
        """
        from tinyclap.runtime.decisions import multi_label_decisions

        names = self.labels_of(labels)
        scores = self.classify_batch(wavs, labels, wav_lens, sample_rate)[0]
        present, text_labs = multi_label_decisions(scores.cpu().numpy(), names, self.calibration,
                                                   thresholds)  # fmt: skip
        return scores, torch.from_numpy(present).to(scores.device), text_labs

    def classify_files(self, paths, labels=None, batch_size=16):
        """Zero-shot scores of many files, ``batch_size`` files' windows per model call.

        Parameters
        ----------
        paths : list of str
            Audio files.
        labels : str or list of str
            Candidate labels (see :meth:`encode_text`).
        batch_size : int
            Files read and embedded together.

        Returns
        -------
        tuple
            As :meth:`classify_batch`, for all the files.

        Example
        -------
        >>> clf.classify_files(["a.wav", "b.wav"], "esc50")[3]  # doctest: +SKIP
        ['dog', 'rain']
        """
        names = self.labels_of(labels)
        paths, step, text, chunks = list(paths), max(1, int(batch_size)), None, []
        for start in range(0, len(paths), step):
            wavs = [self.load_audio(p) for p in paths[start : start + step]]
            if text is None:  # after the first files load: a missing file is reported first
                text = self.encode_text(labels)
            chunks.append(self.encode_audio(wavs) @ text.T)
        scores = torch.cat(chunks) if chunks else torch.zeros(0, len(names))
        score, index = scores.max(dim=-1)
        return scores, score, index, [names[i] for i in index.tolist()]

    def labels_of(self, labels=None):
        """Class names in the order of the score columns for ``labels``."""
        return self.label_plan(labels).names

    def forward(self, wavs, wav_lens=None):
        """Clip embeddings of a batch (see :meth:`encode_audio`)."""
        return self.encode_audio(wavs, wav_lens)


def _check_window(hparams, where):
    """Refuse a window or sample rate outside sane bounds (before any audio is read)."""
    frontend = hparams.get("frontend")
    config = dict(getattr(frontend, "config", None) or {})
    rate = hparams.get("sample_rate")
    if config and rate != config.get("sample_rate", rate):
        raise FrontendSettingsError(
            f"{where}: sample_rate={rate!r} differs from the frontend's {config['sample_rate']}"
        )
    check_frontend_settings({**config, "sample_rate": rate}, hparams.get("clip_seconds"), where)


def _unrecorded_weights(name, source, source_text, fetch_kwargs):
    """File of a loadable that ``export.json`` does not name (opted in): a clear error if none.

    ``<name>.safetensors`` (today's exports), else ``<name>.ckpt`` (tinyclap 0.1).
    """
    candidates = (f"{name}.safetensors", f"{name}.ckpt")
    for candidate in candidates:
        if _fetch_optional(candidate, source, **fetch_kwargs) is not None:
            return candidate
    raise MissingWeightsError(
        f"{source_text}: no weights for {name!r} (which its hyperparams.yaml loads): export.json "
        f"names no file for it and the folder has neither {' nor '.join(candidates)}. The "
        "folder is incomplete: download it again, or re-export it with `tinyclap export`."
    )


def _load_calibration(source, source_text, info, fetch_kwargs, trust_unverified=False):
    """The folder's ``open_set.json`` (checked against ``export.json``), or None."""
    from tinyclap.deploy.calibration import CALIBRATION_FILE, read_calibration

    path = _fetch_optional(CALIBRATION_FILE, source, **fetch_kwargs)
    if path is None:
        return None
    recorded = (info or {}).get("calibration")
    return read_calibration(path, recorded, name=f"{source_text}/{CALIBRATION_FILE}",
                            trust_unverified=trust_unverified)  # fmt: skip


@contextlib.contextmanager
def _no_guard():
    yield


def _student_graph(source, fetch_kwargs, info=None, trust_unverified=False, precision="auto"):
    """``(local path or None, precision)`` of the fast path's student graph.

    ``precision`` picks ``onnx/student.onnx`` or ``onnx/student.int8.onnx``
    (:func:`tinyclap.runtime.graphs.student_graph`: ``"auto"`` follows
    ``export.json["runtime_graph"]``). A missing fp32 graph gives ``(None,
    None)`` (the PyTorch backend runs); a missing int8 one that was asked for
    or recorded is an error.

    Raises
    ------
    WeightsChecksumError
        The graph does not match the SHA-256 recorded in ``export.json["onnx_graphs"]``.
    FileNotFoundError
        The int8 graph was asked for (or recorded as the default) but is not there.
    """
    precision, graph = student_graph(info, precision)
    local = Path(str(source)) / graph
    if Path(str(source)).is_dir():
        path = local if local.is_file() else None
    else:
        try:
            path = _fetch_optional(graph, source, save_filename=Path(graph).name, **fetch_kwargs)
        except (OSError, ValueError):  # a hub without the file, or offline
            path = None
    if path is None:
        if precision == "int8":
            raise FileNotFoundError(
                f"{source}: no {graph} (the int8 student graph); export it with "
                "`tinyclap export ... --onnx --quantize --eval_manifest M`, or load with "
                "precision='fp32'"
            )
        return None, None
    recorded = ((info or {}).get("onnx_graphs") or {}).get(graph)
    if recorded:
        verify_sha256(path, recorded, name=f"{source}/{graph}")
    else:
        require_recorded([graph], str(source).rstrip("/"), trust_unverified)
    return Path(path), precision


def foreign_class(source, pymodule_file="custom.py", classname="ZeroShotAudioClassifier",
                  trust_remote_code=False, savedir=None, **kwargs):  # fmt: skip
    """SpeechBrain's ``foreign_class`` route: import the folder's ``custom.py``, then load.

    Importing a downloaded ``custom.py`` runs it, so this refuses unless
    ``trust_remote_code=True``. (SpeechBrain's own
    ``speechbrain.inference.interfaces.foreign_class`` imports it and builds
    the yaml unchecked, always.) A class derived from
    :class:`ZeroShotAudioClassifier` is then loaded with its checked
    :meth:`~ZeroShotAudioClassifier.from_hparams`.

    Example
    -------
    >>> foreign_class("exported/demo")
    Traceback (most recent call last):
    ...
    tinyclap.deploy.safety.UntrustedCodeError: exported/demo/custom.py ...
    """
    if not trust_remote_code:
        raise UntrustedCodeError(
            f"{source}/{pymodule_file} is Python code from the model folder: it is not "
            f"imported without the opt-in. {OPT_IN} (ZeroShotAudioClassifier.from_hparams "
            "loads an exported folder without it.)"
        )
    from speechbrain.inference.interfaces import pretrained_from_hparams
    from speechbrain.utils.superpowers import import_from_path

    fetch_kwargs = {k: kwargs.pop(k) for k in ("local_strategy", "fetch_config") if k in kwargs}
    module_path = fetch(filename=pymodule_file, source=source, savedir=savedir, **fetch_kwargs)
    model_class = getattr(import_from_path(module_path), classname)
    if isinstance(model_class, type) and issubclass(model_class, ZeroShotAudioClassifier):
        return model_class.from_hparams(
            source, trust_remote_code=True, savedir=savedir, **fetch_kwargs, **kwargs
        )
    return pretrained_from_hparams(
        cls=model_class, source=source, savedir=savedir, **fetch_kwargs, **kwargs
    )
