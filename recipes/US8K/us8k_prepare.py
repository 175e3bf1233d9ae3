#!/usr/bin/env python3
"""Prepare US8K manifests (SpeechBrain JSON).

Usage: ``python recipes/US8K/us8k_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.us8k`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare us8k ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("us8k"))
