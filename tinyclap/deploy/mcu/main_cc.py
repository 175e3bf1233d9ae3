"""The TFLM program of an MCU export: ``main.cc`` (frontend -> int8 model -> label table).

The C++ source (package data, ``c/main.cc.in``) is generic; this module fills
in one export's tensor arena (TFLM's measured figure, rounded up to 16 bytes)
and registers exactly the ops its model uses with TFLM's
``MicroMutableOpResolver``. ``main.cc`` is compiled and run on the host by
:mod:`tinyclap.deploy.mcu.host_build`.

Example
-------
>>> resolver_method("DEPTHWISE_CONV_2D"), resolver_method("BATCH_MATMUL")
('AddDepthwiseConv2D', 'AddBatchMatMul')
"""

from importlib import resources
from pathlib import Path
from string import Template

# builtin op names whose MicroMutableOpResolver method is not their CamelCase
RESOLVER_EXCEPTIONS = {
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
}


def resolver_method(op):
    """The ``MicroMutableOpResolver`` method of builtin ``op`` (``CONV_2D`` -> ``AddConv2D``)."""
    if op in RESOLVER_EXCEPTIONS:
        return RESOLVER_EXCEPTIONS[op]
    words = op.split("_")
    return "Add" + "".join(w if w[:1].isdigit() else w.capitalize() for w in words)


def main_source(arena_bytes, ops):
    """The text of ``main.cc`` for a model needing ``arena_bytes`` and using builtin ``ops``."""
    ops = sorted(set(ops))
    if not ops:
        raise ValueError("main.cc: the model lists no ops")
    values = {
        "arena_bytes": -(-int(arena_bytes) // 16) * 16,
        "num_ops": len(ops),
        "add_ops": "\n".join(f"  ops.{resolver_method(op)}();" for op in ops),
    }
    text = (resources.files("tinyclap.deploy.mcu") / "c" / "main.cc.in").read_text(encoding="utf-8")
    return Template(text).substitute(values)


def write_main(out_dir, arena_bytes, ops):
    """Write ``main.cc`` into ``out_dir``; returns its path."""
    path = Path(out_dir) / "main.cc"
    path.write_text(main_source(arena_bytes, ops), encoding="utf-8")
    return path
