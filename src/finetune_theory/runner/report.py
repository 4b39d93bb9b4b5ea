"""The HTML report: one self-contained page per reproduction, fit to be shown in a talk.

Figures are inlined as SVG (a PNG, base64-encoded, where an experiment wrote no SVG), the style
sheet is inline, each experiment's records CSV is embedded as a ``data:`` link (one larger than
:data:`MAX_EMBEDDED_CSV_BYTES` is named as the file beside the page, without a link), and
nothing is fetched from the network or read from beside the page, so the file works when
mailed, moved or archived on its own. For each experiment the page shows its
claims with the verdict computed from the records (and the number behind it), the figures with
the caption sentence each carries, a captioned summary table, and how the records were
obtained (units computed or read back from the store, wall time).

An experiment captions its summary table through ``table.attrs["caption"]`` (units and what
each column means) and its figures through the caption given to
:func:`finetune_theory.experiments._plotting.finish`. A claim whose evidence starts with
``not judged`` is shown as not judged. :func:`presentation_problems` lists what falls short
(a missing caption, a blank column header, NaN in evidence).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .files import atomic_write
from .results import NOT_JUDGED, ExperimentOutcome, RunInfo, RunResult, verdict_status

__all__ = ["render_report", "write_report", "presentation_problems"]

_MAX_TABLE_ROWS = 40

#: a records CSV up to this size is embedded in the page (a ``data:`` link); a larger one is
#: named as the file beside the page
MAX_EMBEDDED_CSV_BYTES = 2 * 1024**2

_CSS = """
:root { --ok: #1a7f37; --bad: #b42318; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1f2328; background: #f6f8fa; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
       min-height: 100vh; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.35em; margin: 0 0 6px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 18px; }
section.exp { border-top: 2px solid var(--line); padding-top: 18px; margin-top: 28px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 11px; font-size: 0.85em;
         font-weight: 600; color: #fff; white-space: nowrap; vertical-align: middle; }
.badge.holds { background: var(--ok); }
.badge.does-not-hold, .badge.failed { background: var(--bad); }
.badge.no-claims, .badge.not-judged { background: var(--warn); }
table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0 10px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: right;
         white-space: nowrap; }
thead th { white-space: normal; vertical-align: bottom; }
p.table-caption { font-size: 0.95em; margin: 4px 0 4px; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; }
table.meta-table td { white-space: normal; }
table.summary td, table.summary th { text-align: left; }
ul.claims { list-style: none; padding: 0; margin: 6px 0; }
ul.claims li { margin: 0 0 10px; padding: 8px 12px; border-left: 4px solid var(--line);
               background: #f6f8fa; }
ul.claims li.holds { border-left-color: var(--ok); }
ul.claims li.does-not-hold { border-left-color: var(--bad); }
ul.claims li.not-judged { border-left-color: var(--warn); }
.evidence { color: var(--muted); font-size: 0.92em; margin-top: 3px; }
figure { margin: 10px 0 18px; }
figure img, figure svg { max-width: 100%; height: auto; border: 1px solid var(--line);
                         display: block; }
figcaption { color: #1f2328; font-size: 0.95em; margin-top: 4px; }
figcaption .files { color: var(--muted); font-size: 0.85em; }
.meta { color: var(--muted); font-size: 0.88em; }
.error { background: #ffebe9; border: 1px solid #ff818266; padding: 10px 12px;
         border-radius: 6px; }
pre { white-space: pre-wrap; font-size: 0.82em; background: #f6f8fa; padding: 8px;
      overflow-x: auto; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--muted); }
.tablewrap { overflow-x: auto; max-width: 100%; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _css_class(status: str) -> str:
    return status.replace(" ", "-")


def _numbered(title: str, number: int) -> str:
    """``title`` prefixed with ``E<number>`` unless it already starts with such a label."""
    return title if re.match(r"E\d", title) else f"E{number} · {title}"


def _badge(status: str, title: str = "") -> str:
    tip = f' title="{_e(title)}"' if title else ""
    return f'<span class="badge {_css_class(status)}"{tip}>{_e(status)}</span>'


def _why(outcome: ExperimentOutcome) -> str:
    """Why an experiment is not judged (shown on hovering over its badge)."""
    return "; ".join(outcome.not_judged) if outcome.status == NOT_JUDGED else ""


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)} min {secs:04.1f} s"


