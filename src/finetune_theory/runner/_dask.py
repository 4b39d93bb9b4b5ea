"""Units on a Dask ``distributed`` cluster: the executor, connecting, and silencing Dask.

Dask is an optional extra (``pip install "finetune-theory[dask]"``), imported only when a
scheduler is asked for. A Dask run never waits without bound: a scheduler address is first
probed (a refused port fails at once; anything that does not answer as a Dask scheduler within
the connect timeout fails then), and while units run, a run in which no unit finishes while
the scheduler does not answer, no worker is connected, or a worker stopped sending its
heartbeats (a hung worker, ``SIGSTOP``), for ``timeout`` seconds of wall time, ends with
:class:`~finetune_theory.runner.errors.ExecutorLost`. Dask's loggers are silenced while the
runner uses Dask: faults are reported in one line, never as a ``distributed`` traceback.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._base import MAX_WORKERS, Executor, pin_blas_threads, workers_ignore_sigint
from .errors import ExecutorLost, RunnerError, UnitFailed

__all__ = [
    "DaskExecutor",
    "silence_dask_logs",
    "parse_scheduler",
    "probe_scheduler",
    "connect",
    "local_cluster",
]


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
        self._lost = False  # the cluster went away or hung: closing it cannot take long
        #: worker address -> (its last heartbeat as the scheduler saw it, when that changed)
        self._heartbeats: dict[str, tuple[Any, float]] = {}
        if pin_blas:
            client.run(pin_blas_threads)
        where = "local cluster" if cluster is not None else "scheduler"
        self.description = f"Dask {where} at {self.address}"

    def _problem(self, wait_s: float) -> str | None:
        """What keeps the cluster from computing now, or ``None`` when it can."""
        return self._trouble(wait_s)[0]

    def _trouble(self, wait_s: float) -> tuple[str | None, float | None]:
        """What keeps the cluster from computing now, and since when if known.

        The scheduler gets ``wait_s`` seconds to answer. A worker whose heartbeat (the
        scheduler's ``last_seen``) has not moved for ``timeout`` seconds counts as hung, since
        its last heartbeat.
        """
        if self.client.status != "running":
            return f"lost the connection to the Dask scheduler at {self.address}", None
        try:
            info = self.client.sync(
                self.client.scheduler.identity, n_workers=-1, callback_timeout=max(wait_s, 0.1)
            )
        except Exception:
            return f"the Dask scheduler at {self.address} does not answer", None
        workers = info.get("workers") or {}
        if not workers:
            return f"no Dask worker is connected to the scheduler at {self.address}", None
        now = time.monotonic()
        for address, worker in workers.items():
            seen = worker.get("last_seen")
            before = self._heartbeats.get(address)
            if before is None or before[0] != seen:
                self._heartbeats[address] = (seen, now)
        hung = [a for a in workers if now - self._heartbeats[a][1] >= self.timeout]
        if hung:
            return f"the Dask worker {hung[0]} has sent no heartbeat", self._heartbeats[hung[0]][1]
        return None, None

    def _result(self, fut: Any) -> Any:
        """The result of a finished future; :class:`ExecutorLost` when the cluster lost it."""
        from concurrent.futures import CancelledError

        try:
            return fut.result()
        except (UnitFailed, RunnerError):
            raise
        except CancelledError:
            lost = self._problem(1.0) or f"the Dask scheduler at {self.address} dropped a unit"
            raise ExecutorLost(lost) from None
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
                    lost = self._problem(1.0) or f"lost the Dask scheduler at {self.address}"
                    raise ExecutorLost(lost) from None
                for fut in done:
                    yield index[fut.key], self._result(fut)
                if done:
                    last_ok = time.monotonic()
                    continue
                problem, since = self._trouble(self.timeout - (time.monotonic() - last_ok))
                if problem is None:
                    last_ok = time.monotonic()
                    continue
                if since is not None:  # a hung worker: the trouble began with its silence
                    last_ok = min(last_ok, since)
                if time.monotonic() - last_ok >= self.timeout:
                    self._lost = True
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
        wait_s = 1.0 if self._lost else min(self.timeout, 10.0)
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


# ------------------------------------------------------------------ connecting
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


def connect(address: str, timeout: float, run_timeout: float) -> DaskExecutor:
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


def local_cluster(workers: int, run_timeout: float) -> DaskExecutor:
    distributed = _import_distributed()
    import logging

    import dask

    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"local:N takes 1 to {MAX_WORKERS} workers, got {workers}")
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
