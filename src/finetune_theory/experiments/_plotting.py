"""Figure helpers shared by the experiment modules (one home for how figures are written)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["pyplot", "open_figures", "finish", "save_figure", "log_axes"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def open_figures(outdir: Path) -> tuple[Any, Path]:
    """``pyplot`` (Agg) and the output folder, created if missing (even if no figure follows)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return pyplot(), outdir


def save_figure(fig: Any, stem: Path, *, dpi: int = 110) -> list[Path]:
    """Write ``stem.png`` (for the report) and ``stem.svg`` (for papers); return both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    return paths


def finish(fig: Any, stem: Path, *, rect: tuple[float, ...] | None = None) -> list[Path]:
    """Lay ``fig`` out tightly (within ``rect``), write it as PNG and SVG, and close it."""
    fig.tight_layout(rect=rect)
    paths = save_figure(fig, stem)
    pyplot().close(fig)
    return paths


def log_axes(ax: Any, ticks: Sequence[Any], label: Callable[[Any], str]) -> None:
    """Log scale on both axes, x ticks at ``ticks`` labelled by ``label``, no minor ticks."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ticks, [label(v) for v in ticks])
    ax.minorticks_off()
