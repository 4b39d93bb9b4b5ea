"""The user's ridge choice: the advisor's parametric bootstrap against brute force.

``finetune_ridge`` and ``scratch`` are predicted at the ridge a user's leave-one-out picks
(scikit-learn ``RidgeCV`` over ``mean eigenvalue * USER_ALPHAS``), by simulation inside the
fitted Gaussian model. The oracle here is scikit-learn's own ``RidgeCV`` run on fresh planted
draws, with the exact conditional excess risk of each fit.
"""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory.advisor import advise
from finetune_theory.advisor._bootstrap import loo_curves, loo_ridge_bootstrap
from finetune_theory.advisor._constants import USER_ALPHAS


def loo_ridge_excess(lam, energy, noise, n, alphas, draws=48, seed=1):
    """Mean and standard error of the bootstrap's excess risk at one size."""
    res = loo_ridge_bootstrap(lam, energy, noise, np.array([n]), alphas, draws, seed=seed)
    return res.excess[:, 0], res.excess_se[:, 0]


def _brute_force_loo(lam, energy, noise, n, alphas, reps, seed):
    """Mean and standard error of the excess risk of ``RidgeCV`` on planted draws."""
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        x = rng.standard_normal((n, lam.size)) * np.sqrt(lam) + 3.0  # a mean: intercept refit
        delta = rng.standard_normal(lam.size) * np.sqrt(energy)
        y = x @ delta + 1.5 + noise * rng.standard_normal(n)
        w = RidgeCV(alphas=alphas).fit(x, y).coef_
        out[r] = float(((w - delta) ** 2 * lam).sum())
    return out.mean(), out.std(ddof=1) / np.sqrt(reps)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "noise", "apart"), [(5, 0.6, True), (24, 0.5, False)])
def test_bootstrap_matches_ridgecv_brute_force(n, noise, apart):
    d = 8
    lam = 1.0 / np.arange(1, d + 1.0)
    energy = 0.3 * np.arange(1, d + 1.0) ** -1.0
    alphas = lam.mean() * USER_ALPHAS
    mean, se = loo_ridge_excess(lam, energy[None], noise**2, n, alphas, draws=600, seed=11)
    bf, bf_se = _brute_force_loo(lam, energy, noise, n, alphas, reps=300, seed=5)
    tol = 3.0 * np.hypot(se[0], bf_se)
    assert abs(mean[0] - bf) <= tol, (mean[0], bf, tol)
    # the test can tell the user's choice from the best fixed ridge: the latter is lower
    fixed = loo_ridge_excess(lam, energy[None], noise**2, n, alphas[[18]], draws=600, seed=11)
    best = min(
        loo_ridge_excess(lam, energy[None], noise**2, n, alphas[[k]], draws=600, seed=11)[0][0]
        for k in range(0, alphas.size, 3)
    )
    assert best <= fixed[0][0]
    if apart:  # few rows: the choice costs more than the test's tolerance
        assert bf - best > tol, (bf, best, tol)


def test_bootstrap_is_deterministic_and_shares_designs_across_starts():
    lam = np.linspace(2.0, 0.5, 6)
    energy = np.vstack([np.full(6, 0.1), np.full(6, 0.1), np.zeros(6)])
    a, _ = loo_ridge_excess(lam, energy, 0.2, 9, USER_ALPHAS, draws=20, seed=3)
    b, _ = loo_ridge_excess(lam, energy, 0.2, 9, USER_ALPHAS, draws=20, seed=3)
    assert np.array_equal(a, b)
    assert a[0] == a[1]  # equal profiles, common random numbers
    assert 0 < a[2] < a[0]  # nothing to learn: only the noise the chosen ridge lets in
    # no noise and no signal: nothing is learned, the fit is exact
    zero, _ = loo_ridge_excess(lam, np.zeros((1, 6)), 0.0, 9, USER_ALPHAS, draws=5, seed=3)
    assert zero[0] == 0.0


def test_engine_curve_passes_through_its_knots_and_decays_beyond_them():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((14, 10)) * np.linspace(1.5, 0.5, 10)
    y = x @ np.full(10, 0.3) + 0.5 * rng.standard_normal(14)
    adv = advise(x, y, {"s": np.full(10, 0.25)}, X_unlabelled=rng.standard_normal((200, 10)))
    eng = adv.engine
    knots, res = eng._boot
    assert 14 in knots and knots.min() == 3
    got = eng.plain_ridge_excess("s", knots)
    assert np.allclose(got, res.excess[0], rtol=1e-12)
    top = int(knots[-1])
    far = eng.plain_ridge_excess("s", np.array([top, 2 * top]))
    assert far[1] == pytest.approx(far[0] / 2)
    # the predicted MSE uses it: (f E L + sigma^2)(1 + 1/n)
    f = adv.allowance["s"]
    want = (f * res.excess[0, list(knots).index(14)] + eng.noise_var) * (1 + 1 / 14)
    assert adv.predict_risk("s", "finetune_ridge", 14) == pytest.approx(want, rel=1e-12)


def test_leave_one_out_on_the_rows_is_ridgecvs():
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(4)
    for n, d in ((9, 14), (30, 5)):
        x = rng.standard_normal((n, d)) + 2.0
        z = rng.standard_normal((2, n)) + x[:, 0]
        loo, resid = loo_curves(x, z, USER_ALPHAS)
        for j in range(2):
            cv = RidgeCV(alphas=USER_ALPHAS, store_cv_results=True).fit(x, z[j])
            assert np.allclose(loo[j], cv.cv_results_.mean(axis=0), rtol=1e-8)
            k = int(np.argmin(loo[j]))
            assert np.allclose(resid[j] ** 2, cv.cv_results_[:, k], rtol=1e-8)


