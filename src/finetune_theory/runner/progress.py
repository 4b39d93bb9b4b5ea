"""Progress on standard error: live bars on a terminal, plain lines elsewhere, or nothing.

Bars (rich) are drawn only when standard error is a terminal, so logs and pipes get no control
characters; there, a plain line is written as units finish instead (at most one a second per
experiment, and always the last one), so a log shows how far a run got.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Bar", "Progress", "progress_enabled", "progress_mode"]

PREFIX = "finetune-theory: "


def progress_mode(quiet: bool, stream: Any = None) -> str:
    """``"off"`` when quiet, ``"bars"`` on a terminal (default stream: stderr), else ``"lines"``.

    >>> import io
    >>> progress_mode(False, io.StringIO()), progress_mode(True, io.StringIO())
    ('lines', 'off')
    """
    if quiet:
        return "off"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "bars" if callable(isatty) and bool(isatty()) else "lines"


def progress_enabled(quiet: bool, stream: Any = None) -> bool:
    """Whether to draw bars: not quiet, and ``stream`` (default stderr) is a terminal."""
    return progress_mode(quiet, stream) == "bars"


class Progress:
    """One bar (or a few plain lines) per experiment: units done / total, elapsed time.

    Use as a context manager; :meth:`task` returns the callback :func:`run_sweep` wants.

    Parameters
    ----------
    mode
        ``"bars"`` (or ``True``), ``"lines"`` or ``"off"`` (or ``False``).
    stream
        Where plain lines go (default: standard error).
    interval
        Seconds between two plain lines of one experiment (the last line always comes).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress("lines", stream=out, interval=0) as progress:
    ...     bar = progress.task("toy")
    ...     bar(1, 2); bar(2, 2); bar.stage("holds, 0.1 s")
    >>> print(out.getvalue().replace(" 0.0 s", " T"), end="")
    finetune-theory: toy: 1/2 units, T
    finetune-theory: toy: 2/2 units, T
    finetune-theory: toy: holds, 0.1 s
    """

    def __init__(self, mode: bool | str, stream: Any = None, interval: float = 1.0) -> None:
        self.mode = ("bars" if mode else "off") if isinstance(mode, bool) else mode
        if self.mode not in ("bars", "lines", "off"):
            raise ValueError(f"progress mode must be bars, lines or off, got {mode!r}")
        self.enabled = self.mode == "bars"
        self.stream = stream
        self.interval = float(interval)
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
        return Bar(self, name)

    def line(self, message: str) -> None:
        """A plain line (only in ``"lines"`` mode)."""
        if self.mode == "lines":
            stream = self.stream if self.stream is not None else sys.stderr
            print(PREFIX + message, file=stream, flush=True)

    def warn(self, message: str) -> None:
        """A warning, shown in every mode (above the bars when they are drawn)."""
        if self._bars is not None:
            self._bars.console.print(f"{PREFIX}warning: {message}", highlight=False, markup=False)
        else:
            stream = self.stream if self.stream is not None else sys.stderr
            print(f"{PREFIX}warning: {message}", file=stream, flush=True)

    def print(self, message: str) -> None:
        """A line above the bars (only when they are drawn)."""
        if self._bars is not None:
            self._bars.console.print(message, highlight=False, markup=False)


class Bar:
    """One experiment's progress; a no-op when progress is off."""

    def __init__(self, progress: Progress, name: str) -> None:
        self._progress = progress
        self._bars = progress._bars
        self.name = name
        self._start = time.monotonic()
        self._last = -float("inf")
        self._id = (
            None if self._bars is None else self._bars.add_task(name, total=None, start=False)
        )

    def __call__(self, finished: int, total: int) -> None:
        """Units finished so far out of ``total``."""
        if self._bars is None:
            now = time.monotonic()
            if finished >= total or now - self._last >= self._progress.interval:
                self._last = now
                self._progress.line(
                    f"{self.name}: {finished}/{total} units, {now - self._start:.1f} s"
                )
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
        else:
            self._progress.line(f"{self.name}: {text}")
