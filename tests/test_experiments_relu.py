"""E5: the ReLU experiment's records, units, claims, plots and table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from finetune_theory.experiments import get
from finetune_theory.experiments import relu as e5

TINY = e5.Config(
    d=6, widths=(400, 20), n_source=30, deltas=(0.2, 1.0), ns=(10, 20), repeats=2, n_test=100
)


@pytest.fixture(scope="module")
def quick(quick_records) -> pd.DataFrame:
    return quick_records("relu")


def test_registered_with_three_sizes() -> None:
    exp = get("relu")
    assert exp.name == "relu" and exp is e5.EXPERIMENT
    assert set(exp.sizes) == {"quick", "default", "paper"}
    sizes = [exp.config(s) for s in ("quick", "default", "paper")]
    # each size trains more than the one before (the default has fewer repeats than the quick
    # size, on wider networks, more inputs and more sizes)
    work = [c.repeats * sum(c.widths) * sum(c.ns) * c.d for c in sizes]
    assert work[0] < work[1] < work[2]
    assert sizes[1].repeats <= sizes[2].repeats
    assert max(sizes[1].widths) <= max(sizes[2].widths)


def test_records_are_tidy_and_complete(quick: pd.DataFrame) -> None:
    cfg = get("relu").config("quick")
    per_width = cfg.repeats * len(cfg.deltas) * len(cfg.ns) * 2
    assert len(quick) == per_width * len(cfg.widths)
    counts = quick.groupby(["width", "method", "delta", "n"]).size()
    assert (counts == cfg.repeats).all()
    assert sorted(quick["repeat"].unique()) == list(range(cfg.repeats))
    numeric = quick.select_dtypes("number")
    ft = quick["method"] == "fine-tune"
    assert np.isfinite(numeric[ft]).all().all()
    # the fine-tuning distance is delta; from scratch it is ||theta_T|| = sqrt(1 + delta^2)
    np.testing.assert_allclose(quick.loc[ft, "distance"], quick.loc[ft, "delta"])
    scratch_dist = np.sqrt(1 + quick.loc[~ft, "delta"] ** 2)
    np.testing.assert_allclose(quick.loc[~ft, "distance"], scratch_dist)
    # bound pieces are consistent with each other
    np.testing.assert_allclose(quick["bound_data"], np.sqrt(2 * quick["rkhs_norm_sq"] / quick["n"]))
    assert (quick["bound_full"] > quick["bound_data"]).all()
    # exactly linear residual from scratch: r^T H^-1 r <= 4 s^2 ||theta_T||^2
    assert (quick.loc[~ft, "rkhs_norm_sq"] <= quick.loc[~ft, "rkhs_linear"] * (1 + 1e-9)).all()


def test_claims_hold_at_quick_size(quick: pd.DataFrame) -> None:
    verdicts = get("relu").claims(quick)
    assert len(verdicts) >= 6
    failed = [v for v in verdicts if not v.holds]
    assert not failed, failed


def test_claims_are_computed_from_the_records(quick: pd.DataFrame) -> None:
    exp = get("relu")
    broken = quick.copy()
    broken["bound_full"] = 0.0  # a bound below every risk
    broken["test_mse"] = 1.0 / (1.0 + broken["delta"])  # error falling with the distance
    verdicts = {v.claim.split(" (")[0]: v.holds for v in exp.claims(broken)}
    assert verdicts["Fine-tuned test error grows with the teacher distance"] is False
    lazy = quick.copy()
    lazy["net_vs_kernel"] = lazy["kernel_mse"]  # the network far from its predictor
    verdicts = {v.claim.split(" (")[0]: v.holds for v in exp.claims(lazy)}
    assert verdicts["The wide fine-tuned network follows the kernel predictor"] is False


def _shuffled(values: pd.Series) -> np.ndarray:
    return np.random.default_rng(0).permutation(values.to_numpy())


def _small_width_like_big(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in ("net_vs_kernel", "movement", "pretrain_movement"):
        out[col] = out.groupby(["method", "delta", "n", "repeat"])[col].transform("min")
    return out


#: one mutation of the records per claim of E5: each must turn its verdict false
MUTATIONS = {
    "Fine-tuned test error grows": lambda df: df.assign(test_mse=1.0 / (1.0 + df["delta"])),
    "Fine-tuned test error falls": lambda df: df.assign(test_mse=df["n"].astype(float)),
    "follows the kernel predictor": lambda df: df.assign(net_vs_kernel=df["kernel_mse"]),
    "kernel picture stops holding": _small_width_like_big,
    "beats training from scratch": lambda df: df.assign(
        test_mse=np.where(df["method"] == "scratch", 0.0, df["test_mse"])
    ),
    # a data term a fifth of the true one (a wrong constant) no longer covers the risk ...
    "data-dependent part of the bound": lambda df: df.assign(bound_data=0.2 * df["bound_data"]),
    # ... and one that ignores which run it belongs to does not order the risks
    "data-dependent part of the bound ": lambda df: df.assign(
        bound_data=1.0 + _shuffled(df["bound_data"])
    ),
    "For a linear residual": lambda df: df.assign(rkhs_norm_sq=2.0 * df["rkhs_linear"]),
}


@pytest.mark.parametrize("claim", list(MUTATIONS))
def test_every_claim_flips_on_mutated_records(quick: pd.DataFrame, claim: str) -> None:
    exp = get("relu")
    word = claim.strip()
    before = [v for v in exp.claims(quick) if word in v.claim]
    assert len(before) == 1 and before[0].holds, before
    after = [v for v in exp.claims(MUTATIONS[claim](quick)) if word in v.claim]
    assert len(after) == 1 and not after[0].holds, after[0].evidence


def test_every_claim_has_a_mutation(quick: pd.DataFrame) -> None:
    claims = [v.claim for v in get("relu").claims(quick)]
    for claim in claims:
        assert any(key.strip() in claim for key in MUTATIONS), claim


def test_same_seed_same_records() -> None:
    a = e5.run(TINY, 3)
    b = e5.run(TINY, 3)
    c = e5.run(TINY, 4)
    assert a == b
    assert a != c


def test_units_split_widths_and_bound_memory() -> None:
    cfg = dataclasses.replace(TINY, repeats=5, unit_repeats=2)
    units = e5.units(cfg)
    assert [u.widths for u in units] == [(400,)] * 3 + [(20,)] * 3
    assert [u.repeats for u in units] == [2, 2, 1] * 2
    assert [u.repeat_start for u in units] == [0, 2, 4] * 2
    huge = dataclasses.replace(TINY, widths=(2_000_000,), repeats=3, unit_repeats=3)
    assert [u.repeats for u in e5.units(huge)] == [1, 1, 1]
    records = get("relu").run_all(dataclasses.replace(TINY, repeats=3, unit_repeats=2), seed=1)
    assert sorted(records["repeat"].unique()) == [0, 1, 2]


def test_plots_and_table(quick: pd.DataFrame, tmp_path) -> None:
    exp = get("relu")
    paths = exp.plot(quick, tmp_path)
    assert {p.suffix for p in paths} == {".svg"}
    assert len(paths) == 3
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)
    tab = exp.table(quick)
    assert {"fine-tuned MSE", "kernel predictor MSE", "scratch MSE"} <= set(tab.columns)
    assert len(tab) == quick.groupby(["delta", "n"]).ngroups  # a short summary, not every run
    # the predicted sample complexity is smaller for fine-tuning (distance < ||theta_T||)
    assert (tab["n(eps=0.1) fine-tune"] < tab["n(eps=0.1) scratch"]).all()
    # the summary agrees with the records it summarises
    wide = quick[(quick["width"] == quick["width"].max()) & (quick["method"] == "fine-tune")]
    first = tab.iloc[0]
    sel = wide[(wide["delta"] == first["delta"]) & (wide["n"] == first["n"])]
    assert first["fine-tuned MSE"] == pytest.approx(sel["test_mse"].mean(), abs=1e-5)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"widths": (401,)}, "widths"),
        ({"deltas": (-0.1,)}, "deltas"),
        ({"ns": (1,)}, "ns"),
        ({"repeats": 0}, "repeats"),
        ({"label_scale": -1.0}, "label_scale"),
    ],
)
def test_bad_config_names_the_field(change: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        e5.run(dataclasses.replace(TINY, **change), 0)


def test_run_gives_the_records_of_run_all_and_of_the_sweep():
    """``run(config, seed)`` seeds each unit on its own, as ``run_all`` and the runner do."""
    from finetune_theory.runner.sweep import unit_seed

    cfg = dataclasses.replace(TINY, widths=(20,), repeats=2, unit_repeats=1)
    exp = get("relu")
    parts = exp.units(cfg)
    assert len(parts) >= 2
    whole = pd.DataFrame(e5.run(cfg, 5))
    pd.testing.assert_frame_equal(whole, exp.run_all(cfg, 5), check_exact=True)
    # unit by unit with the runner's seeds (an independent spelling of SeedSequence.spawn)
    alone = [pd.DataFrame(exp.run_unit(u, unit_seed(5, i))) for i, u in enumerate(parts)]
    pd.testing.assert_frame_equal(whole, pd.concat(alone, ignore_index=True), check_exact=True)
