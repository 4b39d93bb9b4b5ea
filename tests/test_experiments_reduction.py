"""E7, the sample-complexity reduction: records against the package's own functions, and every
verdict shown to flip under a wrong theory or mutated records."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from finetune_theory import covariance as cv
from finetune_theory import linear, relu
from finetune_theory.asymptotics import DeterministicEquivalent, deterministic_equivalent
from finetune_theory.experiments import get
from finetune_theory.experiments import reduction as red

#: theory at d = 200 over every spectrum (cheap: one deterministic equivalent per spectrum)
THEORY = dataclasses.replace(red.Config(dims=(200,)), part="theory")
SIM = dataclasses.replace(
    red.Config(
        spectra=("power_law:1.5", "spiked"),
        sim_d=120,
        sim_repeats=24,
        sim_points=5,
        sim_distances=(0.3, 1.0),
    ),
    part="simulated",
)
FLOOR = dataclasses.replace(red.Config(dims=(80,), spectra=("power_law:1", "spiked")), part="floor")
DEPTH = dataclasses.replace(red.Config(depth_d=80, depths=(1, 3, math.inf)), part="depth")
RELU = dataclasses.replace(red.Config(), part="relu")


def _records(config: red.Config, seed: int = 3) -> pd.DataFrame:
    # the units of one config on one stream from ``seed``, so that the tests can redraw it
    return pd.DataFrame.from_records(red.run_unit(config, seed))


def test_run_gives_the_records_of_run_all_and_of_the_sweep():
    """``run(config, seed)`` seeds each unit on its own, as ``run_all`` and the runner do."""
    from finetune_theory.runner.sweep import unit_seed

    cfg = dataclasses.replace(THEORY, spectra=("isotropic", "power_law:1"))
    parts = red.units(cfg)
    assert len(parts) >= 2
    whole = pd.DataFrame(red.run(cfg, 5))
    pd.testing.assert_frame_equal(whole, red.EXPERIMENT.run_all(cfg, 5), check_exact=True)
    alone = [pd.DataFrame(red.EXPERIMENT.run_unit(u, unit_seed(5, i))) for i, u in enumerate(parts)]
    pd.testing.assert_frame_equal(whole, pd.concat(alone, ignore_index=True), check_exact=True)


@pytest.fixture(scope="module")
def theory() -> pd.DataFrame:
    return _records(THEORY)


def _verdict(verdicts, word: str):
    hits = [v for v in verdicts if word in v.claim]
    assert len(hits) == 1, [v.claim for v in verdicts]
    return hits[0]


# -------------------------------------------------------------- wrong theories
def _blind(cov, n):
    """A covariance-blind theory: every direction keeps the share 1 - n/d of its risk."""
    eq = deterministic_equivalent(cov, n)
    c = cv.as_covariance(cov)
    share = np.clip(1.0 - eq.n[:, None] / c.d, 0.0, None)
    return dataclasses.replace(eq, bias_weights=c.eigvals[None, :] * share)


def _euclidean_only(cov, n):
    """A theory that sees only the Euclidean distance: equal weights on every direction."""
    eq = deterministic_equivalent(cov, n)
    c = cv.as_covariance(cov)
    share = np.clip(1.0 - eq.n[:, None] / c.d, 0.0, None)
    return dataclasses.replace(eq, bias_weights=np.full((1, c.d), c.eigvals.mean()) * share)


def test_mutant_theories_are_well_formed():
    eq = _blind(cv.power_law(20, 1.0), [5, 10])
    assert isinstance(eq, DeterministicEquivalent) and eq.bias_weights.shape == (2, 20)


# ------------------------------------------------------------------ records
def test_registered():
    assert get("reduction") is red.EXPERIMENT
    assert {"quick", "default", "paper"} <= set(red.SIZES)
    assert max(red.SIZES["paper"].dims) == 2000


def test_theory_records_agree_with_sample_complexity():
    config = dataclasses.replace(
        THEORY,
        dims=(40,),
        spectra=("power_law:1", "spiked"),
        k=4,
        distances=(0.05, 0.5, 2.0),
        eps_fractions=(0.2, 0.05),
    )
    rec = _records(config, seed=5)
    # rebuild the very teachers the unit drew, and recompute every n_eps independently
    from finetune_theory._random import as_generator

    gen = as_generator(5)
    for spectrum in config.spectra:
        cov = red.make_covariance(spectrum, 40, config.spikes)
        tt = red.target_teacher(cov, config.target_decay, gen)
        units = red.placed_differences(cov, config.placements, 4, gen)
        assert cov.quad(tt) == pytest.approx(1.0)
        g = rec[rec["spectrum"] == spectrum]
        for row in g.itertuples():
            j = config.placements.index(row.placement)
            ts = tt + row.distance * np.linalg.norm(tt) * units[j]
            out = linear.sample_complexity_reduction(cov, ts, tt, row.eps_fraction)
            assert (row.n_finetune, row.n_scratch) == (out.n_finetune, out.n_scratch)
            assert row.source_suffices == out.source_suffices
            assert row.reduction == pytest.approx(out.reduction)
            assert row.hurts == (not out.source_suffices and out.reduction < 1)


def test_source_suffices_cases_are_kept_apart(theory):
    suff = theory[theory["source_suffices"]]
    assert len(suff) > 0
    assert (suff["n_finetune"] == 0).all() and np.isinf(suff["reduction"]).all()
    assert (suff["source_risk"] <= suff["eps_fraction"]).all()
    real = theory[~theory["source_suffices"]]
    assert (real["source_risk"] > real["eps_fraction"]).all() and (real["n_finetune"] > 0).all()
    # the headline statistic never counts them
    assert "source suffices: excluded" in _verdict(red.claims(theory), "power-law").evidence


def test_same_seed_same_records():
    config = dataclasses.replace(THEORY, dims=(30,), spectra=("spiked",), k=3)
    pd.testing.assert_frame_equal(_records(config, 9), _records(config, 9))


# ----------------------------------------------------------- theory verdicts
def test_headline_holds_and_flips_with_a_blind_theory(theory, monkeypatch):
    v = _verdict(red.claims(theory), "power-law")
    assert v.holds, v.evidence
    monkeypatch.setattr(red._compute, "deterministic_equivalent", _blind)
    wrong = _verdict(red.claims(_records(THEORY)), "power-law")
    assert not wrong.holds, wrong.evidence


def test_headline_flips_when_reductions_are_shrunk(theory):
    low = theory["measure"] <= red.LOW_MEASURE
    mutated = theory.copy()
    mutated.loc[low, "reduction"] = mutated.loc[low, "reduction"] / 2
    assert not _verdict(red.claims(mutated), "power-law").holds


def test_euclidean_verdict_holds_and_flips_with_a_euclidean_theory(theory, monkeypatch):
    v = _verdict(red.claims(theory), "Euclidean")
    assert v.holds, v.evidence
    monkeypatch.setattr(red._compute, "deterministic_equivalent", _euclidean_only)
    wrong = _verdict(red.claims(_records(THEORY)), "Euclidean")
    assert not wrong.holds, wrong.evidence


def test_euclidean_verdict_flips_when_the_measure_is_shuffled(theory):
    mutated = theory.copy()
    mutated["measure"] = np.random.default_rng(0).permutation(mutated["measure"].to_numpy())
    assert not _verdict(red.claims(mutated), "Euclidean").holds


def test_hurting_cases_hold_and_flip_with_a_blind_theory(theory, monkeypatch):
    v = _verdict(red.claims(theory), "more samples than scratch")
    assert v.holds, v.evidence
    monkeypatch.setattr(red._compute, "deterministic_equivalent", _blind)
    # blind to the covariance, fine-tuning is worse only when the source risk exceeds R0
    wrong = _verdict(red.claims(_records(THEORY)), "more samples than scratch")
    assert not wrong.holds, wrong.evidence


# --------------------------------------------------------------- simulation
@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return _records(SIM)


def test_simulated_points_use_real_fine_tuning(simulated):
    assert len(simulated) >= 4
    assert (simulated["risk_sim_finetune"] > 0).all() and (simulated["se_finetune"] > 0).all()
    assert np.isfinite(simulated["reduction_sim"]).all()
    verdicts = red.claims(simulated)
    for word in ("predicted risk", "Simulated n_eps"):
        v = _verdict(verdicts, word)
        assert v.holds, v.evidence


@pytest.mark.parametrize(
    ("word", "column", "factor"),
    [
        ("predicted risk", "risk_pred_finetune", 1.6),
        ("predicted risk", "risk_pred_scratch", 0.6),
        ("Simulated n_eps", "n_finetune", 1.3),
        ("Simulated n_eps", "n_scratch", 0.75),
    ],
)
def test_simulation_verdicts_flip(simulated, word, column, factor):
    mutated = simulated.copy()
    mutated[column] = mutated[column] * factor
    assert not _verdict(red.claims(mutated), word).holds


# ------------------------------------------------------------------ floor
def test_noise_floor_holds_and_flips():
    rec = _records(FLOOR)
    v = _verdict(red.claims(rec), "floor")
    assert v.holds, v.evidence
    # independent check: below the floor no n under the rank reaches eps
    row = rec[(rec["method"] == "finetune") & (rec["factor"] < 1)].iloc[0]
    with pytest.raises(linear.UnreachableRiskError):
        cov = red.make_covariance(row["spectrum"], int(row["d"]))
        tt = np.zeros(cov.d)
        tt[0] = 1.0
        ts = tt + 10.0  # far away: its floor is higher still, so eps is unreachable below r
        linear.sample_complexity(cov, ts, tt, row["eps"], noise=row["noise"], n_max=cov.d - 1)
    mutated = rec.copy()
    below = mutated["factor"] < 1
    mutated.loc[below, "n_eps"] = mutated.loc[below, "rank"] - 1
    assert not _verdict(red.claims(mutated), "floor").holds
    # a theory without the noise term has no floor: eps below it is met under the rank
    mutated = rec.copy()
    mutated.loc[below, "n_eps"] = mutated.loc[below, "n_floor"]
    assert not _verdict(red.claims(mutated), "floor").holds


# ------------------------------------------------------------------ depth
def test_depth_verdict_holds_and_flips_when_depth_is_ignored(monkeypatch):
    rec = _records(DEPTH)
    v = _verdict(red.claims(rec), "depth raises")
    assert v.holds, v.evidence
    ninf = rec[np.isinf(rec["depth"])]
    assert ninf["n_finetune"].max() < rec[rec["depth"] == 1]["n_finetune"].max()

    class ShallowOnly:
        @staticmethod
        def expected_risk(cov, ts, tt, n, depth, *, noise=0.0):
            return linear.expected_risk(cov, ts, tt, n, noise=noise)

    monkeypatch.setattr(red._compute, "dl", ShallowOnly)
    wrong = _verdict(red.claims(_records(DEPTH)), "depth raises")
    assert not wrong.holds, wrong.evidence


# ------------------------------------------------------------------- ReLU
def test_relu_verdict_holds_and_flips_without_the_confidence_term(monkeypatch):
    rec = _records(RELU)
    for row in rec.itertuples():
        assert row.n_finetune == relu.sample_complexity_bound(row.distance, row.eps)
    v = _verdict(red.claims(rec), "ReLU")
    assert v.holds, v.evidence
    monkeypatch.setattr(
        "finetune_theory.relu._bound.confidence_term", lambda n, delta=0.05: np.zeros(np.shape(n))
    )
    wrong = _verdict(red.claims(_records(RELU)), "ReLU")
    assert not wrong.holds, wrong.evidence


# --------------------------------------------------------------- outputs
@pytest.mark.slow
def test_plot_and_table(theory, simulated, tmp_path):
    small = theory[theory["spectrum"].isin(["power_law:1", "spiked"])]
    rec = pd.concat([small, simulated, _records(RELU)], ignore_index=True)
    paths = red.plot(rec, tmp_path)
    assert {p.name for p in paths} >= {"reduction_measure.svg", "reduction_distance.svg"}
    assert all(p.stat().st_size > 0 for p in paths)
    tab = red.table(theory)
    assert set(tab.index.get_level_values("spectrum")) == set(THEORY.spectra)
    assert (tab["source suffices"] <= tab["cases"]).all()


def test_bad_part_and_spectrum():
    with pytest.raises(ValueError, match="part must be"):
        red.run(dataclasses.replace(THEORY, part="nope"), 0)
    with pytest.raises(ValueError, match="only power_law takes a parameter"):
        red.make_covariance("spiked:3", 10)
    with pytest.raises(ValueError, match="placement must be"):
        red.placed_differences(cv.isotropic(5), ("middle",), 2, np.random.default_rng(0))
