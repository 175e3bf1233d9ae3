"""Official tinyCLAP checkpoints as tinyclap students.

The official release (``fpaissan/tinyCLAP`` on the hub) stores each student as
a plain state dict of its audio encoder (``base.*``, ``projection.*``) in a
file named after its PhiNet configuration, e.g.
``phinet_alpha_1.50_beta_0.75_t0_6_N_7.ckpt``. The official code reads the
configuration from the name (the value after each of ``alpha``, ``beta``,
``t0``, ``N``); so does :func:`parse_official_name`. Those students read
MS-CLAP 2022's input: 5 s at 44.1 kHz, 64 log-mels from 50 to 14000 Hz.
"""

import re
from pathlib import Path

import torch

from tinyclap.audio.features import CLAP2022_FRONTEND
from tinyclap.students.encoder import (
    StudentAudioEncoder,
    is_student_checkpoint,
    load_student,
    student_frames,
)
from tinyclap.students.phinet import PhiNetStudent

OFFICIAL_NAME = re.compile(
    r"phinet_alpha_(?P<alpha>[0-9.]+)_beta_(?P<beta>[0-9.]+)"
    r"_t0_(?P<t_zero>[0-9.]+)_N_(?P<num_layers>[0-9]+)"
)
CLAP2022_CLIP_SECONDS = 5.0


def parse_official_name(name):
    """PhiNet configuration from an official checkpoint's file name.

    Example
    -------
    >>> parse_official_name("models/phinet_alpha_1.50_beta_0.75_t0_6_N_7.ckpt")
    {'alpha': 1.5, 'beta': 0.75, 't_zero': 6.0, 'num_layers': 7}
    """
    match = OFFICIAL_NAME.search(Path(str(name)).name)
    if match is None:
        raise ValueError(
            f"{name}: not an official tinyCLAP checkpoint name "
            "(expected phinet_alpha_A_beta_B_t0_T_N_L.ckpt)"
        )
    values = match.groupdict()
    return {
        "alpha": float(values["alpha"].rstrip(".")),
        "beta": float(values["beta"].rstrip(".")),
        "t_zero": float(values["t_zero"].rstrip(".")),
        "num_layers": int(values["num_layers"]),
    }


def load_official_student(
    path,
    frontend_config=CLAP2022_FRONTEND,
    clip_seconds=CLAP2022_CLIP_SECONDS,
    teacher="msclap-2022",
    device="cpu",
):
    """Load an official tinyCLAP checkpoint as a :class:`StudentAudioEncoder`.

    The PhiNet configuration comes from the file name; the head width and the
    latent size from the weights (``base.pn_block``, ``projection.linear2``).

    Example
    -------
    >>> enc = load_official_student("phinet_alpha_1.50_beta_0.75_t0_6_N_7.ckpt")  # doctest: +SKIP
    >>> enc.embedding_dim, enc.window_samples  # doctest: +SKIP
    (1024, 220500)

    Raises
    ------
    ValueError
        For a name without a configuration, a file that is not a state dict
        with ``base.*`` / ``projection.*`` keys, or keys that do not match the
        student built from the name (missing and unexpected keys are listed).
    """
    config = parse_official_name(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        raise ValueError(f"cannot read {path}: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "base.pn_block.weight" not in state:
        raise ValueError(f"{path}: not a tinyCLAP state dict (no base.pn_block.weight)")
    if "projection.linear2.weight" not in state:
        raise ValueError(f"{path}: not a tinyCLAP state dict (no projection.linear2.weight)")
    student = PhiNetStudent(
        **config,
        n_frames=student_frames(frontend_config, clip_seconds),
        n_mels=int(frontend_config.get("n_mels", 64)),
        head_channels=int(state["base.pn_block.weight"].shape[0]),
        embedding_dim=int(state["projection.linear2.weight"].shape[0]),
    )
    expected, given = set(student.state_dict()), set(state)
    if expected != given:
        raise ValueError(
            f"{path}: keys do not match PhiNet {config}.\n"
            f"  missing: {sorted(expected - given) or 'none'}\n"
            f"  unexpected: {sorted(given - expected) or 'none'}"
        )
    student.load_state_dict(state)
    encoder = StudentAudioEncoder(student, frontend_config, clip_seconds)
    encoder.teacher = teacher
    return encoder.to(device).eval()


def is_any_student(path):
    """Whether ``path`` is a tinyclap ``student.ckpt`` or named like an official checkpoint.

    Example
    -------
    >>> is_any_student("models/phinet_alpha_1.50_beta_0.75_t0_6_N_7.ckpt")
    True
    """
    return is_student_checkpoint(path) or OFFICIAL_NAME.search(Path(str(path)).name) is not None


def load_any_student(path, device="cpu"):
    """A tinyclap ``student.ckpt`` or an official tinyCLAP checkpoint.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"student checkpoint not found: {path}")
    if is_student_checkpoint(path):
        return load_student(path, device)
    return load_official_student(path, device=device)
