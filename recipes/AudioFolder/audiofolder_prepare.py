#!/usr/bin/env python3
"""Prepare AudioFolder manifests (SpeechBrain JSON); ``--help`` lists the options.

Usage: ``python recipes/AudioFolder/audiofolder_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.audiofolder`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.audiofolder import main

if __name__ == "__main__":
    main()
