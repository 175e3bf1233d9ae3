"""Configuration checks that run before any expensive work.

The hparams files call the option checks (:func:`check_prune_grid`,
:func:`check_transfer_options`) with ``!apply:`` *before* they declare the
teacher, and PhiNet students check their knobs (:func:`check_phinet`) when
built, so a typo or an impossible setting fails in a second, before any data
preparation, teacher loading or cache building, with a message naming the
option. A teacher that cannot be loaded says so itself
(:class:`tinyclap.teachers.TeacherLoadError`). Checks that need loaded models
(latent sizes of a student and a teacher) are :func:`check_embedding_dim`,
:func:`check_student_fits_teacher` and :func:`check_ks`, called by the stages
as soon as both are loaded.
"""

from pathlib import Path

from tinyclap.errors import ConfigError
from tinyclap.pruning.ranking import RANKINGS
from tinyclap.students.knobs import check_phinet

__all__ = [
    "ConfigError",
    "check_compression_dim",
    "check_embedding_dim",
    "check_files",
    "check_ks",
    "check_phinet",
    "check_prune_grid",
    "check_student_fits_teacher",
    "check_transfer_options",
]

PCA_FIT_SETS = ("labeled", "train_folds")


def check_prune_grid(ks, rankings):
    """Pruning ``ks`` are positive integers and ``rankings`` are known ones.

    Example
    -------
    >>> check_prune_grid([64, 32], ["student", "magnitude"])
    Traceback (most recent call last):
    ...
    tinyclap.errors.ConfigError: rankings: unknown ['magnitude']; use some of ['student', 'teacher', 'random']
    """  # noqa: E501
    ks = list(ks or [])
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise ConfigError(f"ks: must be a list of integers >= 1, got {ks}")
    unknown = sorted(set(rankings or []) - set(RANKINGS))
    if unknown:
        raise ConfigError(f"rankings: unknown {unknown}; use some of {list(RANKINGS)}")


def check_transfer_options(transfer_lambda, reg_loss, compression, compression_dim, pca_fit_on):
    """The EAsT options of ``hparams/transfer.yaml`` (declared before the teacher, so checked first).

    Example
    -------
    >>> check_transfer_options(1.5, "dcor", "none", 32, "labeled")
    Traceback (most recent call last):
    ...
    tinyclap.errors.ConfigError: transfer_lambda: must be between 0 and 1, got 1.5
    """  # noqa: E501
    from tinyclap.training.compression import COMPRESSIONS
    from tinyclap.training.losses import REGRESSION_LOSSES

    if not 0.0 <= float(transfer_lambda) <= 1.0:
        raise ConfigError(f"transfer_lambda: must be between 0 and 1, got {transfer_lambda}")
    if reg_loss not in REGRESSION_LOSSES:
        raise ConfigError(f"reg_loss: unknown {reg_loss!r}; use one of {list(REGRESSION_LOSSES)}")
    if compression not in COMPRESSIONS:
        raise ConfigError(f"compression: unknown {compression!r}; use one of {list(COMPRESSIONS)}")
    if int(compression_dim) != float(compression_dim) or int(compression_dim) < 1:
        raise ConfigError(f"compression_dim: must be an integer >= 1, got {compression_dim}")
    if pca_fit_on not in PCA_FIT_SETS:
        raise ConfigError(f"pca_fit_on: use one of {list(PCA_FIT_SETS)}, got {pca_fit_on!r}")


def check_compression_dim(compression_dim, teacher):
    """The EAsT compression size ``k`` is at most the teacher's latent size."""
    if int(compression_dim) > int(teacher.embedding_dim):
        raise ConfigError(
            f"compression_dim: {compression_dim} is above the teacher's latent "
            f"size {teacher.embedding_dim}"
        )


def check_files(hparams, keys):
    """Every ``hparams[key]`` in ``keys`` names an existing file."""
    for key in keys:
        if not Path(str(hparams[key])).is_file():
            raise ConfigError(f"{key}: file not found: {hparams[key]}")


def check_embedding_dim(embedding_dim, teacher, key="embedding_dim"):
    """The hparams' latent size is the teacher's.

    Example
    -------
    >>> class T:
    ...     embedding_dim = 256
    >>> check_embedding_dim(128, T())
    Traceback (most recent call last):
    ...
    tinyclap.errors.ConfigError: embedding_dim: 128, but the teacher's latent size is 256
    """
    if int(embedding_dim) != int(teacher.embedding_dim):
        raise ConfigError(
            f"{key}: {embedding_dim}, but the teacher's latent size is {teacher.embedding_dim}"
        )


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
    tinyclap.errors.ConfigError: ks: K=512 is not below the student's latent size 256
    """
    for k in ks:
        if int(k) >= latent_size:
            raise ConfigError(f"ks: K={k} is not below the student's latent size {latent_size}")
