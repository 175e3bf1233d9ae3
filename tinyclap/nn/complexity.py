"""Model complexity: parameters, multiply-accumulates (MACs) and CPU latency.

tinyCLAP reports students by their size (parameters), their compute (MACs of
one forward pass) and their measured CPU time per clip. This module computes
the three and prints them as tables:

* :func:`count_params` counts (trainable) parameters;
* :func:`count_macs` counts MACs with ``torchinfo`` on a zero input;
* :func:`measure_latency` times a callable (median / p90 / mean);
* :func:`measure_peak_memory` measures the peak tensor memory of a call;
* :func:`split_params` splits a student's (or teacher's) count into backbone
  and projection;
* :func:`profile_audio_encoder` combines parameters, MACs and batch-1 latency
  for an encoder behind a :class:`tinyclap.audio.features.LogMel` frontend, and
  :func:`profile_models` gives the full profiles used by ``tinyclap bench`` and
  ``tinyclap report`` (split parameters, MACs, latency at batch 1 and 16
  measured in interleaved rounds, peak memory); :func:`profile_model` does one;
* :func:`format_table` and :func:`format_markdown_table` render the results.

MAC conventions (those of ``torchinfo``; the test suite checks them by hand):
a convolution costs ``out_elements * in_channels / groups * kh * kw`` MACs
(depthwise and grouped convolutions are counted correctly), a linear layer
``out_elements * in_features``, and a bias adds one MAC per output element.
Normalisation layers add ``2 * channels`` per sample (affine parameters), and
parameter-free operations (activations, pooling, means, ``torch.matmul`` in a
``forward``) are not counted.

Peak memory (:func:`measure_peak_memory`) comes from ``torch.profiler`` with
``profile_memory=True``: every allocation and free made through PyTorch's CPU
allocator during the call is recorded, and the peak of their running sum is
the most tensor memory the call held at once on top of what was already
allocated (its inputs, the weights). Memory that libraries allocate outside
PyTorch's allocator (e.g. oneDNN scratch buffers) and the Python interpreter
itself are not included. ``tracemalloc`` would miss tensor storage, and the
process's maximum resident set size only ever grows, so neither is used.
"""

import contextlib
import math
import os
import re
import statistics
import sys
import tempfile
import time
from numbers import Integral, Real

import torch

__all__ = [
    "count_macs",
    "count_params",
    "format_markdown_table",
    "format_table",
    "measure_latency",
    "measure_peak_memory",
    "module_bytes",
    "profile_audio_encoder",
    "profile_model",
    "profile_models",
    "split_params",
]


def count_params(module, trainable_only=False):
    """Count the parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The model.
    trainable_only : bool
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        Number of scalar parameters (shared parameters counted once).

    Examples
    --------
    >>> count_params(torch.nn.Linear(10, 5))
    55
    >>> layer = torch.nn.Linear(10, 5)
    >>> layer.bias.requires_grad_(False)  # doctest: +ELLIPSIS
    Parameter containing:...
    >>> count_params(layer, trainable_only=True)
    50
    """
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


