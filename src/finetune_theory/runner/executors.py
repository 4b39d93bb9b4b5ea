"""Where units of work run: in this process, in local worker processes, or on Dask.

Every executor offers the same small interface, :meth:`Executor.map_unordered`: it takes a
function and a list of argument tuples and yields ``(task_index, result)`` pairs as tasks
finish, in whatever order. The sweep stores each result as it arrives, so the order does not
matter for the records (unit seeds depend on the unit index only).

Every unit runs under :func:`compute_unit`, which pins the BLAS/OpenMP thread pools to one
thread, so the floating-point reductions (and hence the bits of the records) do not depend on
which executor ran the unit or how many cores it had.

Every unit also returns the code fingerprint of the process that computed it
(:func:`~finetune_theory.runner.fingerprint.process_fingerprint`), which the store compares
with the run's.

A local worker that dies (killed, out of memory) ends the run with :class:`ExecutorLost`,
naming the signal. The Dask executor (``--scheduler``) lives in :mod:`._dask`: Dask is an
optional extra, imported only when a scheduler is asked for; its names are available here too.

Worker processes (local ones and those of a ``local:N`` cluster) start with Ctrl-C ignored: a
Ctrl-C in the terminal reaches every process of its group, and only the parent should act on
it (it stops the workers itself), so no worker prints a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ._base import (
    MAX_WORKERS,
    Executor,
    InlineExecutor,
    keep_freed_memory,
    pin_blas_threads,
    workers_ignore_sigint,
)
from ._codec import encode_records
from ._dask import DaskExecutor, parse_scheduler, probe_scheduler, silence_dask_logs
from .errors import ExecutorLost, RunnerError, UnitFailed
from .fingerprint import CodeSpec, install_source_loader, process_fingerprint

__all__ = [
    "RunnerError",
    "UnitFailed",
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "compute_unit",
    "keep_freed_memory",
    "pin_blas_threads",
    "make_executor",
    "default_workers",
    "parse_scheduler",
    "probe_scheduler",
    "silence_dask_logs",
    "MAX_WORKERS",
]


# ------------------------------------------------------------------ the unit wrapper
def compute_unit(
    run: Callable[[Any, int], list[dict[str, Any]]],
    unit: Any,
    unit_seed: int,
    label: str = "unit",
    spec: CodeSpec | None = None,
) -> tuple[str, float, str]:
    """Run one unit with one BLAS thread.

    Returns the records as JSON text, the seconds the unit took, and the fingerprint of the
    code this process ran for ``spec`` (``""`` without a spec).

    Raises
    ------
    UnitFailed
        Whatever the experiment raised, with the traceback as text (tracebacks do not survive
        every trip between processes) and the missing module when an import failed.
    SourceChanged, StaleBytecode
        The code this process loaded is not what its files hold.

    Examples
    --------
    >>> compute_unit(lambda unit, seed: [{"x": unit + seed}], 1, 2)[0]
    '[{"x":3}]'
    """
    from threadpoolctl import threadpool_limits

    keep_freed_memory()
    start = time.perf_counter()
    try:
        with threadpool_limits(limits=1):
            records = run(unit, unit_seed)
        text = encode_records(records)
    except Exception as exc:  # re-raised with the worker's traceback attached
        raise UnitFailed(
            f"{label}: {type(exc).__name__}: {exc}", traceback.format_exc(), _missing_module(exc)
        ) from None
    seconds = time.perf_counter() - start
    return text, seconds, "" if spec is None else _worker_fingerprint(spec)


def _worker_fingerprint(spec: CodeSpec) -> str:
    """The fingerprint of the code this process runs (a seam for the tests)."""
    return process_fingerprint(spec)


def _missing_module(exc: BaseException) -> str | None:
    """The module whose import failed somewhere in the chain of ``exc``, if any."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ImportError) and getattr(seen, "name", None):
            return str(seen.name)
        seen = seen.__cause__ or seen.__context__
    return None


def _die_with_parent(parent_pid: int) -> None:
    """On Linux, have the kernel kill this worker when its parent dies (even by SIGKILL).

    Without it, workers of a parent killed alone would wait for tasks forever.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(parent_pid: int, modules: tuple[str, ...] = ()) -> None:
    """Local worker start-up: one BLAS thread, die with the parent, leave Ctrl-C to it, and
    compile the package's modules from the bytes that are hashed."""
    _die_with_parent(parent_pid)
    install_source_loader(modules)
    pin_blas_threads()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------ local processes
