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
import warnings
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
    """A claim tested on the records: does it hold, and the number behind the answer.

    Parameters
    ----------
    claim : str
        The claim, in words.
    holds : bool
        Whether the records support it.
    evidence : str
        The numbers behind the answer, in words (a statistic, a count, a range).

    Examples
    --------
    >>> v = Verdict("risks fall with n", holds=True, evidence="Spearman -1.00")
    >>> v.holds, v.evidence
    (True, 'Spearman -1.00')
    """

    claim: str
    holds: bool
    evidence: str


def single_unit(config: Any) -> list[Any]:
    """The default split: the whole config is one unit.

    Parameters
    ----------
    config : object
        The config of a sweep (any object).

    Returns
    -------
    list
        ``[config]``.

    Examples
    --------
    >>> single_unit("whole sweep")
    ['whole sweep']
    """
    return [config]


def unit_seeds(seed: int, count: int) -> list[int]:
    """The seeds of ``count`` units under the root ``seed``: unit ``i`` gets
    :func:`finetune_theory.runner.sweep.unit_seed` ``(seed, i)``, the one seed rule.

    Parameters
    ----------
    seed : int
        The root seed of the run (checked as every root seed is).
    count : int
        The number of units.

    Returns
    -------
    list of int
        One seed per unit, in unit order; the first ``k`` do not depend on ``count``.

    Examples
    --------
    >>> seeds = unit_seeds(0, 3)
    >>> len(set(seeds)), seeds[:2] == unit_seeds(0, 2), seeds == unit_seeds(1, 3)
    (3, True, False)
    """
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

    Parameters
    ----------
    units : callable
        ``units(config) -> list`` splits the config into units.
    run_unit : callable
        ``run_unit(unit, unit_seed) -> list[dict]`` computes the records of one unit.
    config : object
        The config to run.
    seed : int
        The root seed; unit ``i`` runs with ``unit_seeds(seed, len(parts))[i]``.

    Returns
    -------
    list of dict
        The records of every unit, concatenated in unit order.

    Examples
    --------
    >>> halves = lambda config: [config // 2, config - config // 2]
    >>> run_units(halves, lambda unit, seed: [{"size": unit}], 5, seed=0)
    [{'size': 2}, {'size': 3}]
    """
    parts = units(config)
    records: list[dict[str, Any]] = []
    for part, unit_seed in zip(parts, unit_seeds(seed, len(parts)), strict=True):
        records.extend(run_unit(part, unit_seed))
    return records


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a frozen config dataclass (tuples become lists).

    Parameters
    ----------
    config : dataclass instance
        The config; values JSON cannot hold are written as their ``str``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Sweep:
    ...     d: int = 10
    ...     spectra: tuple[str, ...] = ("isotropic", "spiked")
    >>> config_to_dict(Sweep())
    {'d': 10, 'spectra': ['isotropic', 'spiked']}
    """
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_hash(config: Any) -> str:
    """A stable short hash of a config (its class name and field values).

    Parameters
    ----------
    config : dataclass instance
        The config to hash.

    Returns
    -------
    str
        The first 16 hex digits of the SHA-256 of its class name and
        :func:`config_to_dict` (keys sorted).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Sweep:
    ...     d: int = 10
    >>> len(config_hash(Sweep())), config_hash(Sweep()) == config_hash(Sweep(d=10))
    (16, True)
    >>> config_hash(Sweep()) == config_hash(Sweep(d=11))
    False
    """
    payload = json.dumps(
        {"type": type(config).__name__, "fields": config_to_dict(config)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment (see the module docstring for the contract).

    ``run_unit`` computes one unit with that unit's own seed (the runner calls it unit by unit);
    :meth:`run_all` runs a whole config in this process. ``run`` is the former name of
    ``run_unit``: accepted by the constructor and readable as an attribute, with a
    ``DeprecationWarning``, for one release.

    Parameters
    ----------
    *args, **kwargs
        The fields listed under Attributes, by position (in that order) or by name.
    run : callable, optional
        Deprecated name of ``run_unit`` (a ``DeprecationWarning``); when given it takes the
        place of ``run_unit``.

    Attributes
    ----------
    name : str
        The name the registry finds the experiment by.
    title : str
        A short human title.
    description : str
        One sentence on what the experiment shows.
    config_cls : type
        The class of its configs (a frozen dataclass).
    sizes : mapping of str to config
        The named configs (``quick``, ``default``, ``paper``).
    run_unit : callable
        ``run_unit(unit, unit_seed) -> list[dict]``: the records of one unit.
    claims : callable
        ``claims(records) -> list[Verdict]``.
    plot : callable
        ``plot(records, outdir) -> list[Path]``: the figures written.
    table : callable
        ``table(records) -> DataFrame``: the summary table.
    units : callable, default single_unit
        ``units(config) -> list``: the split of a config into units.

    Examples
    --------
    >>> import pandas as pd
    >>> toy = Experiment(
    ...     name="toy", title="Toy", description="one record per unit", config_cls=int,
    ...     sizes={"quick": 2}, run_unit=lambda unit, seed: [{"unit": unit, "seed": seed % 7}],
    ...     claims=lambda records: [], plot=lambda records, outdir: [],
    ...     table=lambda records: pd.DataFrame(),
    ... )
    >>> toy.run_all(toy.config("quick"), seed=0)["unit"].tolist()
    [2]
    """

    name: str
    title: str
    description: str
    config_cls: type
    sizes: Mapping[str, Any]
    run_unit: Callable[[Any, int], list[dict[str, Any]]]
    claims: Callable[[pd.DataFrame], list[Verdict]]
    plot: Callable[[pd.DataFrame, Path], list[Path]]
    table: Callable[[pd.DataFrame], pd.DataFrame]
    units: Callable[[Any], list[Any]] = field(default=single_unit)

    def config(self, size: str = "default") -> Any:
        """The config of a named size (``quick``, ``default``, ``paper``).

        Parameters
        ----------
        size : str, default "default"
            A key of ``sizes``; another name raises ``ValueError``.
        """
        if size not in self.sizes:
            raise ValueError(
                f"experiment {self.name!r} has no size {size!r}; choose from {sorted(self.sizes)}"
            )
        return self.sizes[size]

    def run_all(self, config: Any, seed: int = 0) -> pd.DataFrame:
        """Run every unit in this process, in order (no store, no parallelism).

        Parameters
        ----------
        config : object
            The config to run (often ``self.config(size)``).
        seed : int, default 0
            The root seed (see :func:`run_units`).

        Returns
        -------
        pandas.DataFrame
            One row per record.
        """
        return pd.DataFrame.from_records(run_units(self.units, self.run_unit, config, seed))


def _deprecated_run(self: Experiment) -> Callable[[Any, int], list[dict[str, Any]]]:
    """Deprecated name of :attr:`Experiment.run_unit`."""
    warnings.warn(
        "Experiment.run is deprecated; use Experiment.run_unit (one unit) or run_all",
        DeprecationWarning,
        stacklevel=2,
    )
    return self.run_unit


_dataclass_init = Experiment.__init__


def _init_accepting_run(self: Experiment, *args: Any, run: Any = None, **kwargs: Any) -> None:
    if run is not None:  # the former keyword wins, as dataclasses.replace(e, run=f) expects
        warnings.warn(
            "Experiment(run=...) is deprecated; pass run_unit=...", DeprecationWarning, stacklevel=2
        )
        kwargs["run_unit"] = run
    _dataclass_init(self, *args, **kwargs)


Experiment.run = property(_deprecated_run)  # type: ignore[attr-defined]
Experiment.__init__ = _init_accepting_run  # type: ignore[method-assign]
