"""The reproduction outputs: CSV records, figures, and a self-contained report.html."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pytest

import toy_experiment
from finetune_theory import __version__
from finetune_theory.runner.progress import Progress, progress_enabled
from finetune_theory.runner.reproduction import reproduce


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as mp:
        toy_experiment.register(mp)
        result = reproduce(["toy", "broken"], size="quick", out=out, workers=1, seed=11)
    return result, out


@pytest.fixture(scope="module")
def page(run):
    result, _ = run
    return result.report.read_text(encoding="utf-8")


class _Structure(HTMLParser):
    """Collects open/close tags to check that the page's elements are balanced."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_outputs_are_written(run):
    result, out = run
    assert result.report == out / "report.html"
    assert (out / "store.sqlite").exists()
    csv = pd.read_csv(out / "toy.csv")
    records = result.outcomes[0].sweep.records
    assert list(csv.columns) == list(records.columns) and len(csv) == 4 * 5
    assert (csv["value"].to_numpy() == records["value"].to_numpy()).all()  # repr floats
    figures = sorted(p.name for p in result.outcomes[0].figures)
    assert figures == ["toy_values.png", "toy_values.svg"]
    assert all(
        p.exists() and p.parent == out / "figures" / "toy" for p in result.outcomes[0].figures
    )


def test_a_failing_experiment_is_reported_and_does_not_stop_the_others(run):
    result, out = run
    toy, broken = result.outcomes
    assert toy.status == "does not hold" and toy.claims_held == 1
    assert broken.status == "failed" and broken.error is not None
    assert "broken unit 1: ValueError: toy unit 1 fails on purpose" in broken.error
    assert result.failed == [broken]
    assert not (out / "broken.csv").exists()


def test_the_page_is_well_formed_and_self_contained(page):
    parser = _Structure()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert page.startswith("<!DOCTYPE html>")
    external = [u for u in parser.urls if re.match(r"(https?:)?//", u)]
    assert external == []
    assert "<script" not in page.lower()
    # the figure is inlined as SVG markup: nothing beside the page is needed to show it
    assert parser.images == [] and page.count("<svg ") == 1
    assert not [u for u in parser.urls if u.startswith("figures/") or u.endswith(".svg")]
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_the_page_shows_every_experiment_its_claims_and_verdicts(run, page):
    result, _ = run
    for outcome in result.outcomes:
        assert f'id="{outcome.name}"' in page
    assert "E1 · Toy &lt;experiment&gt; for tests" in page  # titles are escaped
    assert "E2 · Broken toy" in page
    toy = result.outcomes[0]
    for verdict in toy.verdicts:
        assert verdict.claim in page and verdict.evidence in page
    assert page.count('class="badge holds"') >= 1
    assert page.count('class="badge does-not-hold"') >= 2  # the claim and the experiment
    assert 'class="badge failed"' in page
    assert "toy unit 1 fails on purpose" in page
    assert "failed before its claims were checked" in page


def test_the_page_carries_run_metadata_and_the_summary_table(page):
    assert f"finetune-theory {__version__}" in page
    assert "<strong>quick</strong>" in page and "seed 11" in page
    assert "in-process (1 worker)" in page
    assert "4 units (4 computed now, 0 read from the store), 20 records" in page
    assert "wall time this run" in page
    assert "<th>mean</th>" in page or '<th class="num">mean</th>' in page


def test_a_second_run_reads_every_unit_from_the_store(run, monkeypatch):
    _, out = run
    toy_experiment.register(monkeypatch)
    again = reproduce(["toy"], size="quick", out=out, workers=1, seed=11)
    sweep = again.outcomes[0].sweep
    assert (sweep.units_computed, sweep.units_reused) == (0, 4)
    assert "4 units (0 computed now, 4 read from the store)" in again.report.read_text()


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_drawn_only_on_a_terminal_and_not_when_quiet():
    assert progress_enabled(False, _Stream(True))
    assert not progress_enabled(True, _Stream(True))
    assert not progress_enabled(False, _Stream(False))
    assert not progress_enabled(False, object())


def test_progress_bars_follow_the_callbacks():
    with Progress(True) as progress:
        update = progress.task("toy")
        update(2, 5)
        update(5, 5)
        update.stage("figures")
        task = progress._bars.tasks[0]
        assert (task.completed, task.total) == (5, 5)
        assert task.description == "toy (figures)"
    with Progress(False) as progress:
        bar = progress.task("toy")
        bar(1, 2)  # no-ops
        bar.stage("figures")


