"""Students: tiny audio encoders distilled from a CLAP teacher.

A student is any torch module mapping log-mels ``[B, frames, n_mels]`` to
embeddings ``[B, D]`` (see :mod:`tinyclap.students.encoder` for the contract);
:class:`PhiNetStudent` (micromind's PhiNet) is tinyCLAP's.
"""

from tinyclap.students.encoder import (
    StudentAudioEncoder,
    is_student_checkpoint,
    load_student,
    save_student,
)
from tinyclap.students.phinet import PhiNetClassifier, PhiNetStudent

__all__ = [
    "PhiNetClassifier",
    "PhiNetStudent",
    "StudentAudioEncoder",
    "is_student_checkpoint",
    "load_student",
    "save_student",
]
