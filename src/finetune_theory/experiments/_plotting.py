"""Figure helpers shared by the experiment modules (one home for how figures are written).

Every figure is meant to be shown on a slide: text is at least :data:`MIN_FONT_PT` points at
the saved size (:func:`finish` raises any smaller text to it), each figure is written once, as
SVG (the report inlines it), plus a PNG only where a resolution is asked for
(:func:`figure_options`; the runner passes the ``--dpi`` of the command line), and each figure
carries a caption sentence saying what to see (stored in the files' metadata, read back by the
report with :func:`read_caption`).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_DPI",
    "MIN_FONT_PT",
    "pyplot",
    "open_figures",
    "figure_options",
    "finish",
    "save_figure",
    "log_axes",
    "legend_outside",
    "legend_below",
    "infinity_break",
    "legend_over_data",
    "read_caption",
    "svg_font_sizes",
]

#: a resolution for PNG files (dots per inch) fit for slides; figures are written as SVG only
#: unless a resolution is asked for (:func:`figure_options`, the runner's ``--dpi``)
DEFAULT_DPI = 150
#: the smallest text size, in points at the saved size, that a figure may carry
MIN_FONT_PT = 10.0

_OPTIONS: dict[str, Any] = {"dpi": None}

#: the look of every figure: readable text, vector text in SVG (small files, selectable)
_STYLE: dict[str, Any] = {
    "font.size": 11.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 11.0,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 10.0,
    "figure.titlesize": 12.0,
    "legend.framealpha": 0.9,
    "svg.fonttype": "none",
}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params: Any = matplotlib.rcParams  # its keys are typed as literals
    params.update(_STYLE)
    return plt


def open_figures(outdir: Path) -> tuple[Any, Path]:
    """``pyplot`` (Agg) and the output folder, created if missing (even if no figure follows)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return pyplot(), outdir


@contextlib.contextmanager
def figure_options(*, dpi: int | None = None) -> Iterator[None]:
    """Within the block, figures are written with these options (``None`` keeps the current).

    Parameters
    ----------
    dpi : int, optional
        Also write each figure as PNG at this resolution, in dots per inch (the SVG files are
        vector graphics and always written).

    Examples
    --------
    >>> with figure_options(dpi=300):
    ...     _OPTIONS["dpi"]
    300
    >>> _OPTIONS["dpi"] is None
    True
    """
    if dpi is not None and (isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10):
        raise ValueError(f"dpi must be a whole number >= 10, got {dpi!r}")
    saved = dict(_OPTIONS)
    if dpi is not None:
        _OPTIONS["dpi"] = dpi
    try:
        yield
    finally:
        _OPTIONS.clear()
        _OPTIONS.update(saved)


def _texts(fig: Any) -> Iterator[Any]:
    """The figure's text artists other than tick labels (those follow the style's sizes).

    Walking these lists is cheap; ``Figure.findobj`` would generate every tick on the way.
    """
    yield from fig.texts
    if getattr(fig, "_suptitle", None) is not None:
        yield fig._suptitle
    for legend in fig.legends:
        yield from legend.get_texts()
    for ax in fig.axes:
        yield from (ax.title, ax._left_title, ax._right_title)
        yield from (ax.xaxis.label, ax.yaxis.label)
        yield from ax.texts
        legend = ax.get_legend()
        if legend is not None:
            yield from legend.get_texts()
            yield legend.get_title()


def _raise_small_text(fig: Any, minimum: float = MIN_FONT_PT) -> None:
    """Set every visible text of ``fig`` smaller than ``minimum`` points to ``minimum``."""
    for text in _texts(fig):
        if text.get_visible() and text.get_text() and text.get_fontsize() < minimum:
            text.set_fontsize(minimum)
    for ax in fig.axes:  # tick labels: only where a size below the minimum was asked for
        for axis in (ax.xaxis, ax.yaxis):
            size = axis._major_tick_kw.get("labelsize")
            if size is not None and float(size) < minimum:
                axis.set_tick_params(which="both", labelsize=minimum)


def _plain_log_labels(fig: Any) -> None:
    """Log axes with default labels get plain numbers (``0.01``, ``2``, ``1e+04``).

    Matplotlib's default log labels are typeset as ``10^k`` by its maths renderer, which is
    most of the time a figure with many log axes takes to draw. Minor ticks are labelled
    where the axis spans up to a decade and a half (at 2 and 5 times a power of ten);
    elsewhere the unlabelled minor ticks sit at 2 and 5 times a power of ten only.
    """
    from matplotlib.ticker import (
        FuncFormatter,
        LogFormatterSciNotation,
        LogLocator,
        NullFormatter,
    )

    def major(value: float, _: Any) -> str:
        return f"{value:g}"

    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() != "log":
                continue
            if isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                axis.set_major_formatter(FuncFormatter(major))
            if isinstance(axis.get_minor_formatter(), LogFormatterSciNotation):
                lo, hi = sorted(limits)
                narrow = lo > 0 and math.log10(hi / lo) < 1.5
                axis.set_minor_formatter(
                    FuncFormatter(
                        lambda v, _: (
                            f"{v:g}"
                            if round(v / 10 ** math.floor(math.log10(v)), 6) in (2.0, 5.0)
                            else ""
                        )
                    )
                    if narrow
                    else NullFormatter()
                )
                if not narrow and isinstance(axis.get_minor_locator(), LogLocator):
                    # unlabelled minor ticks at 2 and 5 only: each tick is an artist to draw
                    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))


