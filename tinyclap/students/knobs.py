"""Checks of PhiNet's knobs (micromind builds some settings that cannot work)."""

from tinyclap.errors import ConfigError


def check_phinet(alpha, beta, t_zero, num_layers, head_channels=None):
    """PhiNet knobs a network can be built from (micromind accepts some that cannot work).

    Example
    -------
    >>> check_phinet(0.75, 0.75, 4, 0)
    Traceback (most recent call last):
    ...
    tinyclap.errors.ConfigError: num_layers: must be an integer >= 1, got 0
    """
    values = dict(
        alpha=alpha, beta=beta, t_zero=t_zero, num_layers=num_layers, head_channels=head_channels
    )
    for key in ("alpha", "beta", "t_zero", "head_channels"):
        if values[key] is not None and not float(values[key]) > 0:
            raise ConfigError(f"{key}: must be > 0, got {values[key]}")
    for key in ("num_layers", "head_channels"):
        value = values[key]
        if value is not None and (int(value) != float(value) or int(value) < 1):
            raise ConfigError(f"{key}: must be an integer >= 1, got {value}")
