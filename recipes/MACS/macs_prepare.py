#!/usr/bin/env python3
"""Prepare MACS manifests: ``python recipes/MACS/macs_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.macs`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.macs import main

if __name__ == "__main__":
    main()
