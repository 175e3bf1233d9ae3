"""``python -m tinyclap.studies.NAME``: the same study as ``tinyclap study NAME``.

Every study module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args)`` (the shape of :mod:`tinyclap.bench.registry`); a study whose
arguments end with ``-- ...`` (passed on to ``train.py``) names the attribute
that receives them in ``REST``.

Example
-------
>>> split_rest(["--grid", "a=1", "--", "hparams/distill.yaml", "--x", "1"])
(['--grid', 'a=1'], ['hparams/distill.yaml', '--x', '1'])
>>> split_rest(["--grid", "a=1"])
(['--grid', 'a=1'], None)
"""

import argparse
import shlex
import sys

STUDIES = ("demo", "sweep", "report", "fewshot", "open_set", "text_student", "transfer_compare")


def split_rest(argv):
    """``(before, after)`` of the first ``--`` in ``argv`` (``after`` is None without one)."""
    if "--" not in argv:
        return list(argv), None
    cut = argv.index("--")
    return list(argv[:cut]), list(argv[cut + 1 :])


def module_main(module, argv=None):
    """Parse ``argv`` with the module's options and run it; returns what ``run`` returns."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, rest = split_rest(argv) if hasattr(module, "REST") else (argv, None)
    parser = argparse.ArgumentParser(prog=f"python -m {module.__name__}",
                                     description=module.HELP)  # fmt: skip
    module.add_arguments(parser)
    args = parser.parse_args(own)
    if hasattr(module, "REST"):
        setattr(args, module.REST, rest or [])
    args.invocation = f"python -m {module.__name__} " + shlex.join(argv)
    return module.run(args)
