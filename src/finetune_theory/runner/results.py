"""What a reproduction produced: one outcome per experiment and the run's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..experiments.base import Verdict
from .sweep import SweepResult

__all__ = ["ExperimentOutcome", "RunInfo", "RunResult", "NOT_JUDGED", "verdict_status"]

#: evidence that starts with this is a claim the records cannot decide (shown as such)
NOT_JUDGED = "not judged"


def verdict_status(verdict: Verdict) -> str:
    """``holds``, ``does not hold`` or ``not judged`` (evidence starting with ``not judged``).

    Parameters
    ----------
    verdict : Verdict
        A claim tested on the records.

    Returns
    -------
    str
        The status shown for the claim.

    Examples
    --------
    >>> verdict_status(Verdict("c", False, "not judged: no case at small n"))
    'not judged'
    >>> verdict_status(Verdict("c", False, "rho 0.2"))
    'does not hold'
    """
    if str(verdict.evidence).strip().lower().startswith(NOT_JUDGED):
        return NOT_JUDGED
    return "holds" if verdict.holds else "does not hold"


@dataclass
class ExperimentOutcome:
    """Everything the report shows about one experiment."""

    name: str
    title: str
    description: str
    config: dict[str, Any]
    sweep: SweepResult | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    table: pd.DataFrame | None = None
    csv: Path | None = None
    error: str | None = None
    error_details: str = ""
    #: the ``pip install`` line of the extra whose absence made the experiment fail
    install: str | None = None
    wall_seconds: float = 0.0

    @property
    def status(self) -> str:
        """``failed``, ``no claims``, ``holds``, ``does not hold`` or ``not judged``.

        ``does not hold`` when a judged claim fails; else ``not judged`` when a claim could
        not be judged (:attr:`not_judged` says why); else ``holds``.
        """
        if self.error is not None:
            return "failed"
        if not self.verdicts:
            return "no claims"
        statuses = [verdict_status(v) for v in self.verdicts]
        if "does not hold" in statuses:
            return "does not hold"
        return NOT_JUDGED if NOT_JUDGED in statuses else "holds"

    @property
    def not_judged(self) -> list[str]:
        """The evidence of each claim that could not be judged (it says why)."""
        return [v.evidence for v in self.verdicts if verdict_status(v) == NOT_JUDGED]

    @property
    def claims_held(self) -> int:
        """How many of the verdicts hold (a claim not judged does not)."""
        return sum(verdict_status(v) == "holds" for v in self.verdicts)


@dataclass
class RunInfo:
    """Metadata of one ``reproduce`` invocation."""

    version: str
    size: str
    seed: int
    started: str
    executor: str
    out: Path
    store: Path
    command: str
    python: str
    numpy: str
    platform: str
    wall_seconds: float = 0.0


@dataclass
class RunResult:
    """The outcomes, the run metadata and where the report went."""

    info: RunInfo
    outcomes: list[ExperimentOutcome]
    report: Path | None = None
    #: what the user should know about the store's files (e.g. units left only in the WAL)
    store_notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[ExperimentOutcome]:
        """The experiments that raised."""
        return [o for o in self.outcomes if o.error is not None]

    @property
    def notes(self) -> list[str]:
        """Why stored units were recomputed (code or version changed, damage), and what to know
        about the store's files, one per line."""
        notes = [note for o in self.outcomes if o.sweep is not None for note in o.sweep.notes]
        return notes + list(self.store_notes)
