"""The runtime's audio path: :class:`HostLogMel` feeding ``onnx/student.onnx`` under onnxruntime.

The exported student graph takes log-mels (``logmel [batch, frames, n_mels]``,
dynamic batch) and returns L2-normalised embeddings. Computing the log-mels on
the host at FFT cost, rather than with the single-file ``audio_encoder.onnx``
(whose frontend is a dense DFT convolution), is the fast path (see
``results/deploy_bench/``).
"""

import numpy as np

from tinyclap.runtime.audio import split_windows
from tinyclap.runtime.frontend import HostLogMel


def ort_session(path, threads=1):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads.

    Example
    -------
    >>> ort_session("exported/demo/onnx/student.onnx")  # doctest: +SKIP
    <onnxruntime.capi.onnxruntime_inference_collection.InferenceSession object at ...>
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def l2_normalize(x, eps=1e-12):
    """Rows of ``x`` scaled to unit L2 norm (as ``torch.nn.functional.normalize``).

    Example
    -------
    >>> l2_normalize(np.array([[3.0, 4.0]])).tolist()
    [[0.6, 0.8]]
    """
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


class OnnxStudentEngine:
    """Window embeddings from the host frontend and an ONNX student.

    Parameters
    ----------
    student_onnx : str or Path
        ``onnx/student.onnx`` of an exported folder (log-mels in).
    frontend_config : dict
        The student's log-mel settings (``export.json["frontend"]``).
    window_samples : int
        Samples per analysis window.
    pad_mode : str
        How clips shorter than a window are padded (the student's).
    threads : int
        onnxruntime intra-op threads.
    batch_size : int
        Windows per onnxruntime call. One by one is the fastest on one CPU thread:
        per window, the edge student took 1.94 / 2.08 / 2.47 / 3.31 ms at 1 / 2 / 4 /
        16 windows per call (MS-CLAP 2022 window; the larger batches leave the
        cache), and the paper student 7.8 / 8.0 / 8.4 / 10.2 ms.

    Example
    -------
    >>> engine = OnnxStudentEngine("exported/demo/onnx/student.onnx",  # doctest: +SKIP
    ...                            {"sample_rate": 16000, "f_max": 8000.0}, 32000)
    >>> engine.embed_windows(np.zeros((3, 32000), np.float32)).shape  # doctest: +SKIP
    (3, 256)
    """

    FRONTEND_BATCH = 16  # windows whose log-mels are computed together

    def __init__(
        self, student_onnx, frontend_config, window_samples, pad_mode="zeros", threads=1,
        batch_size=1,
    ):  # fmt: skip
        self.frontend = HostLogMel.from_config(frontend_config)
        self.path = str(student_onnx)  # the graph run (student.onnx or student.int8.onnx)
        self.session = ort_session(student_onnx, threads)
        self.input_name = self.session.get_inputs()[0].name
        if self.input_name != "logmel":
            raise ValueError(
                f"{student_onnx}: input {self.input_name!r}, expected 'logmel' "
                "(onnx/student.onnx of tinyclap export --onnx)"
            )
        self.window_samples = int(window_samples)
        self.pad_mode = str(pad_mode)
        self.batch_size = int(batch_size)

    @property
    def sample_rate(self):
        """The rate windows are read at, in Hz."""
        return self.frontend.sample_rate

    def embed_logmels(self, logmels):
        """L2-normalised embeddings ``[B, D]`` of log-mels ``[B, frames, n_mels]``."""
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(logmels, np.float32)})
        return l2_normalize(out[0])

    def embed_windows(self, windows):
        """L2-normalised embeddings ``[B, D]`` of windows ``[B, window_samples]`` (batched)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.window_samples:
            raise ValueError(
                f"windows of shape {windows.shape}: expected [B, {self.window_samples}]"
            )
        step, block = self.batch_size, max(self.batch_size, self.FRONTEND_BATCH)
        chunks = []
        for start in range(0, len(windows), block):
            logmels = self.frontend(windows[start : start + block])
            chunks += [self.embed_logmels(logmels[i : i + step])
                       for i in range(0, len(logmels), step)]  # fmt: skip
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)

    def embed_clips(self, clips, per_window=False):
        """Window-averaged, L2-normalised clip embeddings ``[N, D]`` of 1-D clips.

        The windows of all clips go through the model together (in batches of
        ``batch_size``), as :func:`tinyclap.zeroshot.scoring.clip_embeddings` does.
        """
        windows = [split_windows(c, self.window_samples, pad_mode=self.pad_mode) for c in clips]
        embs = self.embed_windows(np.concatenate(windows))
        per_clip = np.split(embs, np.cumsum([len(w) for w in windows])[:-1])
        clips_emb = l2_normalize(np.stack([e.mean(0) for e in per_clip]))
        return (clips_emb, per_clip) if per_window else clips_emb
