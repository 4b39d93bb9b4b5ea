"""Where units of work run: in this process, in local worker processes, or on Dask.

Every executor offers the same small interface, :meth:`Executor.map_unordered`: it takes a
function and a list of argument tuples and yields ``(task_index, result)`` pairs as tasks
finish, in whatever order. The sweep stores each result as it arrives, so the order does not
matter for the records (unit seeds depend on the unit index only).

Every unit runs under :func:`compute_unit`, which pins the BLAS/OpenMP thread pools to one
thread, so the floating-point reductions (and hence the bits of the records) do not depend on
which executor ran the unit or how many cores it had.

Dask is an optional extra (``pip install finetune-theory[dask]``), imported only when a
scheduler is asked for. A Dask run never waits without bound: a scheduler address is first
probed (a refused port fails at once; anything that does not answer as a Dask scheduler within
the connect timeout fails then), and while units run, a run with no worker, or without its
scheduler, for ``timeout`` seconds ends with :class:`ExecutorLost`.

Worker processes (local ones and those of a ``local:N`` cluster) start with Ctrl-C ignored: a
Ctrl-C in the terminal reaches every process of its group, and only the parent should act on
it (it stops the workers itself), so no worker prints a traceback.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import shlex
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from .errors import ExecutorLost, RunnerError, UnitFailed
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
    "keep_freed_memory",
    "make_executor",
    "default_workers",
    "parse_scheduler",
    "probe_scheduler",
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

    keep_freed_memory()
    start = time.perf_counter()
    try:
        with threadpool_limits(limits=1):
            records = run(unit, unit_seed)
        text = encode_records(records)
    except Exception as exc:  # re-raised with the worker's traceback attached
        raise UnitFailed(f"{label}: {type(exc).__name__}: {exc}", traceback.format_exc()) from None
    return text, time.perf_counter() - start


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
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self.description = f"{self.workers} local worker processes"
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = _QuietPool(
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
    timeout
        Seconds the run may go on without any worker, or without its scheduler, before
        :meth:`map_unordered` raises :class:`ExecutorLost`.
    poll
        Seconds between health checks while waiting for results.
    """

    def __init__(
        self,
        client: Any,
        cluster: Any = None,
        *,
        owns_client: bool = False,
        pin_blas: bool = False,
        timeout: float = 60.0,
        poll: float = 0.5,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        self.timeout = float(timeout)
        self.poll = min(float(poll), self.timeout)
        self.address = str(client.scheduler.address)
        if pin_blas:
            client.run(pin_blas_threads)
        where = "local cluster" if cluster is not None else "scheduler"
        self.description = f"Dask {where} at {self.address}"

    def _problem(self) -> str | None:
        """What keeps the cluster from computing now, or ``None`` when it can."""
        if self.client.status != "running":
            return f"lost the connection to the Dask scheduler at {self.address}"
        try:
            info = self.client.sync(
                self.client.scheduler.identity, n_workers=-1, callback_timeout=self.timeout
            )
        except Exception:
            return f"the Dask scheduler at {self.address} does not answer"
        if not info.get("workers"):
            return f"no Dask worker is connected to the scheduler at {self.address}"
        return None

    def _result(self, fut: Any) -> Any:
        """The result of a finished future; :class:`ExecutorLost` when the cluster lost it."""
        from concurrent.futures import CancelledError

        try:
            return fut.result()
        except UnitFailed:
            raise
        except CancelledError:
            problem = self._problem() or f"the Dask scheduler at {self.address} dropped a unit"
            raise ExecutorLost(problem) from None
        except Exception as exc:
            problem = self._problem()
            if problem is not None:
                raise ExecutorLost(f"{problem} ({type(exc).__name__})") from None
            raise

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        from concurrent.futures import CancelledError

        from distributed.client import _wait

        futures = [self.client.submit(fn, *args, pure=False) for args in tasks]
        index = {fut.key: i for i, fut in enumerate(futures)}
        pending = set(futures)
        trouble_since: float | None = None
        try:
            while pending:
                try:
                    with _quiet_dask():
                        done, pending = self.client.sync(
                            _wait, list(pending), timeout=self.poll, return_when="FIRST_COMPLETED"
                        )
                    pending = set(pending)
                except TimeoutError:
                    done = set()
                except CancelledError:  # the client dropped every future: connection lost
                    problem = self._problem() or f"lost the Dask scheduler at {self.address}"
                    raise ExecutorLost(problem) from None
                for fut in done:
                    yield index[fut.key], self._result(fut)
                if done:
                    trouble_since = None
                    continue
                problem = self._problem()
                if problem is None:
                    trouble_since = None
                    continue
                now = time.monotonic()
                trouble_since = now if trouble_since is None else trouble_since
                if now - trouble_since >= self.timeout:
                    raise ExecutorLost(f"{problem} for {self.timeout:g} s (--timeout)")
        finally:
            if pending:
                try:
                    with _quiet_dask():
                        self.client.cancel(list(pending))
                except Exception:  # the scheduler may be gone
                    pass

    def close(self) -> None:
        with _quiet_dask():
            try:
                if self.owns_client:
                    self.client.close(timeout=min(self.timeout, 10.0))
            except Exception:  # a dead scheduler: nothing left to close
                pass
            finally:
                if self.cluster is not None:
                    try:
                        self.cluster.close(timeout=min(self.timeout, 10.0))
                    except Exception:
                        pass


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Silence Dask's and Tornado's loggers (the run reports failures in its own words)."""
    import logging

    quiet = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)


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
            if scheme != "inproc://" and not 1 <= int(port) <= 65535:
                raise ValueError(f"scheduler {address!r}: the port must be 1-65535, got {port}")
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


def probe_scheduler(address: str, timeout: float) -> None:
    """Check that a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    A refused connection fails at once; a port where nothing answers, or where something other
    than a Dask scheduler answers (a web server, a silent TCP server), fails within
    ``timeout``. Nothing is left running either way.

    Raises
    ------
    RunnerError
        With one line saying what was found at ``address``.
    """
    import asyncio

    scheme, _, rest = address.partition("://")
    if scheme in ("tcp", "tls"):
        host, _, port = rest.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except ConnectionRefusedError:
            raise RunnerError(
                f"could not reach the Dask scheduler at {address}: nothing listens there "
                "(connection refused)"
            ) from None
        except TimeoutError:
            raise RunnerError(
                f"could not reach the Dask scheduler at {address} within {timeout:g} s "
                "(--connect-timeout)"
            ) from None
        except OSError as exc:
            raise RunnerError(
                f"could not reach the Dask scheduler at {address}: {exc.strerror or exc}"
            ) from None

    from distributed.core import rpc

    async def identity() -> Any:
        async with rpc(address, timeout=timeout) as scheduler:
            return await scheduler.identity()

    try:
        with _quiet_dask():
            info = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:
        raise RunnerError(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s: something "
            "there does not answer as a Dask scheduler (--connect-timeout)"
        ) from None
    except Exception as exc:
        raise RunnerError(
            f"could not reach the Dask scheduler at {address}: what answers there is not a "
            f"Dask scheduler ({type(exc).__name__})"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        raise RunnerError(f"what answers at {address} is not a Dask scheduler")


def _connect(address: str, timeout: float, run_timeout: float) -> DaskExecutor:
    distributed = _import_distributed()
    probe_scheduler(address, timeout)
    try:
        with _quiet_dask():
            client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RunnerError(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s ({exc})"
        ) from None
    return DaskExecutor(client, owns_client=True, pin_blas=True, timeout=run_timeout)


def _local_cluster(workers: int, run_timeout: float) -> DaskExecutor:
    distributed = _import_distributed()
    import logging

    with workers_ignore_sigint(), _quiet_dask():
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never "8787 is already in use"
            silence_logs=logging.CRITICAL,
        )
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
    return DaskExecutor(client, cluster, owns_client=True, pin_blas=True, timeout=run_timeout)


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
        Local worker processes (default: one per available core); ``1`` runs in this process.
        Ignored when ``scheduler`` is given.
    scheduler
        ``tcp://HOST:PORT`` of a running Dask scheduler, or ``local:N`` to start a Dask
        ``LocalCluster`` with ``N`` single-threaded workers.
    connect_timeout
        Seconds to wait for a remote scheduler to answer.
    timeout
        Seconds a Dask run may go without workers or without its scheduler before it ends.
    """
    if not connect_timeout > 0:
        raise ValueError(f"connect timeout must be > 0 seconds, got {connect_timeout}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if scheduler is not None:
        kind, target = parse_scheduler(scheduler)
        if kind == "local":
            return _local_cluster(target, timeout)
        return _connect(target, connect_timeout, timeout)
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers == 1:
        return InlineExecutor()
    return ProcessExecutor(workers)
