"""The one writer of every bench and study: print the record, write it beside its command.

Every ``tinyclap bench NAME`` (and ``tinyclap study NAME``) ends in :func:`report`: it
adds the machine (:func:`tinyclap.runtime.machine.machine_info`) and the command line
to the record, prints :func:`tinyclap.runtime.machine.cpu_line` above the markdown
table, and with an output folder writes ``results.json`` and ``table.md`` there (the
committed folders under ``results/`` are these files).

Example
-------
>>> print(quantity_table({"speedup": 9.5}, "tinyclap bench distill"))
Command: `tinyclap bench distill`
<BLANKLINE>
| quantity | value |
|---|---|
| speedup | 9.5 |
"""

import json
import sys
from pathlib import Path

from tinyclap.runtime.machine import cpu_line, machine_info

RESULTS_JSON = "results.json"
TABLE_MD = "table.md"


def quantity_table(record, command):
    """A markdown ``quantity | value`` table of ``record``, headed by the command that made it."""
    lines = [f"Command: `{command}`", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in record.items()]
    return "\n".join(lines)


def rows_table(rows, columns=None):
    """Markdown table of a list of dicts (``columns``: keys shown, default the first row's).

    Example
    -------
    >>> print(rows_table([{"a": 1, "b": None}]))
    | a | b |
    |---|---|
    | 1 |  |
    """
    columns = list(columns or rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if row.get(k) is None else str(row.get(k)) for k in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(record, command, out=None, table=quantity_table, as_json=False):
    """Print ``table(record, command)``; with ``out``, also write it and the JSON record there.

    Parameters
    ----------
    record : dict
        The bench's measurements (JSON-serialisable). A ``machine`` entry is
        kept (a bench that measured several interpreters records its own),
        otherwise this machine's is added.
    command : str
        The command line that made them (stored with them as ``command``).
    out : str or Path, optional
        Folder for ``results.json`` and ``table.md``.
    table : callable
        ``(record, command) -> str`` markdown (the record without ``machine``).
    as_json : bool
        Print the JSON record on stdout instead of the table (the CPU line then
        goes to stderr).

    Returns
    -------
    dict
        The record as written (with ``command`` and ``machine``).

    Example
    -------
    >>> written = report({"x": 1}, "tinyclap bench x")  # doctest: +ELLIPSIS
    CPU: ...
    Command: `tinyclap bench x`
    <BLANKLINE>
    | quantity | value |
    |---|---|
    | x | 1 |
    >>> sorted(written)
    ['command', 'machine', 'x']
    """
    body = {k: v for k, v in record.items() if k not in ("machine", "command")}
    record = {"command": command, "machine": record.get("machine") or machine_info(), **body}
    text = table(body, command)
    print(cpu_line(record["machine"]), file=sys.stderr if as_json else sys.stdout)
    print(json.dumps(record, indent=2) if as_json else text)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / RESULTS_JSON).write_text(json.dumps(record, indent=2), encoding="utf-8")
        (out / TABLE_MD).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out / RESULTS_JSON} and {out / TABLE_MD}", file=sys.stderr)
    return record
