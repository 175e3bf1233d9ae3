"""The torch-free runtime: classify audio with an exported folder's ONNX student.

Imports only numpy, soundfile, onnxruntime, sentencepiece (for free-form
labels) and the standard library (never
torch, SpeechBrain or hyperpyyaml), so it installs and starts in a fraction of
the full package's size and time (see ``tinyclap-runtime/README.md`` for the install
without torch). The pieces, lowest first:

* :mod:`~tinyclap.runtime.frontend`: :class:`HostLogMel`, the CLAP log-mel
  frontend in numpy (rFFT, only the bins the mel filterbank uses);
* :mod:`~tinyclap.runtime.audio`: file reading, mono mix, resampling and the
  deterministic evaluation windows (numpy twins of :mod:`tinyclap.audio`);
* :mod:`~tinyclap.runtime.engine`: :class:`OnnxStudentEngine`, the frontend
  feeding ``onnx/student.onnx`` under onnxruntime;
* :mod:`~tinyclap.runtime.graphs`: which student graph a folder runs (fp32, or the
  static int8 one where the export recorded it as the default);
* :mod:`~tinyclap.runtime.text`: prompts and :class:`OnnxTextEncoder`, the text
  student's SentencePiece ids feeding ``onnx/text_encoder.onnx`` (free-form labels);
* :mod:`~tinyclap.runtime.decisions`: ``open_set.json`` and the open-set /
  multi-label decisions;
* :mod:`~tinyclap.runtime.classifier`: :class:`RuntimeClassifier`, an exported
  folder's label tables, text graph, calibration and engine behind ``classify_files``;
* :mod:`~tinyclap.runtime.cli`: the ``tinyclap-runtime`` console script.

Example
-------
>>> from tinyclap.runtime import RuntimeClassifier
>>> clf = RuntimeClassifier.from_folder("exported/demo")  # doctest: +SKIP
>>> clf.classify_files(["dog.wav"], "esc50")[0]["top"][0]["label"]  # doctest: +SKIP
'dog'
>>> record = clf.classify_files(["cat.wav"], "a purring cat,rain", open_set=True)  # doctest: +SKIP
>>> record[0]["open_set"]  # doctest: +SKIP
'a purring cat'
"""

__all__ = ["HostLogMel", "OnnxStudentEngine", "OnnxTextEncoder", "RuntimeClassifier"]


def __getattr__(name):
    """Lazy access to the public classes (``import tinyclap.runtime`` stays cheap)."""
    if name == "HostLogMel":
        from tinyclap.runtime.frontend import HostLogMel

        return HostLogMel
    if name == "OnnxStudentEngine":
        from tinyclap.runtime.engine import OnnxStudentEngine

        return OnnxStudentEngine
    if name == "OnnxTextEncoder":
        from tinyclap.runtime.text import OnnxTextEncoder

        return OnnxTextEncoder
    if name == "RuntimeClassifier":
        from tinyclap.runtime.classifier import RuntimeClassifier

        return RuntimeClassifier
    raise AttributeError(f"module 'tinyclap.runtime' has no attribute {name!r}")
