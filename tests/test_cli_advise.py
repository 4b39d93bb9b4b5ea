"""The ``advise`` and ``risk`` commands as a user meets them: output, formats, errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finetune_theory.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
SENTENCE = re.compile(
    r"Recommended: (?P<strategy>\w+)(?: from (?P<source>\S+))? \(predicted test MSE "
    r"(?P<risk>[0-9.e+-]+), interval \[(?P<lo>[0-9.e+-]+), (?P<hi>[0-9.e+-]+)\], n = (?P<n>\d+)\)"
)


def _files(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 30))  # fewer samples than features: the source matters
    theta = rng.standard_normal(30)
    cols = [f"x{i}" for i in range(30)]
    y = x @ theta + 0.3 * rng.standard_normal(12)
    pd.DataFrame(x, columns=cols).assign(y=y).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "near.json").write_text(json.dumps({"coef": list(theta + 0.01), "intercept": 0}))
    (tmp_path / "far.json").write_text(json.dumps({"coef": list(-theta), "intercept": 0.5}))
    return ["--data", str(tmp_path / "t.csv"), "--target", "y"]


def _example_args():
    return [
        "advise",
        "--data",
        str(EXAMPLES / "target.csv"),
        "--target",
        "log_price",
        "--source",
        str(EXAMPLES / "source_coef.json"),
    ]


def test_the_printed_sentence_agrees_with_the_table_and_the_csv(capsys):
    assert main(_example_args()) == 0
    text = capsys.readouterr().out
    found = SENTENCE.findall(text)
    assert len(found) == 1  # one recommendation, no second verdict
    m = SENTENCE.search(text)
    assert main([*_example_args(), "--format", "csv"]) == 0
    rows = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    n = int(m["n"])
    at_n = rows[rows.n == n]
    row = at_n[(at_n.strategy == m["strategy"])]
    if m["source"]:
        row = row[row.source == m["source"]]
    assert len(row) == 1
    for key, col in (("risk", "risk"), ("lo", "low"), ("hi", "high")):
        assert float(m[key]) == pytest.approx(float(row[col].iloc[0]), rel=5e-3)
    # the lowest risk at n is the recommendation, or the sentence says why not
    lowest = at_n.risk.min()
    if float(m["risk"]) > lowest * (1 + 5e-3):
        assert "cannot be told apart" in text
    # the table marks the same row, whole and uncut off a terminal
    marked = [ln for ln in text.splitlines() if "│ * │" in ln]
    assert len(marked) == 1 and m["strategy"] in marked[0]
    assert "…" not in text
    assert "scratch wins" not in text and "beats training from scratch" not in text


def test_formats_json_and_n_max(tmp_path, capsys):
    args = _files(tmp_path)
    src = ["--source", str(tmp_path / "near.json"), "--source", str(tmp_path / "far.json")]
    assert main(["advise", *args, *src, "--format", "json", "--n-max", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_grid"] == [12] and data["n_max"] == 20
    assert data["ranking"][0] == "near"
    assert data["recommendation"]["source"] in ("near", None)
    assert main(["advise", *args, *src, "--n-max", "30"]) == 0
    out = capsys.readouterr().out
    assert "n=24" in out and "n=60" not in out
    assert main(["advise", *args, *src, "--json", str(tmp_path / "a.json"), "--eps", "1"]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["eps"] == 1.0


def _error(capsys, argv):
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_errors_name_the_problem(tmp_path, capsys):
    args = _files(tmp_path)
    (tmp_path / "keys.json").write_text(json.dumps({"weights": [1.0] * 30}))
    err = _error(capsys, ["advise", *args, "--source", str(tmp_path / "keys.json")])
    assert "'coef'" in err and "'intercept'" in err
    err = _error(capsys, ["advise", *args, "--source", str(tmp_path)])
    assert "is a directory" in err
    err = _error(capsys, ["advise", "--data", str(tmp_path), "--target", "y"])
    assert "--data" in err and "is a directory" in err
    frame = pd.read_csv(tmp_path / "t.csv")
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    err = _error(capsys, ["advise", "--data", str(tmp_path / "semi.csv"), "--target", "y"])
    assert "semicolons" in err and "separator" in err
    frame.to_csv(tmp_path / "tab.csv", sep="\t", index=False)
    err = _error(capsys, ["advise", "--data", str(tmp_path / "tab.csv"), "--target", "y"])
    assert "tabs" in err


def test_unwritable_outputs_fail_before_the_analysis(tmp_path, capsys, monkeypatch):
    import finetune_theory.advisor as advisor

    def never(*a, **k):  # the analysis must not start
        raise AssertionError("advise ran")

    monkeypatch.setattr(advisor, "advise", never)
    args = _files(tmp_path)
    err = _error(capsys, ["advise", *args, "--json", str(tmp_path / "no" / "a.json")])
    assert "--json" in err and "does not exist" in err
    err = _error(capsys, ["advise", *args, "--plot", str(tmp_path)])
    assert "--plot" in err and "is a folder" in err
    err = _error(capsys, ["advise", *args, "--plot", str(tmp_path / "a.txt")])
    assert "--plot" in err
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        err = _error(capsys, ["advise", *args, "--json", str(locked / "a.json")])
        assert "--json" in err and "not writable" in err


def test_debug_shows_the_traceback(tmp_path):
    args = _files(tmp_path)
    with pytest.raises(ValueError, match="is a directory"):
        main(["--debug", "advise", *args, "--source", str(tmp_path)])


def test_advise_console_script_error_is_one_line(tmp_path):
    args = _files(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "finetune_theory.cli", "advise", *args, "--target", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr


def test_risk_perturbation_is_named_and_eps_is_a_requested_risk(capsys):
    from finetune_theory.curves import learning_curve

    base = ["risk", "--spectrum", "isotropic", "--d", "50", "--n", "5", "10", "20", "40"]
    assert main([*base, "--perturbation", "0.5", "--eps", "0.2"]) == 0
    out = capsys.readouterr().out
    curve = learning_curve(
        spectrum="isotropic", d=50, perturbation=0.5, n_values=[5, 10, 20, 40], seed=0
    )
    for value in curve["fine_tuned"]:
        assert f"{value:.4g}" in out
    # the exact count over every n, not only the listed ones
    from finetune_theory import covariance, linear
    from finetune_theory.teachers import scaled_pair

    pair = scaled_pair(50, alpha=1.0, eps=0.5, seed=0)
    need = linear.sample_complexity(
        covariance.isotropic(50), pair.theta_source, pair.theta_target, 0.2
    )
    assert f"fine-tuned: excess risk 0.2 first reached at n = {need}" in out
    assert "perturbation=0.5" in out


def test_n_max_below_the_labelled_n_is_explained(tmp_path, capsys):
    args = _files(tmp_path)
    err = _error(capsys, ["advise", *args, "--n-max", "5"])
    assert "--n-max 5" in err and "12 labelled rows" in err and "inf" not in err


def test_a_source_json_without_intercept_is_refused(tmp_path, capsys):
    args = _files(tmp_path)
    coef = list(np.ones(30))
    (tmp_path / "noint.json").write_text(json.dumps({"coef": coef}))
    err = _error(capsys, ["advise", *args, "--source", str(tmp_path / "noint.json")])
    assert "'intercept'" in err and "0 if the model has none" in err
    (tmp_path / "bare.json").write_text(json.dumps(coef))
    err = _error(capsys, ["advise", *args, "--source", str(tmp_path / "bare.json")])
    assert '"intercept"' in err


def test_empty_features_and_unknown_target_say_what_to_do(tmp_path, capsys):
    args = _files(tmp_path)
    err = _error(capsys, ["advise", *args, "--features", ""])
    assert "--features is empty" in err
    data = args[1]
    err = _error(capsys, ["advise", "--data", data, "--target", "nope"])
    assert "nope" in err and "... (21 more)" in err  # 31 columns, 10 listed


def test_a_huge_value_names_its_column_in_one_line(tmp_path, capsys):
    args = _files(tmp_path)
    frame = pd.read_csv(args[1])
    frame.loc[3, "x7"] = 1e200
    frame.to_csv(tmp_path / "huge.csv", index=False)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no warning before the error
        err = _error(capsys, ["advise", "--data", str(tmp_path / "huge.csv"), "--target", "y"])
    assert "'x7'" in err and "too large" in err and "NaN" not in err


def test_a_constant_column_is_dropped_and_folded_into_the_intercept(tmp_path, capsys):
    """A column constant on the labelled rows no longer stops the advice: the source's
    coefficient on it joins its intercept, and the advice says so."""
    args = _files(tmp_path)
    frame = pd.read_csv(args[1])
    frame["cd"] = 2.0
    frame.to_csv(tmp_path / "const.csv", index=False)
    src = json.loads((tmp_path / "near.json").read_text())
    names = [f"x{i}" for i in range(30)]
    src["coef"] = dict(zip(names, src["coef"], strict=True)) | {"cd": 0.25}
    (tmp_path / "cd.json").write_text(json.dumps(src))
    argv = ["advise", "--data", str(tmp_path / "const.csv"), "--target", "y"]
    assert main([*argv, "--source", str(tmp_path / "cd.json"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dropped_columns"] == {"cd": 2.0}
    assert any("'cd'" in a and "intercept" in a for a in data["assumptions"])
    # the same advice as without the column and with the intercept moved by 0.25 * 2
    moved = dict(src, coef={k: v for k, v in src["coef"].items() if k != "cd"}, intercept=0.5)
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    plain = ["advise", *args, "--source", str(tmp_path / "moved.json"), "--format", "json"]
    assert main(plain) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["rows"][0]["risk@12"] == pytest.approx(data["rows"][0]["risk@12"], rel=1e-9)


def test_the_table_fits_80_columns_with_a_legend(tmp_path):
    from finetune_theory.advisor import advise

    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 6))
    y = x.sum(axis=1) + rng.standard_normal(20)
    srcs = {"a pretty long source name": np.ones(6), "another long one": -np.ones(6)}
    adv = advise(x, y, srcs, eps=1.0)
    text = adv.summary(width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "..." not in text
    assert "S1 = a pretty long source name" in " ".join(text.split())
    marked = [ln for ln in text.splitlines() if ln.startswith(("│*", "|*"))]
    assert len(marked) == 1
    rec = adv.recommendation
    abbrev = adv.strategies[rec.strategy].abbrev
    assert abbrev in marked[0]


def test_help_does_not_import_scipy():
    code = (
        "import sys; from finetune_theory.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('scipy' in sys.modules, 'finetune_theory.advisor' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-2:] == ["False", "False"]


def test_main_help_lists_advise(capsys):
    assert main(["--help"]) == 0
    assert "advise" in capsys.readouterr().out


# ------------------------------------------------------------------ one convention for all
def test_list_options_take_values_separated_by_spaces_as_everywhere(tmp_path, capsys):
    args = _files(tmp_path)
    near, far = str(tmp_path / "near.json"), str(tmp_path / "far.json")
    outputs = []
    for sources in (["--source", near, far], ["--source", near, "--source", far]):
        assert main(["advise", *args, *sources, "--format", "json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1] and outputs[0]["ranking"][0] == "near"
    named = tmp_path / "named.json"  # coefficients by column name: the three chosen
    coef = json.loads((tmp_path / "near.json").read_text())["coef"]
    named.write_text(json.dumps({"coef": {f"x{i}": coef[i] for i in range(3)}, "intercept": 0}))
    for features in (["--features", "x0", "x1", "x2"], ["--features", "x0,x1", "x2"]):
        argv = ["advise", *args, *features, "--source", str(named), "--format", "json"]
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["n_features"] == 3


def test_advise_out_writes_csv_or_json_by_suffix_as_risk_does(tmp_path, capsys):
    args = [*_files(tmp_path), "--source", str(tmp_path / "near.json")]
    assert main(["advise", *args, "--out", str(tmp_path / "a.csv")]) == 0
    assert "written: " in capsys.readouterr().out
    rows = pd.read_csv(tmp_path / "a.csv")
    assert list(rows.columns[:3]) == ["source", "strategy", "n"]
    assert main(["advise", *args, "--out", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["n_labelled"] == 12
    err = _error(capsys, ["advise", *args, "--out", str(tmp_path / "a.txt")])
    assert "--out" in err and ".csv, .json" in err


def test_output_path_errors_read_the_same_in_risk_and_advise(tmp_path, capsys):
    args = [*_files(tmp_path), "--source", str(tmp_path / "near.json")]
    missing = str(tmp_path / "no" / "x.png")
    advise_err = _error(capsys, ["advise", *args, "--plot", missing])
    risk_err = _error(capsys, ["risk", "--plot", missing])
    expected = f"finetune-theory: error: --plot {missing}: the folder {tmp_path / 'no'}"
    assert advise_err == risk_err == f"{expected} does not exist"


def test_every_help_text_fits_its_terminal(monkeypatch):
    from finetune_theory.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    parser = build_parser()
    texts = {"finetune-theory": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                texts[name] = sub.format_help()
    for name, text in texts.items():
        wide = [line for line in text.splitlines() if len(line) > 96]
        assert not wide, (name, wide)
