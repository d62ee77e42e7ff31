"""User-facing errors: the CLI prints these as one line and exits with their code, no traceback."""

from __future__ import annotations

import re


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


DISK_FULL_EXIT = 28  # the exit status of a write that found no space left (28 is ENOSPC's errno)


class DiskFull(UserError):
    """A write found no space left on its device (or the user's quota spent): one line naming the file, its own exit
    status. Every record is written atomically, so the run directory stays as it was and resumes once space is
    freed."""

    def __init__(self, message: str, exit_code: int = DISK_FULL_EXIT) -> None:
        super().__init__(message, exit_code)


def disk_full_line(path: str, resume_hint: str = "`reward-search resume RUN_DIR`") -> str:
    return f"no space left on the device of {path} while writing it; free space and {resume_hint}"


OUT_OF_MEMORY_EXIT = 12  # the exit status of a run whose workers Ray killed for memory (12 is ENOMEM's errno)
_RAY_OOM_TEXT = "killed due to the node running low on memory"


def out_of_memory_line(text: str, resume_hint: str = "`reward-search resume RUN_DIR`") -> str | None:
    """The one line for Ray's memory monitor having killed workers (a trial, or the leaderboard actor), read from
    the text of the error Ray raised; None when `text` says nothing of the kind. Every record is written
    atomically, so the run directory resumes where it stopped."""
    if _RAY_OOM_TEXT not in text:
        return None
    found = re.search(r"was ([\d.]+\s*[KMGT]?B used / [\d.]+\s*[KMGT]?B limit)", text)
    used = found.group(1) if found else "its limit"
    return (
        f"Ray killed workers: the node ran low on memory ({used}); lower search.max_concurrent_trials or free "
        f"memory, then {resume_hint}"
    )
