#!/usr/bin/env python3
"""Prepare AudioCaps manifests (SpeechBrain JSON).

Usage: ``python recipes/AudioCaps/audiocaps_prepare.py --data_folder DIR [options]``.

The preparation lives in the library (:mod:`tinyclap.prepare.audiocaps`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere;
``python -m tinyclap.prepare audiocaps ...`` is the same command.
"""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli("audiocaps"))
