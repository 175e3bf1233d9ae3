#!/usr/bin/env python3
"""Prepare ESC50 manifests: ``python recipes/ESC50/esc50_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.esc50`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.esc50 import main

if __name__ == "__main__":
    main()
