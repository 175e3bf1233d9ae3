"""``tinyclap bench ...``: one module per benchmark, one shared writer.

Every bench prints :func:`tinyclap.runtime.machine.cpu_line` above its table and
writes ``results.json`` + ``table.md`` through :mod:`tinyclap.bench.output`.
"""
