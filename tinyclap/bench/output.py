"""What every ``tinyclap bench`` tool does with its record: print it, write it beside its command.

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


def quantity_table(record, command):
    """A markdown ``quantity | value`` table of ``record``, headed by the command that made it."""
    lines = [f"Command: `{command}`", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in record.items()]
    return "\n".join(lines)


def report(record, command, out=None, table=quantity_table, names=("results.json", "table.md")):
    """Print ``table(record, command)``; with ``out``, also write it and the JSON record there.

    Parameters
    ----------
    record : dict
        The bench's measurements (JSON-serialisable).
    command : str
        The command line that made them (stored with them).
    out : str or Path, optional
        Folder for the JSON record and the markdown table.
    table : callable
        ``(record, command) -> str`` markdown.
    names : tuple of str
        File names of the JSON record and of the table.

    Returns
    -------
    int
        0 (the bench command's exit status).
    """
    record = {"machine": machine_info(), **record}
    text = table({k: v for k, v in record.items() if k != "machine"}, command)
    print(cpu_line(record["machine"]))
    print(text)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        json_name, md_name = names
        (out / json_name).write_text(
            json.dumps({"command": command, **record}, indent=2), encoding="utf-8"
        )
        (out / md_name).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out}/{json_name} and {md_name}", file=sys.stderr)
    return 0
