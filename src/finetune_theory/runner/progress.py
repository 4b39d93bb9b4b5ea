"""A live progress bar per experiment (rich), or nothing at all.

The bar is drawn on standard error only when it is a terminal and the run is not quiet, so
logs and pipes get no control characters.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Bar", "Progress", "progress_enabled"]


def progress_enabled(quiet: bool, stream: Any = None) -> bool:
    """Whether to draw bars: not quiet, and ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return (not quiet) and callable(isatty) and bool(isatty())


class Progress:
    """One bar per experiment with units done / total, elapsed time and ETA.

    Use as a context manager; :meth:`task` returns the callback :func:`run_sweep` wants.
    When disabled every method is a no-op.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bars = RichProgress(
                TextColumn("[bold]{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("units"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(None, None, None)
            self._bars = None

    def task(self, name: str) -> Bar:
        """The bar of ``name``: call it with ``(finished, total)``; :meth:`Bar.stage` labels it."""
        return Bar(self._bars, name)

    def print(self, message: str) -> None:
        """A line above the bars (only when enabled)."""
        if self._bars is not None:
            self._bars.console.print(message, highlight=False, markup=False)


class Bar:
    """One experiment's bar; a no-op when progress is off."""

    def __init__(self, bars: Any, name: str) -> None:
        self._bars = bars
        self.name = name
        self._id = None if bars is None else bars.add_task(name, total=None, start=False)

    def __call__(self, finished: int, total: int) -> None:
        """Units finished so far out of ``total``."""
        if self._bars is None:
            return
        if not self._bars.tasks[self._id].started:
            self._bars.update(self._id, total=total, completed=finished)
            self._bars.start_task(self._id)
        else:
            self._bars.update(self._id, completed=finished)

    def stage(self, text: str) -> None:
        """Show what happens after the units (e.g. drawing figures) beside the name."""
        if self._bars is not None:
            self._bars.update(self._id, description=f"{self.name} ({text})")
