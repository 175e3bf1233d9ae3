#!/usr/bin/env python3
"""Run one tinyclap stage: ``python train.py hparams/<stage>.yaml [--key value ...]``.

Stages (the yaml's ``stage`` key): ``train_teacher``, ``distill``, ``evaluate``.
All logic lives in :mod:`tinyclap.stages.recipe`.
"""

from tinyclap.stages.recipe import main

if __name__ == "__main__":
    main()
