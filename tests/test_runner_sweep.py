"""Sweeps: seeds by unit index, the same bits on every executor, resume and fresh runs."""

from __future__ import annotations

import dataclasses
import socket
import sys

import numpy as np
import pandas as pd
import pytest

import toy_experiment
from finetune_theory.experiments.base import config_hash
from finetune_theory.runner.errors import RunnerError, UnitFailed
from finetune_theory.runner.executors import (
    DaskExecutor,
    Executor,
    InlineExecutor,
    ProcessExecutor,
    make_executor,
    parse_scheduler,
)
from finetune_theory.runner.store import ResultStore
from finetune_theory.runner.sweep import run_sweep, unit_seed
from toy_experiment import EXPERIMENT as TOY
from toy_experiment import assert_same_bits

CONFIG = toy_experiment.ToyConfig(n_units=6, draws=4)


def sweep(tmp_path, executor=None, *, name="s.sqlite", config=CONFIG, **kw):
    with ResultStore(tmp_path / name) as store:
        return run_sweep(
            TOY,
            config,
            seed=kw.pop("seed", 3),
            store=store,
            executor=executor or InlineExecutor(),
            version=kw.pop("version", "test"),
            **kw,
        )


@pytest.mark.parametrize("root", [0, 7, 2**40])
def test_unit_seed_is_the_spawned_child_of_the_root_sequence(root):
    children = np.random.SeedSequence(root).spawn(9)
    expected = [int(c.generate_state(1)[0]) for c in children]
    assert [unit_seed(root, i) for i in range(9)] == expected
    assert len(set(expected)) == 9


def test_inline_sweep_equals_run_all_of_the_experiment(tmp_path):
    result = sweep(tmp_path)
    assert result.units_total == 6 and result.units_computed == 6 and result.units_reused == 0
    expected = TOY.run_all(CONFIG, seed=3)
    expected["small"] = expected["small"].astype(np.float64)  # the store widens float32
    assert_same_bits(result.records, expected)
    assert np.signbit(result.records["awkward"].iloc[0])  # -0.0 kept


@pytest.fixture(scope="module")
def process_records(tmp_path_factory):
    """The toy sweep run by two local worker processes."""
    with ProcessExecutor(2) as pool:
        result = sweep(tmp_path_factory.mktemp("pool"), pool)
    assert result.units_computed == 6
    return result.records


def test_local_processes_give_the_same_bits_as_inline(tmp_path, process_records):
    assert_same_bits(process_records, sweep(tmp_path).records)


def test_dask_local_cluster_gives_the_same_bits_as_local_processes(tmp_path, process_records):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        executor = DaskExecutor(client)
        assert "Dask" in executor.description
        on_dask = sweep(tmp_path, executor)
    assert on_dask.units_computed == 6
    assert_same_bits(on_dask.records, process_records)


class StopAfter(Executor):
    """Runs tasks inline and raises KeyboardInterrupt after ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def map_unordered(self, fn, tasks):
        for i, args in enumerate(tasks):
            if i == self.limit:
                raise KeyboardInterrupt
            yield i, fn(*args)


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    monkeypatch.setenv("TOY_RUN", "first")
    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, StopAfter(2))
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert store.count("toy") == 2
    monkeypatch.setenv("TOY_RUN", "second")
    seen = []
    resumed = sweep(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert (resumed.units_computed, resumed.units_reused) == (4, 2)
    assert seen[0] == (2, 6) and seen[-1] == (6, 6)
    lines = [line.split() for line in marker.read_text().splitlines()]
    first = sorted(int(i) for i, run in lines if run == "first")
    second = sorted(int(i) for i, run in lines if run == "second")
    assert first == [0, 1] and second == [2, 3, 4, 5]
    assert_same_bits(resumed.records, sweep(tmp_path, name="clean.sqlite").records)
    again = sweep(tmp_path)
    assert (again.units_computed, again.units_reused) == (0, 6)


def test_fresh_recomputes_and_other_keys_do_not_reuse(tmp_path):
    first = sweep(tmp_path)
    assert sweep(tmp_path, fresh=True).units_computed == 6
    assert sweep(tmp_path, version="other").units_computed == 6
    bigger = dataclasses.replace(CONFIG, draws=5)
    assert config_hash(bigger) != config_hash(CONFIG)
    assert sweep(tmp_path, config=bigger).units_computed == 6
    reseeded = sweep(tmp_path, seed=4)
    assert reseeded.units_computed == 6
    assert not np.array_equal(reseeded.records["value"], first.records["value"])


def test_a_failing_unit_names_itself_and_keeps_the_finished_ones(tmp_path):
    broken = dataclasses.replace(CONFIG, fail_unit=3)
    with pytest.raises(UnitFailed, match="toy unit 3: ValueError: toy unit 3 fails") as info:
        sweep(tmp_path, config=broken)
    assert "Traceback" in info.value.details
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert sorted(store.load("toy", config_hash(broken), 3, "test")) == [0, 1, 2]


def test_a_failing_unit_in_a_worker_process_names_itself(tmp_path):
    broken = dataclasses.replace(CONFIG, fail_unit=2)
    with ProcessExecutor(2) as pool, pytest.raises(UnitFailed, match="toy unit 2"):
        sweep(tmp_path, pool, config=broken)


@pytest.mark.parametrize(
    "address",
    ["localhost:8786", "tcp://host", "tcp://:80", "local:0", "local:x", "http://a:1", ""],
)
def test_bad_scheduler_addresses_are_refused(address):
    with pytest.raises(ValueError, match="scheduler"):
        parse_scheduler(address)


def test_scheduler_addresses_are_understood():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://scheduler-host:8786") == ("remote", "tcp://scheduler-host:8786")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises(ValueError, match="workers"):
        make_executor(workers)


def test_make_executor_picks_inline_or_processes():
    assert isinstance(make_executor(1), InlineExecutor)
    pool = make_executor(3)
    assert isinstance(pool, ProcessExecutor) and pool.workers == 3
    pool.close()


@pytest.mark.parametrize(
    ("size", "workers", "scheduler", "expected"),
    [
        ("quick", None, None, 1),  # too little work for a pool: runs in this process
        ("default", None, None, None),  # one worker per core
        ("quick", 2, None, 2),  # an explicit count wins
        ("quick", None, "local:2", None),  # so does a scheduler
    ],
)
def test_reproduce_picks_one_worker_at_the_quick_size_only(
    tmp_path, monkeypatch, size, workers, scheduler, expected
):
    from finetune_theory.runner import reproduction

    asked = []

    def fake(w, sched, **kw):
        asked.append(w)
        return make_executor(1)

    monkeypatch.setattr(reproduction, "make_executor", fake)
    toy_experiment.register(monkeypatch)
    reproduction.reproduce(
        ["toy"], size=size, out=tmp_path / "out", workers=workers, scheduler=scheduler
    )
    assert asked == [expected]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_reported_within_the_timeout():
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(RunnerError, match="could not reach the Dask scheduler"):
        make_executor(scheduler=address, connect_timeout=0.5)


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(RunnerError, match=r"finetune-theory\[dask\]"):
        make_executor(scheduler="local:1")


def test_records_bits_helper_can_fail():
    a = pd.DataFrame({"x": [0.0, 1.0]})
    b = pd.DataFrame({"x": [-0.0, 1.0]})
    with pytest.raises(AssertionError):
        assert_same_bits(a, b)
