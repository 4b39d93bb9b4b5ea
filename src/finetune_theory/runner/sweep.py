"""Run one experiment's units through an executor, storing each unit as it finishes.

The sweep is what makes a run resumable and executor-independent:

- unit ``i`` gets the seed :func:`unit_seed` ``(root_seed, i)``, the ``i``-th child of
  ``SeedSequence(root_seed)`` (the same seed :meth:`Experiment.run_all` hands it), whichever
  process runs it and in whatever order;
- a unit already in the store for the same experiment, config, root seed, package version and
  code fingerprint (:mod:`~finetune_theory.runner.fingerprint`) is read back instead of
  computed; a stored unit of other code, or one whose checksum is missing or fails (damaged),
  is recomputed and replaced, and the result says how many and why;
- a unit computed now is stored under the fingerprint of the process that computed it, and
  only when that is the run's and no source file changed since the run began;
- every record goes through the store's JSON encoding, whether computed now or read back, so an
  interrupted-then-resumed run returns exactly the records of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..experiments.base import Experiment, config_hash
from ._codec import decode_records
from .errors import UnitFailed
from .executors import Executor, compute_unit
from .fingerprint import CodeSnapshot, CodeSpec
from .store import ResultStore

__all__ = ["SweepResult", "unit_seed", "run_sweep"]


def unit_seed(root_seed: int, index: int) -> int:
    """The seed of unit ``index``: the ``index``-th spawned child of ``SeedSequence(root_seed)``.

    Equal to ``SeedSequence(root_seed).spawn(n)[index].generate_state(1)[0]`` for any
    ``n > index``, without spawning the others. This is the one definition of the seed rule
    (:func:`finetune_theory.experiments.base.unit_seeds` uses it).

    Parameters
    ----------
    root_seed : int
        The root seed of the sweep.
    index : int
        The unit's index in the sweep.

    Examples
    --------
    >>> import numpy as np
    >>> unit_seed(7, 2) == int(np.random.SeedSequence(7).spawn(3)[2].generate_state(1)[0])
    True
    """
    child = np.random.SeedSequence(int(root_seed), spawn_key=(int(index),))
    return int(child.generate_state(1)[0])


@dataclass
class SweepResult:
    """The records of one experiment and how they were obtained."""

    name: str
    config: Any
    records: pd.DataFrame
    units_total: int
    units_computed: int
    units_reused: int
    wall_seconds: float
    compute_seconds: float
    #: stored units recomputed because the code fingerprint changed
    recomputed_code: int = 0
    #: stored units recomputed because the package version changed
    recomputed_version: int = 0
    #: ``(unit index, what is wrong)`` of stored units found damaged (then recomputed)
    damaged: list[tuple[int, str]] = field(default_factory=list)
    #: the code fingerprint of every record
    fingerprint: str = ""

    @property
    def notes(self) -> list[str]:
        """Why stored units were not reused, one sentence each (empty when all were)."""
        notes = []
        if self.recomputed_code:
            notes.append(
                f"{self.name}: recomputed {self.recomputed_code} stored unit(s) because the code "
                "changed since they were computed"
            )
        if self.recomputed_version:
            notes.append(
                f"{self.name}: recomputed {self.recomputed_version} stored unit(s) because the "
                "package version changed"
            )
        for index, damage in self.damaged:
            notes.append(
                f"{self.name}: stored unit {index} is damaged ({damage}); recomputed, not served"
            )
        return notes


#: progress callback: (units finished so far, units in total)
ProgressFn = Callable[[int, int], None]


def run_sweep(
    experiment: Experiment,
    config: Any,
    *,
    seed: int,
    store: ResultStore,
    executor: Executor,
    version: str,
    fresh: bool = False,
    progress: ProgressFn | None = None,
    fingerprint: str = "",
    spec: CodeSpec | None = None,
    code: CodeSnapshot | None = None,
) -> SweepResult:
    """Compute (or read back) every unit of ``experiment`` at ``config``.

    Parameters
    ----------
    experiment, config
        What to run; ``experiment.units(config)`` splits it.
    seed
        The root seed.
    store
        Where finished units are kept; each one is committed as soon as it arrives.
    executor
        Where the missing units run.
    version
        The package version written with (and required of) stored units.
    fresh
        Forget every stored unit of this experiment first.
    progress
        Called with ``(finished, total)`` at the start and after each unit.
    fingerprint
        The run's code fingerprint, required of stored units.
    spec
        What the fingerprint covers: each process that computes a unit returns its own
        fingerprint of ``spec``, and a unit whose fingerprint is not ``fingerprint`` is
        refused by the store. Without it, units are stored under ``fingerprint`` unchecked.
    code
        The run's code snapshot: checked after each unit; a changed source file ends the
        sweep before the unit is stored.

    Raises
    ------
    UnitFailed
        A unit raised (the units finished before it stay stored).
    SourceChanged, ForeignCode
        A source file changed during the run, or a unit was computed by other code.

    Examples
    --------
    An experiment of three units run in this process; a second sweep reads them back from
    the store.

    >>> import dataclasses, tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from finetune_theory.experiments import Experiment
    >>> from finetune_theory.runner import ResultStore, make_executor
    >>> @dataclasses.dataclass(frozen=True)
    ... class Config:
    ...     unit: int = -1
    ...     units: int = 3
    >>> toy = Experiment(
    ...     name="toy", title="Toy", description="", config_cls=Config, sizes={"quick": Config()},
    ...     units=lambda c: [Config(unit=i) for i in range(c.units)],
    ...     run_unit=lambda c, seed: [{"unit": c.unit}],
    ...     claims=lambda r: [], plot=lambda r, out: [], table=lambda r: pd.DataFrame(),
    ... )
    >>> with ResultStore(Path(tempfile.mkdtemp()) / "store.sqlite") as store:
    ...     kw = dict(seed=0, store=store, executor=make_executor(1), version="0")
    ...     first = run_sweep(toy, Config(), **kw)
    ...     again = run_sweep(toy, Config(), **kw)
    >>> first.records["unit"].tolist(), first.units_computed, again.units_reused
    ([0, 1, 2], 3, 3)
    """
    start = time.perf_counter()
    units = list(experiment.units(config))
    chash = config_hash(config)
    hashes = [config_hash(u) for u in units]
    seeds = [unit_seed(seed, i) for i in range(len(units))]
    if fresh:
        store.clear(experiment.name)
    done: dict[int, list[dict[str, Any]]] = {}
    seconds: dict[int, float] = {}
    stale_code = stale_version = 0
    damaged: list[tuple[int, str]] = []
    for row in store.rows(experiment.name, chash, seed):
        i, unit = row.unit_index, row.unit
        if i >= len(units):
            continue
        if unit is None:
            damaged.append((i, row.damage or "unreadable"))
        elif unit.unit_hash != hashes[i] or unit.unit_seed != seeds[i]:
            continue
        elif unit.version != version:
            stale_version += 1
        elif unit.fingerprint != fingerprint:
            stale_code += 1
        else:
            done[i] = unit.records
            seconds[i] = unit.seconds
    reused = len(done)
    todo = [i for i in range(len(units)) if i not in done]
    if progress is not None:
        progress(reused, len(units))
    tasks = [
        (experiment.run_unit, units[i], seeds[i], f"{experiment.name} unit {i}", spec) for i in todo
    ]
    for pos, (text, secs, worker_fingerprint) in executor.map_unordered(compute_unit, tasks):
        i = todo[pos]
        if code is not None:
            code.check()
        store.put(
            experiment.name,
            chash,
            i,
            seed,
            unit_hash=hashes[i],
            unit_seed=seeds[i],
            version=version,
            records=text,
            seconds=secs,
            fingerprint=worker_fingerprint if spec is not None else fingerprint,
            run_fingerprint=fingerprint if spec is not None else None,
        )
        done[i] = decode_records(text)
        seconds[i] = secs
        if progress is not None:
            progress(len(done), len(units))
    records: list[dict[str, Any]] = []
    for i in range(len(units)):
        records.extend(done[i])
    return SweepResult(
        name=experiment.name,
        config=config,
        records=pd.DataFrame.from_records(records),
        units_total=len(units),
        units_computed=len(todo),
        units_reused=reused,
        wall_seconds=time.perf_counter() - start,
        compute_seconds=float(sum(seconds.values())),
        recomputed_code=stale_code,
        recomputed_version=stale_version,
        damaged=damaged,
        fingerprint=fingerprint,
    )


def describe_failure(exc: BaseException) -> tuple[str, str, str | None]:
    """A one-line message, the traceback text and the missing module of a failed unit or step.

    Examples
    --------
    >>> describe_failure(ModuleNotFoundError("No module named 'torch'", name="torch"))[::2]
    ("ModuleNotFoundError: No module named 'torch'", 'torch')
    """
    import traceback

    from .executors import _missing_module

    if isinstance(exc, UnitFailed):
        return str(exc), exc.details, exc.missing
    message = f"{type(exc).__name__}: {exc}"
    return message, "".join(traceback.format_exception(exc)), _missing_module(exc)
