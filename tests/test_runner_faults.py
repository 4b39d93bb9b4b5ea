"""Fault injection: every way a run can be hurt ends in a clear line, never in a quiet lie.

One test (or a few) per item of the "runs that cannot lie" issue, numbered as there:

1. a kill while a CSV, a figure or the report is written leaves the old file or none;
2. a change of code between two runs recomputes, never serves or mixes stale records;
3. Dask workers all lost (or the scheduler gone) end the run within ``--timeout``;
4. a port where no Dask scheduler answers ends within ``--connect-timeout``, leaves nothing;
5. a store locked by another process is "in use", not "corrupted";
6. a full disk names the file and what was kept, leaves no partial file;
7. the output folder removed mid-run gives a non-zero exit and no summary;
8. a ``-wal`` beside a database it does not belong to is refused, never replayed;
9. a damaged stored record is named and recomputed, never served;
10. a second run into a busy folder is refused with the first one's PID;
11. Ctrl-C (once or more, at worker start-up or mid-run) gives one line and status 130;
12. a read-only store or folder is found out before any unit is computed.

Servers are bound to 127.0.0.1, started and stopped by the test; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import toy_experiment
from finetune_theory import experiments
from finetune_theory.cli import main
from finetune_theory.runner import reproduction
from finetune_theory.runner.errors import ExecutorLost, OutputError, RunnerError, StoreError
from finetune_theory.runner.executors import DaskExecutor, Executor, make_executor
from finetune_theory.runner.files import LOCK_NAME, FolderLock, atomic_write
from finetune_theory.runner.reproduction import reproduce
from finetune_theory.runner.store import ResultStore
from toy_experiment import assert_same_bits, live_group_members

TESTS = Path(__file__).resolve().parent

#: the CLI with the toy experiment registered; extra Python code can run first ($FAULT_CODE)
CLI = (
    "import os, sys; exec(os.environ.get('FAULT_CODE', '')); "
    "from finetune_theory import experiments; "
    "experiments.REGISTRY['toy'] = 'toy_experiment'; "
    "from finetune_theory.cli import main; sys.exit(main())"
)


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _cli(*argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *argv],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def toy(monkeypatch):
    toy_experiment.register(monkeypatch)


def _quick(out: Path, *extra: str) -> list[str]:
    return ["reproduce", "toy", "--size", "quick", "--out", str(out), "--workers", "1", *extra]


#: the plain progress lines a run writes to standard error when it is not a terminal
PROGRESS = re.compile(
    r"finetune-theory: [\w-]+: (\d+/\d+ units|verdicts|holds|does not hold|failed|no claims)"
)


def _one_line(err: str) -> str:
    """The one error line of ``err`` (progress lines left aside), checked to be alone."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if not PROGRESS.match(line)]
    assert len(lines) == 1, err
    assert lines[0].startswith("finetune-theory: ")
    return lines[0]


def _partials(folder: Path) -> list[Path]:
    return list(folder.rglob("*.ftpart")) if folder.exists() else []


class Hooked(Executor):
    """In-process executor that calls ``hook(finished_so_far)`` after each result."""

    description = "hooked in-process executor"

    def __init__(self, hook) -> None:
        self.hook = hook

    def map_unordered(self, fn, tasks):
        for i, args in enumerate(tasks):
            yield i, fn(*args)
            self.hook(i + 1)


