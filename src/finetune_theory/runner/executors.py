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
naming the signal. Dask is an optional extra (``pip install "finetune-theory[dask]"``),
imported only when a scheduler is asked for. A Dask run never waits without bound: a
scheduler address is first probed (a refused port fails at once; anything that does not answer
as a Dask scheduler within the connect timeout fails then), and while units run, a run in which
no unit finishes while the scheduler does not answer, no worker is connected, or a worker
stopped sending its heartbeats (a hung worker, ``SIGSTOP``), for ``timeout`` seconds of wall
time, ends with :class:`ExecutorLost`. Dask's loggers are silenced while the runner uses Dask
(faults are reported in one line, never as a ``distributed`` traceback).

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

from ._codec import encode_records
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
    "pin_blas_threads",
    "make_executor",
    "default_workers",
    "parse_scheduler",
    "probe_scheduler",
    "silence_dask_logs",
    "MAX_WORKERS",
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
        Seconds of wall time the run may go on without a finished unit while the scheduler
        does not answer, no worker is connected, or a worker has stopped sending heartbeats;
        then :meth:`map_unordered` raises :class:`ExecutorLost`.
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
        self._restore_logs = silence_dask_logs()
        #: worker address -> (its last heartbeat as the scheduler saw it, when that changed)
        self._heartbeats: dict[str, tuple[Any, float]] = {}
        if pin_blas:
            client.run(pin_blas_threads)
        where = "local cluster" if cluster is not None else "scheduler"
        self.description = f"Dask {where} at {self.address}"

    def _problem(self, wait_s: float) -> str | None:
        """What keeps the cluster from computing now, or ``None`` when it can.

        The scheduler gets ``wait_s`` seconds to answer. A worker whose heartbeat (the
        scheduler's ``last_seen``) has not moved for ``timeout`` seconds counts as hung.
        """
        if self.client.status != "running":
            return f"lost the connection to the Dask scheduler at {self.address}"
        try:
            info = self.client.sync(
                self.client.scheduler.identity, n_workers=-1, callback_timeout=max(wait_s, 0.1)
            )
        except Exception:
            return f"the Dask scheduler at {self.address} does not answer"
        workers = info.get("workers") or {}
        if not workers:
            return f"no Dask worker is connected to the scheduler at {self.address}"
        now = time.monotonic()
        for address, worker in workers.items():
            seen = worker.get("last_seen")
            before = self._heartbeats.get(address)
            if before is None or before[0] != seen:
                self._heartbeats[address] = (seen, now)
        hung = [a for a in workers if now - self._heartbeats[a][1] >= self.timeout]
        if hung:
            return f"the Dask worker {hung[0]} has sent no heartbeat"
        return None

    def _result(self, fut: Any) -> Any:
        """The result of a finished future; :class:`ExecutorLost` when the cluster lost it."""
        from concurrent.futures import CancelledError

        try:
            return fut.result()
        except (UnitFailed, RunnerError):
            raise
        except CancelledError:
            problem = self._problem(1.0) or f"the Dask scheduler at {self.address} dropped a unit"
            raise ExecutorLost(problem) from None
        except Exception as exc:
            problem = self._problem(1.0)
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
        last_ok = time.monotonic()  # a unit finished, or the cluster was seen healthy
        try:
            while pending:
                try:
                    done, pending = self.client.sync(
                        _wait, list(pending), timeout=self.poll, return_when="FIRST_COMPLETED"
                    )
                    pending = set(pending)
                except TimeoutError:
                    done = set()
                except CancelledError:  # the client dropped every future: connection lost
                    problem = self._problem(1.0) or f"lost the Dask scheduler at {self.address}"
                    raise ExecutorLost(problem) from None
                for fut in done:
                    yield index[fut.key], self._result(fut)
                if done:
                    last_ok = time.monotonic()
                    continue
                problem = self._problem(self.timeout - (time.monotonic() - last_ok))
                if problem is None:
                    last_ok = time.monotonic()
                    continue
                if time.monotonic() - last_ok >= self.timeout:
                    raise ExecutorLost(
                        f"{problem}; no unit finished for {self.timeout:g} s", hint="timeout"
                    )
        finally:
            if pending:
                try:
                    self.client.cancel(list(pending))
                except Exception:  # the scheduler may be gone
                    pass

    def close(self) -> None:
        wait_s = min(self.timeout, 10.0)
        try:
            if self.owns_client:
                self.client.close(timeout=wait_s)
        except Exception:  # a dead scheduler: nothing left to close
            pass
        finally:
            if self.cluster is not None:
                try:
                    self.cluster.close(timeout=wait_s)
                except Exception:
                    pass
            self._restore_logs()


#: loggers that Dask, Tornado and asyncio write their tracebacks to
_DASK_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")


def silence_dask_logs() -> Callable[[], None]:
    """Silence Dask's, Tornado's and asyncio's loggers; a function that restores them.

    Every logger under those names is raised above ``CRITICAL`` (Dask gives several of them
    their own level, so the parents alone would not do), and so are their handlers.

    Examples
    --------
    >>> import logging
    >>> restore = silence_dask_logs()
    >>> logging.getLogger("distributed.client").isEnabledFor(logging.CRITICAL)
    False
    >>> restore()
    """
    import logging

    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in _DASK_LOGGERS
    ]
    loggers = [logging.getLogger(name) for name in dict.fromkeys([*_DASK_LOGGERS, *names])]
    saved = [(log, log.level, log.disabled) for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL + 1)

    def restore() -> None:
        for log, level, disabled in saved:
            log.setLevel(level)
            log.disabled = disabled

    return restore


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Silence Dask's loggers for the ``with`` block."""
    restore = silence_dask_logs()
    try:
        yield
    finally:
        restore()


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
            'running on Dask needs the dask extra: pip install "finetune-theory[dask]"',
            hint="scheduler",
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
                f"could not reach the Dask scheduler at {address} within {timeout:g} s",
                hint="connect-timeout",
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
            "there does not answer as a Dask scheduler",
            hint="connect-timeout",
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

    import dask

    _check_workers(workers)
    ttl = f"{max(run_timeout, 1.0)}s"  # the scheduler drops a hung worker (and its units) then
    with (
        workers_ignore_sigint(),
        _quiet_dask(),
        dask.config.set({"distributed.scheduler.worker-ttl": ttl}),
    ):
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
        workers = min(default_workers(), MAX_WORKERS)
    _check_workers(workers)
    if workers == 1:
        return InlineExecutor()
    return ProcessExecutor(workers)
