"""The text student in an exported folder: the default free-form text encoder.

:func:`export_text_student` writes, for :func:`tinyclap.deploy.export.export_student`:

* ``text_encoder.safetensors``: the text student's weights and its SentencePiece
  model (a :class:`~tinyclap.deploy.text_encoders.TextStudentEncoder`
  loadable), so ``tinyclap classify --labels "any words"`` works from the
  folder alone, offline, with no teacher files;
* ``text_tokenizer.model``: the same SentencePiece model as a file, and
  ``onnx/text_encoder.onnx`` (:mod:`tinyclap.deploy.text_onnx`): a torch-free
  text encoder (input contract in ``export.json["text_student"]``).

Which text student: an explicit checkpoint, or ``auto``: ``text_student.ckpt``
beside the audio student or in a sibling ``text_student/`` folder
(``runs/demo/student/student.ckpt`` -> ``runs/demo/text_student/text_student.ckpt``),
used only when it was distilled from the same teacher weights.
"""

import logging
from pathlib import Path

from tinyclap.deploy.safety import sha256_file
from tinyclap.deploy.text_encoders import save_text_student_encoder
from tinyclap.deploy.text_onnx import TEXT_ONNX_CONTRACT
from tinyclap.nn.complexity import count_params

logger = logging.getLogger(__name__)

TEXT_STUDENT_CLASS = "tinyclap.deploy.text_encoders.TextStudentEncoder"
TOKENIZER_FILE = "text_tokenizer.model"
TEXT_ONNX_FILE = "onnx/text_encoder.onnx"


def find_text_student(student_checkpoint):
    """A ``text_student.ckpt`` beside ``student_checkpoint`` or in a sibling folder, or None.

    Example
    -------
    >>> find_text_student("/nonexistent/student/student.ckpt") is None
    True
    """
    folder = Path(student_checkpoint).parent  # as given: export.json records it
    for candidate in (
        folder / "text_student.ckpt",
        folder.parent / "text_student" / "text_student.ckpt",
    ):
        if candidate.is_file():
            return candidate
    return None


def resolve_text_student(text_student, student_checkpoint, teacher):
    """The text-student checkpoint to export (or None: the teacher's text side).

    Parameters
    ----------
    text_student : str, Path or None
        A checkpoint, ``"auto"`` (:func:`find_text_student`) or None / ``"none"``.
    student_checkpoint : str or Path
        The audio student (``auto`` looks beside it).
    teacher : Teacher
        The student's teacher: the text student must come from the same weights.

    Raises
    ------
    ValueError
        An explicit checkpoint distilled from another teacher.
    """
    from tinyclap.students.text import is_text_student_checkpoint, load_text_student

    if text_student is None or str(text_student).lower() == "none":
        return None
    explicit = str(text_student) != "auto"
    path = Path(text_student) if explicit else find_text_student(student_checkpoint)
    if path is None:
        return None
    if explicit and not is_text_student_checkpoint(path):
        raise ValueError(f"--text_student {path}: not a tinyclap text-student checkpoint")
    _, _, payload = load_text_student(path)
    recorded, expected = payload.get("teacher_fingerprint", ""), getattr(teacher, "fingerprint", "")
    if recorded and expected and recorded != expected:
        message = (
            f"{path} was distilled from another teacher (fingerprint {recorded[:12]}..., "
            f"this student's teacher has {expected[:12]}...)"
        )
        if explicit:
            raise ValueError(message)
        logger.warning("%s: not used; the teacher's text side is exported instead", message)
        return None
    return path


def export_text_student(path, encoder, out, onnx_graph=True):
    """Write the text student of ``path`` into the folder ``out``; return its record.

    Parameters
    ----------
    path : str or Path
        A text-student checkpoint (``hparams/distill_text.yaml``).
    encoder : StudentAudioEncoder
        The exported audio student (its ``kept_dims`` restrict the text side).
    out : Path
        The export folder.
    onnx_graph : bool
        Also write ``onnx/text_encoder.onnx`` (needs the ``onnx`` package;
        skipped with a warning without it).

    Returns
    -------
    dict
        ``spec`` (the yaml entry of :func:`tinyclap.deploy.export.hparams_text`)
        and the ``export.json`` record: checkpoint, params, tokenizer, files, contract.
    """
    from tinyclap.students.text import load_text_student

    student, tokenizer, payload = load_text_student(path)
    kept = encoder.kept_dims
    if (kept is None and student.embedding_dim != encoder.embedding_dim) or (
        kept is not None and max(kept) >= student.embedding_dim
    ):
        raise ValueError(
            f"{path}: the text student outputs {student.embedding_dim} dims, the audio "
            f"student {encoder.embedding_dim} (kept dims {kept}): not the same teacher"
        )
    out = Path(out)
    kwargs = save_text_student_encoder(
        out / "text_encoder.safetensors", student, tokenizer, payload.get("teacher_fingerprint", "")
    )
    kwargs["kept_dims"] = encoder.kept_dims
    (out / TOKENIZER_FILE).write_bytes(tokenizer.model_proto)
    files = {"tokenizer": TOKENIZER_FILE}
    if onnx_graph:
        try:
            from tinyclap.deploy.text_onnx import export_text_onnx

            export_text_onnx(student, out / TEXT_ONNX_FILE, encoder.kept_dims)
            files["onnx"] = TEXT_ONNX_FILE
            files["onnx_sha256"] = sha256_file(out / TEXT_ONNX_FILE)
        except ImportError as err:
            logger.warning("onnx/text_encoder.onnx not written (%s): pip install onnx", err)
    return {
        "spec": {"class": TEXT_STUDENT_CLASS, "kwargs": kwargs, "loadable": 1},
        "checkpoint": str(path),
        "params": count_params(student),
        "config": dict(student.config),
        "kept_dims": encoder.kept_dims,
        "tokenizer": {
            "type": "sentencepiece",
            "vocab_size": tokenizer.vocab_size,
            "max_length": tokenizer.max_length,
        },
        "files": files,
        "metrics": payload.get("metrics", {}),
        "onnx_contract": TEXT_ONNX_CONTRACT,
    }
