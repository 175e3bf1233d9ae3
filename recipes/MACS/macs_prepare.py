#!/usr/bin/env python3
"""Prepare MACS manifests (SpeechBrain JSON).

Usage: ``python recipes/MACS/macs_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.macs`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare macs ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("macs"))
