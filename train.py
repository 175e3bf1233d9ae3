#!/usr/bin/env python3
"""Run one tinyclap stage: ``python train.py hparams/<stage>.yaml [--key value ...]``.

Each hparams file declares its parts as objects (teacher, frontend, student,
loss, data preparation, checkpointers) and names the function that runs it
(``stage: !name:...``); see :mod:`tinyclap.stages.run`. ``tinyclap train`` is
the same command, from any working directory.
"""

from tinyclap.stages.run import main

if __name__ == "__main__":
    main()
