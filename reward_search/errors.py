"""User-facing errors: the CLI prints these as one line and exits with their code, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a file, a field, a flag) rather than a bug.

    `exit_code` is what the CLI exits with; 2 means bad usage or bad input.
    """

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(UserError):
    """An experiment config that does not validate; the message names the dotted field path."""


class DataError(UserError):
    """A data source that is missing, malformed or empty; the message names the file and line."""


class ModelError(UserError):
    """A model spec that cannot be resolved; the message lists the sources that were tried."""
