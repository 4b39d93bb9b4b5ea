"""What a reproduction produced: one outcome per experiment and the run's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..experiments.base import Verdict
from .sweep import SweepResult

__all__ = ["ExperimentOutcome", "RunInfo", "RunResult"]


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
        """``failed``, ``no claims``, ``holds`` or ``does not hold``."""
        if self.error is not None:
            return "failed"
        if not self.verdicts:
            return "no claims"
        return "holds" if all(v.holds for v in self.verdicts) else "does not hold"

    @property
    def claims_held(self) -> int:
        """How many of the verdicts hold."""
        return sum(bool(v.holds) for v in self.verdicts)


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
