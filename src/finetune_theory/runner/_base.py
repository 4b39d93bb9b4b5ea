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
    """Limit this whole process (and processes it starts) to one BLAS/OpenMP thread."""
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


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
