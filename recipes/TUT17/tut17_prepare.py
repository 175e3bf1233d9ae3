#!/usr/bin/env python3
"""Prepare TUT17 manifests (SpeechBrain JSON).

Usage: ``python recipes/TUT17/tut17_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.tut17`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare tut17 ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("tut17"))
