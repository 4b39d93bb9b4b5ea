"""The contract every experiment module follows.

An experiment is a set of pure functions around a frozen ``Config`` dataclass:

- ``units(config) -> list[Config]``: split a sweep into independent units of work (each a
  smaller config; the runner executes, stores and resumes them one by one). Splitting a unit
  again gives that unit alone;
- ``run_unit(unit, unit_seed) -> list[dict]``: compute one unit; tidy records (one flat dict
  per measurement, plain Python/NumPy scalars), the same bits for the same seed;
- ``run(config, seed) -> list[dict]``: every unit of ``config``, unit ``i`` with the seed
  :func:`unit_seeds` gives it (:func:`run_units`): exactly the records of
  :meth:`Experiment.run_all` and of the runner's sweep for the same root seed;
- ``claims(records) -> list[Verdict]``: verdicts computed from the records;
- ``plot(records, outdir) -> list[Path]``: figures (PNG plus SVG) written to ``outdir``;
- ``table(records) -> DataFrame``: a short summary table for the report.

Each module exposes one :class:`Experiment` named ``EXPERIMENT``; the registry in
``finetune_theory.experiments`` finds it by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "Verdict",
    "Experiment",
    "config_hash",
    "config_to_dict",
    "single_unit",
    "unit_seeds",
    "run_units",
]


@dataclass(frozen=True)
class Verdict:
    """A claim tested on the records: does it hold, and the number behind the answer."""

    claim: str
    holds: bool
    evidence: str


def single_unit(config: Any) -> list[Any]:
    """The default split: the whole config is one unit."""
    return [config]


def unit_seeds(seed: int, count: int) -> list[int]:
    """The seeds of ``count`` units under the root ``seed``: unit ``i`` gets
    :func:`finetune_theory.runner.sweep.unit_seed` ``(seed, i)``, the one seed rule."""
    from .._random import seed_sequence
    from ..runner.sweep import unit_seed  # here: runner.sweep imports this module

    seed_sequence(seed)  # the same checks of the root seed as everywhere
    return [unit_seed(seed, i) for i in range(count)]


def run_units(
    units: Callable[[Any], list[Any]],
    run_unit: Callable[[Any, int], list[dict[str, Any]]],
    config: Any,
    seed: int,
) -> list[dict[str, Any]]:
    """Split ``config`` with ``units`` and run each unit with its own seed, in order.

    The one place a whole config is run: an experiment's ``run(config, seed)``,
    :meth:`Experiment.run_all` and (unit by unit, resumably) the runner's sweep all give the
    same records for the same root seed.
    """
    parts = units(config)
    records: list[dict[str, Any]] = []
    for part, unit_seed in zip(parts, unit_seeds(seed, len(parts)), strict=True):
        records.extend(run_unit(part, unit_seed))
    return records


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a frozen config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_hash(config: Any) -> str:
    """A stable short hash of a config (its class name and field values)."""
    payload = json.dumps(
        {"type": type(config).__name__, "fields": config_to_dict(config)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment (see the module docstring for the contract).

    ``run`` is the experiment's ``run_unit``: it computes one unit with that unit's own seed
    (the runner calls it unit by unit).
    """

    name: str
    title: str
    description: str
    config_cls: type
    sizes: Mapping[str, Any]
    run: Callable[[Any, int], list[dict[str, Any]]]
    claims: Callable[[pd.DataFrame], list[Verdict]]
    plot: Callable[[pd.DataFrame, Path], list[Path]]
    table: Callable[[pd.DataFrame], pd.DataFrame]
    units: Callable[[Any], list[Any]] = field(default=single_unit)

    def config(self, size: str = "default") -> Any:
        """The config of a named size (``quick``, ``default``, ``paper``)."""
        if size not in self.sizes:
            raise ValueError(
                f"experiment {self.name!r} has no size {size!r}; choose from {sorted(self.sizes)}"
            )
        return self.sizes[size]

    def run_all(self, config: Any, seed: int = 0) -> pd.DataFrame:
        """Run every unit in this process, in order (no store, no parallelism)."""
        return pd.DataFrame.from_records(run_units(self.units, self.run, config, seed))
