"""ONNX graphs of an exported student: the audio path, and optionally class scores.

``torch.stft`` (complex output) does not export cleanly, so the waveform-in
graphs compute :class:`tinyclap.audio.features.LogMel` with one of the
exportable frontends of :mod:`tinyclap.deploy.onnx_frontends` (equal to it
within 1e-3 dB; by default the factored two-stage DFT, the fastest measured
under onnxruntime: ``results/onnx_frontend_bench/README.md``). Graphs:

* ``onnx/audio_encoder.onnx``: ``waveform [batch, window_samples]`` ->
  ``embedding [batch, K]`` (L2-normalised; dynamic batch). Longer clips are cut
  into the deterministic windows (:func:`tinyclap.audio.windows.split_windows`) and
  the window embeddings averaged, as :func:`onnx_clip_embeddings` does;
* ``onnx/student.onnx``: ``logmel [batch, frames, n_mels]`` -> ``embedding``, for
  deployments that compute log-mels with their own DSP code;
* ``onnx/classifier_scores.onnx`` (with ``labels``): the same input ->
  ``scores [batch, C]``, cosine similarities with a fixed label set
  (``onnx/labels.json``);
* ``*.int8.onnx`` (with ``quantize``): int8 variants from
  :mod:`tinyclap.deploy.quantize`, ``static`` (QDQ convolutions calibrated on
  real windows) or ``dynamic`` (the projection's ``MatMul`` / ``Gemm`` only);
  the frontend always stays float (quantizing the power spectrum dropped the
  embedded-set accuracy from 92% to 27% in an exploratory run).

With an evaluation manifest the report also holds the runtime path's accuracy
(host log-mels + ``student.onnx`` / ``student.int8.onnx``), and
:func:`runtime_graph_choice` records in ``export.json["runtime_graph"]`` which
of the two the folder runs by default (:mod:`tinyclap.runtime.graphs`).

The graphs are written with the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``), which needs no ``onnxscript``.
"""

import json
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tinyclap.audio.windows import split_windows
from tinyclap.deploy.onnx_frontends import DenseConvLogMel, onnx_frontend
from tinyclap.deploy.onnx_layout import optimize_student_graph
from tinyclap.deploy.quantize import quantize_graph
from tinyclap.runtime.engine import OnnxStudentEngine
from tinyclap.runtime.graphs import INT8_MAX_LOSS, STUDENT_GRAPHS

OPSET = 17


# The first exporter's frontend (two strided convolutions over all bins), kept by name.
OnnxLogMel = DenseConvLogMel


class AudioEmbeddingGraph(torch.nn.Module):
    """Waveform windows ``[B, T]`` to L2-normalised embeddings ``[B, K]``."""

    def __init__(self, frontend, student, kind=None):
        super().__init__()
        self.frontend = onnx_frontend(frontend, kind)  # DEFAULT_FRONTEND unless told
        self.student = student

    def forward(self, waveform):
        """Embed ``[B, window_samples]`` windows."""
        return F.normalize(self.student(self.frontend(waveform)), dim=-1)


class StudentGraph(torch.nn.Module):
    """Log-mels ``[B, frames, mels]`` to L2-normalised embeddings ``[B, K]``."""

    def __init__(self, student):
        super().__init__()
        self.student = student

    def forward(self, logmel):
        """Embed ``[B, frames, n_mels]`` log-mels."""
        return F.normalize(self.student(logmel), dim=-1)


class ScoresGraph(torch.nn.Module):
    """Waveform windows ``[B, T]`` to cosine scores ``[B, C]`` with fixed class embeddings."""

    def __init__(self, audio_graph, class_embeddings):
        super().__init__()
        self.audio = audio_graph
        self.register_buffer("class_embeddings", class_embeddings.detach().float().cpu())

    def forward(self, waveform):
        """Scores of ``[B, window_samples]`` windows against the classes."""
        return self.audio(waveform) @ self.class_embeddings.T


