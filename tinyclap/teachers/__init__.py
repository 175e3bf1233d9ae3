"""Frozen CLAP teachers behind one interface (:class:`Teacher`).

``load_teacher(name_or_path, ...)`` returns a teacher in eval mode with
gradients off: ``mini`` (the embedded teacher trained by
``python train.py hparams/train_teacher.yaml``; a checkpoint path is needed),
``msclap-2022`` / ``msclap-2023`` (Microsoft CLAP through ``msclap``: local
files or the Hugging Face hub), or a mini-teacher checkpoint path.
"""

from pathlib import Path

from tinyclap.teachers.base import Teacher, TeacherLoadError, file_fingerprint

MSCLAP_NAMES = ("msclap-2022", "msclap-2023")

__all__ = ["MSCLAP_NAMES", "Teacher", "TeacherLoadError", "file_fingerprint", "load_teacher"]


def load_teacher(name_or_path, checkpoint=None, device="cpu", **kwargs):
    """Load a frozen teacher by name or checkpoint path.

    Parameters
    ----------
    name_or_path : str
        ``mini`` (then ``checkpoint`` is required), ``msclap-2022``,
        ``msclap-2023``, or a path to a mini-teacher checkpoint.
    checkpoint : str, optional
        Local weights file (for msclap: ``CLAP_weights_*.pth``; downloaded
        from the hub when omitted).
    device : str
        Torch device.
    **kwargs
        msclap options: ``text_model`` (local folder), ``trust_checkpoint``,
        ``cache_dir``; see :func:`tinyclap.teachers.msclap.load_msclap_teacher`.

    Returns
    -------
    MiniTeacher or MSCLAPTeacher
        In eval mode, gradients disabled.

    Example
    -------
    >>> load_teacher("mini")
    Traceback (most recent call last):
    ...
    tinyclap.teachers.base.TeacherLoadError: the mini teacher needs checkpoint=PATH ...
    """
    name = str(name_or_path)
    if name in MSCLAP_NAMES:
        from tinyclap.teachers.msclap import load_msclap_teacher

        return load_msclap_teacher(name, checkpoint=checkpoint, device=device, **kwargs)
    if name == "mini":
        if checkpoint is None:
            raise TeacherLoadError(
                "the mini teacher needs checkpoint=PATH (train one with "
                "`python train.py hparams/train_teacher.yaml`)"
            )
        return _mini(checkpoint, device)
    path = Path(checkpoint or name)
    if not path.is_file():
        raise TeacherLoadError(
            f"unknown teacher {name!r}: not one of mini, {', '.join(MSCLAP_NAMES)} "
            f"and no file at {path}"
        )
    return _mini(path, device)


def teacher_source(hparams):
    """``(name, checkpoint)`` of the teacher the hparams ask for.

    Example
    -------
    >>> teacher_source({"teacher": "mini", "teacher_checkpoint": None, "mini_checkpoint": "t.ckpt"})
    ('mini', 't.ckpt')
    >>> teacher_source({"teacher": "msclap-2022", "teacher_checkpoint": None})
    ('msclap-2022', None)
    """
    name, checkpoint = str(hparams["teacher"]), hparams.get("teacher_checkpoint")
    if checkpoint is None and name == "mini":
        checkpoint = hparams.get("mini_checkpoint")
    return name, checkpoint


def load_teacher_from_hparams(hparams, device="cpu"):
    """:func:`load_teacher` with the hparams' teacher options."""
    name, checkpoint = teacher_source(hparams)
    return load_teacher(
        name,
        checkpoint=checkpoint,
        device=device,
        text_model=hparams.get("text_model"),
        trust_checkpoint=bool(hparams.get("trust_checkpoint", False)),
    )


def _mini(path, device):
    from tinyclap.teachers.mini import load_mini_teacher

    return load_mini_teacher(path, device)
