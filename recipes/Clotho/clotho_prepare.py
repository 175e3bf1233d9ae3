#!/usr/bin/env python3
"""Prepare Clotho manifests (SpeechBrain JSON).

Usage: ``python recipes/Clotho/clotho_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.clotho`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare clotho ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("clotho"))
