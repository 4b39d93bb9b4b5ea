"""The runner's error types (each is reported as one line by the command line).

>>> issubclass(StoreError, RunnerError) and issubclass(OutputError, RunnerError)
True
"""

from __future__ import annotations

import errno
import sqlite3

__all__ = [
    "RunnerError",
    "StoreError",
    "OutputError",
    "ExecutorLost",
    "FolderInUse",
    "UnitFailed",
    "is_disk_full",
]


class RunnerError(RuntimeError):
    """A run cannot go on (bad scheduler, missing extra, broken worker pool, ...)."""


class StoreError(RunnerError):
    """The store cannot be used (not SQLite, corrupted, foreign, locked, read-only, ...)."""


class OutputError(RunnerError):
    """An output could not be written (disk full, output folder removed during the run)."""


class ExecutorLost(RunnerError):
    """The workers or the scheduler went away; the run ends (finished units stay stored)."""


class FolderInUse(RunnerError):
    """Another run holds the lock of the output folder."""


class UnitFailed(RuntimeError):
    """One unit of work raised; carries the worker's traceback text."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the quota) is full.

    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_disk_full(OSError(errno.EACCES, "Permission denied"))
    False
    """
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
    return False
