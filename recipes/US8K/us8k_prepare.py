#!/usr/bin/env python3
"""Prepare US8K manifests: ``python recipes/US8K/us8k_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.us8k`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.us8k import main

if __name__ == "__main__":
    main()
