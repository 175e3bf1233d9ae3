#!/usr/bin/env python3
"""Prepare FSD50K manifests: ``python recipes/FSD50K/fsd50k_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.fsd50k`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.fsd50k import main

if __name__ == "__main__":
    main()
