"""How an :class:`~finetune_theory.advisor._result.Advice` is shown: table, text, CSV, HTML, plot.

Private to :mod:`finetune_theory.advisor`. The table has a wide layout (full names, an
interval at every ``n``) and a narrow one for terminals under :data:`WIDE` columns
(strategy abbreviations, sources as ``S1, S2, ...`` when their names are long, the interval
only at the labelled ``n``), with a legend; the recommended row is marked ``*`` in both.
"""

from __future__ import annotations

import html as _html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ._result import Advice

__all__ = ["fmt", "csv", "table", "legend", "lines", "summary", "html", "plot", "WIDE"]

#: terminals at least this wide get the wide layout
WIDE = 120
#: longest source name shown as is in the narrow layout
_SHORT = 10


def fmt(x: float | None) -> str:
    """Three significant digits; ``inf`` and ``n/a`` for what is not a finite number.

    Examples
    --------
    >>> fmt(0.123456), fmt(float("inf")), fmt(None)
    ('0.123', 'inf', 'n/a')
    """
    if x is None or not math.isfinite(x):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:.3g}"


def _fmt_n(n: int | None) -> str:
    return "not reached" if n is None else str(n)


def csv(advice: Advice) -> str:
    """One row per (source, strategy, n): ``source,strategy,n,risk,low,high``."""
    buf = io.StringIO()
    buf.write("source,strategy,n,risk,low,high\n")
    for row in advice.rows():
        for n in advice.n_grid:
            buf.write(
                f"{row['source'] or ''},{row['strategy']},{n},{row[f'risk@{n}']:.6g},"
                f"{row[f'low@{n}']:.6g},{row[f'high@{n}']:.6g}\n"
            )
    return buf.getvalue()


def _source_labels(advice: Advice, narrow: bool) -> dict[str, str]:
    names = advice.source_names
    if narrow and any(len(s) > _SHORT for s in names):
        return {s: f"S{i + 1}" for i, s in enumerate(names)}
    return {s: s for s in names}


def table(advice: Advice, width: int | None = None) -> Any:
    """A ``rich.table.Table``: the narrow layout when ``width`` is below :data:`WIDE`."""
    from rich.table import Table

    narrow = width is not None and width < WIDE
    labels = _source_labels(advice, narrow)
    pct = int(round(100 * advice.confidence))
    t = Table(
        title=(
            f"Predicted test MSE [{pct}% interval]: n = {advice.n_labelled} labelled, "
            f"{advice.n_unlabelled} unlabelled, d = {advice.n_features}"
        ),
        caption="* = recommended" + ("; abbreviations below" if narrow else ""),
        pad_edge=not narrow,
        collapse_padding=narrow,
    )
    t.add_column("", no_wrap=True)
    t.add_column("source", no_wrap=True)
    t.add_column("strat." if narrow else "strategy", no_wrap=True)
    for n in advice.n_grid:
        head = f"n={n}"
        t.add_column(head, justify="right", no_wrap=True)
    if advice.eps is not None:
        t.add_column(f"n to {advice.eps:.3g}", justify="right", no_wrap=True)
    rec = advice.recommendation
    for row in advice.rows():
        src, strat = row["source"], row["strategy"]
        mark = "*" if (src, strat) == (rec.source, rec.strategy) else ""
        name = advice.strategies[strat].abbrev if narrow else strat
        cells = [mark, "-" if src is None else labels[src], name]
        for n in advice.n_grid:
            risk = fmt(row[f"risk@{n}"])
            if narrow and n != advice.n_labelled:
                cells.append(risk)
            else:
                cells.append(f"{risk} [{fmt(row[f'low@{n}'])}, {fmt(row[f'high@{n}'])}]")
        if advice.eps is not None:
            cells.append(_fmt_n(row["n_for_eps"]))
        t.add_row(*cells)
    return t


def legend(advice: Advice, narrow: bool = True) -> list[str]:
    """What the narrow table's abbreviations stand for."""
    if not narrow:
        return []
    out = [
        "Strategies: "
        + "; ".join(f"{s.abbrev} = {k} ({s.fits})" for k, s in advice.strategies.items())
    ]
    labels = _source_labels(advice, True)
    if any(k != v for k, v in labels.items()):
        out.append("Sources: " + "; ".join(f"{v} = {k}" for k, v in labels.items()))
    return out


def lines(advice: Advice) -> list[str]:
    """The recommendation, the notes, then the assumptions."""
    out = [advice.recommendation.sentence()]
    for src, n in advice.crossover_n.items():
        if n is not None:
            out.append(
                f"Training from scratch is predicted to beat ridge towards {src} from n = {n} on."
            )
    return out + [f"- {a}" for a in advice.assumptions]


def summary(advice: Advice, width: int = 400) -> str:
    """The table, its legend, the recommendation and the assumptions as plain text."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(width=width, file=buf, color_system=None, soft_wrap=width >= WIDE)
    console.print(table(advice, width))
    for line in legend(advice, width < WIDE) + lines(advice):
        console.print(line, highlight=False, markup=False)
    return buf.getvalue()


def html(advice: Advice) -> str:
    """An HTML table with the recommendation (for notebooks)."""
    esc = _html.escape
    rec = advice.recommendation
    head = "".join(f"<th>n = {n}</th>" for n in advice.n_grid)
    body = []
    for row in advice.rows():
        src, strat = row["source"], row["strategy"]
        marked = (src, strat) == (rec.source, rec.strategy)
        cells = "".join(
            f"<td>{fmt(row[f'risk@{n}'])} [{fmt(row[f'low@{n}'])}, {fmt(row[f'high@{n}'])}]</td>"
            for n in advice.n_grid
        )
        style = ' style="font-weight:bold"' if marked else ""
        body.append(
            f"<tr{style}><td>{'*' if marked else ''}</td><td>{esc(src or '-')}</td>"
            f"<td>{esc(strat)}</td>{cells}</tr>"
        )
    pct = int(round(100 * advice.confidence))
    notes = "".join(f"<li>{esc(a)}</li>" for a in advice.assumptions)
    return (
        f"<div><table><caption>Predicted test MSE [{pct}% interval]; * = recommended"
        f"</caption><thead><tr><th></th><th>source</th><th>strategy</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table><p>{esc(rec.sentence())}</p>"
        f"<ul>{notes}</ul></div>"
    )


def plot(advice: Advice, ax: Any = None, path: str | Path | None = None) -> Any:
    """Predicted test MSE against ``n`` for every pair; returns the Axes."""
    import matplotlib.pyplot as plt

    from ._result import label

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
    else:
        fig = ax.figure
    ns = np.unique(np.round(np.geomspace(2, advice.n_max, 60)).astype(np.int64))
    rec = advice.recommendation
    for src, strat in advice.pairs():
        risk, lo, hi = advice.curve(src, strat, ns)
        width = 2.2 if (src, strat) == (rec.source, rec.strategy) else 1.2
        (line,) = ax.plot(ns, risk, label=label(src, strat), lw=width)
        ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.1)
    ax.axvline(advice.n_labelled, color="grey", lw=0.8, ls=":")
    if advice.eps is not None:
        ax.axhline(advice.eps, color="black", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="labelled target rows n", ylabel="predicted test MSE")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if path is not None:
        fig.tight_layout()
        fig.savefig(Path(path), dpi=150, bbox_inches="tight")
    return ax
