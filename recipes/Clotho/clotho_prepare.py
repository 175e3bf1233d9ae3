#!/usr/bin/env python3
"""Prepare Clotho manifests: ``python recipes/Clotho/clotho_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.clotho`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.clotho import main

if __name__ == "__main__":
    main()
