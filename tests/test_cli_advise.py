"""The ``advise`` command reached through the package's own command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from finetune_theory.cli import main


def _files(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 30))  # fewer samples than features: the source matters
    theta = rng.standard_normal(30)
    cols = [f"x{i}" for i in range(30)]
    pd.DataFrame(x, columns=cols).assign(y=x @ theta).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "near.json").write_text(json.dumps({"coef": list(theta + 0.01)}))
    (tmp_path / "far.json").write_text(json.dumps({"coef": list(-theta)}))


def test_advise_through_main_ranks_the_planted_source_first(tmp_path, capsys):
    _files(tmp_path)
    code = main([
        "advise", "--data", str(tmp_path / "t.csv"), "--target", "y",
        "--source", str(tmp_path / "far.json"), "--source", str(tmp_path / "near.json"),
        "--boot", "2", "--json", str(tmp_path / "a.json"),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads((tmp_path / "a.json").read_text())["ranking"][0] == "near"


def test_advise_console_script_error_is_one_line(tmp_path):
    _files(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "finetune_theory.cli", "advise", "--data",
         str(tmp_path / "t.csv"), "--target", "missing"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr


def test_main_help_lists_advise(capsys):
    assert main(["--help"]) == 0
    assert "advise" in capsys.readouterr().out