# ------------------------------------------------------------------ 1. atomic outputs
KILL_IN_WRITE = textwrap.dedent(
    """
    import os, signal
    _real_fsync = os.fsync
    def _fsync(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith("." + os.environ["KILL_AT"] + "."):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)  # half written, then killed
            os.kill(os.getpid(), signal.SIGKILL)
        _real_fsync(fd)
    os.fsync = _fsync
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc/self/fd")
@pytest.mark.parametrize("target", ["toy.csv", "report.html", "figures/toy/toy_values.png"])
def test_1_a_kill_while_an_output_is_written_leaves_the_old_file(toy, tmp_path, target):
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    path = out / target
    before = path.read_bytes()
    killed = _cli(
        *_quick(out, "--seed", "1", "--quiet"), FAULT_CODE=KILL_IN_WRITE, KILL_AT=path.name
    )
    assert killed.returncode == -signal.SIGKILL
    assert path.read_bytes() == before  # the complete old file, not a part of the new one
    if target == "toy.csv":
        pd.read_csv(path)  # still whole
    assert _partials(out)  # the killed run's half-written temporary file ...
    assert main([*_quick(out, "--seed", "1"), "--quiet"]) == 0
    assert not _partials(out)  # ... is removed by the next run, which writes the new file
    assert path.read_bytes() != before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc/self/fd")
def test_1_a_kill_at_the_first_write_leaves_no_file_at_all(toy, tmp_path):
    out = tmp_path / "out"
    killed = _cli(*_quick(out, "--quiet"), FAULT_CODE=KILL_IN_WRITE, KILL_AT="toy.csv")
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "toy.csv").exists()
    assert len(_partials(out)) == 1


def test_1_a_failing_writer_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "a.csv"
    atomic_write(target, "old\n")

    def half_then_fail(fh):
        fh.write(b"new, but only ha")
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


# ------------------------------------------------------------------ 2. code fingerprint
FP_MODULE = """
import dataclasses
import toy_experiment

OFFSET = {offset!r}


def run(config, seed):
    return [{{**r, "value": r["value"] + OFFSET}} for r in toy_experiment.run(config, seed)]


EXPERIMENT = dataclasses.replace(toy_experiment.EXPERIMENT, name="fptoy", run=run)
"""


def _write_fp_module(folder: Path, offset: float) -> None:
    (folder / "fp_toy.py").write_text(FP_MODULE.format(offset=offset), encoding="utf-8")
    sys.modules.pop("fp_toy", None)
    importlib.invalidate_caches()


def test_2_changed_code_is_recomputed_and_never_mixed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(experiments.REGISTRY, "fptoy", "fp_toy")
    monkeypatch.delitem(sys.modules, "fp_toy", raising=False)
    out = tmp_path / "out"
    args = ["reproduce", "fptoy", "--size", "quick", "--out", str(out), "--workers", "1"]

    _write_fp_module(tmp_path, 0.0)
    assert main([*args, "--quiet"]) == 0
    old = pd.read_csv(out / "fptoy.csv")

    # a finished folder, new code, same version string: everything recomputed, and said so
    _write_fp_module(tmp_path, 1.5)
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "recomputed 4 stored unit(s) because the code changed" in summary
    assert "4/0" in summary  # 4 computed now, 0 read from the store
    new = pd.read_csv(out / "fptoy.csv")
    assert (new["value"] - old["value"]).round(12).eq(1.5).all()

    # a half-finished folder (2 of 4 units of the old code), then new code: no mixing
    _write_fp_module(tmp_path, 0.0)
    stop = Hooked(lambda done: (_ for _ in ()).throw(KeyboardInterrupt) if done == 2 else None)
    with pytest.raises(KeyboardInterrupt):
        reproduce(["fptoy"], size="quick", out=out, fresh=True, executor=stop)
    with ResultStore(out / "store.sqlite") as store:
        assert store.count("fptoy") == 2
    _write_fp_module(tmp_path, 1.5)
    result = reproduce(["fptoy"], size="quick", out=out, workers=1)
    sweep = result.outcomes[0].sweep
    assert (sweep.units_computed, sweep.units_reused, sweep.recomputed_code) == (4, 0, 2)
    assert_same_bits(pd.read_csv(out / "fptoy.csv"), new)  # every row from the new code


# ------------------------------------------------------------------ 3. Dask: lost workers
def _dask_sweep_until(tmp_path, monkeypatch, fault, *, timeout=1.5):
    """A toy run on an in-process cluster; ``fault(cluster)`` after the first unit."""
    distributed = pytest.importorskip("distributed")
    toy_experiment.register(monkeypatch, slow=0.2)
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        executor = DaskExecutor(client, timeout=timeout, poll=0.2)
        faulted = []

        def progress(done, total):
            if done >= 1 and not faulted:
                faulted.append(time.monotonic())
                fault(cluster)

        original = reproduction.run_sweep

        def sweep_with_fault(*args, **kwargs):
            kwargs["progress"] = progress
            return original(*args, **kwargs)

        monkeypatch.setattr(reproduction, "run_sweep", sweep_with_fault)
        with pytest.raises(ExecutorLost) as info:
            reproduce(["toy"], size="paper", out=tmp_path / "out", executor=executor)
        elapsed = time.monotonic() - faulted[0]
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=2)
        with contextlib.suppress(Exception):
            cluster.close(timeout=2)
    return str(info.value), elapsed


def _close_workers(cluster):
    for worker in list(cluster.workers.values()):
        cluster.sync(worker.close)


def test_3_all_dask_workers_lost_ends_the_run_within_the_timeout(tmp_path, monkeypatch):
    message, elapsed = _dask_sweep_until(tmp_path, monkeypatch, _close_workers)
    assert "no Dask worker is connected" in message and "1.5 s" in message
    assert "kept: " in message and "store.sqlite" in message
    assert elapsed < 1.5 + 5  # the timeout plus polling, never forever
    with ResultStore(tmp_path / "out" / "store.sqlite") as store:
        assert 1 <= store.count("toy") < 8  # the finished units are kept


def test_3_a_dask_scheduler_that_dies_ends_the_run_within_the_timeout(tmp_path, monkeypatch):
    def kill_scheduler(cluster):
        cluster.sync(cluster.scheduler.close)

    message, elapsed = _dask_sweep_until(tmp_path, monkeypatch, kill_scheduler)
    assert "Dask scheduler" in message and "kept: " in message
    assert elapsed < 1.5 + 10


# ------------------------------------------------------------------ 4. Dask: wrong port
@contextlib.contextmanager
def _silent_server():
    """A TCP server on a loopback port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@contextlib.contextmanager
def _http_server():
    """A web server on a loopback port (it answers, but not as Dask does)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("server", [_silent_server, _http_server], ids=["silent-tcp", "http"])
def test_4_a_port_without_a_dask_scheduler_fails_within_the_timeout(toy, tmp_path, capsys, server):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    with server() as address:
        start = time.monotonic()
        code = main([*_quick(out), "--scheduler", address, "--connect-timeout", "1"])
        elapsed = time.monotonic() - start
    assert code == 1
    err = _one_line(capsys.readouterr().err)
    assert f"could not reach the Dask scheduler at {address}" in err
    assert elapsed < 1 + 4
    assert not out.exists()  # no empty store (nor folder) left behind


def test_4_a_refused_port_fails_at_once(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(RunnerError, match="connection refused"):
        make_executor(scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=30)
    assert time.monotonic() - start < 3


def test_4_a_failed_connection_keeps_an_existing_store_and_its_units(toy, tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    with _silent_server() as address:
        assert main([*_quick(out), "--scheduler", address, "--connect-timeout", "0.5"]) == 1
    with ResultStore(out / "store.sqlite") as store:
        assert store.count("toy") == 4


# ------------------------------------------------------------------ 5 and 12. locked, read-only
@pytest.fixture
def fast_lock(monkeypatch):
    monkeypatch.setattr(ResultStore.__init__, "__kwdefaults__", {"lock_wait": 0.2})


def test_5_a_store_locked_by_another_process_is_in_use_not_corrupted(
    toy, tmp_path, capsys, monkeypatch, fast_lock
):
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet", "--seed", "5"]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(60)",
            str(out / "store.sqlite"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        marker = tmp_path / "marker.txt"
        monkeypatch.setenv("TOY_MARKER", str(marker))
        assert main(_quick(out)) == 1
    finally:
        holder.kill()
        holder.wait(10)
    err = _one_line(capsys.readouterr().err)
    assert "in use by another process" in err and "corrupted" not in err
    assert not marker.exists()  # found out before any unit was computed
    assert main([*_quick(out), "--quiet", "--seed", "5"]) == 0  # healthy once released


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.fixture
def immutable(tmp_path):
    """Mark files immutable (even root cannot write them); skip where chattr cannot."""
    marked: list[Path] = []

    def mark(*paths: Path) -> None:
        try:
            _chattr("+i", *paths)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip("chattr +i is not available here")
        marked.extend(paths)

    yield mark
    if marked:
        _chattr("-i", *marked)


def test_12_a_read_only_store_is_found_out_before_any_unit(
    toy, tmp_path, capsys, monkeypatch, immutable
):
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    immutable(out / "store.sqlite")
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    assert main([*_quick(out), "--seed", "2"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "read-only" in err and "store.sqlite" in err and "corrupted" not in err
    assert not marker.exists()


def test_5_12_a_read_only_output_folder_is_said_so_before_any_unit(
    toy, tmp_path, capsys, monkeypatch, immutable
):
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    immutable(out)
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    assert main([*_quick(out), "--seed", "2"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert f"cannot write to the output folder {out}" in err and "corrupted" not in err
    assert not marker.exists()


# ------------------------------------------------------------------ 6. disk full
@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs mounted for the test; skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> None:
    """Use up every free byte of ``folder``'s file system."""
    with (folder / "filler").open("ab", buffering=0) as fh:
        for chunk in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * chunk)


