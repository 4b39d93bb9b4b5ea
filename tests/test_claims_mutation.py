"""Every verdict of E3 (scaling) and E4 (freezing) turns false on records that contradict it.

E1, E2, E5 and E7 have the same check next to their other tests (``test_experiments_measure``,
``test_experiments_deep``, ``test_experiments_relu``, ``test_experiments_reduction``). Each
mutation below plants exactly the error its claim is about; the test also checks that every
claim the experiment makes has a mutation here, so a new verdict cannot slip in untested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finetune_theory import experiments


@pytest.fixture(scope="module")
def scaling(quick_records) -> pd.DataFrame:
    return quick_records("scaling")


@pytest.fixture(scope="module")
def freezing(quick_records) -> pd.DataFrame:
    return quick_records("freezing")


def _deepest(r: pd.DataFrame) -> pd.Series:
    fin = np.isfinite(r["depth"])
    return fin & (r["depth"] == r.loc[fin, "depth"].max())


def _no_gain(r: pd.DataFrame) -> pd.DataFrame:
    # the deepest networks no better than depth 1 (risk doubled where the scales differ)
    r = r.copy()
    r.loc[_deepest(r) & ~np.isclose(r["factor"], 1.0), ["rel_trained", "rel_closed"]] *= 10.0
    return r


def _depth_matters_at_one(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[_deepest(r) & np.isclose(r["factor"], 1.0), ["rel_trained", "rel_closed"]] *= 0.5
    return r


def _asymmetric(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[r["mode"] == "source", "rel_closed"] *= 1.001
    return r


def _scale_matters_at_infinity(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    inf = np.isinf(r["depth"]) & (r["mode"] == "source")
    r.loc[inf, "risk_closed"] *= 1.0 + 0.01 * r.loc[inf, "factor"]
    return r


def _far(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[np.isfinite(r["depth"]).idxmax(), "gap"] = 0.5
    return r


SCALING = {
    "has a lower risk than depth": _no_gain,
    "With matched scales (c = 1) depth makes little difference": _depth_matters_at_one,
    "Scaling the source by c is the same": _asymmetric,
    "At infinite depth the scale of the source does not matter": _scale_matters_at_infinity,
    "Trained networks match the closed form": _far,
}


def _below_floor(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    first = r["freeze"].str.startswith("first")
    r.loc[first, "risk_trained"] = 0.5 * r.loc[first, "floor"]
    return r


def _misses_best_multiple(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    first = r["freeze"].str.startswith("first") & r["converged"].astype(bool)
    r.loc[first, "gap"] = 0.01
    return r


def _orthogonal_learned(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    orth = (r["target"] == "orthogonal") & r["freeze"].str.startswith("first")
    r.loc[orth, "rel_trained"] = 0.5
    return r


def _first_layer_off(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[r["freeze"] == "all but first", "gap"] = 0.01
    return r


def _free_off(r: pd.DataFrame) -> pd.DataFrame:
    r = r.copy()
    r.loc[r["freeze"] == "none", "gap"] = 0.05
    return r


FREEZING = {
    "the risk never goes below the floor": _below_floor,
    "training goes to the best multiple": _misses_best_multiple,
    "defeats a frozen first layer completely": _orthogonal_learned,
    "Training only the first layer gives the depth-1 solution": _first_layer_off,
    "With nothing frozen, trained networks match": _free_off,
}


def _check(name: str, records: pd.DataFrame, mutations: dict) -> None:
    exp = experiments.get(name)
    verdicts = exp.claims(records)
    for v in verdicts:
        assert any(key in v.claim for key in mutations), f"no mutation for: {v.claim}"
        assert v.holds, v.evidence
    for key, mutate in mutations.items():
        after = [v for v in exp.claims(mutate(records)) if key in v.claim]
        assert len(after) == 1, (key, [v.claim for v in exp.claims(records)])
        assert not after[0].holds, (key, after[0].evidence)


def test_every_scaling_claim_flips(scaling: pd.DataFrame) -> None:
    _check("scaling", scaling, SCALING)


def test_every_freezing_claim_flips(freezing: pd.DataFrame) -> None:
    _check("freezing", freezing, FREEZING)
