#!/usr/bin/env python3
"""Prepare AudioCaps manifests: ``python recipes/AudioCaps/audiocaps_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.audiocaps`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.audiocaps import main

if __name__ == "__main__":
    main()
