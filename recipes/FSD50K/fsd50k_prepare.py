#!/usr/bin/env python3
"""Prepare FSD50K manifests (SpeechBrain JSON).

Usage: ``python recipes/FSD50K/fsd50k_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.fsd50k`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare fsd50k ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("fsd50k"))