def test_summary_tables_show_index_levels_and_readable_numbers():
    from finetune_theory.runner.report import _table_html

    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])  # unnamed levels
    table = pd.DataFrame({"x": [0.123456, float("nan")], "flag": [True, False]}, index=index)
    cell = _table_html(table)
    assert "level_0" not in cell and cell.count("<th ") == 4
    assert ">0.1235<" in cell and ">–<" in cell and ">True<" in cell
    parser = _Structure()
    parser.feed(cell)
    assert parser.errors == [] and parser.stack == []
    wide = pd.DataFrame(
        [[1.5e-7, 2]], columns=pd.MultiIndex.from_tuples([("risk", "n=5"), ("n", "")])
    )
    cell = _table_html(wide)
    assert ">risk /<wbr> n=5<" in cell and ">1.500e-07<" in cell  # headers may wrap
    narrow = _table_html(pd.DataFrame({"measured_full": [1.0]}))
    assert ">measured_<wbr>full<" in narrow
    long = pd.DataFrame({"v": range(100)})
    assert "first 40 of 100 rows" in _table_html(long)


# ------------------------------------------------------------------ fit for a talk
def _outcome(**kw):
    from finetune_theory.runner.results import ExperimentOutcome

    return ExperimentOutcome(name="e", title="E", description="", config={}, **kw)


def _result(*outcomes, out=None):
    from pathlib import Path

    from finetune_theory.runner.results import RunInfo, RunResult

    info = RunInfo("0", "quick", 0, "", "inline", Path(out or "."), Path("s"), "", "", "", "")
    return RunResult(info, list(outcomes))


def test_presentation_problems_flag_nan_evidence_and_uncaptioned_tables():
    from finetune_theory.experiments.base import Verdict
    from finetune_theory.runner.report import presentation_problems

    captioned = pd.DataFrame({"risk": [0.5]}, index=pd.Index([5], name="n"))
    captioned.attrs["caption"] = "Excess risk (squared label units) per n."
    good = _outcome(verdicts=[Verdict("c", True, "rho 0.91")], table=captioned)
    assert presentation_problems(_result(good)) == []
    nan = _outcome(verdicts=[Verdict("c", True, "median Spearman nan")], table=captioned)
    assert any("NaN" in p for p in presentation_problems(_result(nan)))
    uncaptioned = _outcome(table=pd.DataFrame({"risk": [0.5]}))
    assert any("no caption" in p for p in presentation_problems(_result(uncaptioned)))
    blank = pd.DataFrame({"risk": [0.5]}, index=pd.Index([5]))  # unnamed index
    blank.attrs["caption"] = "x"
    assert any("blank" in p for p in presentation_problems(_result(_outcome(table=blank))))


def test_a_claim_that_cannot_be_judged_is_shown_as_such():
    from finetune_theory.experiments.base import Verdict
    from finetune_theory.runner.report import render_report

    verdict = Verdict("ranking", False, "not judged: no case has three sources")
    page = render_report(_result(_outcome(verdicts=[verdict])))
    assert 'class="badge not-judged"' in page and "not judged: no case" in page
    assert 'class="badge does-not-hold">does not hold</span> ranking' not in page


def test_figures_carry_captions_and_slide_sized_text_and_are_inlined(tmp_path):
    from finetune_theory.experiments import _plotting
    from finetune_theory.runner.report import presentation_problems, render_report

    plt, out = _plotting.open_figures(tmp_path / "figures" / "e")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2], [3, 4], label="a line")
    ax.set_title("small", fontsize=6)
    ax.legend(fontsize=5)
    ax.tick_params(labelsize=7)
    paths = _plotting.finish(fig, out / "curve", caption="The risk falls with n & stays > 0.")
    assert [p.suffix for p in paths] == [".svg"]  # a PNG only on demand (--dpi)
    svg = paths[0].read_text(encoding="utf-8")
    assert min(_plotting.svg_font_sizes(svg)) >= _plotting.MIN_FONT_PT
    assert _plotting.read_caption(svg) == "The risk falls with n & stays > 0."
    result = _result(_outcome(figures=paths), out=tmp_path)
    assert presentation_problems(result) == []
    page = render_report(result)
    assert "<figcaption>The risk falls with n &amp; stays &gt; 0." in page
    assert page.count("<svg ") == 1 and "data:image/png" not in page
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    bare = _plotting.finish(fig, out / "bare")
    assert any("no caption" in p for p in presentation_problems(_result(_outcome(figures=bare))))


