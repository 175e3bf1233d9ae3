"""Errors shared across the library."""


class ConfigError(ValueError):
    """An hparams value that cannot work; the message names the option."""


class UsageError(ValueError):
    """Command-line options that do not go together; the CLIs exit with status 2 (as argparse)."""
