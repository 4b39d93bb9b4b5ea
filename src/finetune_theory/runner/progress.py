"""A live progress bar per experiment (rich), or nothing at all.

The bar is drawn on standard error only when it is a terminal and the run is not quiet, so
logs and pipes get no control characters.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "progress_enabled"]


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
                TextColumn("[bold]{task.description:<10}"),
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

    def task(self, name: str) -> Callable[[int, int], None]:
        """A ``(finished, total)`` callback that drives the bar of ``name``."""
        if self._bars is None:
            return lambda finished, total: None
        bars = self._bars
        task_id = bars.add_task(name, total=None, start=False)

        def update(finished: int, total: int) -> None:
            if not bars.tasks[task_id].started:
                bars.update(task_id, total=total, completed=finished)
                bars.start_task(task_id)
            else:
                bars.update(task_id, completed=finished)

        return update

    def print(self, message: str) -> None:
        """A line above the bars (only when enabled)."""
        if self._bars is not None:
            self._bars.console.print(message, highlight=False, markup=False)
