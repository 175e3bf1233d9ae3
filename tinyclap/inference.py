"""Public alias: ``from tinyclap.inference import ZeroShotAudioClassifier``.

The implementation lives in :mod:`tinyclap.deploy.inference`; exported folders
(``custom.py``, ``hyperparams.yaml``) and user code import it from here.
"""

from tinyclap.deploy.inference import (  # noqa: F401
    ModelSourceError,
    ZeroShotAudioClassifier,
    foreign_class,
    strict_state_dict_transfer,
)

__all__ = [
    "ModelSourceError",
    "ZeroShotAudioClassifier",
    "foreign_class",
    "strict_state_dict_transfer",
]