def save_figure(fig: Any, stem: Path, *, dpi: int | None = None, caption: str = "") -> list[Path]:
    """Write ``stem.svg`` and, when a resolution is asked for, ``stem.png`` at it.

    The SVG (vector graphics, text kept as text) is what the report inlines and what papers
    take. A PNG, for slides, is written only where ``dpi`` is given here or by
    :func:`figure_options` (the runner's ``--dpi``); the figure is then drawn once on its Agg
    canvas (which also runs its layout engine), the PNG is that canvas's pixels, and the SVG
    is written with the layout frozen, so no layout is computed twice. ``caption`` goes into
    the files' metadata (``Description``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    stem : pathlib.Path
        The path of the files without their suffix (its folder is created).
    dpi : int, optional
        Also write a PNG at this resolution (dots per inch); default: the resolution set by
        :func:`figure_options`, and no PNG when none is set.
    caption : str, optional
        One sentence saying what the figure shows.

    Returns
    -------
    list of pathlib.Path
        The SVG path, then the PNG path when one was written.

    Examples
    --------
    >>> import tempfile
    >>> plt = pyplot()
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2, 3])
    >>> stem = Path(tempfile.mkdtemp()) / "line"
    >>> [p.name for p in save_figure(fig, stem)]
    ['line.svg']
    >>> [p.name for p in save_figure(fig, stem, dpi=72)]
    ['line.svg', 'line.png']
    >>> plt.close(fig)
    """
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    svg = stem.with_suffix(".svg")
    chosen = _OPTIONS["dpi"] if dpi is None else dpi
    png = None
    if chosen is not None:
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.image import imsave

        png = stem.with_suffix(".png")
        fig.set_dpi(int(chosen))
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        imsave(
            png,
            np.asarray(canvas.buffer_rgba()),
            format="png",
            dpi=int(chosen),
            metadata={"Description": caption} if caption else None,
        )
    engine = fig.get_layout_engine()
    if png is not None:
        fig.set_layout_engine("none")  # keep the positions of the draw above
    try:
        # distinct ids per figure: several SVGs inlined in one page must not share ids
        with matplotlib.rc_context({"svg.hashsalt": stem.name}):
            fig.savefig(svg, format="svg", metadata={"Description": caption or None})
    finally:
        if engine is not None and png is not None:
            fig.set_layout_engine(engine)
    return [svg] if png is None else [svg, png]


def finish(
    fig: Any,
    stem: Path,
    *,
    rect: tuple[float, float, float, float] | None = None,
    caption: str = "",
    layout: str = "tight",
) -> list[Path]:
    """Lay ``fig`` out, write it with :func:`save_figure` (SVG, PNG on demand), and close it.

    Text smaller than :data:`MIN_FONT_PT` is raised to it first. ``layout`` is ``"tight"``
    (within ``rect``) or ``"constrained"`` (needed by colour bars over several panels and by
    :func:`legend_outside`). ``caption`` is one sentence saying what the figure shows and what
    to see in it; the report prints it under the figure. A legend drawn inside its axes over
    data points (:func:`legend_over_data`) is moved below the axes and the figure written
    again, so no legend hides data.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    stem : pathlib.Path
        The path of the files without their suffix.
    rect : tuple of float, optional
        The part of the figure the tight layout fills, ``(left, bottom, right, top)``.
    caption : str, optional
        One sentence saying what the figure shows.
    layout : {"tight", "constrained"}, default "tight"
        The layout engine.

    Examples
    --------
    >>> import tempfile
    >>> plt, out = open_figures(Path(tempfile.mkdtemp()))
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2, 3])
    >>> [svg] = finish(fig, out / "line", caption="A straight line.")
    >>> read_caption(svg.read_text()), min(svg_font_sizes(svg.read_text())) >= MIN_FONT_PT
    ('A straight line.', True)
    """
    from matplotlib.layout_engine import ConstrainedLayoutEngine, TightLayoutEngine

    _raise_small_text(fig)
    _plain_log_labels(fig)
    if layout == "constrained":
        fig.set_layout_engine(ConstrainedLayoutEngine())
    else:
        fig.set_layout_engine(TightLayoutEngine(rect=rect or (0, 0, 1, 1)))
    try:
        paths = save_figure(fig, stem, caption=caption)
        covering = _legends_over_data(fig)
        if covering:
            for ax in covering:
                legend = ax.get_legend()
                ncol = max(1, min(3, len(legend.get_texts())))
                legend.remove()
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=ncol, frameon=False)
            fig.set_layout_engine(ConstrainedLayoutEngine())
            paths = save_figure(fig, stem, caption=caption)
        return paths
    finally:
        pyplot().close(fig)