class _QuietPool(ProcessPoolExecutor):
    """A process pool whose workers are spawned with Ctrl-C ignored."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with workers_ignore_sigint():  # workers are spawned inside submit
            return super().submit(fn, *args, **kwargs)


class ProcessExecutor(Executor):
    """Local worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start).

    The pool is started on the first call with more than one task and reused afterwards; a
    single task runs in this process (no start-up cost, same bits).
    """

    def __init__(self, workers: int) -> None:
        _check_workers(workers)
        self.workers = int(workers)
        self.description = f"{self.workers} local worker processes"
        self._pool: ProcessPoolExecutor | None = None
        self._processes: dict[int, Any] = {}

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            from .fingerprint import _FINDER

            self._pool = _QuietPool(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(), tuple(sorted(_FINDER.extra))),
            )
        return self._pool

    def _death(self) -> ExecutorLost:
        """The error for a pool whose worker died, naming how it died."""
        processes = list(self._processes.values())
        self._terminate()  # joins every worker, so their exit codes are known
        codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
        # the pool ends the other workers with SIGTERM: the cause is the other code
        codes.sort(key=lambda code: code == -signal.SIGTERM)
        how = "died"
        if codes and codes[0] < 0:
            try:
                how = f"was killed by {signal.Signals(-codes[0]).name}"
            except ValueError:
                how = f"was killed by signal {-codes[0]}"
        elif codes:
            how = f"exited with status {codes[0]}"
        return ExecutorLost(
            f"a local worker process {how} (killed, or out of memory) while units were running"
        )

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        if len(tasks) <= 1:
            yield from InlineExecutor().map_unordered(fn, tasks)
            return
        pool = self._ensure_pool()
        pending: dict[Future[Any], int] = {}
        try:
            for i, args in enumerate(tasks):
                pending[pool.submit(fn, *args)] = i
                self._processes.update(getattr(pool, "_processes", None) or {})
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    index = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise self._death() from None
                    yield index, result
        except BrokenProcessPool:  # raised by submit on a pool that broke meanwhile
            raise self._death() from None
        finally:
            if pending:  # interrupted or failed: do not wait for the rest
                for fut in pending:
                    fut.cancel()
                self._terminate()

    def _terminate(self) -> None:
        """Stop the pool now, killing busy workers (their units are simply not stored)."""
        pool, self._pool = self._pool, None
        self._processes = {}
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------ choosing one
def _check_workers(workers: Any) -> None:
    """``ValueError`` unless ``workers`` is a whole number from 1 to :data:`MAX_WORKERS`."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers > MAX_WORKERS:
        raise ValueError(f"workers must be at most {MAX_WORKERS}, got {workers}")


def make_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    connect_timeout: float = 10.0,
    timeout: float = 60.0,
) -> Executor:
    """The executor for the command-line options.

    Parameters
    ----------
    workers
        Local worker processes (default: one per available core), at most
        :data:`MAX_WORKERS`; ``1`` runs in this process. Ignored when ``scheduler`` is given.
    scheduler
        ``tcp://HOST:PORT`` of a running Dask scheduler, or ``local:N`` to start a Dask
        ``LocalCluster`` with ``N`` single-threaded workers (at most :data:`MAX_WORKERS`).
    connect_timeout
        Seconds to wait for a remote scheduler to answer.
    timeout
        Seconds of wall time a Dask run may go without a finished unit while its scheduler
        does not answer or its workers are gone or hung, before it ends.

    Returns
    -------
    Executor
        In-process for one worker, a pool of local processes for several, or a Dask client.

    Examples
    --------
    >>> make_executor(1).description
    'in-process (1 worker)'
    >>> make_executor(0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be an integer >= 1, got 0
    """
    if not connect_timeout > 0:
        raise ValueError(f"connect timeout must be > 0 seconds, got {connect_timeout}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if scheduler is not None:
        from ._dask import connect, local_cluster

        kind, target = parse_scheduler(scheduler)
        if kind == "local":
            return local_cluster(target, timeout)
        return connect(target, connect_timeout, timeout)
    if workers is None:
        workers = min(default_workers(), MAX_WORKERS)
    _check_workers(workers)
    if workers == 1:
        return InlineExecutor()
    return ProcessExecutor(workers)
