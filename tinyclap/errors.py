"""Errors shared across the library."""


class ConfigError(ValueError):
    """An hparams value that cannot work; the message names the option."""
