"""What every executor shares: the interface, the in-process executor, BLAS pinning, and
starting worker processes deaf to Ctrl-C."""

from __future__ import annotations

import atexit
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "MAX_WORKERS",
    "Executor",
    "InlineExecutor",
    "keep_freed_memory",
    "pin_blas_threads",
    "workers_ignore_sigint",
]

#: the most worker processes (local, or of a ``local:N`` cluster) a run may start
MAX_WORKERS = 128

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def pin_blas_threads() -> None:
    """Limit this whole process (and processes it starts) to one BLAS/OpenMP thread.

    Also keeps freed memory in the process (:func:`keep_freed_memory`): both are the set-up of
    a process that computes units.

    Examples
    --------
    >>> pin_blas_threads()
    >>> os.environ["OPENBLAS_NUM_THREADS"]
    '1'
    """
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    keep_freed_memory()


#: glibc's mallopt parameters and the values set by keep_freed_memory
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 256 * 2**20


def keep_freed_memory() -> None:
    """Have glibc's allocator keep freed memory of up to 256 MB a block for reuse.

    By default a block above glibc's largest dynamic mmap threshold (32 MB) is mapped from the
    system and unmapped when freed, and the heap is trimmed whenever 128 KB at its top are
    free: NumPy temporaries of a few tens of MB, allocated anew at every call of the
    deterministic equivalents, then cost a page fault per 4 KB page touched (a quarter to a
    half of the CPU time there). Linux with glibc only; elsewhere nothing happens.

    Examples
    --------
    >>> keep_freed_memory()  # nothing to see: later frees keep their memory in the process
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return


_SPAWN_WRAPPER: str | None = None


def _sigint_ignoring_python() -> str | None:
    """A tiny ``sh`` script that starts this Python with SIGINT ignored (``None`` off POSIX).

    An ignored signal stays ignored across ``exec``, and Python installs its own Ctrl-C
    handler only where SIGINT was not ignored, so a worker is deaf to Ctrl-C from its very
    first instruction (while importing, too).
    """
    global _SPAWN_WRAPPER
    if os.name != "posix" or not os.path.exists("/bin/sh"):
        return None
    if _SPAWN_WRAPPER is None or not os.path.exists(_SPAWN_WRAPPER):
        folder = tempfile.mkdtemp(prefix="finetune-theory-spawn-")
        script = os.path.join(folder, "python")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(sys.executable)} \"$@\"\n")
        os.chmod(script, 0o755)
        atexit.register(_remove_wrapper, folder, script)
        _SPAWN_WRAPPER = script
    return _SPAWN_WRAPPER


def _remove_wrapper(folder: str, script: str) -> None:
    for remove, target in ((os.unlink, script), (os.rmdir, folder)):
        try:
            remove(target)
        except OSError:
            pass


@contextmanager
def workers_ignore_sigint() -> Iterator[None]:
    """Processes started with ``spawn`` inside this block ignore Ctrl-C from the start."""
    from multiprocessing import spawn

    wrapper = _sigint_ignoring_python()
    previous = spawn.get_executable()
    if wrapper is not None:
        spawn.set_executable(wrapper)
    try:
        yield
    finally:
        spawn.set_executable(previous)


class Executor:
    """Runs tasks and yields ``(index, result)`` as they finish."""

    description = "executor"

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        """Run ``fn(*args)`` for every tuple; yield ``(position in tasks, result)``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs every task in this process, one after the other (``--workers 1``)."""

    description = "in-process (1 worker)"

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(tasks):
            yield i, fn(*args)
