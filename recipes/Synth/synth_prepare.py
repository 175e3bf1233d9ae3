#!/usr/bin/env python3
"""Prepare Synth manifests (SpeechBrain JSON).

Usage: ``python recipes/Synth/synth_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.synth`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare synth ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("synth"))