def _format_cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"  # missing in this row (the CSV keeps the NaN)
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def _header(label: Any) -> str:
    if label is None:
        return ""
    if isinstance(label, tuple):  # MultiIndex columns
        return " / ".join(str(part) for part in label if str(part))
    return str(label)


def _table_html(table: pd.DataFrame) -> str:
    """A small HTML table under its caption; numbers right-aligned to 4 significant digits.

    A meaningful index (anything but the default 0..n-1) is shown as leading columns, headed
    by its level names (blank when unnamed). The caption is ``table.attrs["caption"]``.
    """
    shown = table.head(_MAX_TABLE_ROWS)
    columns: list[tuple[str, list[Any], bool]] = []  # header, values, numeric
    if not isinstance(shown.index, pd.RangeIndex):
        levels = shown.index.to_frame(index=False)
        for pos, name in enumerate(shown.index.names):
            values = levels.iloc[:, pos]
            columns.append((_header(name), values.tolist(), _is_numeric(values)))
    for pos, label in enumerate(shown.columns):
        values = shown.iloc[:, pos]
        columns.append((_header(label), values.tolist(), _is_numeric(values)))
    heads = "".join(
        f'<th class="{"num" if numeric else "text"}">{_breakable(head)}</th>'
        for head, _, numeric in columns
    )
    rows = []
    for values in zip(*(vals for _, vals, _ in columns), strict=True):
        cells = []
        for value in values:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cells.append(
                f'<td class="{"num" if numeric else "text"}">{_e(_format_cell(value))}</td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if len(table) > _MAX_TABLE_ROWS:
        note = f'<p class="meta">first {_MAX_TABLE_ROWS} of {len(table)} rows</p>'
    caption = str(table.attrs.get("caption", "")).strip()
    caption_html = f'<p class="table-caption">{_e(caption)}</p>' if caption else ""
    return (
        f'{caption_html}<div class="tablewrap"><table><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


def _breakable(head: str) -> str:
    """A column header, escaped, that may wrap after ``_`` and ``/`` (``measured_full``)."""
    return re.sub(r"([_/])", r"\1<wbr>", _e(head))


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


_SVG_PROLOG = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.S)


def _figure_files(figures: list[Path]) -> list[tuple[Path, Path | None]]:
    """One ``(shown file, PNG or None)`` per figure: its SVG when written, else its PNG."""
    stems: dict[Path, dict[str, Path]] = {}
    for p in figures:
        if p.suffix.lower() in (".svg", ".png"):
            stems.setdefault(p.with_suffix(""), {})[p.suffix.lower()] = p
    return [(kinds.get(".svg") or kinds[".png"], kinds.get(".png")) for kinds in stems.values()]


def _figure_caption(path: Path, data: bytes) -> str:
    if path.suffix.lower() == ".svg":
        from ..experiments import read_caption

        return read_caption(data.decode("utf-8", errors="replace"))
    return ""


def _figure_html(path: Path, png: Path | None, out: Path) -> str:
    """The figure inlined (SVG markup, or a base64 PNG) with its caption sentence."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f'<p class="error">figure {_e(path.name)} could not be read: {_e(exc)}</p>'
    caption = _figure_caption(path, data)
    if path.suffix.lower() == ".svg":
        markup = _SVG_PROLOG.sub("", data.decode("utf-8", errors="replace"), count=1)
        body = markup.replace(
            "<svg ", f'<svg role="img" aria-label="{_e(caption or path.stem)}" ', 1
        )
    else:
        encoded = base64.b64encode(data).decode("ascii")
        body = f'<img alt="{_e(caption or path.stem)}" src="data:image/png;base64,{encoded}">'
    written = [path] if png is None or png == path else [path, png]
    files = f'<span class="files">files: {_e(", ".join(_relative(f, out) for f in written))}</span>'
    text = _e(caption) if caption else "(this figure has no caption)"
    return f"<figure>{body}<figcaption>{text} {files}</figcaption></figure>"


def _relative(path: Path, out: Path) -> str:
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return path.name


def _records_html(csv: Path) -> str:
    """The records CSV embedded as a ``data:`` link (one file: the page) when small enough.

    A larger CSV is named as the file beside the report, without a link that would break once
    the page is moved on its own.
    """
    try:
        size = csv.stat().st_size
    except OSError:
        size = None
    if size is not None and size <= MAX_EMBEDDED_CSV_BYTES:
        try:
            data = base64.b64encode(csv.read_bytes()).decode("ascii")
        except OSError:
            data = None
        if data is not None:
            return (
                f'records: <a download="{_e(csv.name)}" href="data:text/csv;base64,{data}">'
                f"{_e(csv.name)}</a> (embedded in this page, {_bytes(size)})"
            )
    shown = f"{_bytes(size)}, " if size is not None else ""
    return (
        f"records: <code>{_e(csv.name)}</code> ({shown}not embedded: the file written beside "
        "this page in the results folder)"
    )


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.0f} KiB"
    return f"{size / 1024**2:.1f} MiB"


def _claims_html(outcome: ExperimentOutcome) -> str:
    if outcome.error is not None and not outcome.verdicts:
        return (
            '<p class="meta">No verdict: the experiment failed before its claims were checked.</p>'
        )
    if not outcome.verdicts:
        return '<p class="meta">This experiment states no claim.</p>'
    items = []
    for verdict in outcome.verdicts:
        status = verdict_status(verdict)
        items.append(
            f'<li class="{_css_class(status)}">{_badge(status)} {_e(verdict.claim)}'
            f'<div class="evidence">{_e(verdict.evidence)}</div></li>'
        )
    return f'<ul class="claims">{"".join(items)}</ul>'


def _provenance(outcome: ExperimentOutcome) -> str:
    sweep = outcome.sweep
    parts = [f"wall time this run {_seconds(outcome.wall_seconds)}"]
    if sweep is not None:
        parts.insert(
            0,
            f"{sweep.units_total} units ({sweep.units_computed} computed now, "
            f"{sweep.units_reused} read from the store), {len(sweep.records)} records",
        )
        parts.append(f"unit compute time {_seconds(sweep.compute_seconds)}")
        parts.extend(note.split(": ", 1)[1] for note in sweep.notes)
    if outcome.csv is not None:
        parts.append(_records_html(outcome.csv))
    return (
        '<p class="meta">'
        + "; ".join(p if p.startswith("records:") else _e(p) for p in parts)
        + "</p>"
    )


def _experiment_html(outcome: ExperimentOutcome, number: int, out: Path) -> str:
    body = [
        f'<section class="exp" id="{_e(outcome.name)}">',
        f"<h2>{_e(_numbered(outcome.title, number))} {_badge(outcome.status)}</h2>",
        f'<p class="meta">experiment <code>{_e(outcome.name)}</code></p>',
        f"<p>{_e(outcome.description)}</p>",
    ]
    if outcome.status == NOT_JUDGED:
        reasons = "; ".join(outcome.not_judged)
        body.append(
            f'<p class="meta">No claim fails, but the records cannot decide every claim: '
            f"{_e(reasons)}</p>"
        )
    if outcome.error is not None:
        body.append(
            f'<div class="error"><strong>This experiment failed:</strong> {_e(outcome.error)}'
            f"<details><summary>traceback</summary><pre>{_e(outcome.error_details)}</pre>"
            "</details></div>"
        )
    body.append("<h3>Claims and verdicts</h3>")
    body.append(_claims_html(outcome))
    if outcome.figures:
        body.append("<h3>Figures</h3>")
        body.extend(_figure_html(shown, png, out) for shown, png in _figure_files(outcome.figures))
    if outcome.table is not None and len(outcome.table):
        body.append("<h3>Summary table</h3>")
        body.append(_table_html(outcome.table))
    body.append(_provenance(outcome))
    config = json.dumps(outcome.config, indent=2, sort_keys=True, default=str)
    body.append(f"<details><summary>configuration</summary><pre>{_e(config)}</pre></details>")
    body.append("</section>")
    return "\n".join(body)


def _summary_html(result: RunResult) -> str:
    rows = []
    for number, outcome in enumerate(result.outcomes, start=1):
        claims = f"{outcome.claims_held} / {len(outcome.verdicts)}" if outcome.verdicts else "-"
        rows.append(
            f'<tr><td><a href="#{_e(outcome.name)}">{_e(_numbered(outcome.title, number))}</a>'
            f"</td><td>{_badge(outcome.status, _why(outcome))}</td><td>{claims}</td>"
            f"<td>{_e(_seconds(outcome.wall_seconds))}</td></tr>"
        )
    return (
        '<table class="summary"><thead><tr><th>experiment</th><th>verdict</th>'
        "<th>claims holding</th><th>wall time</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _metadata_html(info: RunInfo) -> str:
    items = [
        ("package version", f"finetune-theory {info.version}"),
        ("size", info.size),
        ("root seed", info.seed),
        ("started (UTC)", info.started),
        ("total wall time", _seconds(info.wall_seconds)),
        ("executor", info.executor),
        ("results store", info.store),
        ("command", info.command),
        ("Python / NumPy", f"{info.python} / {info.numpy}"),
        ("platform", info.platform),
    ]
    rows = "".join(
        f'<tr><th class="text">{_e(k)}</th><td class="text">{_e(v)}</td></tr>' for k, v in items
    )
    return f'<table class="meta-table">{rows}</table>'


_NAN = re.compile(r"(?<![\w.])[-+]?nan(?![\w])", re.I)


def presentation_problems(result: RunResult) -> list[str]:
    """What keeps the report from being shown as it is, one line per problem.

    Checked: NaN in a claim's evidence (a claim the records cannot decide should say
    ``not judged`` and why), a summary table without a caption or with a blank column header,
    a figure without a caption sentence.

    Examples
    --------
    >>> from pathlib import Path
    >>> from finetune_theory.experiments.base import Verdict
    >>> from finetune_theory.runner.results import ExperimentOutcome, RunInfo, RunResult
    >>> info = RunInfo("0", "quick", 0, "", "", Path("."), Path("s"), "", "", "", "")
    >>> bad = ExperimentOutcome("e", "E", "", {}, verdicts=[Verdict("c", True, "rho nan")])
    >>> presentation_problems(RunResult(info, [bad]))
    ["e: the evidence of 'c' shows NaN: rho nan"]
    """
    problems = []
    for outcome in result.outcomes:
        for verdict in outcome.verdicts:
            if _NAN.search(str(verdict.evidence)):
                problems.append(
                    f"{outcome.name}: the evidence of {verdict.claim!r} shows NaN: "
                    f"{verdict.evidence}"
                )
        table = outcome.table
        if table is not None and len(table):
            if not str(table.attrs.get("caption", "")).strip():
                problems.append(f"{outcome.name}: the summary table has no caption")
            names = [*(table.index.names if not isinstance(table.index, pd.RangeIndex) else [])]
            heads = [_header(n) for n in names] + [_header(c) for c in table.columns]
            if any(not h.strip() for h in heads):
                problems.append(f"{outcome.name}: the summary table has a blank column header")
        for shown, _ in _figure_files(outcome.figures):
            try:
                caption = _figure_caption(shown, shown.read_bytes())
            except OSError:
                caption = ""
            if not caption:
                problems.append(f"{outcome.name}: figure {shown.name} has no caption")
    return problems


def render_report(result: RunResult) -> str:
    """The report page as one HTML string."""
    info = result.info
    sections = "\n".join(
        _experiment_html(o, number, info.out) for number, o in enumerate(result.outcomes, start=1)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>finetune-theory reproduction report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>Fine-tuning with linear teachers: reproduction report</h1>
<p class="sub">finetune-theory {_e(info.version)} · size <strong>{_e(info.size)}</strong> ·
seed {_e(info.seed)} · {_e(info.started)} UTC · {_e(_seconds(info.wall_seconds))} in all</p>
<h3>Summary</h3>
{_summary_html(result)}
{sections}
<section class="exp" id="metadata">
<h2>Run metadata</h2>
{_metadata_html(info)}
</section>
</main>
</body>
</html>
"""


def write_report(result: RunResult, path: Path) -> Path:
    """Write :func:`render_report` to ``path`` with :func:`~.files.atomic_write`.

    A unique temporary file in the same folder, fsynced, renamed over ``path``: a kill at any
    instant leaves the previous report or the new one.
    """
    return atomic_write(Path(path), render_report(result))
