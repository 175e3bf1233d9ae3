"""Bad configurations fail with a clear message before any data or model work."""

from pathlib import Path

import pytest
import torch

from tinyclap.stages.checks import ConfigError, check_ks, check_phinet, check_student_fits_teacher
from tinyclap.stages.recipe import main

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path, hparams, *overrides):
    return main([str(REPO / "hparams" / hparams), "--data_folder", str(tmp_path / "data"),
                 "--output_folder", str(tmp_path / "out"), *overrides])  # fmt: skip


@pytest.mark.parametrize(
    "hparams, overrides, message",
    [
        ("distill.yaml", ["--teacher", "msclap-2021"], "teacher: 'msclap-2021' is not mini"),
        ("distill.yaml", ["--teacher_checkpoint", "no/teacher.ckpt"], "file not found"),
        ("distill.yaml", ["--mini_checkpoint", "no/teacher.ckpt"], "file not found"),
        ("distill.yaml", ["--teacher", "msclap-2022", "--text_model", "/"], "no config.json"),
        ("distill.yaml", ["--alpha", "0"], "alpha: must be > 0"),
        ("distill.yaml", ["--beta", "-1"], "beta: must be > 0"),
        ("distill.yaml", ["--num_layers", "0"], "num_layers: must be an integer >= 1"),
        ("distill.yaml", ["--num_layers", "2.5"], "num_layers: must be an integer >= 1"),
        ("prune.yaml", ["--ks", "[0, 8]"], "ks: must be a list of integers >= 1"),
        ("prune.yaml", ["--rankings", "[student, magic]"], "rankings: unknown ['magic']"),
        ("prune.yaml", ["--student_checkpoint", "no/student.ckpt"], "student_checkpoint: file"),
        ("evaluate.yaml", ["--model", "no/student.ckpt"], "model: file not found"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, hparams, overrides, message):
    teacher = tmp_path / "teacher.ckpt"
    teacher.write_bytes(b"checked for existence only")
    defaults = []  # existing files for the options a case does not set
    for key, stages in {"--mini_checkpoint": ("distill.yaml", "prune.yaml", "evaluate.yaml"),
                        "--student_checkpoint": ("prune.yaml",), "--model": ("evaluate.yaml",)
                        }.items():  # fmt: skip
        if hparams in stages and key not in overrides:
            defaults += [key, str(teacher)]
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        _run(tmp_path, hparams, *defaults, *overrides)
    assert not (tmp_path / "data").exists()  # no dataset was prepared
    assert not (tmp_path / "out" / "hyperparams.yaml").exists()  # no experiment was set up


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
        check_phinet({"alpha": alpha, "beta": beta, "t_zero": t_zero, "num_layers": n})
    assert torch.__version__  # the checks import no model code
