"""The runner's error types (each is reported as one line by the command line)."""

from __future__ import annotations

__all__ = ["RunnerError", "UnitFailed"]


class RunnerError(RuntimeError):
    """A run cannot go on (bad scheduler, missing extra, broken worker pool, ...)."""


class UnitFailed(RuntimeError):
    """One unit of work raised; carries the worker's traceback text."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details
