"""``finetune_theory.runner.results``: an experiment's status and a run's notes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from finetune_theory.experiments.base import Verdict
from finetune_theory.runner.results import ExperimentOutcome, RunInfo, RunResult
from finetune_theory.runner.sweep import SweepResult


def _outcome(verdicts=(), error=None, recomputed=0):
    sweep = SweepResult(
        name="toy", config=None, records=pd.DataFrame(), units_total=2, units_computed=2,
        units_reused=0, wall_seconds=0.0, compute_seconds=0.0, recomputed_code=recomputed,
    )
    return ExperimentOutcome("toy", "Toy", "", {}, sweep=sweep, verdicts=list(verdicts),
                             error=error)


def test_the_status_of_an_experiment():
    yes, no = Verdict("a", True, ""), Verdict("b", False, "")
    assert _outcome().status == "no claims"
    assert _outcome([yes, yes]).status == "holds" and _outcome([yes, yes]).claims_held == 2
    assert _outcome([yes, no]).status == "does not hold" and _outcome([yes, no]).claims_held == 1
    assert _outcome([yes], error="boom").status == "failed"


def test_a_run_gathers_failures_and_notes():
    info = RunInfo("0.1.0", "quick", 0, "now", "inline", Path("out"), Path("s.sqlite"), "cmd",
                   "3.11", "2.0", "linux")
    good, bad = _outcome(recomputed=1), _outcome(error="boom")
    run = RunResult(info, [good, bad], store_notes=["units left in the WAL"])
    assert run.failed == [bad]
    assert len(run.notes) == 2 and run.notes[-1] == "units left in the WAL"
    assert "recomputed 1 stored unit(s)" in run.notes[0]
