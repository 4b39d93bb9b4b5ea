"""``finetune_theory.runner.progress``: bars on a terminal, plain lines elsewhere, nothing when
quiet; warnings in every mode."""

from __future__ import annotations

import io

import pytest

from finetune_theory.runner.progress import PREFIX, Progress, progress_enabled, progress_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_mode_follows_quiet_and_the_terminal():
    assert progress_mode(True, _Tty()) == "off"
    assert progress_mode(False, _Tty()) == "bars" and progress_enabled(False, _Tty())
    assert progress_mode(False, io.StringIO()) == "lines"
    assert not progress_enabled(False, io.StringIO())


@pytest.mark.parametrize(("given", "mode"), [(True, "bars"), (False, "off"), ("lines", "lines")])
def test_booleans_and_names_are_modes(given, mode):
    assert Progress(given).mode == mode


@pytest.mark.parametrize("bad", ["loud", "", None, 1.5])
def test_an_unknown_mode_is_a_value_error(bad):
    with pytest.raises(ValueError, match="bars, lines or off"):
        Progress(bad)


def test_lines_are_throttled_but_the_last_one_always_comes():
    out = io.StringIO()
    with Progress("lines", stream=out, interval=3600.0) as progress:
        bar = progress.task("E1")
        for k in range(1, 6):
            bar(k, 5)
        bar.stage("figures")
        progress.warn("slow disk")
    lines = out.getvalue().splitlines()
    assert all(line.startswith(PREFIX) for line in lines)
    assert [line[len(PREFIX):].split(",")[0] for line in lines] == [
        "E1: 1/5 units",  # the first line, then nothing until the interval passes
        "E1: 5/5 units",  # ... except the last
        "E1: figures",
        "warning: slow disk",
    ]


def test_off_prints_only_warnings():
    out = io.StringIO()
    with Progress("off", stream=out) as progress:
        bar = progress.task("E2")
        bar(1, 1)
        bar.stage("figures")
        progress.line("hidden")
        progress.print("hidden too")
        progress.warn("shown")
    assert out.getvalue() == f"{PREFIX}warning: shown\n"


def test_bars_draw_on_standard_error_and_close(capsys):
    out = io.StringIO()  # bars ignore the stream of plain lines
    with Progress("bars", stream=out) as progress:
        bar = progress.task("E3")
        bar(0, 4)
        bar(4, 4)
        bar.stage("done")
        progress.warn("careful")
    err = capsys.readouterr().err
    assert "E3 (done)" in err and "4/4 units" in err and f"{PREFIX}warning: careful" in err
    assert out.getvalue() == ""
    assert progress._bars is None  # closed on exit
