"""``list``: which experiments are installed, their sizes and how many units each size has."""

from __future__ import annotations

from dataclasses import dataclass

from .. import experiments

__all__ = ["ExperimentEntry", "catalog"]


@dataclass(frozen=True)
class ExperimentEntry:
    """One row of the catalog; ``units`` maps size -> unit count (``None``: not installed)."""

    name: str
    title: str
    units: dict[str, int] | None
    problem: str = ""


def catalog() -> list[ExperimentEntry]:
    """Every planned experiment, in report order, with its sizes when it is installed."""
    present = set(experiments.available())
    entries = []
    for name in experiments.REGISTRY:
        if name not in present:
            entries.append(ExperimentEntry(name, "", None, "not installed"))
            continue
        try:
            experiment = experiments.get(name)
            units = {size: len(experiment.units(cfg)) for size, cfg in experiment.sizes.items()}
        except Exception as exc:  # a broken module is listed, not fatal
            entries.append(ExperimentEntry(name, "", None, f"cannot load: {exc}"))
            continue
        entries.append(ExperimentEntry(name, experiment.title, units))
    return entries
