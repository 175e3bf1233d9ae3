"""Which student graph an exported folder runs: fp32 ``student.onnx`` or int8 ``student.int8.onnx``.

``tinyclap export --onnx --quantize --eval_manifest M``
writes both graphs, measures the runtime path (host log-mels + graph) on ``M``
with each, and records its choice in ``export.json["runtime_graph"]``: the int8
graph when it is static int8 and loses at most :data:`INT8_MAX_LOSS` of
zero-shot accuracy, else fp32, with the reason and the figures
(:func:`tinyclap.deploy.onnx.runtime_graph_choice`). ``precision="auto"`` (the
default of :meth:`tinyclap.runtime.RuntimeClassifier.from_folder`,
:meth:`tinyclap.deploy.inference.ZeroShotAudioClassifier.from_hparams` and both
CLIs' ``--precision``) follows that record; ``"fp32"`` and ``"int8"`` insist.
A folder without the record (an earlier export, or no int8) runs fp32.
"""

STUDENT_GRAPHS = {"fp32": "onnx/student.onnx", "int8": "onnx/student.int8.onnx"}
PRECISIONS = ("auto", *STUDENT_GRAPHS)
# The largest zero-shot accuracy loss (a fraction: 0.5 point) at which an export makes
# int8 the folder's default (issue 26's bound for int8 on a CPU).
INT8_MAX_LOSS = 0.005


def student_graph(info, precision="auto"):
    """``(precision, relative path)`` of the student graph to run.

    Parameters
    ----------
    info : dict
        The folder's ``export.json``.
    precision : str
        ``"auto"`` (the folder's recorded choice; fp32 without one), ``"fp32"`` or ``"int8"``.

    Raises
    ------
    ValueError
        An unknown ``precision``, or a recorded choice that is not one of
        :data:`STUDENT_GRAPHS` (a hand-edited ``export.json``).

    Example
    -------
    >>> student_graph({})
    ('fp32', 'onnx/student.onnx')
    >>> student_graph({"runtime_graph": {"precision": "int8"}})
    ('int8', 'onnx/student.int8.onnx')
    >>> student_graph({"runtime_graph": {"precision": "int8"}}, "fp32")
    ('fp32', 'onnx/student.onnx')
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        recorded = (info or {}).get("runtime_graph") or {}
        precision = recorded.get("precision", "fp32") if isinstance(recorded, dict) else None
        if precision not in STUDENT_GRAPHS:
            raise ValueError(
                f"export.json: runtime_graph precision {precision!r} is not one of "
                f"{', '.join(STUDENT_GRAPHS)}"
            )
    return precision, STUDENT_GRAPHS[precision]