def _legends_over_data(fig: Any) -> list[Any]:
    """The axes of ``fig`` whose legend, inside them, covers one of their data points."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    covering = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        if not ax.get_window_extent(renderer).overlaps(box):
            continue  # drawn outside the axes
        points = [
            line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            for line in ax.lines
            if len(line.get_xydata())
        ]
        points += [
            coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            for coll in ax.collections
            if len(coll.get_offsets())
        ]
        if not points:
            continue
        xy = np.concatenate(points)
        xy = xy[np.isfinite(xy).all(axis=1)]
        x, y = xy[:, 0], xy[:, 1]
        if np.any((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)):
            covering.append(ax)
    return covering


def legend_over_data(fig: Any) -> list[str]:
    """The titles of the axes of a drawn ``fig`` whose legend, inside them, covers a data point.

    A data point is a vertex of a line (markers included) or the offset of a scatter point;
    :func:`finish` moves such a legend below its axes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure already drawn (or saved), so that its legends have their place.

    Returns
    -------
    list of str
        One title per covering legend (empty: no legend covers data).

    Examples
    --------
    >>> plt = pyplot()
    >>> fig, ax = plt.subplots()
    >>> _ = ax.scatter([0.0, 0.1, 1.0], [1.0, 0.9, 0.0], label="points")
    >>> _ = ax.set_title("crowded corner")
    >>> _ = ax.legend(loc="upper left")
    >>> fig.canvas.draw()
    >>> legend_over_data(fig)
    ['crowded corner']
    >>> plt.close(fig)
    """
    return [ax.get_title() for ax in _legends_over_data(fig)]


def legend_outside(fig: Any, axes: Any, *, ncol: int = 3) -> Any:
    """One legend for the figure, below the panels, from the labelled artists of ``axes``.

    Keeps the legend off the data; the figure must be finished with ``layout="constrained"``.
    """
    import numpy as np

    seen: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if not seen:
        return None
    return fig.legend(
        list(seen.values()),
        list(seen),
        loc="outside lower center",
        ncol=min(ncol, len(seen)),
        frameon=False,
    )


def legend_below(ax: Any, *, ncol: int = 2) -> Any:
    """The legend of ``ax`` under it, off the data (finish with ``layout="constrained"``)."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False)


def log_axes(ax: Any, ticks: Sequence[Any], label: Callable[[Any], str]) -> None:
    """Log scale on both axes, x ticks at ``ticks`` labelled by ``label``, labelled y ticks.

    Call it once the data are drawn: the y ticks are spaced for the span of the data, so that
    the axis carries several labels even when the data span less than a decade (where a log
    axis would otherwise show a single label).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ticks, [label(v) for v in ticks])
    ax.minorticks_off()
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 3.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs if decades < 3 else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def infinity_break(
    ax: Any, positions: Sequence[float], inf_at: float, *, label: str = "network depth N"
) -> None:
    """Label an x axis of depths whose infinite depth is plotted at ``inf_at``.

    The ticks are the finite depths and ``∞`` (at ``inf_at``, right of the others); a ``//``
    break on the axis and a dotted line half-way mark that the scale does not run on to it.

    Parameters
    ----------
    ax
        The axes.
    positions
        The x positions of every plotted depth (``inf_at`` among them, or not).
    inf_at
        The position of infinite depth
        (:func:`finetune_theory.experiments._deep.depth_axis`).
    label
        The axis label.
    """
    finite = sorted({float(v) for v in positions if float(v) != inf_at})
    top = finite[-1] if finite else inf_at - 2.0
    ax.set_xticks([*finite, inf_at], [f"{v:g}" for v in finite] + ["∞"])
    brk = 0.5 * (top + inf_at)
    half = 0.12 * (inf_at - top)
    kw = {"transform": ax.get_xaxis_transform(), "color": "k", "clip_on": False, "lw": 1.2}
    for dx in (-0.4 * half, 0.4 * half):
        ax.plot([brk + dx - half, brk + dx + half], [-0.035, 0.035], **kw)
    ax.axvline(brk, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(f"{label} (∞ past the break)")


_DESCRIPTION = re.compile(r"<dc:description>(.*?)</dc:description>", re.S)
_FONT_SIZE = re.compile(r"font(?:-size)?:\s*(?:[a-z]+\s+)*([0-9.]+)px")


def read_caption(svg_text: str) -> str:
    """The caption stored in an SVG written by :func:`finish` (empty when there is none).

    Examples
    --------
    >>> read_caption("<svg><dc:description>Risk falls with n.</dc:description></svg>")
    'Risk falls with n.'
    >>> read_caption("<svg></svg>")
    ''
    """
    import html

    match = _DESCRIPTION.search(svg_text)
    return html.unescape(match.group(1).strip()) if match else ""


def svg_font_sizes(svg_text: str) -> list[float]:
    """Every font size, in points at the saved size, of an SVG written with text as text.

    Examples
    --------
    >>> svg_font_sizes('<text style="font: 12px \\'DejaVu Sans\\'">a</text>')
    [12.0]
    """
    return [float(size) for size in _FONT_SIZE.findall(svg_text)]