def _device_and_dtype(module):
    """Device and floating dtype of ``module``'s first parameter or buffer."""
    tensors = list(module.parameters()) + list(module.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    return device, (floats[0] if floats else torch.float32)


def _save_modes(module):
    """Record the ``training`` flag of every submodule (modes may be mixed)."""
    return [(m, m.training) for m in module.modules()]


def _restore_modes(saved):
    """Undo :func:`_save_modes` submodule by submodule."""
    for m, training in saved:
        m.training = training


def count_macs(module, input_shape):
    """Multiply-accumulates of one forward pass of ``module`` on zeros.

    ``torchinfo.summary`` runs the forward pass (in eval mode, on the module's
    own device and dtype) and sums the MACs of its leaf layers; see the
    module docstring for the conventions. One ``torchinfo`` 1.8 error is
    corrected: it multiplies a linear layer's cost by the batch size only, so a
    ``Linear`` applied to ``[B, T, F]`` inputs would be undercounted ``T``
    times; here it is multiplied by all leading output dimensions.

    Parameters
    ----------
    module : torch.nn.Module
        The model; its train/eval modes are left as they were.
    input_shape : sequence of int
        Full input shape, batch dimension included (usually 1).

    Returns
    -------
    int
        MACs of the forward pass for the whole batch.

    Examples
    --------
    >>> count_macs(torch.nn.Linear(10, 5), (1, 10))  # 10 * 5 + 5 bias
    55
    >>> count_macs(torch.nn.Linear(10, 5), (1, 7, 10))  # applied to 7 frames
    385
    """
    import torchinfo

    device, dtype = _device_and_dtype(module)
    saved = _save_modes(module)
    try:
        stats = torchinfo.summary(
            module,
            input_size=tuple(int(d) for d in input_shape),
            verbose=0,
            device=device,  # torchinfo would otherwise move CPU models to CUDA
            dtypes=[dtype],
            mode="eval",
        )
    finally:
        _restore_modes(saved)  # torchinfo restores only the top-level mode
    macs = int(stats.total_mult_adds)
    for layer in stats.summary_list:
        size = layer.output_size
        if (
            layer.is_leaf_layer
            and isinstance(layer.module, torch.nn.Linear)
            and isinstance(size, (list, tuple))
            and len(size) > 2
            and size[0] > 0
        ):
            macs += layer.macs * (math.prod(size[:-1]) // size[0] - 1)
    return macs


def _synchronize():
    """Wait for queued CUDA work, so that GPU timings are not just launches."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def measure_latency(fn, *args, warmup=3, repeats=20, threads=None):
    """Time ``fn(*args)`` under ``torch.inference_mode()``.

    Parameters
    ----------
    fn : callable
        Function to time (e.g. a model); its return value is discarded.
    *args
        Positional arguments passed to ``fn`` at every call.
    warmup : int
        Untimed calls made first (allocations, lazy initialisation).
    repeats : int
        Timed calls, each measured with :func:`time.perf_counter`.
    threads : int, optional
        Intra-op thread count (:func:`torch.set_num_threads`, process-wide)
        during the measurement; the previous count is restored afterwards,
        also when ``fn`` raises. ``None`` keeps the current setting.

    Returns
    -------
    dict
        ``median_ms``, ``p90_ms`` (linear-interpolated 90th percentile) and
        ``mean_ms`` per call in milliseconds, and ``repeats``.

    Examples
    --------
    >>> stats = measure_latency(torch.relu, torch.randn(1000), repeats=5)
    >>> sorted(stats)
    ['mean_ms', 'median_ms', 'p90_ms', 'repeats']
    >>> stats["repeats"], stats["median_ms"] <= stats["p90_ms"]
    (5, True)
    """
    warmup, repeats = int(warmup), int(repeats)
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(int(threads))
        with torch.inference_mode():
            _timed_calls(fn, args, warmup)
            times_ms = _timed_calls(fn, args, repeats)
    finally:
        if torch.get_num_threads() != previous_threads:
            torch.set_num_threads(previous_threads)
    ordered = sorted(times_ms)
    position = 0.9 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    p90 = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": p90,
        "mean_ms": statistics.fmean(ordered),
        "repeats": repeats,
    }


def profile_audio_encoder(encoder, frontend, clip_samples, threads=None, *, warmup=3, repeats=20):
    """Parameters, MACs and CPU time per clip of a log-mel audio encoder.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps log-mels ``[B, frames, mels]`` to embeddings (e.g. a
        :class:`tinyclap.students.phinet.PhiNetStudent`).
    frontend : tinyclap.audio.features.LogMel
        Waveform-to-log-mel frontend feeding ``encoder``.
    clip_samples : int
        Clip length in samples (at ``frontend.sample_rate``).
    threads : int, optional
        Thread count for the latency measurement (see :func:`measure_latency`).
    warmup, repeats : int
        Untimed and timed runs of the pipeline.

    Returns
    -------
    dict
        ``params``: all parameters of ``encoder`` (the frontend has none);
        ``macs``: MACs of ``encoder`` alone on the log-mel input shape
        ``(1, frontend.num_frames(clip_samples), frontend.n_mels)`` -- the
        frontend's STFT and mel projection are **excluded** from MACs;
        ``cpu_ms_per_clip``: median wall time of the **full** pipeline
        ``encoder(frontend(waveform))`` on one ``[1, clip_samples]`` waveform
        (batch 1), so the STFT is **included** in latency. Both modules are put
        in eval mode while measured and their previous modes restored.

    Examples
    --------
    >>> from tinyclap.audio.features import LogMel
    >>> frontend = LogMel(sample_rate=16000, f_max=8000)  # 1 s -> 51 frames
    >>> encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(51 * 64, 8))
    >>> info = profile_audio_encoder(encoder, frontend, 16000, repeats=3)
    >>> info["params"], info["macs"], info["cpu_ms_per_clip"] > 0
    (26120, 26120, True)
    """
    clip_samples = int(clip_samples)
    shape = (1, frontend.num_frames(clip_samples), frontend.n_mels)
    params = count_params(encoder)
    macs = count_macs(encoder, shape)
    device, _ = _device_and_dtype(encoder)
    generator = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(1, clip_samples, generator=generator)
    wave = wave.to(device)
    saved = _save_modes(encoder) + _save_modes(frontend)
    try:
        encoder.eval()
        frontend.eval()
        latency = measure_latency(
            lambda w: encoder(frontend(w)),
            wave,
            warmup=warmup,
            repeats=repeats,
            threads=threads,
        )
    finally:
        _restore_modes(saved)
    return {"params": params, "macs": macs, "cpu_ms_per_clip": latency["median_ms"]}


def split_params(module):
    """Parameters of ``module`` in total, in its backbone and in its projection.

    Students (:class:`tinyclap.students.phinet.PhiNetStudent`) and teacher audio
    towers have a ``base`` (the backbone: PhiNet or CNN, with its 1x1 head)
    and a ``projection`` (the CLAP projection into the latent space).

    Parameters
    ----------
    module : torch.nn.Module
        The audio encoder on log-mels.

    Returns
    -------
    dict
        ``params``, ``backbone_params``, ``projection_params`` (``None`` where
        the module has no such part).

    Examples
    --------
    >>> from tinyclap.nn.projection import Projection
    >>> model = torch.nn.Module()
    >>> model.base, model.projection = torch.nn.Linear(4, 8), Projection(8, 2)
    >>> split_params(model)  # 4 * 8 + 8; 8 * 2 + 2 * 2 + 2 * 2
    {'params': 64, 'backbone_params': 40, 'projection_params': 24}
    """
    parts = {}
    for key, attribute in (("backbone_params", "base"), ("projection_params", "projection")):
        part = getattr(module, attribute, None)
        parts[key] = count_params(part) if isinstance(part, torch.nn.Module) else None
    return {"params": count_params(module), **parts}


def module_bytes(module):
    """Bytes held by the parameters and buffers of ``module``.

    Examples
    --------
    >>> module_bytes(torch.nn.Linear(10, 5))  # 55 float32 values
    220
    >>> module_bytes(torch.nn.BatchNorm1d(4))  # 16 float32 (weights, stats) + 1 int64
    72
    """
    tensors = list(module.parameters()) + list(module.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))


_KINETO_BANNER = re.compile(r"(USDT|STAGE):\S+ \S+ \d+:\d+ \w+\.cpp:\d+\]")


@contextlib.contextmanager
def _without_kineto_banners():
    """Drop the ``USDT:``/``STAGE:`` lines libkineto writes to stderr per profile.

    The C++ library writes to file descriptor 2, so it is redirected to a
    temporary file while the block runs; every other line is written back to
    ``sys.stderr`` afterwards. Without a real stderr descriptor (e.g. under a
    capturing test runner) nothing is redirected.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _KINETO_BANNER.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def measure_peak_memory(fn, *args):
    """Peak tensor memory (bytes) that ``fn(*args)`` allocates, on CPU.

    Runs the call once under ``torch.inference_mode()`` and
    ``torch.profiler.profile(profile_memory=True)``, then takes the maximum of
    the running sum of the recorded allocations (+) and frees (-) in time
    order: the most memory held at once *in addition* to what was allocated
    before the call (see the module docstring for what is not counted).

    Parameters
    ----------
    fn : callable
        Function to measure (e.g. a model).
    *args
        Its positional arguments.

    Returns
    -------
    int
        Peak bytes (0 if the call allocates nothing).

    Examples
    --------
    >>> x = torch.ones(1_000_000)  # 4 MB
    >>> def two_temporaries(x):
    ...     y = x * 2
    ...     z = y + 1  # y and z alive together: 8 MB
    ...     return float(z.sum())
    >>> 8_000_000 <= measure_peak_memory(two_temporaries, x) < 8_100_000
    True
    """
    from torch.profiler import ProfilerActivity, profile

    with _without_kineto_banners(), torch.inference_mode():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn(*args)
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return int(peak)


def _timed_calls(fn, args, repeats):
    """Wall times (ms) of ``repeats`` calls of ``fn(*args)``, synchronised."""
    times_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        _synchronize()
        times_ms.append((time.perf_counter() - start) * 1000.0)
    return times_ms


def profile_models(models, threads=1, batch_sizes=(1, 16), *, warmup=3, repeats=20, rounds=5):
    """Full complexity profiles of student or teacher audio encoders.

    Latency is measured *interleaved*: the ``repeats`` timed calls of every
    (model, batch size) are split into ``rounds`` rounds, and each round times
    every model in turn. On a shared machine, slow phases (other jobs, CPU
    frequency changes) then hit all models alike instead of whichever model
    happened to be measured at that moment, which keeps the comparison between
    the rows of one table fair. The noise itself remains.

    Parameters
    ----------
    models : sequence
        :class:`tinyclap.students.encoder.StudentAudioEncoder` s or teachers: anything
        with ``audio_encoder()`` (the module on log-mels), ``frontend`` (a
        :class:`tinyclap.audio.features.LogMel`, or a module with
        ``reads_waveforms = True`` for towers that read waveforms, such as
        msclap's) and ``window_samples``.
    threads : int
        ``torch.set_num_threads`` during the latency measurements (restored
        afterwards, reported as ``threads``).
    batch_sizes : sequence of int
        Batch sizes timed; each gives a ``ms_b<B>`` entry.
    warmup : int
        Untimed calls per (model, batch size) before the first round.
    repeats : int
        Timed calls per (model, batch size), at least one per round.
    rounds : int
        Rounds the timed calls are spread over (capped at ``repeats``).

    Returns
    -------
    list of dict
        One per model, in order:

        - ``params``, ``backbone_params``, ``projection_params``
          (:func:`split_params` of the audio encoder);
        - ``macs``: MACs of the audio encoder on one clip's log-mels
          (``[1, frames, mels]``, torchinfo conventions, frontend excluded);
        - ``ms_b<B>``: median milliseconds of one forward pass of a batch of
          ``B`` waveforms (one window each), frontend included -- the time of
          the whole batch, not per clip;
        - ``peak_mem_mb``: weights (parameters and buffers of encoder and
          frontend) plus the peak tensor memory of one batch-1 forward pass,
          frontend included (:func:`measure_peak_memory`), in MB (10**6 bytes);
        - ``threads``.

        Modules are put in eval mode while measured; their modes are restored.
    """
    warmup, repeats, rounds = int(warmup), int(repeats), int(rounds)
    if warmup < 0 or repeats < 1 or rounds < 1 or int(threads) < 1:
        raise ValueError(
            f"need warmup >= 0, repeats >= 1, rounds >= 1, threads >= 1; got "
            f"{warmup}, {repeats}, {rounds}, {threads}"
        )
    generator = torch.Generator().manual_seed(0)
    infos, slots, saved = [], [], []
    previous_threads = torch.get_num_threads()
    try:
        for model in models:
            encoder, frontend = model.audio_encoder(), model.frontend
            clip_samples = int(model.window_samples)
            info = split_params(encoder)
            if getattr(frontend, "reads_waveforms", False):  # e.g. msclap: STFT inside
                shape = (1, clip_samples)
            else:
                shape = (1, frontend.num_frames(clip_samples), frontend.n_mels)
            info["macs"] = count_macs(encoder, shape)
            saved += _save_modes(encoder) + _save_modes(frontend)
            encoder.eval()
            frontend.eval()
            device, _ = _device_and_dtype(encoder)

            def forward(wave, encoder=encoder, frontend=frontend):
                return encoder(frontend(wave))

            wave = (0.1 * torch.randn(1, clip_samples, generator=generator)).to(device)
            weights = module_bytes(encoder) + module_bytes(frontend)
            info["peak_mem_mb"] = (weights + measure_peak_memory(forward, wave)) / 1e6
            info["threads"] = int(threads)
            for batch in batch_sizes:
                noise = torch.randn(int(batch), clip_samples, generator=generator)
                slots.append((info, f"ms_b{int(batch)}", forward, (0.1 * noise).to(device)))
            infos.append(info)

        rounds = min(rounds, repeats)
        per_round = [repeats // rounds + (r < repeats % rounds) for r in range(rounds)]
        times = [[] for _ in slots]
        torch.set_num_threads(int(threads))
        with torch.inference_mode():
            for _, _, forward, wave in slots:
                _timed_calls(forward, (wave,), warmup)
            for count in per_round:
                for slot_times, (_, _, forward, wave) in zip(times, slots):
                    slot_times += _timed_calls(forward, (wave,), count)
    finally:
        torch.set_num_threads(previous_threads)
        _restore_modes(saved)
    for slot_times, (info, key, _, _) in zip(times, slots):
        info[key] = statistics.median(slot_times)
    return [_ordered(info, batch_sizes) for info in infos]


def _ordered(info, batch_sizes):
    """Profile keys in table order (params, MACs, latencies, memory, threads)."""
    keys = ["params", "backbone_params", "projection_params", "macs"]
    keys += [f"ms_b{int(b)}" for b in batch_sizes] + ["peak_mem_mb", "threads"]
    return {k: info[k] for k in keys}


def profile_model(model, threads=1, batch_sizes=(1, 16), *, warmup=3, repeats=20):
    """Full complexity profile of one student or teacher audio encoder.

    Same measurements as :func:`profile_models` for a single model (whose
    latency rounds then need no interleaving).

    Examples
    --------
    >>> from tinyclap.students import PhiNetStudent, StudentAudioEncoder
    >>> student = PhiNetStudent(0.5, 0.75, 4, 4, n_frames=51, n_mels=64,
    ...                         head_channels=32, embedding_dim=16)
    >>> model = StudentAudioEncoder(student, {"sample_rate": 16000, "f_max": 8000}, 1.0)
    >>> info = profile_model(model, batch_sizes=(1, 4), repeats=2)
    >>> list(info)  # doctest: +NORMALIZE_WHITESPACE
    ['params', 'backbone_params', 'projection_params', 'macs', 'ms_b1', 'ms_b4',
     'peak_mem_mb', 'threads']
    >>> info["params"] == info["backbone_params"] + info["projection_params"]
    True
    """
    return profile_models([model], threads, batch_sizes, warmup=warmup, repeats=repeats, rounds=1)[
        0
    ]


def _split_columns(columns):
    """``(key, header)`` pairs from keys or ``(key, header)`` tuples."""
    pairs = []
    for column in columns:
        if isinstance(column, (tuple, list)):
            key, header = column
        else:
            key, header = column, column
        pairs.append((key, str(header)))
    return pairs


def _format_value(value):
    """Ints with thousands separators, floats with 2 decimals, others ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        return f"{float(value):,.2f}"
    return str(value)


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _cells(rows, columns):
    """Headers, formatted cells and right-alignment flags of a table."""
    pairs = _split_columns(columns)
    headers = [header for _, header in pairs]
    cells = [[_format_value(row.get(key)) for key, _ in pairs] for row in rows]
    numeric = []
    for key, _ in pairs:
        values = [row.get(key) for row in rows if row.get(key) is not None]
        numeric.append(bool(values) and all(_is_number(v) for v in values))
    return headers, cells, numeric


def format_table(rows, columns):
    """Render ``rows`` as an aligned plain-text table.

    Parameters
    ----------
    rows : list of dict
        One dict per row; a missing key or ``None`` gives an empty cell.
    columns : list of str or (str, str)
        Keys to show, in order; a ``(key, header)`` pair sets the header.

    Returns
    -------
    str
        Header, dashed rule and rows, columns separated by two spaces,
        without trailing newline or trailing spaces. Numeric columns are
        right-aligned, others left-aligned; ints get thousands separators,
        floats two decimals.

    Examples
    --------
    >>> rows = [{"model": "tiny", "params": 1234, "ms": 1.5},
    ...         {"model": "teacher", "params": 80000000, "ms": 120.25}]
    >>> print(format_table(rows, ["model", "params", ("ms", "CPU ms")]))
    model        params  CPU ms
    -------  ----------  ------
    tiny          1,234    1.50
    teacher  80,000,000  120.25
    """
    headers, cells, numeric = _cells(rows, columns)
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values):
        parts = [
            v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(headers), line(["-" * w for w in widths])]
    lines += [line(row) for row in cells]
    return "\n".join(lines)


def format_markdown_table(rows, columns):
    """Render ``rows`` as a GitHub-flavoured markdown table.

    Same arguments and number formatting as :func:`format_table`; numeric
    columns get a right-aligned (``---:``) rule, ``|`` in cells is escaped and
    cells are padded so that the source is aligned too.

    Examples
    --------
    >>> rows = [{"model": "tiny", "params": 1234, "ms": 1.5},
    ...         {"model": "teacher", "params": 80000000, "ms": 120.25}]
    >>> print(format_markdown_table(rows, ["model", "params", ("ms", "CPU ms")]))
    | model   |     params | CPU ms |
    | ------- | ---------: | -----: |
    | tiny    |      1,234 |   1.50 |
    | teacher | 80,000,000 | 120.25 |
    """
    headers, cells, numeric = _cells(rows, columns)
    headers = [h.replace("|", "\\|") for h in headers]
    cells = [[c.replace("|", "\\|") for c in row] for row in cells]
    widths = [max([3, len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values):
        parts = [
            v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = ["-" * (w - 1) + ":" if right else "-" * w for w, right in zip(widths, numeric)]
    lines = [line(headers), line(rule)] + [line(row) for row in cells]
    return "\n".join(lines)
