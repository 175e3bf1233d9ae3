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