@pytest.mark.parametrize(("when", "culprit"), [(4, "toy.csv"), (2, "store.sqlite")])
def test_6_a_full_disk_names_the_file_and_what_was_kept(
    toy, tiny_disk, capsys, monkeypatch, when, culprit
):
    out = tiny_disk / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    before = {p: (out / p).read_bytes() for p in ("toy.csv", "report.html")}
    filled: list[int] = []

    def fill_once(done):
        if done == when and not filled:
            filled.append(done)
            _fill(tiny_disk)

    filler = Hooked(fill_once)
    monkeypatch.setattr(reproduction, "make_executor", lambda *a, **k: filler)
    assert main([*_quick(out), "--seed", "3"]) == 1
    captured = capsys.readouterr()
    err = _one_line(captured.err)
    assert "the disk is full" in err and culprit in err
    assert f"kept: {when} finished unit(s) in {out / 'store.sqlite'}" in err
    assert captured.out == ""  # no success summary
    assert not _partials(out)
    assert {p: (out / p).read_bytes() for p in before} == before  # earlier files unchanged
    (tiny_disk / "filler").unlink()
    assert main([*_quick(out), "--seed", "3", "--quiet"]) == 0  # and it resumes


# ------------------------------------------------------------------ 7. folder removed
def test_7_the_output_folder_removed_mid_run_is_a_failure(toy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    remover = Hooked(lambda done: shutil.rmtree(out) if done == 2 else None)
    monkeypatch.setattr(reproduction, "make_executor", lambda *a, **k: remover)
    assert main(_quick(out)) == 1
    captured = capsys.readouterr()
    err = _one_line(captured.err)
    assert "was removed" in err and "nothing was kept" in err
    assert captured.out == ""  # no summary, no report
    assert not out.exists()


def test_7_a_folder_removed_after_the_units_is_a_failure_too(toy, tmp_path, monkeypatch):
    out = tmp_path / "out"
    original = toy_experiment.EXPERIMENT.claims

    def claims_then_remove(records):
        shutil.rmtree(out)
        return original(records)

    monkeypatch.setattr(
        reproduction, "get", lambda name: _replace(toy_experiment.EXPERIMENT, claims_then_remove)
    )
    with pytest.raises(OutputError, match="was removed during the run"):
        reproduce(["toy"], size="quick", out=out, workers=1)


def _replace(experiment, claims):
    import dataclasses

    return dataclasses.replace(experiment, claims=claims)


# ------------------------------------------------------------------ 8. the WAL belongs to its db
LEAVE_WAL = textwrap.dedent(
    """
    import os, sys
    from finetune_theory.runner.store import ResultStore
    if sys.argv[2:] != ["checkpoint"]:
        ResultStore._checkpoint = lambda self: None  # as if killed right after each commit
    store = ResultStore(sys.argv[1])
    for i in range(3):
        store.put("toy", "h", i, 0, unit_hash=f"u{i}", unit_seed=i, version="1",
                  records=[{"x": float(i)}], seconds=0.0)
    os._exit(0)
    """
)


@pytest.fixture(scope="module")
def killed_store_files(tmp_path_factory):
    """The files of a store whose last units live only in its ``-wal`` (its writer died)."""
    path = tmp_path_factory.mktemp("killed") / "store.sqlite"
    subprocess.run([sys.executable, "-c", LEAVE_WAL, str(path)], check=True, timeout=60)
    return {name: (path.parent / name).read_bytes() for name in os.listdir(path.parent)}


@pytest.fixture
def killed_store(tmp_path, killed_store_files):
    """A fresh copy of :func:`killed_store_files`: the database and its WAL."""
    for name, data in killed_store_files.items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "store.sqlite"
    wal = path.with_name("store.sqlite-wal")
    assert wal.stat().st_size > 0
    return path, wal


def _foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.execute("INSERT INTO customers VALUES ('ada')")
    conn.commit()
    conn.close()


def test_8_the_wal_of_a_killed_run_belongs_to_its_own_store(killed_store):
    path, _ = killed_store
    with ResultStore(path) as store:
        assert sorted(store.load("toy", "h", 0, "1")) == [0, 1, 2]


@pytest.mark.parametrize("other", ["another program's database", "another results store"])
def test_8_a_wal_beside_another_database_is_refused_not_replayed(tmp_path, killed_store, other):
    path, wal = killed_store
    replacement = tmp_path / "other.sqlite"
    if other == "another results store":
        with ResultStore(replacement) as store:
            store.put(
                "toy",
                "h",
                7,
                0,
                unit_hash="u7",
                unit_seed=7,
                version="1",
                records=[{"x": 7.0}],
                seconds=0.0,
            )
    else:
        _foreign_database(replacement)
    os.replace(replacement, path)
    db, log = path.read_bytes(), wal.read_bytes()
    refused = "store.sqlite-wal .* (belongs to another|does not belong)"
    with pytest.raises(StoreError, match=refused):
        ResultStore(path)
    assert path.read_bytes() == db and wal.read_bytes() == log  # neither was touched


def test_8_a_wal_without_its_database_is_refused(killed_store):
    path, wal = killed_store
    path.unlink()
    with pytest.raises(StoreError, match="store.sqlite is missing"):
        ResultStore(path)
    assert not path.exists() and wal.stat().st_size > 0


def test_8_after_a_kill_the_database_file_alone_holds_the_finished_units(tmp_path):
    path = tmp_path / "killed" / "store.sqlite"
    path.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", LEAVE_WAL, str(path), "checkpoint"], timeout=60)
    assert done.returncode == 0
    copy = tmp_path / "copy" / "store.sqlite"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)  # the main file only, as a user might copy it
    with ResultStore(copy) as store:
        assert sorted(store.load("toy", "h", 0, "1")) == [0, 1, 2]


