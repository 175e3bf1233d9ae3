"""Bad configurations fail with a clear message before any data or model work."""

from pathlib import Path

import pytest

from tinyclap.stages.run import main
from tinyclap.teachers import TeacherLoadError
from tinyclap.training.checks import ConfigError, check_ks, check_phinet, check_student_fits_teacher

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path, hparams, *overrides):
    return main([str(REPO / "hparams" / hparams), "--data_folder", str(tmp_path / "data"),
                 "--output_folder", str(tmp_path / "out"), *overrides])  # fmt: skip


@pytest.mark.parametrize(
    "hparams, overrides, error, message",
    [
        ("distill.yaml", ["--teacher", "msclap-2021"], TeacherLoadError,
         "unknown teacher 'msclap-2021': not one of mini"),
        ("distill.yaml", ["--teacher_checkpoint", "no/teacher.ckpt"], TeacherLoadError,
         "teacher checkpoint not found: no/teacher.ckpt"),
        ("distill.yaml", ["--mini_checkpoint", "no/teacher.ckpt"], TeacherLoadError,
         "teacher checkpoint not found: no/teacher.ckpt"),
        ("distill.yaml", ["--alpha", "0"], ConfigError, "alpha: must be > 0"),
        ("distill.yaml", ["--beta", "-1"], ConfigError, "beta: must be > 0"),
        ("distill.yaml", ["--num_layers", "0"], ConfigError, "num_layers: must be an integer >= 1"),
        ("distill.yaml", ["--num_layers", "2.5"], ConfigError,
         "num_layers: must be an integer >= 1"),
        ("distill.yaml", ["--embedding_dim", "8"], ConfigError,
         "embedding_dim: 8, but the teacher's latent size is 16"),
        ("prune.yaml", ["--ks", "[0, 8]"], ConfigError, "ks: must be a list of integers >= 1"),
        ("prune.yaml", ["--rankings", "[student, magic]"], ConfigError,
         "rankings: unknown ['magic']"),
        ("prune.yaml", ["--student_checkpoint", "no/student.ckpt"], ConfigError,
         "student_checkpoint: file"),
        ("evaluate.yaml", ["--model", "no/student.ckpt"], ConfigError, "model: file not found"),
        ("transfer.yaml", ["--transfer_lambda", "1.5"], ConfigError,
         "transfer_lambda: must be between 0 and 1, got 1.5"),
        ("transfer.yaml", ["--reg_loss", "l1"], ConfigError, "reg_loss: unknown 'l1'"),
        ("transfer.yaml", ["--compression", "svd"], ConfigError, "compression: unknown 'svd'"),
        ("transfer.yaml", ["--compression_dim", "0"], ConfigError,
         "compression_dim: must be an integer >= 1"),
        ("transfer.yaml", ["--compression_dim", "64"], ConfigError,
         "compression_dim: 64 is above the teacher's latent size 16"),
        ("transfer.yaml", ["--pca_fit_on", "all"], ConfigError, "pca_fit_on: use one of"),
    ],
)  # fmt: skip
def test_bad_options_fail_before_any_work(tmp_path, mini_teacher, hparams, overrides, error,
                                          message):  # fmt: skip
    """A real (tiny, random) mini-teacher checkpoint: the hparams load it first."""
    defaults = []  # existing files for the options a case does not set
    for key, stages in {"--mini_checkpoint": ("distill.yaml", "prune.yaml", "evaluate.yaml",
                                              "transfer.yaml"),
                        "--student_checkpoint": ("prune.yaml",), "--model": ("evaluate.yaml",)
                        }.items():  # fmt: skip
        if hparams in stages and key not in overrides:
            defaults += [key, str(mini_teacher.path if key == "--mini_checkpoint" else "teacher")]
    with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(")):
        _run(tmp_path, hparams, *defaults, *overrides)
    assert not (tmp_path / "data").exists()  # no dataset was prepared
    assert not (tmp_path / "out" / "hyperparams.yaml").exists()  # no experiment was set up


def test_transfer_options_are_checked_before_the_teacher_loads(tmp_path):
    # the teacher checkpoint does not exist: the option error must come first
    with pytest.raises(ConfigError, match="transfer_lambda: must be between 0 and 1"):
        _run(tmp_path, "transfer.yaml", "--mini_checkpoint", "no/teacher.ckpt",
             "--transfer_lambda", "-0.1")  # fmt: skip


class _Model:
    def __init__(self, dim, kept_dims=None):
        self.embedding_dim, self.kept_dims = dim, kept_dims


def test_student_latent_size_must_match_the_teacher():
    check_student_fits_teacher(_Model(256), _Model(256), "s.ckpt")
    check_student_fits_teacher(_Model(2, kept_dims=[3, 255]), _Model(256), "s.ckpt")
    with pytest.raises(ConfigError, match="s.ckpt: the student's latent size is 1024 but the"):
        check_student_fits_teacher(_Model(1024), _Model(256), "s.ckpt")
    with pytest.raises(ConfigError, match="pruned to dims up to 300, beyond"):
        check_student_fits_teacher(_Model(2, kept_dims=[3, 300]), _Model(256), "s.ckpt")


def test_k_must_be_below_the_latent_size():
    check_ks([8, 255], 256)
    with pytest.raises(ConfigError, match="K=256 is not below the student's latent size 256"):
        check_ks([8, 256], 256)


def test_phinet_checks_accept_every_table1_config():
    for alpha, beta, t_zero, n in [(3, 0.75, 6, 7), (3, 0.75, 6, 9), (1.5, 0.75, 6, 7),
                                   (0.75, 0.75, 4, 4)]:  # fmt: skip
        check_phinet(alpha, beta, t_zero, n, head_channels=2048)  # no error
    for bad in [(3, 0.75, 6, 0), (0, 0.75, 6, 7), (1.5, 0.75, -6, 7)]:
        with pytest.raises(ConfigError):
            check_phinet(*bad)
