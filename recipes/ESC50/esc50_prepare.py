#!/usr/bin/env python3
"""Prepare ESC50 manifests (SpeechBrain JSON).

Usage: ``python recipes/ESC50/esc50_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.esc50`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare esc50 ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("esc50"))
