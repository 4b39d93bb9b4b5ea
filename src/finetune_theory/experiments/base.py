"""The contract every experiment module follows.

An experiment is a set of pure functions around a frozen ``Config`` dataclass:

- ``units(config) -> list[Config]``: split a sweep into independent units of work (each a
  smaller config; the runner executes, stores and resumes them one by one);
- ``run(config, seed) -> list[dict]``: compute one unit; tidy records (one flat dict per
  measurement, plain Python/NumPy scalars), the same bits for the same seed;
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

__all__ = ["Verdict", "Experiment", "config_hash", "config_to_dict", "single_unit"]


@dataclass(frozen=True)
class Verdict:
    """A claim tested on the records: does it hold, and the number behind the answer."""

    claim: str
    holds: bool
    evidence: str


def single_unit(config: Any) -> list[Any]:
    """The default split: the whole config is one unit."""
    return [config]


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
    """One reproducible experiment (see the module docstring for the contract)."""

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
        from .._random import seed_sequence

        units = self.units(config)
        seeds = seed_sequence(seed).spawn(len(units))
        records: list[dict[str, Any]] = []
        for unit, ss in zip(units, seeds, strict=True):
            records.extend(self.run(unit, int(ss.generate_state(1)[0])))
        return pd.DataFrame.from_records(records)