# ------------------------------------------------------------------ 9. damaged records
def _tamper(store: Path, unit: int, sql_value: str, params=()) -> None:
    conn = sqlite3.connect(store)
    conn.execute(
        f"UPDATE units SET records = {sql_value} WHERE unit_index = ? AND experiment = 'toy'",
        (*params, unit),
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("digit", "checksum does not match"),
        ("bytes", "not valid UTF-8"),
        ("swapped, checksum blanked", "it has no checksum"),
    ],
)
def test_9_a_damaged_record_is_named_and_recomputed(
    toy, tmp_path, capsys, monkeypatch, damage, reason
):
    out = tmp_path / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    clean = (out / "toy.csv").read_bytes()
    store = out / "store.sqlite"
    if damage == "digit":
        conn = sqlite3.connect(store)
        text = conn.execute("SELECT records FROM units WHERE unit_index = 2").fetchone()[0]
        conn.close()
        pos = next(i for i, ch in enumerate(text) if ch in "123456789")
        changed = text[:pos] + str(int(text[pos]) % 9 + 1) + text[pos + 1 :]
        assert changed != text
        _tamper(store, 2, "?", (changed,))
    elif damage == "bytes":
        _tamper(store, 2, "CAST(X'5B7B2278223AFF7D5D' AS TEXT)")
    else:  # unit 1's records under unit 2's key, its checksum blanked (issue 21, item 4)
        conn = sqlite3.connect(store)
        conn.execute(
            "UPDATE units SET checksum = '', records = (SELECT records FROM units "
            "WHERE unit_index = 1 AND experiment = 'toy') WHERE unit_index = 2"
        )
        conn.commit()
        conn.close()
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    assert main([*_quick(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "toy: stored unit 2 is damaged (" in err and reason in err
    assert "recomputed, not served" in err
    assert [line.split()[0] for line in marker.read_text().splitlines()] == ["2"]
    assert (out / "toy.csv").read_bytes() == clean  # the recomputed unit, not the damaged one


# ------------------------------------------------------------------ 10. two runs at once
@pytest.mark.slow
def test_10_a_second_run_into_a_busy_folder_is_refused_with_the_pid(toy, tmp_path, capsys):
    out, marker = tmp_path / "out", tmp_path / "marker.txt"
    first = subprocess.Popen(
        [sys.executable, "-c", CLI, *_quick(out, "--quiet")],
        env=_env(TOY_SLEEP="0.2", TOY_MARKER=str(marker)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert main(_quick(out)) == 1
        err = _one_line(capsys.readouterr().err)
        assert f"is in use by another run (PID {first.pid})" in err
        assert first.wait(60) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    units = [line.split()[0] for line in marker.read_text().splitlines()]
    assert sorted(units) == ["0", "1", "2", "3"]  # each unit computed once, by the first run
    with FolderLock(out):  # the lock went with its owner
        assert (out / LOCK_NAME).exists()


# ------------------------------------------------------------------ 11. Ctrl-C
def _press_ctrl_c(argv, *, ready, presses, tmp_path):
    """Start the CLI in its own process group; when ``ready()`` press Ctrl-C ``presses`` times."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv],
        env=_env(TOY_SLEEP="0.5", TOY_MARKER=str(tmp_path / "marker.txt")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "not ready within 60 s"
            time.sleep(0.02)
        for _ in range(presses):
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole group
            time.sleep(0.15)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 15
        while live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftover = live_group_members(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, err, leftover


INTERRUPTED = (
    "finetune-theory: interrupted; finished units are stored, run the same command to resume"
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.parametrize(
    ("where", "moment"),
    [
        (["--workers", "2"], "start-up"),
        (["--scheduler", "local:2"], "start-up"),
        (["--scheduler", "local:1"], "mid-run"),
    ],
    ids=["processes-start-up", "dask-local-start-up", "dask-local-mid-run"],
)
def test_11_ctrl_c_gives_one_line_and_130_however_often(tmp_path, where, moment):
    if "--scheduler" in where:
        pytest.importorskip("distributed")
    out = tmp_path / "out"
    argv = ["reproduce", "toy", "--size", "paper", "--out", str(out), "--quiet", *where]
    marker = tmp_path / "marker.txt"
    if moment == "start-up":  # the folder is locked: the workers are being started now
        ready = (out / LOCK_NAME).exists
    else:
        ready = lambda: marker.exists() and marker.read_text().count("\n") >= 1  # noqa: E731
    presses = 2 if moment == "start-up" else 3
    with contextlib.ExitStack() as stack:
        if "--scheduler" in where:
            # Dask's usual dashboard port taken (as by another cluster): still one line
            busy = stack.enter_context(socket.socket())
            with contextlib.suppress(OSError):  # already taken by someone else: the same case
                busy.bind(("127.0.0.1", 8787))
                busy.listen()
        code, err, leftover = _press_ctrl_c(argv, ready=ready, presses=presses, tmp_path=tmp_path)
    assert code == 130, err
    assert err.strip() == INTERRUPTED  # one line, no worker traceback
    assert leftover == []  # the workers were stopped


# ================================================================== part two (issue 21)
# 1. an edit during a run; 2. workers with another fingerprint; 3. stale bytecode; 4. a
# blanked checksum (test_9 above); 5. a local worker killed; 6. hung Dask workers and
# scheduler; 7. a lock taken (or the store made read-only) mid-run; 8. a full disk that SQLite
# calls an I/O error; 9. a zero-byte store, the umask, one run per store, --workers bounded.
FPTOY = """
import dataclasses
import toy_experiment

OFFSET = {offset!r}


def run(config, seed):
    return [{{**r, "value": r["value"] + OFFSET}} for r in toy_experiment.run(config, seed)]


EXPERIMENT = dataclasses.replace(toy_experiment.EXPERIMENT, name="fptoy", run=run)
"""

#: the CLI run from a copy of the package, with ``fptoy`` registered inside it
COPY_CLI = (
    "import sys; from finetune_theory import experiments; "
    "assert experiments.__file__.startswith(sys.argv.pop(1)); "
    "experiments.REGISTRY['toy'] = 'toy_experiment'; "
    "experiments.REGISTRY['fptoy'] = 'finetune_theory.experiments.fptoy'; "
    "from finetune_theory.cli import main; sys.exit(main())"
)


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the package (with ``experiments/fptoy.py``) that a test may edit."""
    import finetune_theory

    root = tmp_path / "copy"
    shutil.copytree(
        Path(finetune_theory.__file__).parent,
        root / "finetune_theory",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (root / "finetune_theory" / "experiments" / "fptoy.py").write_text(
        FPTOY.format(offset=0.0), encoding="utf-8"
    )
    return root


def _copy_cli(root: Path, *argv: str, **env: str) -> list[str] | dict:
    """Command and environment of the CLI run from the package copy at ``root``."""
    path = os.pathsep.join([str(root), str(TESTS)])
    cmd = [sys.executable, "-c", COPY_CLI, str(root), *argv]
    return cmd, {**os.environ, "PYTHONPATH": path, **env}


def _wait_for(predicate, proc, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "not ready in time"
        time.sleep(0.02)


@pytest.mark.slow
def test_21_1_a_source_edited_during_the_run_ends_it_and_is_never_served(tmp_path, package_copy):
    out, marker = tmp_path / "out", tmp_path / "marker.txt"
    argv = ["reproduce", "toy", "fptoy", "--size", "quick", "--out", str(out), "--workers", "1"]
    cmd, env = _copy_cli(package_copy, *argv, "--quiet", TOY_SLEEP="0.3", TOY_MARKER=str(marker))
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: marker.exists() and marker.read_text(), proc)
        # fptoy's module was imported at the start; a second process edits it now, while toy runs
        (package_copy / "finetune_theory" / "experiments" / "fptoy.py").write_text(
            FPTOY.format(offset=1.5), encoding="utf-8"
        )
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    line = _one_line(err)
    assert "finetune_theory/experiments/fptoy.py changed during the run" in line
    assert "kept: " in line
    with ResultStore(out / "store.sqlite") as store:
        assert store.count("fptoy") == 0  # nothing computed after the change is stored
        assert store.count("toy") < 4  # and the unit that came in after it is not either
    done = subprocess.run(cmd[:3] + cmd[3:] + ["--quiet"], env={**env, "TOY_SLEEP": "0"},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    toy, fptoy = pd.read_csv(out / "toy.csv"), pd.read_csv(out / "fptoy.csv")
    assert ((fptoy["value"] - toy["value"]).round(12) == 1.5).all()  # the new code's records


def test_21_2_units_of_workers_with_another_fingerprint_are_refused(toy, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from finetune_theory.runner import executors
    from finetune_theory.runner.errors import ForeignCode

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        executor = DaskExecutor(client, timeout=10)
        monkeypatch.setattr(executors, "_worker_fingerprint", lambda spec: "0" * 16)
        with pytest.raises(ForeignCode, match="computed by other code") as info:
            reproduce(["toy"], size="quick", out=tmp_path / "a", executor=executor)
        assert "kept: 0 finished unit(s)" in str(info.value)
        monkeypatch.undo()
        toy_experiment.register(monkeypatch)
        result = reproduce(["toy"], size="quick", out=tmp_path / "b", executor=executor)
    assert result.outcomes[0].sweep.units_computed == 4  # the same code: stored and served
    with ResultStore(tmp_path / "a" / "store.sqlite") as store:
        assert store.count() == 0


def test_21_3_a_stale_pyc_of_a_loaded_module_is_found(tmp_path, monkeypatch):
    import compileall

    from finetune_theory.runner.errors import StaleBytecode
    from finetune_theory.runner.fingerprint import check_bytecode

    source = tmp_path / "stale_mod.py"
    source.write_text("VALUE = 1\n", encoding="utf-8")
    assert compileall.compile_file(str(source), quiet=1)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "stale_mod", raising=False)
    stat = source.stat()
    source.write_text("VALUE = 2\n", encoding="utf-8")  # same size, time stamp put back
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    module = importlib.import_module("stale_mod")
    assert module.VALUE == 1  # the old bytecode ran
    with pytest.raises(StaleBytecode, match="stale_mod.py ran from bytecode"):
        check_bytecode(module)


@pytest.mark.slow
def test_21_3_a_stale_pyc_never_hides_behind_the_fingerprint(tmp_path, package_copy):
    import numpy as np

    from finetune_theory.runner.sweep import unit_seed

    out = tmp_path / "out"
    argv = ["reproduce", "toy", "--size", "quick", "--out", str(out), "--workers", "1", "--quiet"]
    cmd, env = _copy_cli(package_copy, *argv)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package_copy)], check=True)
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = pd.read_csv(out / "toy.csv")["value"].to_numpy()
    random_py = package_copy / "finetune_theory" / "_random.py"
    stat = random_py.stat()
    text = random_py.read_text(encoding="utf-8")
    assert "np.random.PCG64(seed_sequence(seed))" in text
    random_py.write_text(text.replace("PCG64(seed_sequence", "SFC64(seed_sequence"), "utf-8")
    os.utime(random_py, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time stamp
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if second.returncode != 0:  # refused: the stale bytecode named, with what to do
        line = _one_line(second.stderr)
        assert "_random.py ran from bytecode" in line and "__pycache__" in line
        shutil.rmtree(random_py.parent / "__pycache__")
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
    after = pd.read_csv(out / "toy.csv")["value"].to_numpy()
    draws = 5
    expected = np.concatenate([
        np.random.Generator(np.random.SFC64(np.random.SeedSequence(unit_seed(0, i))))
        .standard_normal(draws) for i in range(4)
    ])  # fmt: skip
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, expected, rtol=1e-15)  # the edited source's records


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_21_5_a_local_worker_killed_ends_the_run_with_one_line(tmp_path):
    out, pids = tmp_path / "out", tmp_path / "pids.txt"
    argv = [*_quick(out), "--quiet"]
    argv[argv.index("--workers") + 1] = "2"
    argv[argv.index("quick")] = "paper"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv],
        env=_env(TOY_SLEEP="1", TOY_PIDS=str(pids)),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: pids.exists() and pids.read_text().count("\n") >= 1, proc)
        worker = int(pids.read_text().split()[0])
        assert worker != proc.pid
        os.kill(worker, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 1
    line = _one_line(err)
    assert "a local worker process was killed by SIGKILL" in line
    assert "kept: " in line and "store.sqlite" in line


@contextlib.contextmanager
def _dask_processes(tmp_path, **worker_env):
    """A real ``dask scheduler`` and one ``dask worker`` (no nanny), as processes."""
    pytest.importorskip("distributed")
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("the dask command is not installed")
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", str(info)], env=_env(), **quiet,
    )  # fmt: skip
    worker = None
    try:
        _wait_for(lambda: info.exists() and info.stat().st_size > 0, scheduler)
        address = __import__("json").loads(info.read_text())["address"]
        worker = subprocess.Popen(
            [str(dask), "worker", address, "--nthreads", "1", "--no-nanny",
             "--dashboard-address", ":0"],
            env=_env(**worker_env), **quiet,
        )  # fmt: skip
        import distributed

        with distributed.Client(address, set_as_default=False, timeout="60s") as client:
            client.wait_for_workers(1, timeout=90)  # the run starts with its worker there
        yield address, scheduler, worker
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("hung", ["worker", "scheduler", "scheduler killed"])
def test_21_6_a_hung_dask_worker_or_scheduler_ends_the_run_within_the_timeout(tmp_path, hung):
    marker, out = tmp_path / "marker.txt", tmp_path / "out"
    with _dask_processes(tmp_path, TOY_SLEEP="0.3", TOY_MARKER=str(marker)) as procs:
        address, scheduler, worker = procs
        argv = ["reproduce", "toy", "--size", "paper", "--out", str(out), "--quiet",
                "--scheduler", address, "--timeout", "5"]  # fmt: skip
        run = subprocess.Popen(
            [sys.executable, "-c", CLI, *argv], env=_env(), stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_for(lambda: marker.exists() and marker.read_text(), run, seconds=90)
            if hung == "scheduler killed":
                scheduler.kill()
            else:
                (worker if hung == "worker" else scheduler).send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            _, err = run.communicate(timeout=60)  # a regression fails here instead of hanging
            elapsed = time.monotonic() - stopped
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 1
    line = _one_line(err)  # no traceback from distributed either
    assert "kept: " in line
    if hung == "scheduler killed":  # the connection is lost at once, or it stops answering
        assert "Dask scheduler" in line
    else:
        expected = "has sent no heartbeat" if hung == "worker" else "does not answer"
        assert expected in line and "no unit finished for 5 s" in line
    # the timeout, a heartbeat, polling, closing (1 s) and the process's exit, but not twice
    # the timeout; Dask's own worker TTL is 5 minutes
    assert elapsed < 5 + 4.5


@pytest.mark.parametrize("fault", ["locked", "read-only"])
def test_21_7_a_store_locked_or_made_read_only_mid_run_ends_it_at_once(
    toy, tmp_path, capsys, monkeypatch, fault
):
    out = tmp_path / "out"
    holder: list[subprocess.Popen] = []
    marked: list[Path] = []

    def fault_after(done):
        if done != 2:
            return
        store = out / "store.sqlite"
        if fault == "locked":
            proc = subprocess.Popen(
                [sys.executable, "-c",
                 "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None)"
                 "; c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(60)",
                 str(store)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            holder.append(proc)
            assert proc.stdout.readline().strip() == "locked"
        else:
            try:
                for path in (store, store.with_name("store.sqlite-wal")):
                    _chattr("+i", path)
                    marked.append(path)
            except (OSError, subprocess.CalledProcessError):
                pytest.skip("chattr +i is not available here")

    faulty = Hooked(fault_after)
    monkeypatch.setattr(reproduction, "make_executor", lambda *a, **k: faulty)
    start = time.monotonic()
    try:
        code = main(_quick(out))
    finally:
        for proc in holder:
            proc.kill()
            proc.wait()
        if marked:
            _chattr("-i", *marked)
    elapsed = time.monotonic() - start
    assert code == 1
    line = _one_line(capsys.readouterr().err)
    assert ("in use by another process" if fault == "locked" else "read-only") in line
    assert f"kept: 2 finished unit(s) in {out / 'store.sqlite'}" in line
    assert "pass another --out or --store" in line  # the CLI's wording of the library's hint
    assert elapsed < 20  # at once, not after SQLite's 30 s busy wait


def test_21_8_a_full_disk_that_sqlite_calls_an_io_error_is_named(toy, tiny_disk, capsys):
    out = tiny_disk / "out"
    assert main([*_quick(out), "--quiet"]) == 0
    assert not (out / "store.sqlite-shm").exists()  # a clean end folds and removes it
    _fill(tiny_disk)  # opening the store again needs a -shm: SQLITE_IOERR_SHMSIZE
    assert main([*_quick(out), "--seed", "3"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "the disk is full" in line and "store.sqlite" in line and "I/O" not in line


@pytest.mark.parametrize("content", [b"", b"my notes\n"], ids=["zero-byte", "text"])
def test_21_9_a_zero_byte_store_is_refused_like_any_other_file(toy, tmp_path, capsys, content):
    store = tmp_path / "store.sqlite"
    store.write_bytes(content)
    assert main([*_quick(tmp_path / "out"), "--store", str(store)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"{store} is not a finetune-theory results store (not an SQLite file)" in line
    assert store.read_bytes() == content


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_21_9_outputs_follow_the_umask(toy, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert main([*_quick(tmp_path / "out"), "--quiet"]) == 0
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for name in ("toy.csv", "report.html", "figures/toy/toy_values.png", "store.sqlite"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == expected, name


@pytest.mark.slow
def test_21_9_one_run_per_store_even_when_its_folder_does_not_exist(toy, tmp_path, capsys):
    store, marker = tmp_path / "new" / "deeper" / "s.sqlite", tmp_path / "marker.txt"
    argv = _quick(tmp_path / "first", "--quiet", "--store", str(store))
    first = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv],
        env=_env(TOY_SLEEP="0.3", TOY_MARKER=str(marker)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: marker.exists() and marker.read_text(), first)
        assert main(_quick(tmp_path / "second", "--store", str(store))) == 1
        line = _one_line(capsys.readouterr().err)
        assert f"the store's folder {store.parent} is in use by another run (PID {first.pid})" in (
            line
        )
        assert first.wait(60) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_21_9_workers_are_bounded_by_a_stated_maximum(capsys):
    from finetune_theory.runner.executors import MAX_WORKERS

    assert main(["reproduce", "--workers", str(MAX_WORKERS + 1)]) == 2
    assert f"expected a number from 1 to {MAX_WORKERS}" in capsys.readouterr().err
    assert main(["reproduce", "--scheduler", f"local:{MAX_WORKERS + 1}"]) == 2
    assert f"at most {MAX_WORKERS}" in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"at most {MAX_WORKERS}"):
        make_executor(MAX_WORKERS + 1)
