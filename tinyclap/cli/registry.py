"""Build ``tinyclap bench NAME`` / ``tinyclap study NAME`` from modules of one shape.

A registered module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args)`` (see :mod:`tinyclap.bench.registry`); ``table(record, command)``
too when its record goes through the shared writer
(:func:`tinyclap.bench.output.report`), which every bench does.

Example
-------
>>> import argparse
>>> from tinyclap.bench.registry import benches, results_folder
>>> sub = argparse.ArgumentParser(prog="tinyclap bench").add_subparsers()
>>> parsers = add_commands(sub, benches(), results_folder, writer=True)
>>> sorted(parsers)[:2]
['cache', 'data']
"""

import argparse
import functools
import importlib

from tinyclap.bench.output import quantity_table, report

REQUIRED = ("NAME", "HELP", "add_arguments", "run")


def load(package, modules):
    """``{NAME: module}`` of ``package.module`` for each of ``modules``; checks the shape.

    Raises
    ------
    TypeError
        If a module lacks one of :data:`REQUIRED` (a bug of the module, not a user error).
    """
    found = {}
    for name in modules:
        module = importlib.import_module(f"{package}.{name}")
        missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
        if missing:
            raise TypeError(f"{module.__name__} lacks {', '.join(missing)}")
        found[module.NAME] = module
    return found


def description(module):
    """The command's description: the module docstring up to its ``Example`` section."""
    doc = (module.__doc__ or module.HELP).split("\nExample\n")[0]
    return doc.strip()


def add_commands(sub, modules, folder_of, writer=False):
    """One sub-parser per module; returns ``{NAME: parser}``.

    With ``writer`` (every bench), or for modules with a ``table``, the command gets
    ``--out DIR | --save`` and ``--json`` and ends in :func:`run_through_writer`;
    otherwise ``run(args)`` writes its own folder and returns the exit status.
    """
    parsers = {}
    for name, module in modules.items():
        p = sub.add_parser(name, help=module.HELP, description=description(module),
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        module.add_arguments(p)
        if writer or hasattr(module, "table"):
            out = p.add_argument_group("output (results.json + table.md)")
            where = out.add_mutually_exclusive_group()
            where.add_argument("--out", help="folder for results.json and table.md")
            where.add_argument("--save", action="store_true",
                               help=f"write them to {folder_of(name)}/ (committed)")  # fmt: skip
            out.add_argument("--json", action="store_true",
                             help="print the JSON record instead of the table")  # fmt: skip
            p.set_defaults(func=functools.partial(run_through_writer, module, folder_of(name)))
        else:
            p.set_defaults(func=module.run)
        parsers[name] = p
    return parsers


def run_through_writer(module, folder, args):
    """``module.run(args)``, then :func:`report` (print; write with ``--out`` / ``--save``)."""
    record = module.run(args)
    out = args.out or (folder if args.save else None)
    report(record, args.invocation, out, getattr(module, "table", quantity_table), args.json)
    return 0