def _export(module, example, path, output_name, input_name="waveform"):
    """Export ``module`` with a dynamic batch axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        (example,),
        str(path),
        dynamo=False,
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        opset_version=OPSET,
    )
    import onnx

    onnx.checker.check_model(str(path))
    # channel counts padded to onnxruntime's blocked-kernel width (exact: zero channels)
    return optimize_student_graph(path)


def session(path, threads=1, level="all", optimized_path=None):
    """An onnxruntime CPU session for ``path`` with ``threads`` intra-op threads.

    ``level`` is the graph optimisation level (``"disable"``, ``"basic"``,
    ``"extended"``, ``"all"``: onnxruntime's default); ``optimized_path`` also
    saves the optimised graph there.
    """
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[level]
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxWindowEmbedder:
    """``embed_windows`` on an ``audio_encoder.onnx`` graph: windows ``[B, T]`` -> ``[B, K]``.

    A drop-in for :meth:`ZeroShotAudioClassifier.embed_windows
    <tinyclap.deploy.inference.ZeroShotAudioClassifier.embed_windows>` wherever a
    window-embedding function is taken (e.g. ``classify_timeline(...,
    embed_windows=OnnxWindowEmbedder(path))``).

    Parameters
    ----------
    graph : str, Path or onnxruntime.InferenceSession
        ``onnx/audio_encoder.onnx`` of an exported folder (or its ``.int8`` version).
    threads : int
        onnxruntime intra-op threads (when ``graph`` is a path).

    Example
    -------
    >>> embed = OnnxWindowEmbedder("exported/demo/onnx/audio_encoder.onnx")  # doctest: +SKIP
    >>> embed(torch.zeros(3, 32000)).shape  # doctest: +SKIP
    torch.Size([3, 256])
    """

    def __init__(self, graph, threads=1):
        self.session = session(graph, threads) if isinstance(graph, (str, Path)) else graph
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, windows):
        """L2-normalised embeddings (a float32 Tensor) of ``[B, window_samples]`` windows."""
        feed = torch.as_tensor(windows).detach().cpu().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(self.session.run(None, {self.input_name: feed})[0])


def onnx_clip_embeddings(sess, wavs, window_samples, batch_size=64, pad_mode="zeros"):
    """Window-averaged, L2-normalised clip embeddings ``[N, K]`` from an audio graph.

    Parameters
    ----------
    sess : onnxruntime.InferenceSession
        A session of ``audio_encoder.onnx``.
    wavs : list of Tensor
        Mono clips at the student's rate.
    window_samples : int
        The graph's window length.
    batch_size : int
        Windows per run.
    pad_mode : str
        Padding of clips shorter than a window (the student's ``pad_mode``).

    Example
    -------
    >>> sess = session("exported/demo/onnx/audio_encoder.onnx")  # doctest: +SKIP
    >>> onnx_clip_embeddings(sess, [torch.zeros(50000)], 32000).shape  # doctest: +SKIP
    torch.Size([1, 256])
    """
    windows = [split_windows(w.cpu(), window_samples, pad_mode=pad_mode) for w in wavs]
    flat = torch.cat(windows).numpy().astype(np.float32)
    outputs = [sess.run(None, {"waveform": flat[i : i + batch_size]})[0]
               for i in range(0, len(flat), batch_size)]  # fmt: skip
    embs = torch.from_numpy(np.concatenate(outputs)).split([len(w) for w in windows])
    return F.normalize(torch.stack([e.mean(0) for e in embs]), dim=-1)


def quantize(path):
    """Dynamic int8 quantization of the student's MatMul/Gemm layers; returns the new path."""
    from tinyclap.deploy.quantize import quantize_dynamic_graph

    return quantize_dynamic_graph(path)


def _input_name(path):
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _int8_plan(mode, calibration_manifest, eval_manifest):
    """Which int8 recipe ``export_onnx`` applies, and on which calibration clips."""
    from tinyclap.deploy.quantize import DEFAULT_INT8, MODES

    mode = DEFAULT_INT8 if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"unknown int8 mode {mode!r}; choose one of {MODES}")
    plan = {"mode": mode}
    if mode == "static":
        if calibration_manifest is not None:
            plan["calibration_manifest"] = str(calibration_manifest)
        elif eval_manifest is not None:
            plan["calibration_manifest"] = str(eval_manifest)
            plan["note"] = "calibrated on the evaluation manifest (no calibration_manifest given)"
        else:
            plan = {"mode": "dynamic", "note": "static int8 needs a calibration manifest: dynamic"}
    return plan


def calibration_windows(classifier, manifest, max_windows=64):
    """Up to ``max_windows`` deterministic windows ``[N, window_samples]`` of a manifest's clips.

    The inputs a static int8 calibration reads (:func:`tinyclap.deploy.quantize.
    quantize_static_graph`): clips in manifest order, each split as inference
    splits it, every window kept until ``max_windows``.

    Example
    -------
    >>> calibration_windows(classifier, "data/synth/valid.json").shape  # doctest: +SKIP
    torch.Size([64, 32000])
    """
    from tinyclap.data.pipelines import read_manifest

    windows, total = [], 0
    for entry in read_manifest(manifest).values():
        wav = classifier.load_audio(entry["wav"]).cpu()
        split = split_windows(wav, classifier.window_samples, pad_mode=classifier.pad_mode)
        windows.append(split[: max_windows - total])
        total += len(windows[-1])
        if total >= max_windows:
            break
    if not windows:
        raise ValueError(f"no clips in calibration manifest {manifest}")
    return torch.cat(windows)


def interleaved_latency(fns, threads=1, repeats=50, rounds=5, warmup=5, stat="median"):
    """Median (or ``stat="min"``) ms per call of each ``fns[name]()``, in interleaved rounds.

    Every round times each candidate ``repeats // rounds`` times in turn, so a
    load change on a shared machine hits all candidates alike.

    Example
    -------
    >>> sorted(interleaved_latency({"a": lambda: None, "b": lambda: None}, repeats=4, rounds=2))
    ['a', 'b']
    """
    return interleaved_latency_stats(fns, threads, repeats, rounds, warmup)[stat]


def interleaved_latency_stats(fns, threads=1, repeats=50, rounds=5, warmup=5):
    """``{"median": {name: ms}, "min": {name: ms}}`` of :func:`interleaved_latency`'s timings.

    On a loaded machine the minimum is the steadier estimate of a graph's own cost.

    Example
    -------
    >>> sorted(interleaved_latency_stats({"a": lambda: None}, repeats=2, rounds=1))
    ['median', 'min']
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    times = {name: [] for name in fns}
    try:
        with torch.inference_mode():
            for fn in fns.values():
                for _ in range(warmup):
                    fn()
            for _ in range(int(rounds)):
                for name, fn in fns.items():
                    for _ in range(max(1, int(repeats) // int(rounds))):
                        start = time.perf_counter()
                        fn()
                        times[name].append(1000 * (time.perf_counter() - start))
    finally:
        torch.set_num_threads(previous)
    return {
        "median": {name: statistics.median(values) for name, values in times.items()},
        "min": {name: min(values) for name, values in times.items()},
    }


def _accuracies(classifier, manifest, embedders):
    """``{name: zero-shot accuracy}`` of several ``embedders[name](wavs)`` on ``manifest``.

    Each chunk of clips is read once and embedded by every path in turn.
    """
    from tinyclap.data.pipelines import manifest_classes, read_manifest

    classes = manifest_classes(manifest)
    text = classifier.encode_text(classes).cpu()
    correct, total = dict.fromkeys(embedders, 0), 0
    entries = list(read_manifest(manifest).values())
    for start in range(0, len(entries), 64):
        chunk = entries[start : start + 64]
        wavs = [classifier.load_audio(e["wav"]).cpu() for e in chunk]
        for name, embed_clips in embedders.items():
            predicted = (embed_clips(wavs) @ text.T).argmax(-1).tolist()
            correct[name] += sum(classes[p] == e["label"] for p, e in zip(predicted, chunk))
        total += len(chunk)
    return {name: hits / max(1, total) for name, hits in correct.items()}


def export_onnx(
    folder,
    labels=None,
    quantize_int8=False,
    eval_manifest=None,
    threads=1,
    repeats=50,
    trust_remote_code=False,
    int8_mode=None,
    calibration_manifest=None,
    frontend_kind=None,
    trust_unverified=False,
    **kw,
):
    """Write ONNX graphs of an exported student folder and measure them.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`tinyclap.deploy.export.export_student`.
    labels : str or list of str, optional
        A label set (name, ``"a,b,c"`` or list) for ``classifier_scores.onnx``.
    quantize_int8 : bool
        Also write int8 graphs (``quantize=True`` works too), of ``int8_mode``.
    int8_mode : str, optional
        ``"static"`` (QDQ convolutions, calibrated) or ``"dynamic"`` (projection
        only); default :data:`tinyclap.deploy.quantize.DEFAULT_INT8`. Static
        needs a calibration manifest: without ``calibration_manifest`` it reads
        ``eval_manifest`` (noted in the report), without either it falls back to
        dynamic (noted too).
    calibration_manifest : str, optional
        Clips whose windows calibrate the static int8 activation ranges.
    frontend_kind : str, optional
        The graphs' log-mel frontend (:data:`tinyclap.deploy.onnx_frontends.FRONTENDS`;
        default :data:`~tinyclap.deploy.onnx_frontends.DEFAULT_FRONTEND`).
    eval_manifest : str, optional
        Labelled manifest: zero-shot accuracy of PyTorch, ONNX and int8 ONNX.
    trust_remote_code : bool
        Load a folder whose yaml names classes outside tinyclap's allow-list
        (see :meth:`ZeroShotAudioClassifier.from_hparams`).
    trust_unverified : bool
        Load a folder whose ``export.json`` records no SHA-256 for some files (same).
    threads : int
        CPU threads for PyTorch and onnxruntime latency.
    repeats : int
        Timed runs per latency figure.

    Example
    -------
    >>> report = export_onnx("exported/demo", labels="synth")  # doctest: +SKIP
    >>> report["graphs"]["audio_encoder"]["max_abs_diff_vs_torch"] < 1e-4  # doctest: +SKIP
    True

    Returns
    -------
    dict
        Paths, parity (max abs diff vs PyTorch), latency and accuracy; also
        written to ``onnx/onnx_report.json``.
    """
    from tinyclap.deploy.inference import ZeroShotAudioClassifier

    quantize_int8 = quantize_int8 or kw.pop("quantize", False)
    folder = Path(folder)
    classifier = ZeroShotAudioClassifier.from_hparams(
        source=str(folder),
        run_opts={"device": "cpu"},
        trust_remote_code=trust_remote_code,
        trust_unverified=trust_unverified,
        backend="pytorch",  # the reference for parity: never a graph already in the folder
    )
    frontend, student = classifier.mods.frontend, classifier.mods.student
    audio = AudioEmbeddingGraph(frontend, student, frontend_kind).eval()
    window = classifier.window_samples
    generator = torch.Generator().manual_seed(0)
    example = 0.1 * torch.randn(2, window, generator=generator)
    out = folder / "onnx"
    logmel = frontend(example)
    graphs = {
        "audio_encoder": _export(audio, example, out / "audio_encoder.onnx", "embedding"),
        "student": _export(
            StudentGraph(student), logmel, out / "student.onnx", "embedding", "logmel"
        ),
    }
    if labels is not None:
        names = classifier.labels_of(labels)
        scores = ScoresGraph(audio, classifier.encode_text(labels))
        graphs["classifier_scores"] = _export(
            scores, example, out / "classifier_scores.onnx", "scores"
        )
        (out / "labels.json").write_text(json.dumps(names, indent=1), encoding="utf-8")
    int8 = None
    if quantize_int8:
        int8 = _int8_plan(int8_mode, calibration_manifest, eval_manifest)
        calibration = None
        if int8["mode"] == "static":
            windows = calibration_windows(classifier, int8["calibration_manifest"])
            calibration = {"waveform": windows.numpy(), "logmel": frontend(windows).numpy()}
        for name in list(graphs):
            feed = None if calibration is None else calibration[_input_name(graphs[name])]
            graphs[f"{name}_int8"] = quantize_graph(graphs[name], int8["mode"], feed)

    check = 0.1 * torch.randn(5, window, generator=generator)
    inputs = {"waveform": check.numpy(), "logmel": frontend(check).numpy()}
    reference = {"audio_encoder": classifier.embed_windows(check).cpu()}
    reference["student"] = reference["audio_encoder"]
    if labels is not None:
        reference["classifier_scores"] = reference["audio_encoder"] @ scores.class_embeddings.T
    report = {"opset": OPSET, "threads": int(threads), "window_samples": window,
              "frontend": type(audio.frontend).__name__, "graphs": {}}  # fmt: skip
    if int8 is not None:
        report["int8"] = int8
    sessions = {}
    for name, path in graphs.items():
        sessions[name] = session(path, threads)
        feed_name = sessions[name].get_inputs()[0].name
        output = sessions[name].run(None, {feed_name: inputs[feed_name]})[0]
        diff = float(np.abs(output - reference[name.replace("_int8", "")].numpy()).max())
        report["graphs"][name] = {"path": path.name, "max_abs_diff_vs_torch": diff,
                                  "bytes": path.stat().st_size}  # fmt: skip

    one, one_logmel = check[:1], frontend(check[:1])
    fns = {
        "pytorch_waveform": lambda: student(frontend(one)),
        "pytorch_logmel": lambda: student(one_logmel),
    }
    for name in ("audio_encoder", "audio_encoder_int8", "student", "student_int8"):
        if name in sessions:
            feed_name = sessions[name].get_inputs()[0].name
            feed = {feed_name: inputs[feed_name][:1]}
            fns[f"onnxruntime_{name}"] = partial(sessions[name].run, None, feed)
    report["latency_ms_batch1"] = interleaved_latency(fns, threads, repeats)
    report["latency_note"] = (
        f"median ms per call at batch 1, {threads} thread(s), interleaved rounds; "
        "waveform = frontend included, logmel = student alone"
    )
    if eval_manifest is not None:
        embedders = {"pytorch": classifier.encode_audio}
        for name in ("audio_encoder", "audio_encoder_int8"):
            if name in sessions:
                embedders[name] = lambda wavs, sess=sessions[name]: onnx_clip_embeddings(
                    sess, wavs, window, pad_mode=classifier.pad_mode
                )
        for name in ("student", "student_int8"):  # the runtime path: host log-mels + graph
            if name in graphs:
                engine = OnnxStudentEngine(graphs[name], frontend.config, window,
                                           classifier.pad_mode, threads=threads)  # fmt: skip
                embedders[name.replace("student", "runtime")] = lambda wavs, e=engine: (
                    torch.from_numpy(e.embed_clips([w.numpy() for w in wavs]))
                )
        accuracy = _accuracies(classifier, eval_manifest, embedders)
        report["accuracy"] = {"manifest": str(eval_manifest), **accuracy}
    report["runtime_graph"] = runtime_graph_choice(report)
    (out / "onnx_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    record_graph_checksums(folder)
    record_runtime_graph(folder, report["runtime_graph"])
    return report


def runtime_graph_choice(report):
    """The student graph an export makes its folder's default, and why.

    Static int8 ``student.int8.onnx`` when the runtime path on it (host
    log-mels + graph) lost at most :data:`tinyclap.runtime.graphs.INT8_MAX_LOSS`
    of zero-shot accuracy against fp32 ``student.onnx`` on the evaluation
    manifest; else fp32. Dynamic int8 (the projection only) is never the default.
    The decision reads accuracies only (deterministic); the measured latencies
    are quoted in ``why``.

    Parameters
    ----------
    report : dict
        :func:`export_onnx`'s report (``int8``, ``accuracy``, ``latency_ms_batch1``).

    Returns
    -------
    dict
        ``{"precision", "graph", "why"}``, as ``export.json["runtime_graph"]`` records it.

    Example
    -------
    >>> runtime_graph_choice({"int8": {"mode": "static"},
    ...                       "accuracy": {"runtime": 0.9, "runtime_int8": 0.9}})["precision"]
    'int8'
    >>> runtime_graph_choice({"int8": {"mode": "static"},
    ...                       "accuracy": {"runtime": 0.9, "runtime_int8": 0.88}})["why"]
    'static int8 loses 2.0 points of zero-shot accuracy (88.0% vs 90.0%), more than 0.5'
    """
    mode = (report.get("int8") or {}).get("mode")
    accuracy = report.get("accuracy") or {}
    latency = report.get("latency_ms_batch1") or {}
    if mode != "static":
        why = ("no int8 graphs (tinyclap export --quantize --eval_manifest M)" if mode is None
               else f"{mode} int8 quantizes the projection only: not the fast path")  # fmt: skip
    elif "runtime_int8" not in accuracy:
        why = "static int8 accuracy not measured (no --eval_manifest)"
    else:
        fp32, int8 = accuracy["runtime"], accuracy["runtime_int8"]
        figures = f"({100 * int8:.1f}% vs {100 * fp32:.1f}%)"
        if fp32 - int8 > INT8_MAX_LOSS + 1e-12:
            why = (f"static int8 loses {100 * (fp32 - int8):.1f} points of zero-shot accuracy "
                   f"{figures}, more than {100 * INT8_MAX_LOSS:g}")  # fmt: skip
        else:
            why = (f"static int8 keeps zero-shot accuracy within {100 * INT8_MAX_LOSS:g} "
                   f"point {figures}")  # fmt: skip
            speed = [latency.get(f"onnxruntime_student{s}") for s in ("", "_int8")]
            if all(speed):
                why += f"; student {speed[0]:.2f} -> {speed[1]:.2f} ms at batch 1"
            return {"precision": "int8", "graph": STUDENT_GRAPHS["int8"], "why": why}
    return {"precision": "fp32", "graph": STUDENT_GRAPHS["fp32"], "why": why}


def record_runtime_graph(folder, choice):
    """Write :func:`runtime_graph_choice`'s ``choice`` to ``export.json["runtime_graph"]``."""
    info_path = Path(folder) / "export.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        info["runtime_graph"] = choice
        info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")


def record_graph_checksums(folder):
    """Record the SHA-256 of every ``onnx/*.onnx`` of an exported folder in ``export.json``.

    The default inference path runs ``onnx/student.onnx`` instead of the checked
    safetensors weights, so the graphs are checked too, at load
    (:meth:`ZeroShotAudioClassifier.from_hparams` and the torch-free runtime):
    ``export.json["onnx_graphs"]`` maps ``onnx/NAME.onnx`` to its SHA-256.

    Returns
    -------
    dict
        The recorded checksums (empty when the folder has no ``export.json``).
    """
    from tinyclap.deploy.safety import sha256_file

    folder = Path(folder)
    info_path = folder / "export.json"
    if not info_path.is_file():
        return {}
    graphs = {f"onnx/{p.name}": sha256_file(p) for p in sorted((folder / "onnx").glob("*.onnx"))}
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["onnx_graphs"] = graphs
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return graphs
