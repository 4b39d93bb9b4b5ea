"""Writing outputs so that a kill at any instant leaves the old file or the new one, never a part.

- :func:`atomic_write` is the one way the runner writes a CSV, a figure or the report: the
  bytes go to a unique temporary file in the target's folder, which is flushed, ``fsync``-ed and
  renamed over the target (``os.replace``, atomic on POSIX); the folder is then ``fsync``-ed so
  the rename itself survives a power cut. A failure removes the temporary file. The file gets
  the permissions the umask gives a new file (``0o666 & ~umask``), as ``open`` would.
- :class:`FolderLock` is an exclusive ``flock`` on ``<folder>/.finetune-theory.lock`` (which
  holds the PID of its owner): a second run into the same folder is refused in one line.
- :func:`remove_partials` deletes the temporary files a killed run left behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import FolderInUse, OutputError, is_disk_full

__all__ = [
    "atomic_write",
    "current_umask",
    "fsync_folder",
    "remove_partials",
    "FolderLock",
    "LOCK_NAME",
]

#: the name of the lock file of an output folder
LOCK_NAME = ".finetune-theory.lock"
#: temporary files of :func:`atomic_write` are named ``.<target name>.<random>.ftpart``
_PARTIAL_SUFFIX = ".ftpart"


def current_umask() -> int:
    """This process's file-mode creation mask (read without changing it where possible).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, then put it back at once
    os.umask(mask)
    return mask


def fsync_folder(folder: Path) -> None:
    """``fsync`` a folder, so that renames and new files in it are on disk."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - e.g. a platform without folder descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | str | Callable[[IO[bytes]], object]) -> Path:
    """Replace ``path`` by ``data`` all at once (temporary file, fsync, rename, fsync folder).

    Parameters
    ----------
    path
        The target file; its folder must exist.
    data
        Bytes, text (written as UTF-8), or a function that writes into the binary file
        handle it is given.

    Raises
    ------
    OutputError
        The disk is full (the message names ``path``), or the folder is gone.
    OSError
        Any other failure to write (the target is unchanged either way).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, "one") and target.read_text()
    'one'
    >>> atomic_write(target, b"two") and sorted(p.name for p in target.parent.iterdir())
    ['a.txt']
    """
    path = Path(path)
    folder = path.parent
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "wb", dir=folder, prefix=f".{path.name}.", suffix=_PARTIAL_SUFFIX, delete=False
        ) as fh:
            tmp_name = fh.name
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())  # as open() would create it
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        fsync_folder(folder)
    except OSError as exc:
        if is_disk_full(exc):
            raise OutputError(f"the disk is full: could not write {path}") from None
        if isinstance(exc, FileNotFoundError) and not folder.is_dir():
            raise OutputError(f"the folder {folder} was removed during the run") from None
        raise
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return path


def remove_partials(folder: str | Path) -> list[Path]:
    """Delete what killed runs left half-written under ``folder``; the paths removed.

    These are the temporary files of :func:`atomic_write` and the private folders figures
    are drawn into, both ending in ``.ftpart``.

    Call it only while holding the folder's :class:`FolderLock` (another run's files in
    progress would be removed otherwise).
    """
    removed = []
    for path in sorted(Path(folder).rglob(f".*{_PARTIAL_SUFFIX}")):
        if any(parent in removed for parent in path.parents):
            continue  # inside a staging folder already removed
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


class FolderLock:
    """An exclusive lock on a folder for the lifetime of one run (``fcntl.flock``).

    The lock file ``<folder>/.finetune-theory.lock`` holds the owner's PID. The kernel drops
    the lock when its owner ends, however it ends (``kill -9`` included), so a stale lock file
    never blocks a later run.

    Raises
    ------
    FolderInUse
        Another process holds the lock (the message gives its PID).
    OSError
        The lock file cannot be created (e.g. a read-only folder).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with FolderLock(folder):
    ...     try:
    ...         FolderLock(folder).acquire()
    ...     except FolderInUse as exc:
    ...         print("refused:", "in use by another run" in str(exc))
    refused: True
    """

    def __init__(self, folder: str | Path, what: str = "output folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock now or raise :class:`FolderInUse`."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OSError(
                exc.errno, f"cannot write to the {self.what} {self.folder}: {reason}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderInUse(
                    f"the {self.what} {self.folder} is in use by another run (PID {owner}); "
                    "wait for it to end",
                    hint="other-out",
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; it is harmless without a holder)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