@pytest.mark.slow
def test_advised_user_ridge_against_ridgecv_on_a_planted_gaussian_problem():
    """advise(misspecification=False): finetune_ridge and scratch at n = 10 < d."""
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(7)
    d, n, noise = 12, 10, 0.5
    lam = np.linspace(2.0, 0.5, d)
    tt = rng.standard_normal(d) * 0.4
    ts = tt + rng.standard_normal(d) * 0.15

    def draw(m):
        x = rng.standard_normal((m, d)) * np.sqrt(lam)
        return x, x @ tt + noise * rng.standard_normal(m)

    alphas = lam.mean() * USER_ALPHAS
    meas = {"finetune_ridge": [], "scratch": []}
    for _ in range(300):
        x, y = draw(n)
        for key, start in (("finetune_ridge", ts), ("scratch", np.zeros(d))):
            m = RidgeCV(alphas=alphas).fit(x, y - x @ start)
            e = start + m.coef_ - tt
            meas[key].append(float((e**2 * lam).sum() + m.intercept_**2 + noise**2))
    truth = {k: float(np.mean(v)) for k, v in meas.items()}
    hits = 0
    for _ in range(4):
        x, y = draw(n)
        adv = advise(
            x, y, {"src": ts}, X_unlabelled=draw(3000)[0], misspecification=False, confidence=0.95
        )
        for k, src in (("finetune_ridge", "src"), ("scratch", None)):
            lo, hi = adv.predict_interval(src, k, n)
            hits += lo <= truth[k] <= hi
    assert hits >= 7


@pytest.mark.parametrize(("k", "d"), [(6, 9), (15, 4)])
def test_closed_form_leave_one_out_is_refitting_without_the_row(k, d):
    """The shared closed form (both Gram branches) against ridge refitted n times with its
    own intercept, for several alphas."""
    from finetune_theory._ridge_loo import gram_basis, loo_residuals

    rng = np.random.default_rng(k * d)
    x = rng.standard_normal((k, d)) + 2.0
    z = x @ rng.standard_normal(d) + rng.standard_normal(k)
    alphas = np.array([0.01, 0.7, 30.0])
    xc, zc = x - x.mean(0), z - z.mean()
    u, g = gram_basis(xc[None])
    res = loo_residuals(u, g, zc[None, None], alphas, 1.0 / k)[0][0, 0]
    for a_i, a in enumerate(alphas):
        for i in range(k):
            keep = np.arange(k) != i
            xk, zk = x[keep], z[keep]
            xm, zm = xk.mean(0), zk.mean()
            w = np.linalg.solve((xk - xm).T @ (xk - xm) + a * np.eye(d), (xk - xm).T @ (zk - zm))
            assert np.isclose(res[a_i, i], z[i] - zm - (x[i] - xm) @ w, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n", [8, 21])
def test_interpolants_spread_matches_brute_force(n):
    """The bootstrap's design-to-design spread of the interpolant's log test MSE (which widens
    ``finetune``'s interval) against numpy's pinv on fresh planted draws (just above n = d it
    is twice the user's ridge's: 0.93 against 0.48 here)."""
    d, noise = 18, 0.4
    lam = np.linspace(2.0, 0.2, d)
    energy = np.full(d, 0.05)
    res = loo_ridge_bootstrap(lam, energy[None], noise**2, np.array([n]), USER_ALPHAS, 48)
    rng = np.random.default_rng(5)
    logs = []
    for _ in range(400):
        x = rng.standard_normal((n, d)) * np.sqrt(lam) + 1.0
        delta = rng.standard_normal(d) * np.sqrt(energy)
        y = x @ delta + noise * rng.standard_normal(n)
        w = np.linalg.pinv(x - x.mean(0)) @ (y - y.mean())
        logs.append(np.log(((w - delta) ** 2 * lam).sum() + noise**2))
    brute = float(np.std(logs, ddof=1))
    assert res.interp_log_sd[0, 0] == pytest.approx(brute, rel=0.3), (res.interp_log_sd, brute)


def test_paired_tie_error_is_the_resampling_spread():
    """The tie rule's standard error of log(mean b / mean a) over shared rows (delta method)
    against the spread of that log ratio over resampled rows."""
    from finetune_theory.advisor._advise import _paired_log_se

    rng = np.random.default_rng(3)
    base = rng.chisquare(1, 60)
    a, b = base * 1.0, 3.0 * base * rng.uniform(0.6, 1.6, 60) + rng.chisquare(1, 60)
    se = _paired_log_se(
        {("s", "x"): a, ("s", "y"): b}, ("s", "x", 1, 1, 1, 9.0), ("s", "y", 1, 1, 1, 9.0)
    )
    idx = rng.integers(0, 60, (4000, 60))
    boot = np.log(b[idx].mean(1) / a[idx].mean(1))
    assert se == pytest.approx(float(np.std(boot)), rel=0.15)
    # without losses: the best pair's own sampling error
    assert _paired_log_se(None, ("s", "x", 1, 1, 1, 0.3), ("s", "y", 1, 1, 1, 9.0)) == 0.3
