"""The benches ``tinyclap bench NAME`` runs: one module each, one shape.

A bench module has a module docstring (its first paragraph is the command's
description), and:

``NAME``
    the command (``tinyclap bench NAME``) and the committed folder
    ``results/NAME_bench/`` (:func:`results_folder`);
``HELP``
    one line for ``tinyclap bench --help``;
``add_arguments(parser)``
    its options (underscores: ``--batch_size``);
``run(args) -> dict``
    measure; the record is JSON-serialisable;
``table(record, command) -> str``
    markdown (optional: :func:`tinyclap.bench.output.quantity_table`).

The command line (:mod:`tinyclap.cli.registry`) adds ``--out DIR`` / ``--save`` /
``--json`` to each and ends in :func:`tinyclap.bench.output.report`. A new bench is
one module listed in :data:`BENCHES` plus a test.

Example
-------
>>> sorted(benches())[:3]
['cache', 'data', 'deploy']
>>> str(results_folder("cache"))
'results/cache_bench'
"""

import importlib
from pathlib import Path

BENCHES = ("models", "distill", "cache", "data", "deploy", "onnx_frontend", "onnx_int8",
           "runtime", "timeline_memory", "shards", "mcu")  # fmt: skip


def benches():
    """``{NAME: module}`` of every bench (imported now)."""
    return {m.NAME: m for m in (importlib.import_module(f"tinyclap.bench.{n}") for n in BENCHES)}


def results_folder(name):
    """The committed folder of bench ``name``: ``results/<name>_bench``."""
    return Path("results") / f"{name}_bench"
