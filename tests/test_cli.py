"""The command line: reproduce, list, risk; one-line errors; a killed run that resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import finetune_theory.cli as cli_package
import toy_experiment
from finetune_theory import __version__, experiments
from finetune_theory.cli import COMMANDS, main
from finetune_theory.experiments._plotting import MIN_FONT_PT, read_caption, svg_font_sizes
from finetune_theory.runner.executors import InlineExecutor
from finetune_theory.runner.fingerprint import code_fingerprint
from finetune_theory.runner.store import ResultStore
from finetune_theory.runner.sweep import run_sweep
from toy_experiment import assert_same_bits, live_group_members

TESTS = Path(__file__).resolve().parent
#: the real experiment modules present when the tests were collected
REAL = experiments.available()

#: a Python program that runs the CLI with the toy experiment registered
CLI_WITH_TOY = (
    "import sys; from finetune_theory import experiments; "
    "experiments.REGISTRY['toy'] = 'toy_experiment'; "
    "from finetune_theory.cli import main; sys.exit(main())"
)


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def toy(monkeypatch):
    toy_experiment.register(monkeypatch)


# ------------------------------------------------------------------ help and list
@pytest.mark.parametrize("command", [[], ["reproduce"], ["list"], ["risk"]])
def test_help_everywhere_shows_examples(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: finetune-theory" in out and "example" in out


#: libraries that no command needs before it runs: ``--help`` must not import them
HEAVY = ("scipy", "matplotlib", "pandas", "sklearn", "dask", "torch")
#: ADVISE-SPECIFIC: cli/advise.py importing the advisor (and so SciPy) at module level makes
#: every command's start-up heavy; the start-up test expects that failure until the module
#: imports the advisor inside its command function
_ADVISE_EAGER = any(
    line.startswith(("from ..advisor", "import finetune_theory.advisor"))
    for line in Path(cli_package.__file__).with_name("advise.py").read_text().splitlines()
)

_IMPORTS_AFTER_HELP = """
import contextlib, io, sys
from finetune_theory.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:] + ["--help"])
print(code, *sorted(m for m in {heavy} if m in sys.modules))
"""


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["risk"],
        ["reproduce"],
        ["list"],
        ["advise"],
    ],
    ids=lambda c: " ".join(c) or "main",
)
@pytest.mark.xfail(
    _ADVISE_EAGER, reason="cli/advise.py imports the advisor at start-up", strict=True
)
def test_help_imports_no_heavy_library(command):
    # a fresh interpreter: in this one the other tests have imported everything already
    code = _IMPORTS_AFTER_HELP.format(heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code, *command],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0"], f"imported at start-up: {proc.stdout.split()[1:]}"


def test_every_command_is_registered_and_version_prints(capsys):
    assert len(COMMANDS) == 4
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in ("reproduce", "list", "risk", "advise"):
        assert command in err


def test_list_shows_installed_and_missing_experiments(toy, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "Toy <experiment> for tests" in out
    for name in experiments.REGISTRY:
        assert name in out
    if len(REAL) < 6:
        assert "not installed" in out


# ------------------------------------------------------------------ reproduce
def test_reproduce_writes_outputs_and_reuses_stored_units(toy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "res"
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    args = ["reproduce", "toy", "--size", "quick", "--out", str(out), "--workers", "1"]
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert {p.name for p in out.iterdir()} >= {"toy.csv", "report.html", "store.sqlite", "figures"}
    assert len(marker.read_text().splitlines()) == 4
    assert main(args) == 0  # second run: everything read back, summary printed
    assert len(marker.read_text().splitlines()) == 4
    summary = capsys.readouterr().out
    assert "toy" in summary and "does not hold" in summary and "0/4" in summary
    assert main([*args, "--fresh", "--quiet"]) == 0
    assert len(marker.read_text().splitlines()) == 8


def test_a_relative_output_folder_embeds_every_figure(toy, tmp_path, monkeypatch):
    # figures come back as paths under the output folder; a relative --out must not double them
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "toy", "--size", "quick", "--out", "res", "--quiet"]) == 0
    html = (tmp_path / "res" / "report.html").read_text()
    assert "could not be read" not in html
    assert "<svg " in html  # inlined: the page needs no file beside it
    assert 'href="figures/' not in html and 'src="figures/' not in html


def test_a_failing_experiment_exits_non_zero_with_one_line(toy, tmp_path, capsys):
    code = main(["reproduce", "toy", "broken", "--size", "quick", "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    err = "\n".join(line for line in err.splitlines() if "error:" in line)  # not progress
    assert err.count("\n") == 0 and "broken" in err and "report.html" in err
    assert (tmp_path / "toy.csv").exists() and (tmp_path / "report.html").exists()


def _one_line_error(capsys, argv, expected_code=None):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 if expected_code is None else code == expected_code
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0 and err.startswith("finetune-theory")
    return err


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["reproduce", "nosuch", "--out", "{tmp}"], "unknown experiment 'nosuch'", 1),
        (["reproduce", "toy", "--out", "{tmp}/file/sub"], "cannot write to the output folder", 1),
        (["reproduce", "toy", "--out", "{tmp}", "--scheduler", "nonsense"], "scheduler", 2),
        (["reproduce", "--scheduler", "tcp://127.0.0.1:99999"], "port must be 1-65535", 2),
        (["reproduce", "--scheduler", "tcp://127.0.0.1:0"], "port must be 1-65535", 2),
        (["reproduce", "--timeout", "0"], "--timeout", 2),
        (["reproduce", "toy", "--out", "{tmp}", "--store", "{tmp}/file"], "not an SQLite", 1),
        (["reproduce", "--size", "huge"], "invalid choice", 2),
        (["reproduce", "--workers", "0"], "expected a number >= 1", 2),
        (["reproduce", "--seed", "-3"], "--seed", 2),
        (["reproduce", "--dpi", "5"], "argument --dpi: expected a number >= 10", 2),
        (["nosuchcommand"], "invalid choice", 2),
        (["risk", "--depth", "0"], "--depth", 2),
        (["risk", "--n", "ten"], "--n", 2),
        (["risk", "--alpha", "nan"], "finite", 2),
    ],
)
def test_bad_arguments_give_one_line_and_a_non_zero_exit(
    toy, tmp_path, capsys, argv, message, code
):
    (tmp_path / "file").write_text("not a folder, not a store\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    err = _one_line_error(capsys, argv, code)
    assert message in err
    assert (tmp_path / "file").read_text() == "not a folder, not a store\n"


def test_a_corrupted_store_in_the_output_folder_is_refused(toy, tmp_path, capsys):
    (tmp_path / "store.sqlite").write_bytes(b"\x00" * 16 + b"junk" * 100)
    err = _one_line_error(capsys, ["reproduce", "toy", "--size", "quick", "--out", str(tmp_path)])
    assert "store.sqlite is not a finetune-theory results store" in err
    assert (tmp_path / "store.sqlite").read_bytes()[:16] == b"\x00" * 16


def test_a_refused_scheduler_port_fails_at_once_with_one_line_and_leaves_nothing(tmp_path):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    argv = ["reproduce", "toy", "--out", str(out), "--scheduler", address]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", CLI_WITH_TOY, *argv, "--connect-timeout", "300"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"could not reach the Dask scheduler at {address}" in proc.stderr
    assert "connection refused" in proc.stderr
    # a refusal ends the run at once: far below the 300 s connection timeout, however loaded
    # the machine (the time is mostly Python start-up)
    assert elapsed < 150
    assert not out.exists()  # no empty store, no empty folder


def _stored_units(path: Path) -> set[int]:
    if not path.exists():
        return set()
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            rows = conn.execute("SELECT unit_index FROM units WHERE experiment = 'toy'").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return set()
    return {int(r[0]) for r in rows}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _markers(path: Path, run: str) -> list[int]:
    lines = [line.split() for line in path.read_text().splitlines()]
    return [int(i) for i, tag in lines if tag == run]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_a_killed_run_resumes_without_recomputing_and_gives_the_same_records(tmp_path):
    out, marker = tmp_path / "out", tmp_path / "marker.txt"
    store = out / "store.sqlite"
    argv = ["reproduce", "toy", "--size", "paper", "--out", str(out), "--workers", "2", "--quiet"]
    cmd = [sys.executable, "-c", CLI_WITH_TOY, *argv]
    env = _env(TOY_MARKER=str(marker), TOY_SLEEP="0.4", TOY_RUN="first")
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while len(_stored_units(store)) < 3:
            assert first.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.05)
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the CLI process alone, without warning
        first.wait()
    try:  # its local workers die with it (they are not left waiting for tasks)
        deadline = time.monotonic() + 15
        while live_group_members(first.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_group_members(first.pid) == []
    finally:
        _kill_group(first.pid)
    stored = _stored_units(store)
    assert 3 <= len(stored) < 8
    assert stored <= set(_markers(marker, "first"))
    assert not (out / "report.html").exists()

    second = subprocess.run(
        cmd, env={**env, "TOY_RUN": "second"}, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    recomputed = _markers(marker, "second")
    assert len(recomputed) == len(set(recomputed))  # nothing computed twice in the rerun
    assert not set(recomputed) & stored  # nothing stored before the kill was computed again
    assert set(recomputed) | stored == set(range(8))
    assert (out / "report.html").exists()

    config = toy_experiment.EXPERIMENT.config("paper")
    with ResultStore(store) as results:
        resumed = run_sweep(
            toy_experiment.EXPERIMENT,
            config,
            seed=0,
            store=results,
            executor=InlineExecutor(),
            version=__version__,
            fingerprint=code_fingerprint(toy_experiment.EXPERIMENT),
        )
    assert resumed.units_computed == 0
    with ResultStore(tmp_path / "clean.sqlite") as results:
        clean = run_sweep(
            toy_experiment.EXPERIMENT,
            config,
            seed=0,
            store=results,
            executor=InlineExecutor(),
            version=__version__,
        )
    assert_same_bits(resumed.records, clean.records)


# ------------------------------------------------------------------ the real experiments
# Every experiment at quick size through the command line, one test per experiment so that
# pytest-xdist spreads them over its workers: in this process, except the first experiment,
# which goes through two worker processes (its configs and records cross process boundaries).
@pytest.mark.skipif(not REAL, reason="no experiment module is installed yet")
@pytest.mark.parametrize("name", REAL)
def test_every_experiment_runs_at_quick_size_with_records_figures_and_verdicts(tmp_path, name):
    out = tmp_path / "quick"
    workers = "2" if name == REAL[0] else "1"
    argv = ["reproduce", name, "--size", "quick", "--out", str(out), "--workers", workers]
    assert main([*argv, "--quiet"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    records = out / f"{name}.csv"
    assert records.exists() and records.stat().st_size > 0, name
    figures = list((out / "figures" / name).iterdir())
    assert figures and all(f.suffix == ".svg" for f in figures), name  # no PNG unless --dpi
    section = page.split(f'<section class="exp" id="{name}">', 1)[1].split("</section>", 1)[0]
    assert 'class="badge failed"' not in section, name
    assert "Claims and verdicts" in section and "<svg " in section, name
    assert ('class="badge holds"' in section) or ('class="badge does-not-hold"' in section)
    # fit for a talk: captions, no NaN in evidence, text of 10 pt or more at saved size
    assert "has no caption" not in section and 'class="table-caption"' in section, name
    for evidence in re.findall(r'<div class="evidence">(.*?)</div>', section):
        assert not re.search(r"\bnan\b", evidence, re.I), (name, evidence)
    for svg in (out / "figures" / name).glob("*.svg"):
        text = svg.read_text(encoding="utf-8")
        assert read_caption(text), svg.name
        assert min(svg_font_sizes(text)) >= MIN_FONT_PT, svg.name


# ------------------------------------------------------------------ risk
def test_risk_depth_one_matches_the_isotropic_closed_form(capsys):
    pytest.importorskip("finetune_theory.linear")
    from finetune_theory.curves import learning_curve
    from finetune_theory.teachers import scaled_pair

    d, ns, sigma = 50, [5, 10, 25, 40], 0.3
    curve = learning_curve(
        spectrum="isotropic", d=d, alpha=1.5, perturbation=0.5, noise=sigma, n_values=ns, seed=4
    )
    pair = scaled_pair(d, alpha=1.5, eps=0.5, seed=4)
    delta = float(np.sum((pair.theta_source - pair.theta_target) ** 2))
    target = float(np.sum(pair.theta_target**2))
    n = np.array(ns, dtype=float)
    noise_term = sigma**2 * n / (d - n - 1)
    np.testing.assert_allclose(curve["fine_tuned"], (1 - n / d) * delta + noise_term, rtol=1e-10)
    np.testing.assert_allclose(curve["from_scratch"], (1 - n / d) * target + noise_term, rtol=1e-10)
    np.testing.assert_allclose(curve["gain"], curve["from_scratch"] / curve["fine_tuned"])

    argv = [
        "risk",
        "--spectrum",
        "isotropic",
        "--d",
        "50",
        "--alpha",
        "1.5",
        "--perturbation",
        "0.5",
    ]
    assert main([*argv, "--noise", "0.3", "--seed", "4", "--n", *map(str, ns)]) == 0
    out = capsys.readouterr().out
    for value in curve["fine_tuned"]:
        assert f"{value:.4g}" in out


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_risk_plot_writes_the_file(tmp_path, capsys, suffix):
    pytest.importorskip("finetune_theory.linear")
    path = tmp_path / f"curve{suffix}"
    assert main(["risk", "--d", "60", "--plot", str(path)]) == 0
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" if suffix == ".png" else b"<svg" in data[:2000]
    assert str(path) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["risk", "--plot", "{tmp}/missing/x.png"], "does not exist"),
        (["risk", "--plot", "{tmp}/x.unknown"], "must end in .png, .svg, .pdf"),
        (["risk", "--spectrum", "spiked", "--spikes", "0.5"], "spikes"),
        (["risk", "--spectrum", "power-law", "--a", "-1"], "a must be >= 0"),
    ],
)
def test_bad_risk_settings_give_one_line(tmp_path, capsys, argv, message):
    pytest.importorskip("finetune_theory.linear")
    err = _one_line_error(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["risk", "--perturbation", "-1"], "argument --perturbation: expected a number >= 0", 2),
        (["risk", "--noise", "-0.5"], "argument --noise", 2),
        (["risk", "--d", "1"], "argument --d: expected a number >= 2", 2),
        (["risk", "--d", "20", "--alpha", "1e300"], "--alpha 1e+300", 1),
        (["risk", "--spikes", "5"], "--spikes applies to --spectrum spiked only", 1),
        (["risk", "--spectrum", "isotropic", "--a", "2"], "--a applies to", 1),
        (["risk", "--out", "{tmp}/curve.txt"], "--out {tmp}/curve.txt: the file name must end", 1),
        (["risk", "--out", "{tmp}"], "is a folder", 1),
        (["risk", "--n", "5,,6"], "argument --n", 2),
    ],
)
def test_risk_refuses_bad_settings_naming_the_option(tmp_path, capsys, argv, message, code):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    err = _one_line_error(capsys, argv, code)
    assert err.startswith("finetune-theory: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert "eps" not in err and "nan" not in err and "[Errno" not in err


def test_risk_output_paths_are_checked_before_any_computation(tmp_path, capsys, monkeypatch):
    from finetune_theory import curves

    def never(*args, **kwargs):
        raise AssertionError("computed before checking the output paths")

    monkeypatch.setattr(curves, "learning_curve", never)
    for option in ("--plot", "--out"):
        suffix = ".png" if option == "--plot" else ".csv"
        err = _one_line_error(capsys, ["risk", option, f"{tmp_path}/missing/x{suffix}"], 1)
        assert f"{option} {tmp_path}/missing/x{suffix}: the folder" in err
        assert "does not exist" in err and "[Errno" not in err
        assert capsys.readouterr().out == ""


def test_risk_ratio_of_two_zero_risks_is_not_infinite(capsys):
    # noiseless: at n >= d both risks are 0 (no ratio); below it fine-tuning from the target
    # itself is exact while scratch is not (an infinite ratio)
    argv = ["risk", "--d", "10", "--perturbation", "0", "--n", "5", "10"]
    assert main([*argv, "--spectrum", "isotropic", "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["curve"]
    assert [r["n"] for r in rows] == [5, 10]
    assert rows[0]["fine_tuned"] == 0 and rows[0]["from_scratch"] > 0
    assert rows[1]["fine_tuned"] == 0 and rows[1]["from_scratch"] == 0
    assert rows[0]["ratio"] is None and rows[1]["ratio"] is None  # JSON has no inf
    assert main([*argv, "--spectrum", "isotropic", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "n,fine_tuned,from_scratch,ratio"
    assert lines[1].endswith(",inf") and lines[2] == "10,0.0,0.0,"
    assert main([*argv, "--spectrum", "isotropic"]) == 0
    table = capsys.readouterr().out
    row10 = next(line for line in table.splitlines() if line.startswith("│ 10 "))
    assert "inf" not in row10 and "nan" not in row10 and row10.rstrip(" │").endswith("-")


def test_risk_formats_agree_with_the_library_and_out_writes_the_same(tmp_path, capsys):
    import json

    from finetune_theory.curves import learning_curve

    base = ["risk", "--spectrum", "spiked", "--spikes", "20", "5", "--d", "40", "--n", "4,8", "16"]
    curve = learning_curve(spectrum="spiked", spikes=[20, 5], d=40, n_values=[4, 8, 16])
    assert main([*base, "--format", "json", "--out", str(tmp_path / "c.csv")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["setting"]["spikes"] == [20.0, 5.0]
    np.testing.assert_array_equal([r["n"] for r in shown["curve"]], curve["n"])
    np.testing.assert_allclose([r["fine_tuned"] for r in shown["curve"]], curve["fine_tuned"])
    np.testing.assert_allclose(
        [r["ratio"] for r in shown["curve"]], curve["from_scratch"] / curve["fine_tuned"]
    )
    written = (tmp_path / "c.csv").read_text().splitlines()
    assert len(written) == 4
    np.testing.assert_allclose(
        [float(line.split(",")[2]) for line in written[1:]], curve["from_scratch"]
    )
    assert main([*base, "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["curve"] == shown["curve"]


@pytest.mark.parametrize("depth", ["1", "4"])
def test_risk_eps_gives_the_exact_sample_count_over_all_n(depth, capsys):
    from finetune_theory import covariance, deep_linear, linear
    from finetune_theory.teachers import scaled_pair

    d, eps = 30, 0.03
    argv = ["risk", "--spectrum", "isotropic", "--d", str(d), "--alpha", "2", "--depth", depth]
    assert main([*argv, "--perturbation", "0.5", "--eps", str(eps), "--format", "json"]) == 0
    needed = json.loads(capsys.readouterr().out)["samples_needed"]
    cov = covariance.isotropic(d)
    pair = scaled_pair(d, alpha=2.0, eps=0.5, seed=0)
    ns = np.arange(1, d + 1)
    # oracle: the first n of the whole curve (not only the listed sizes) at or below eps
    tuned = deep_linear.expected_risk(cov, pair.theta_source, pair.theta_target, ns, int(depth))
    scratch = linear.expected_risk(cov, np.zeros(d), pair.theta_target, ns)
    assert needed["fine_tuned"] == int(ns[np.argmax(tuned <= eps)])
    assert needed["from_scratch"] == int(ns[np.argmax(scratch <= eps)])
    listed = [n for n in ns if n in {1, 2, 3, 5, 7, 10, 15}]  # the default sizes at d = 30
    assert needed["fine_tuned"] not in listed or needed["from_scratch"] not in listed


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_or_after_the_command(where, capsys):
    argv = ["risk", "--d", "20", "--alpha", "1e300"]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(ValueError, match="overflow"):
        main(argv)
    assert main(["risk", "--d", "20", "--alpha", "1e300"]) == 1  # without it: one line
    assert capsys.readouterr().err.startswith("finetune-theory: error: the risks overflow")


def test_every_error_line_has_one_prefix(tmp_path, capsys):
    usage = _one_line_error(capsys, ["risk", "--depth", "0"], 2)  # argparse, in a subcommand
    runtime = _one_line_error(capsys, ["risk", "--plot", f"{tmp_path}/no/x.png"], 1)
    top = _one_line_error(capsys, ["--nosuch"], 2)
    for line in (usage, runtime, top):
        assert line.startswith("finetune-theory: error: "), line


@pytest.mark.parametrize("depth", ["3", "inf"])
def test_risk_deep_networks_equal_teachers_have_zero_risk(depth, capsys):
    pytest.importorskip("finetune_theory.deep_linear")
    from finetune_theory.curves import learning_curve

    curve = learning_curve(
        d=80, depth=float(depth), alpha=1.0, perturbation=0.0, n_values=[4, 8, 16]
    )
    np.testing.assert_allclose(curve["fine_tuned"], 0.0, atol=1e-12)
    assert (curve["from_scratch"] > 0).all()
    assert (
        main(["risk", "--d", "80", "--depth", depth, "--perturbation", "0.2", "--alpha", "2"]) == 0
    )
    assert f"depth={float(depth) if depth == 'inf' else depth}" in capsys.readouterr().out


def test_ctrl_c_and_sigterm_end_with_one_line_and_status_130(toy, tmp_path, capsys, monkeypatch):
    import threading

    from finetune_theory.runner import reproduction as reproduce_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce_module, "reproduce", interrupted)
    assert main(["reproduce", "toy", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == (
        "finetune-theory: interrupted; finished units are stored, run the same command to resume"
    )
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGTERM handling is installed from the main thread only")
    before = signal.getsignal(signal.SIGTERM)

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler interrupts this
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr(reproduce_module, "reproduce", terminated)
    start = time.monotonic()
    assert main(["reproduce", "toy", "--out", str(tmp_path)]) == 130
    assert time.monotonic() - start < 5
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_risk_eps_at_n_0_says_what_predicts_with_no_sample(capsys):
    # the defaults: ||theta_T||^2_Sigma is below 0.1, so even the zero predictor is within it
    assert main(["risk", "--eps", "0.1", "--n", "5", "10"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "first reached" in line]
    tuned, scratch = lines
    assert tuned.endswith("n = 0 (the source alone is within it)")
    assert scratch.endswith("n = 0 (the zero predictor is within it)")


def test_an_unknown_argument_points_to_the_help_of_its_command(capsys):
    err = _one_line_error(capsys, ["risk", "--d", "20", "stray"], 2)
    assert "unrecognized arguments: stray" in err and "'finetune-theory risk --help'" in err
    err = _one_line_error(capsys, ["--nosuch"], 2)
    assert "'finetune-theory --help'" in err
