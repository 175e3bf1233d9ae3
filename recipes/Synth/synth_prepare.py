#!/usr/bin/env python3
"""Prepare Synth manifests: ``python recipes/Synth/synth_prepare.py --data_folder DIR``.

The preparation lives in the library (:mod:`tinyclap.prepare.synth`), so that
hparams files and the installed ``tinyclap`` command reach it from anywhere.
"""

from tinyclap.prepare.synth import main

if __name__ == "__main__":
    main()
