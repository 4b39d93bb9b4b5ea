"""The reproduction outputs: CSV records, figures, and a self-contained report.html."""

from __future__ import annotations

import base64
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

    VOID = {"meta", "img", "br", "hr", "link", "input"}

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
    pngs = [src for src in parser.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == len(parser.images) == 1
    assert base64.b64decode(pngs[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


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
    assert ">risk / n=5<" in cell and ">1.500e-07<" in cell
    long = pd.DataFrame({"v": range(100)})
    assert "first 40 of 100 rows" in _table_html(long)
