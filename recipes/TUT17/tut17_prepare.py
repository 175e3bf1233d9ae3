#!/usr/bin/env python3
"""Prepare TUT17 manifests: ``python recipes/TUT17/tut17_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.tut17`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.tut17 import main

if __name__ == "__main__":
    main()
