"""Ridge towards the source and early stopping: estimator, deterministic equivalent, optimum."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory import linear
from finetune_theory.asymptotics import ridge_equivalent, solve_ridge_kappa
from finetune_theory.covariance import Covariance


def _problem(n, d, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    ts = rng.standard_normal(d)
    return x, y, ts


@pytest.mark.parametrize(("n", "d"), [(5, 12), (30, 8)])
def test_ridge_finetune_is_the_penalised_minimiser(n, d):
    x, y, ts = _problem(n, d)
    lam = 0.3
    th = linear.finetune(x, y, ts, ridge=lam)
    brute = ts + np.linalg.solve(x.T @ x + n * lam * np.eye(d), x.T @ (y - x @ ts))
    np.testing.assert_allclose(th, brute, rtol=1e-10, atol=1e-12)
    # gradient of (1/2n)||X th - y||^2 + (lam/2)||th - ts||^2 vanishes
    grad = x.T @ (x @ th - y) / n + lam * (th - ts)
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)


def test_ridge_zero_is_the_interpolation_limit_and_infinite_ridge_keeps_the_source():
    x, y, ts = _problem(6, 15, seed=1)
    np.testing.assert_array_equal(linear.finetune(x, y, ts, ridge=0.0), linear.finetune(x, y, ts))
    np.testing.assert_allclose(
        linear.finetune(x, y, ts, ridge=1e-10), linear.finetune(x, y, ts), atol=1e-7
    )
    np.testing.assert_allclose(linear.finetune(x, y, ts, ridge=1e12), ts, atol=1e-9)


def test_ridge_finetune_is_batched_and_rejects_negative_ridge():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 9))
    y = rng.standard_normal((3, 4))
    ts = rng.standard_normal(9)
    batch = linear.finetune(x, y, ts, ridge=0.2)
    for i in range(3):
        np.testing.assert_allclose(batch[i], linear.finetune(x[i], y[i], ts, ridge=0.2))
    with pytest.raises(ValueError, match="ridge"):
        linear.finetune(x, y, ts, ridge=-1.0)


def test_ridge_kappa_solves_its_equation():
    lam = 1.0 / np.arange(1, 101)
    ns = np.array([10, 50, 100, 300])
    for ridge in (1e-4, 0.01, 1.0):
        k = solve_ridge_kappa(lam, ns, ridge)
        lhs = k * (1 - (lam[None, :] / (lam[None, :] + k[:, None])).sum(axis=1) / ns)
        np.testing.assert_allclose(lhs, ridge, rtol=1e-9)
    # kappa grows with the ridge
    ks = solve_ridge_kappa(lam, np.full(5, 20), np.logspace(-3, 1, 5))
    assert np.all(np.diff(ks) > 0)


def _monte_carlo(lam, ts, tt, n, ridge, sigma, reps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((reps, n, lam.size)) * np.sqrt(lam)
    y = x @ tt + sigma * rng.standard_normal((reps, n))
    err = linear.finetune(x, y, ts, ridge=ridge) - tt
    risk = (err * err * lam).sum(axis=-1)
    return risk.mean(), risk.std(ddof=1) / np.sqrt(reps)


@pytest.mark.parametrize(
    ("n", "ridge", "sigma", "rel"),
    [
        (20, 0.05, 0.2, 0.04),
        (50, 0.1, 0.1, 0.04),
        (100, 0.01, 0.2, 0.02),
        (200, 0.01, 0.3, 0.02),
        (400, 0.001, 0.3, 0.02),
    ],
)
def test_ridge_deterministic_equivalent_against_monte_carlo(n, ridge, sigma, rel):
    d = 200
    lam = 1.0 / np.arange(1, d + 1)
    rng = np.random.default_rng(11)
    delta = np.zeros(d)
    delta[:10] = 0.3 * rng.standard_normal(10)
    delta += 0.02 * rng.standard_normal(d)
    ts, tt = delta, np.zeros(d)
    mc, se = _monte_carlo(lam, ts, tt, n, ridge, sigma, reps=150, seed=n)
    pred = linear.expected_risk(Covariance(lam), ts, tt, n, noise=sigma, ridge=ridge)
    # the accuracy target plus three Monte Carlo standard errors
    assert abs(pred - mc) <= rel * mc + 3 * se, (pred, mc, se)


def test_ridge_risk_limits():
    d = 60
    lam = 1.0 / np.arange(1, d + 1) ** 0.7
    cov = Covariance(lam)
    rng = np.random.default_rng(3)
    ts, tt = rng.standard_normal(d) / 8, rng.standard_normal(d) / 8
    ns = np.array([10, 30, 100])
    tiny = linear.expected_risk(cov, ts, tt, ns[:2], ridge=1e-9)
    zero = linear.expected_risk(cov, ts, tt, ns[:2])
    np.testing.assert_allclose(tiny, zero, rtol=1e-5)  # noiseless: the interpolation risk
    # with noise too: the ridge noise factor is the interpolation one at mu0 = n ridge -> 0
    noisy = linear.expected_risk(cov, ts, tt, ns[:2], noise=0.2, ridge=1e-9)
    np.testing.assert_allclose(
        noisy, linear.expected_risk(cov, ts, tt, ns[:2], noise=0.2), rtol=1e-5
    )
    own = float(((ts - tt) ** 2 * lam).sum())
    huge = linear.expected_risk(cov, ts, tt, ns, noise=0.3, ridge=1e9)
    np.testing.assert_allclose(huge, own, rtol=1e-6)
    eq = ridge_equivalent(cov, ns, 0.05)
    assert np.all((eq.rho > 0) & (eq.rho < 1))


def test_optimal_ridge_is_a_minimum_and_matches_the_isotropic_formula():
    # the first-order optimum sigma^2 d / (n ||Delta||^2); the finite-size weights move it by
    # O(1 / n (1 - rho)): 0.4 % at d = 1500, n = 500, 1.8 % at d = 150, n = 300 (there 3000
    # Monte Carlo designs put the risk at both ridges equal to 3e-6 relative: the optimum is
    # flat, and the prediction at it is within 0.3 % of the Monte Carlo risk)
    for d, n, sigma, tol in ((1500, 500, 0.5, 1e-2), (150, 300, 0.2, 2.5e-2)):
        rng = np.random.default_rng(4)
        tt = rng.standard_normal(d) / np.sqrt(d)
        ts = np.zeros(d)
        lam = linear.optimal_ridge(np.eye(d), ts, tt, n, noise=sigma)
        formula = sigma**2 * d / (n * float(tt @ tt))
        assert lam == pytest.approx(formula, rel=tol)
    d = 150
    rng = np.random.default_rng(4)
    tt = rng.standard_normal(d) / np.sqrt(d)
    ts = np.zeros(d)
    lam_i = 1.0 / np.arange(1, d + 1)
    cov = Covariance(lam_i)
    best = linear.optimal_ridge(cov, ts + 0.1, tt, 40, noise=0.3)
    at = linear.expected_risk(cov, ts + 0.1, tt, 40, noise=0.3, ridge=best)
    for f in (0.5, 2.0):
        assert at <= linear.expected_risk(cov, ts + 0.1, tt, 40, noise=0.3, ridge=best * f)
    # noiseless below the rank: interpolation is best
    assert linear.optimal_ridge(np.eye(d), ts, tt, 40, noise=0.0) == 0.0
    assert linear.optimal_stopping_time(np.eye(d), ts, tt, 40, noise=0.0) == np.inf


def test_early_stopping_approximation_against_exact_gradient_flow():
    d, n, sigma = 120, 60, 0.2
    rng = np.random.default_rng(5)
    cov = np.ones(d)
    ts = rng.standard_normal(d) * 0.05
    tt = np.zeros(d)
    reps = 60
    x = rng.standard_normal((reps, n, d))
    y = sigma * rng.standard_normal((reps, n))
    s = np.swapaxes(x, 1, 2) @ x / n
    w, v = np.linalg.eigh(s)
    grad = np.einsum("rnd,rn->rd", x, y - x @ ts) / n
    gv = np.einsum("rdk,rd->rk", v, grad)
    t = linear.optimal_stopping_time(Covariance(cov), ts, tt, n, noise=sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        filt = np.where(w > 1e-12, (1 - np.exp(-t * w)) / np.where(w > 1e-12, w, 1.0), t)
    theta = ts + np.einsum("rdk,rk->rd", v, filt * gv)
    exact = float(((theta - tt) ** 2).sum(axis=1).mean())
    pred = linear.expected_risk_early_stopping(Covariance(cov), ts, tt, n, t, noise=sigma)
    assert pred == pytest.approx(exact, rel=0.15)
    # t -> 0 keeps the source, t = inf is the interpolation risk
    own = float(ts @ ts)
    assert linear.expected_risk_early_stopping(np.eye(d), ts, tt, n, 1e-9) == pytest.approx(own)
    assert linear.expected_risk_early_stopping(
        np.eye(d), ts, tt, n, np.inf, noise=sigma
    ) == pytest.approx(linear.expected_risk(np.eye(d), ts, tt, n, noise=sigma))
    with pytest.raises(ValueError, match="t"):
        linear.expected_risk_early_stopping(np.eye(d), ts, tt, n, -1.0)
