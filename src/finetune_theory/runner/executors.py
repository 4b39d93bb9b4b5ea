"""Where units of work run: in this process, in local worker processes, or on Dask.

Every executor offers the same small interface, :meth:`Executor.map_unordered`: it takes a
function and a list of argument tuples and yields ``(task_index, result)`` pairs as tasks
finish, in whatever order. The sweep stores each result as it arrives, so the order does not
matter for the records (unit seeds depend on the unit index only).

Every unit runs under :func:`compute_unit`, which pins the BLAS/OpenMP thread pools to one
thread, so the floating-point reductions (and hence the bits of the records) do not depend on
which executor ran the unit or how many cores it had.

Dask is an optional extra (``pip install finetune-theory[dask]``), imported only when a
scheduler is asked for.
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

from .errors import RunnerError, UnitFailed
from .store import encode_records

__all__ = [
    "RunnerError",
    "UnitFailed",
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "compute_unit",
    "pin_blas_threads",
    "make_executor",
    "default_workers",
    "parse_scheduler",
]

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


# ------------------------------------------------------------------ the unit wrapper
def compute_unit(
    run: Callable[[Any, int], list[dict[str, Any]]], unit: Any, unit_seed: int, label: str = "unit"
) -> tuple[str, float]:
    """Run one unit with one BLAS thread; its records as JSON text, and the seconds it took.

    Raises
    ------
    UnitFailed
        Whatever the experiment raised, with the traceback as text (tracebacks do not survive
        every trip between processes).
    """
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    try:
        with threadpool_limits(limits=1):
            records = run(unit, unit_seed)
        text = encode_records(records)
    except Exception as exc:  # re-raised with the worker's traceback attached
        raise UnitFailed(f"{label}: {type(exc).__name__}: {exc}", traceback.format_exc()) from None
    return text, time.perf_counter() - start


def pin_blas_threads() -> None:
    """Limit this whole process (and processes it starts) to one BLAS/OpenMP thread."""
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


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


def _init_worker(parent_pid: int) -> None:
    """Local worker start-up: one BLAS thread, die with the parent, leave Ctrl-C to it."""
    _die_with_parent(parent_pid)
    pin_blas_threads()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------ executors
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


class ProcessExecutor(Executor):
    """Local worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start).

    The pool is started on the first call with more than one task and reused afterwards; a
    single task runs in this process (no start-up cost, same bits).
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self.description = f"{self.workers} local worker processes"
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        if len(tasks) <= 1:
            yield from InlineExecutor().map_unordered(fn, tasks)
            return
        pool = self._ensure_pool()
        pending: dict[Future[Any], int] = {
            pool.submit(fn, *args): i for i, args in enumerate(tasks)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    index = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise RunnerError(
                            "a local worker process died (out of memory or killed); "
                            "rerun to resume from the stored units"
                        ) from None
                    yield index, result
        finally:
            if pending:  # interrupted or failed: do not wait for the rest
                for fut in pending:
                    fut.cancel()
                self._terminate()

    def _terminate(self) -> None:
        """Stop the pool now, killing busy workers (their units are simply not stored)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Tasks on a Dask ``distributed`` cluster.

    Parameters
    ----------
    client
        A connected ``distributed.Client``.
    cluster
        A cluster this executor started and must close with the client (``local:N``).
    owns_client
        Whether :meth:`close` closes ``client``.
    pin_blas
        Limit every worker process to one BLAS thread (:func:`pin_blas_threads`). Leave it off
        for in-process clusters (it would pin this process too); each unit still runs under a
        one-thread limit, which is exact when every worker has one thread.
    """

    def __init__(
        self, client: Any, cluster: Any = None, *, owns_client: bool = False, pin_blas: bool = False
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        if pin_blas:
            client.run(pin_blas_threads)
        where = "local cluster" if cluster is not None else "scheduler"
        self.description = f"Dask {where} at {client.scheduler.address}"

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, *args, pure=False) for args in tasks]
        index = {fut.key: i for i, fut in enumerate(futures)}
        finished = False
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                yield index[fut.key], fut.result()
            finished = True
        finally:
            if not finished:
                self.client.cancel(futures)

    def close(self) -> None:
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ------------------------------------------------------------------ choosing one
def parse_scheduler(address: str) -> tuple[str, Any]:
    """``("local", N)`` for ``local:N``, ``("remote", address)`` for ``tcp://HOST:PORT``.

    Raises
    ------
    ValueError
        For anything else.
    """
    text = address.strip()
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler {address!r}: local:N needs a worker count N >= 1")
        return "local", int(count)
    for scheme in ("tcp://", "tls://", "ucx://", "inproc://"):
        if text.startswith(scheme):
            rest = text.removeprefix(scheme)
            host, sep, port = rest.rpartition(":")
            if scheme != "inproc://" and (not sep or not host or not port.isdigit()):
                raise ValueError(f"scheduler {address!r} must look like {scheme}HOST:PORT")
            return "remote", text
    raise ValueError(
        f"scheduler {address!r} must be tcp://HOST:PORT (a running Dask scheduler) or local:N"
    )


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise RunnerError(
            "the --scheduler option needs Dask: pip install 'finetune-theory[dask]'"
        ) from None
    return distributed


def _connect(address: str, timeout: float) -> DaskExecutor:
    distributed = _import_distributed()
    import logging

    quiet = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    try:
        client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RunnerError(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s ({exc})"
        ) from None
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
    return DaskExecutor(client, owns_client=True, pin_blas=True)


def _local_cluster(workers: int) -> DaskExecutor:
    distributed = _import_distributed()
    import logging

    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster, set_as_default=False)
    return DaskExecutor(client, cluster, owns_client=True, pin_blas=True)


def make_executor(
    workers: int | None = None, scheduler: str | None = None, *, connect_timeout: float = 10.0
) -> Executor:
    """The executor for the command-line options.

    Parameters
    ----------
    workers
        Local worker processes (default: one per available core); ``1`` runs in this process.
        Ignored when ``scheduler`` is given.
    scheduler
        ``tcp://HOST:PORT`` of a running Dask scheduler, or ``local:N`` to start a Dask
        ``LocalCluster`` with ``N`` single-threaded workers.
    connect_timeout
        Seconds to wait for a remote scheduler.
    """
    if connect_timeout <= 0:
        raise ValueError(f"connect timeout must be > 0 seconds, got {connect_timeout}")
    if scheduler is not None:
        kind, target = parse_scheduler(scheduler)
        if kind == "local":
            return _local_cluster(target)
        return _connect(target, connect_timeout)
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers == 1:
        return InlineExecutor()
    return ProcessExecutor(workers)