def test_dpi_sets_the_png_resolution_and_the_figure_is_laid_out_once(tmp_path, monkeypatch):
    from matplotlib.image import imread
    from matplotlib.layout_engine import TightLayoutEngine

    from finetune_theory.experiments import _plotting

    calls = []
    original = TightLayoutEngine.execute
    monkeypatch.setattr(
        TightLayoutEngine, "execute", lambda self, fig: calls.append(1) or original(self, fig)
    )
    plt, out = _plotting.open_figures(tmp_path)
    widths = {}
    for dpi in (50, 100):
        with _plotting.figure_options(dpi=dpi):
            fig, ax = plt.subplots(figsize=(4, 3))
            ax.plot([1, 2])
            svg, png = _plotting.finish(fig, out / f"f{dpi}", caption="c")
        widths[dpi] = imread(png).shape[1]
        assert svg.exists()
    assert widths == {50: 200, 100: 400}
    assert len(calls) == 2  # one layout per figure, shared by the PNG and the SVG
    with pytest.raises(ValueError, match="dpi"):
        with _plotting.figure_options(dpi=0):
            pass


def test_reproduce_passes_its_dpi_to_the_figures(tmp_path, monkeypatch):
    import dataclasses

    from finetune_theory.experiments import _plotting
    from finetune_theory.runner import reproduction

    toy_experiment.register(monkeypatch)
    seen = []

    def plot(records, outdir):
        seen.append(_plotting._OPTIONS["dpi"])
        return toy_experiment.plot(records, outdir)

    monkeypatch.setattr(
        toy_experiment, "EXPERIMENT", dataclasses.replace(toy_experiment.EXPERIMENT, plot=plot)
    )
    reproduction.reproduce(["toy"], size="quick", out=tmp_path / "a", workers=1, dpi=72)
    reproduction.reproduce(["toy"], size="quick", out=tmp_path / "b", workers=1)
    assert seen == [72, None]  # no --dpi: SVG only


def test_an_experiment_with_a_claim_not_judged_and_none_failing_is_not_judged():
    from finetune_theory.experiments.base import Verdict
    from finetune_theory.runner.report import render_report

    held = Verdict("risk falls", True, "slope -0.9")
    undecided = Verdict("ranking", False, "not judged: no case has three sources")
    outcome = _outcome(verdicts=[held, undecided])
    assert outcome.status == "not judged" and outcome.claims_held == 1
    assert outcome.not_judged == ["not judged: no case has three sources"]
    page = render_report(_result(outcome))
    heading = re.search(r"<h2>(.*?)</h2>", page).group(1)
    assert 'class="badge not-judged"' in heading and "does-not-hold" not in heading
    assert "cannot decide every claim: not judged: no case has three sources" in page
    assert 'title="not judged: no case has three sources">not judged</span>' in page  # summary
    failing = Verdict("slope", False, "slope +0.2")
    assert _outcome(verdicts=[held, undecided, failing]).status == "does not hold"
    assert _outcome(verdicts=[held]).status == "holds"


def _records_link(page):
    return re.search(r"records: (.*?)</p>", page).group(1)


def test_the_records_csv_travels_with_the_page(tmp_path, monkeypatch):
    import base64

    from finetune_theory.runner import report

    csv = tmp_path / "e.csv"
    csv.write_text("n,risk\n5,0.5\n", encoding="utf-8")
    page = report.render_report(_result(_outcome(csv=csv), out=tmp_path))
    link = _records_link(page)
    href = re.search(r'href="data:text/csv;base64,([^"]+)"', link).group(1)
    assert base64.b64decode(href) == csv.read_bytes() and 'download="e.csv"' in link
    parser = _Structure()  # no link to anything beside the page
    parser.feed(page)
    assert not [u for u in parser.urls if not u.startswith(("data:", "#"))]
    # too large to embed: named as the file beside the page, with no link that would break
    monkeypatch.setattr(report, "MAX_EMBEDDED_CSV_BYTES", 4)
    link = _records_link(report.render_report(_result(_outcome(csv=csv), out=tmp_path)))
    assert "<a " not in link and "<code>e.csv</code>" in link and "not embedded" in link


def test_a_legend_over_data_is_moved_below_its_axes(tmp_path):
    from finetune_theory.experiments import _plotting

    plt, out = _plotting.open_figures(tmp_path)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0.0, 0.05, 0.1, 1.0], [1.0, 0.95, 0.9, 0.0], "o-", label="falls")
    ax.set_title("crowded corner")
    ax.legend(loc="upper left")  # on top of the first points
    fig.canvas.draw()
    assert _plotting.legend_over_data(fig) == ["crowded corner"]
    [svg] = _plotting.finish(fig, out / "corner", caption="c")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["falls"]
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0
    assert _plotting.legend_over_data(fig) == []
    assert "falls" in svg.read_text(encoding="utf-8")
    clear, cax = plt.subplots(figsize=(4, 3))  # a legend off the data stays where it is
    cax.plot([0.0, 1.0], [0.0, 0.2], label="low")
    cax.legend(loc="upper left")
    _plotting.finish(clear, out / "clear", caption="c")
    assert cax.get_legend()._loc == 2  # upper left
