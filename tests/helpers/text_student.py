"""A ``--debug`` run of ``hparams/distill_text.yaml`` with any teacher (shared by the teacher tests)."""

from tests.helpers.tiny import REPO

SMALL_TEXT_STUDENT = ["--vocab_size", "300", "--d_model", "32", "--num_layers", "1",
                      "--ff_dim", "64", "--batch_size", "8"]  # fmt: skip


def distill_text_debug(root, teacher_args, embedding_dim):
    """Run the text stage in debug mode on a tiny Synth tree; check and return its record.

    Parameters
    ----------
    root : Path
        A fresh folder (data, cache and run go below it).
    teacher_args : list of str
        Command-line options naming the teacher (``--teacher ...``).
    embedding_dim : int
        The teacher's latent size, which the text student must output.
    """
    from tinyclap.stages.run import main
    from tinyclap.students.text import embed_texts, load_text_student

    result = main([
        str(REPO / "hparams/distill_text.yaml"), "--debug", *teacher_args,
        "--data_folder", str(root / "data"), "--n_train", "1", "--n_valid", "1", "--n_test", "1",
        "--output_folder", str(root / "text_student"), "--cache_folder", str(root / "cache"),
        *SMALL_TEXT_STUDENT,
    ])  # fmt: skip
    student, tokenizer, payload = load_text_student(result["text_student_checkpoint"])
    assert student.embedding_dim == embedding_dim
    assert embed_texts(student, tokenizer, ["a creaking door"]).shape == (1, embedding_dim)
    assert result["trained_on"]["train"] == 16 and result["optimizer_steps"] == 4
    assert payload["teacher_fingerprint"]  # checked again at export
    return result


# The tiny SentencePiece corpus and the classes of the open-vocabulary folders below.
CORPUS = [
    f"{t} {w}"
    for t in ("this is the sound of", "a recording of", "")
    for w in ("dog barking", "rain falling", "a door creaking", "wind", "siren wailing",
              "birds singing", "an engine idling", "glass breaking")
]  # fmt: skip
CLASSES = ["church bell", "clock ticking", "rain", "siren"]


def export_text_folder(root, mini_teacher, tiny_student):
    """``root/text``: a tiny student exported with a tiny text student and its ONNX graphs.

    The student and text student are written as a run (``root/run/student``,
    ``root/run/text_student``, where export finds the text student), then
    exported with the us8k and synth label sets. Returns the folder.
    """
    import torch

    from tinyclap.deploy.export import export_student
    from tinyclap.deploy.onnx import export_onnx
    from tinyclap.stages.distill_text import train_tokenizer
    from tinyclap.students.encoder import save_student
    from tinyclap.students.text import TextStudent, save_text_student
    from tinyclap.teachers import load_teacher

    teacher = load_teacher("mini", checkpoint=mini_teacher.path)
    student_path = root / "run" / "student" / "student.ckpt"
    save_student(student_path, tiny_student.model(), teacher=str(mini_teacher.path))
    tokenizer = train_tokenizer(CORPUS, root / "tok", vocab_size=40, max_length=16)
    torch.manual_seed(3)
    text_student = TextStudent(tokenizer.vocab_size, 16, d_model=32, num_layers=1, num_heads=2,
                               ff_dim=64, max_length=16).eval()  # fmt: skip
    save_text_student(root / "run" / "text_student" / "text_student.ckpt", text_student,
                      tokenizer, teacher=str(mini_teacher.path),
                      teacher_fingerprint=teacher.fingerprint)  # fmt: skip
    export_student(student_path, root / "text", label_sets=["us8k", "synth"])
    export_onnx(root / "text", repeats=2)
    return root / "text"
