"""Configuration checks that run before any expensive work.

``train.py`` calls :func:`check_hparams` right after reading the hparams, before
data preparation, teacher loading or cache building, so a typo in a teacher
name, an impossible PhiNet setting, a pruning K beyond the latent size or a
missing file fails in a second with a message naming the option. Checks that
need loaded models (latent sizes of a student and a teacher) are
:func:`check_student_fits_teacher` and :func:`check_ks`, called by the stages
as soon as both are loaded.
"""

from pathlib import Path

from tinyclap.teachers import MSCLAP_NAMES, teacher_source

RANKINGS = ("student", "teacher", "random")


class ConfigError(ValueError):
    """An hparams value that cannot work; the message names the option."""


def check_teacher(hparams):
    """The teacher name is known and its local files exist.

    Example
    -------
    >>> check_teacher({"teacher": "msclap-2021"})
    Traceback (most recent call last):
    ...
    tinyclap.stages.checks.ConfigError: teacher: 'msclap-2021' is not mini, msclap-2022, msclap-2023 or an existing checkpoint file
    """  # noqa: E501
    name, checkpoint = teacher_source(hparams)
    if name not in ("mini", *MSCLAP_NAMES) and not Path(name).is_file():
        raise ConfigError(
            f"teacher: {name!r} is not mini, {', '.join(MSCLAP_NAMES)} or an existing "
            "checkpoint file"
        )
    if name == "mini" and checkpoint is None:
        raise ConfigError("teacher: mini needs teacher_checkpoint (or mini_checkpoint)")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ConfigError(f"teacher_checkpoint: file not found: {checkpoint}")
    text_model = hparams.get("text_model")
    if text_model is not None and not (Path(text_model) / "config.json").is_file():
        raise ConfigError(f"text_model: {text_model} is not a model folder (no config.json)")


def check_phinet(hparams):
    """PhiNet knobs a network can be built from (micromind accepts some that cannot work).

    Example
    -------
    >>> check_phinet({"alpha": 0.75, "beta": 0.75, "t_zero": 4, "num_layers": 0})
    Traceback (most recent call last):
    ...
    tinyclap.stages.checks.ConfigError: num_layers: must be an integer >= 1, got 0
    """
    for key in ("alpha", "beta", "t_zero", "head_channels"):
        if key in hparams and not float(hparams[key]) > 0:
            raise ConfigError(f"{key}: must be > 0, got {hparams[key]}")
    for key in ("num_layers", "head_channels"):
        value = hparams.get(key)
        if value is not None and (int(value) != float(value) or int(value) < 1):
            raise ConfigError(f"{key}: must be an integer >= 1, got {value}")


def check_prune_grid(hparams):
    """Pruning ``ks`` are positive integers and ``rankings`` are known ones."""
    ks = list(hparams.get("ks", []))
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise ConfigError(f"ks: must be a list of integers >= 1, got {ks}")
    unknown = sorted(set(hparams.get("rankings", [])) - set(RANKINGS))
    if unknown:
        raise ConfigError(f"rankings: unknown {unknown}; use some of {list(RANKINGS)}")


def check_files(hparams, keys):
    """Every ``hparams[key]`` in ``keys`` names an existing file."""
    for key in keys:
        if not Path(str(hparams[key])).is_file():
            raise ConfigError(f"{key}: file not found: {hparams[key]}")


def check_hparams(hparams):
    """All the checks that apply to the hparams' stage (cheap: no model is loaded)."""
    stage = hparams.get("stage")
    if stage in ("distill", "evaluate", "prune", "transfer"):
        check_teacher(hparams)
    if stage in ("distill", "transfer"):
        check_phinet(hparams)
    if stage == "prune":
        check_prune_grid(hparams)
        check_files(hparams, ["student_checkpoint"])
    if stage == "evaluate" and str(hparams["model"]) not in ("teacher", str(hparams["teacher"])):
        check_files(hparams, ["model"])


def check_student_fits_teacher(encoder, teacher, path):
    """A student's latent space is (a subset of) the teacher's.

    Raises
    ------
    ConfigError
        Naming the checkpoint and both sizes.
    """
    kept = getattr(encoder, "kept_dims", None)  # teachers evaluated as encoders have none
    dims = kept or range(encoder.embedding_dim)
    if kept is None and encoder.embedding_dim != teacher.embedding_dim:
        raise ConfigError(
            f"{path}: the student's latent size is {encoder.embedding_dim} but the teacher's "
            f"is {teacher.embedding_dim}: it was distilled from another teacher"
        )
    if max(dims) >= teacher.embedding_dim:
        raise ConfigError(
            f"{path}: pruned to dims up to {max(dims)}, beyond the teacher's latent size "
            f"{teacher.embedding_dim}"
        )


def check_ks(ks, latent_size):
    """Every pruning K is below the student's latent size.

    Example
    -------
    >>> check_ks([64, 512], 256)
    Traceback (most recent call last):
    ...
    tinyclap.stages.checks.ConfigError: ks: K=512 is not below the student's latent size 256
    """
    for k in ks:
        if int(k) >= latent_size:
            raise ConfigError(f"ks: K={k} is not below the student's latent size {latent_size}")
