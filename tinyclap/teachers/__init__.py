"""Frozen CLAP teachers behind one interface (:class:`Teacher`).

``load_teacher(name_or_path, ...)`` returns a teacher in eval mode with
gradients off: ``mini`` (the embedded teacher trained by
``python train.py hparams/train_teacher.yaml``; a checkpoint path is needed),
``msclap-2022`` / ``msclap-2023`` (Microsoft CLAP through ``msclap``: local
files or the Hugging Face hub), a ``transformers`` CLAP (LAION CLAP: a hub repo
id such as ``laion/clap-htsat-unfused``, or a folder written by
``ClapModel.save_pretrained`` + ``ClapProcessor.save_pretrained``), or a
mini-teacher checkpoint path. Which family takes a name is decided by the teacher
table, :mod:`tinyclap.teachers.registry` (a new teacher: its module + one row there).
"""

from tinyclap.teachers.base import Teacher, TeacherLoadError, file_fingerprint
from tinyclap.teachers.registry import FAMILIES, family_of, named_families

MSCLAP_NAMES = named_families()

__all__ = [
    "FAMILIES",
    "MSCLAP_NAMES",
    "Teacher",
    "TeacherLoadError",
    "file_fingerprint",
    "load_teacher",
]


def load_teacher(name_or_path, checkpoint=None, device="cpu", mini_checkpoint=None, **kwargs):
    """Load a frozen teacher by name or checkpoint path.

    Parameters
    ----------
    name_or_path : str
        ``mini`` (then a checkpoint is required), ``msclap-2022``,
        ``msclap-2023``, a transformers CLAP (hub repo id ``owner/name`` or
        local folder), or a path to a mini-teacher checkpoint.
    checkpoint : str, optional
        Local weights (for msclap: ``CLAP_weights_*.pth``; for a transformers
        CLAP: its folder); downloaded from the hub when omitted.
    device : str
        Torch device.
    mini_checkpoint : str, optional
        The checkpoint of ``mini`` when ``checkpoint`` is None (the hparams
        files' default: the embedded teacher trained by
        ``hparams/train_teacher.yaml``); ignored for the other teachers.
    **kwargs
        msclap options: ``text_model`` (local folder), ``trust_checkpoint``,
        ``cache_dir``; see :func:`tinyclap.teachers.msclap.load_msclap_teacher`
        and :func:`tinyclap.teachers.transformers_clap.load_transformers_clap_teacher`.

    Returns
    -------
    Teacher
        In eval mode, gradients disabled; ``source`` records where it came
        from (the checkpoint path, else the name).

    Example
    -------
    >>> load_teacher("mini")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: the mini teacher needs checkpoint=PATH ...
    """
    name = str(name_or_path)
    if family_of(name).name == "mini":
        kwargs["mini_checkpoint"] = mini_checkpoint
    teacher = family_of(name).load(name, checkpoint=checkpoint, device=device, **kwargs)
    teacher.source = str(checkpoint or (mini_checkpoint if name == "mini" else None) or name)
    return teacher
