"""Deterministic equivalents: kappa, per-direction weights, noise factor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from finetune_theory import asymptotics as asy
from finetune_theory import covariance as cv


def _kappa_brentq(lam: np.ndarray, n: int) -> float:
    """An independent root finder for n = sum lam / (lam + kappa)."""
    lam = lam[lam > 0]
    return brentq(lambda k: np.sum(lam / (lam + k)) - n, 1e-300, lam.sum() / n * 2, xtol=1e-300)


def _projected(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """P_perp theta = theta - X^T (X X^T)^{-1} X theta for a batch of designs (n < d)."""
    gram = x @ np.swapaxes(x, -1, -2)
    coef = np.linalg.solve(gram, (x @ theta)[..., None])[..., 0]
    return theta - np.einsum("rnd,rn->rd", x, coef)


# ------------------------------------------------------------------ kappa
def test_numerical_rank():
    assert asy.numerical_rank(np.array([2.0, 1.0, 0.0])) == 2
    assert asy.numerical_rank(np.array([1.0, 1e-13])) == 1
    assert asy.numerical_rank(np.zeros(3)) == 0


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(2, 60),
    a=st.floats(0.0, 3.0),
    frac=st.floats(0.02, 0.98),
    zeros=st.integers(0, 5),
)
def test_kappa_solves_its_equation(d, a, frac, zeros):
    lam = np.r_[np.arange(1, d + 1, dtype=float) ** -a, np.zeros(zeros)]
    n = max(1, min(d - 1, round(frac * d)))
    kappa = float(asy.solve_kappa(lam, n)[0])
    assert kappa > 0
    assert np.sum(lam / (lam + kappa)) == pytest.approx(n, rel=1e-12)
    assert kappa == pytest.approx(_kappa_brentq(lam, n), rel=1e-9)


def test_kappa_isotropic_closed_form_monotone_and_zero_above_rank():
    ns = np.arange(1, 12)
    kappa = asy.solve_kappa(np.full(8, 2.5), ns)
    assert kappa.shape == ns.shape
    np.testing.assert_allclose(kappa[:7], 2.5 * (8 / ns[:7] - 1), rtol=1e-12)
    np.testing.assert_array_equal(kappa[7:], 0.0)
    lam = np.arange(1, 301, dtype=float) ** -1.5
    k = asy.solve_kappa(lam, np.arange(1, 300))
    assert np.all(np.diff(k) < 0)
    # unsorted eigenvalues give the same root
    rng = np.random.default_rng(0)
    assert asy.solve_kappa(rng.permutation(lam), 40)[0] == pytest.approx(k[39], rel=1e-14)


def test_kappa_bad_n():
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        asy.solve_kappa(np.ones(3), 0)
    with pytest.raises(ValueError, match=r"n must hold whole numbers"):
        asy.solve_kappa(np.ones(3), 1.5)


# ------------------------------------------------------------------ weights
def test_isotropic_equivalent_is_the_exact_formula():
    d, s = 20, 3.0
    ns = np.array([1, 5, 18, 19, 20, 21, 22, 30])
    eq = asy.deterministic_equivalent(cv.isotropic(d, s), ns)
    assert eq.exact
    assert eq.rank == d
    below = ns < d
    full = np.ones(d)
    np.testing.assert_allclose(eq.bias_weights[below], np.outer(s * (1 - ns[below] / d), full))
    np.testing.assert_allclose(eq.perp_weights[below], np.outer(1 - ns[below] / d, full))
    np.testing.assert_allclose(eq.rho[below], ns[below] / d, rtol=1e-12)
    np.testing.assert_array_equal(eq.bias_weights[~below], 0.0)
    # exact Wishart noise factors: n/(d-n-1), inf at n in {d-1, d, d+1}, d/(n-d-1)
    want = [1 / 18, 5 / 14, 18 / 1, np.inf, np.inf, np.inf, 20 / 1, 20 / 9]
    np.testing.assert_allclose(eq.noise_factor, want, rtol=1e-12)


def test_rank_deficient_isotropic_on_its_range():
    c = cv.Covariance(np.array([2.0, 2.0, 2.0, 2.0, 0.0, 0.0]))
    eq = asy.deterministic_equivalent(c, [1, 2, 4, 7])
    assert eq.exact and eq.rank == 4
    np.testing.assert_allclose(eq.bias_weights[0], [1.5, 1.5, 1.5, 1.5, 0, 0])
    np.testing.assert_allclose(eq.bias_weights[1], [1.0, 1.0, 1.0, 1.0, 0, 0])
    np.testing.assert_allclose(eq.noise_factor, [1 / 2, 2 / 1, np.inf, 4 / 2])
    # directions of zero variance are never seen by the data
    np.testing.assert_array_equal(eq.perp_weights[:, 4:], 1.0)
    np.testing.assert_array_equal(eq.perp_weights[2:, :4], 0.0)


def test_anisotropic_weights_from_an_independent_kappa():
    lam = np.arange(1, 51, dtype=float) ** -1.2
    c = cv.rotated(cv.Covariance(lam), seed=1)
    n = 7
    eq = asy.deterministic_equivalent(c, n)
    assert not eq.exact
    k = _kappa_brentq(lam, n)
    rho = np.sum(lam**2 / (lam + k) ** 2) / n
    np.testing.assert_allclose(eq.kappa, [k], rtol=1e-9)
    np.testing.assert_allclose(eq.rho, [rho], rtol=1e-9)
    np.testing.assert_allclose(
        eq.bias_weights[0], k**2 * lam / (lam + k) ** 2 / (1 - rho), rtol=1e-8
    )
    np.testing.assert_allclose(eq.perp_weights[0], k / (lam + k), rtol=1e-9)
    # the finite-size form rho / (1 - rho - rho / n) (exact for isotropic covariances)
    np.testing.assert_allclose(eq.noise_factor, [rho / (1 - rho - rho / n)], rtol=1e-8)


def test_head_directions_are_learned_tail_directions_kept():
    # lambda >> kappa: w ~ kappa^2 / lambda / (1 - rho); lambda << kappa: w ~ lambda / (1 - rho)
    c = cv.spiked(200, [1000.0, 1000.0, 1000.0], base=0.01)
    eq = asy.deterministic_equivalent(c, 5)
    k, rho = eq.kappa[0], eq.rho[0]
    assert 1000.0 / k > 500 and 0.01 / k < 0.02
    assert eq.bias_weights[0, 0] == pytest.approx(k**2 / 1000.0 / (1 - rho), rel=0.01)
    assert eq.bias_weights[0, -1] == pytest.approx(0.01 / (1 - rho), rel=0.05)


# ------------------------------------------------------------------ against Monte Carlo
@pytest.mark.parametrize(("d", "a", "allowance"), [(30, 1.0, 0.01), (200, 2.0, 0.01)])
def test_perp_weights_against_monte_carlo(d, a, allowance):
    """E ||P_perp theta||^2 ~ sum_i kappa/(lambda_i + kappa) <theta, v_i>^2.

    Tolerance: 4 standard errors plus the asymptotic allowance measured in docs/linear.md
    (at most 0.2 % at these sizes).
    """
    n, repeats = d // 10, 800
    c = cv.power_law(d, a)
    theta = np.random.default_rng(0).standard_normal(d)
    x = c.sample(n, seed=1, batch=repeats)
    values = np.sum(_projected(x, theta) ** 2, axis=-1)
    want = float(asy.deterministic_equivalent(c, n).perp_weights[0] @ theta**2)
    se = values.std(ddof=1) / np.sqrt(repeats)
    assert abs(values.mean() - want) < 4 * se + allowance * want


def test_noise_factor_against_monte_carlo():
    """Anisotropic noise term sigma^2 rho/(1 - rho - rho/n) vs E ||X^+ xi||^2_Sigma (sigma = 1).

    Allowance 5 % at d = 200, a = 1.5 (measured error in docs/linear.md: below 2.5 %).
    """
    d, n, repeats = 200, 20, 800
    c = cv.power_law(d, 1.5)
    x = c.sample(n, seed=2, batch=repeats)
    xi = np.random.default_rng(3).standard_normal((repeats, n))
    gram = x @ np.swapaxes(x, -1, -2)
    w = np.einsum("rnd,rn->rd", x, np.linalg.solve(gram, xi[..., None])[..., 0])
    values = c.quad(w)
    want = float(asy.deterministic_equivalent(c, n).noise_factor[0])
    se = values.std(ddof=1) / np.sqrt(repeats)
    assert abs(values.mean() - want) < 4 * se + 0.05 * want


@pytest.mark.parametrize("spectrum", ["power_law", "spiked"])
def test_noise_factor_up_to_the_rank_against_monte_carlo(spectrum):
    """The finite-size noise factor through n = d, anisotropic (1% allowance beyond the noise).

    The first-order rho / (1 - rho) is about 10% low at n = d - 10 and diverges only at n = d;
    the corrected form stays within the Monte Carlo error (measured table: docs/linear.md, 3).
    """
    d, repeats = 120, 300
    c = cv.power_law(d, 1.5) if spectrum == "power_law" else cv.spiked(d, (30.0, 10.0))
    ns = np.array([10, 60, 110, 115])
    eq = asy.deterministic_equivalent(c, np.arange(1, d + 3))
    # the expectation diverges from n = d - 1 to n = d + 1 whatever the covariance
    assert np.all(np.isinf(eq.noise_factor[d - 2 : d + 1]))
    assert np.all(np.isfinite(eq.noise_factor[: d - 2]))
    rng = np.random.default_rng(11)
    for n in ns:
        x = c.sample(int(n), rng, batch=repeats)
        xi = rng.standard_normal((repeats, int(n)))
        gram = x @ np.swapaxes(x, -1, -2)
        w = np.einsum("rnd,rn->rd", x, np.linalg.solve(gram, xi[..., None])[..., 0])
        values = c.quad(w)
        se = values.std(ddof=1) / np.sqrt(repeats)
        want = float(eq.noise_factor[n - 1])
        assert abs(values.mean() - want) < 3.5 * se + 0.01 * want, (n, values.mean(), want, se)


def test_vectorised_over_n_matches_one_at_a_time():
    c = cv.spiked(40, [20.0, 5.0], base=0.3)
    ns = np.array([3, 10, 39, 40, 45])
    eq = asy.deterministic_equivalent(c, ns)
    for j, n in enumerate(ns):
        one = asy.deterministic_equivalent(c, int(n))
        np.testing.assert_allclose(one.bias_weights[0], eq.bias_weights[j], rtol=1e-12)
        np.testing.assert_allclose(one.noise_factor[0], eq.noise_factor[j], rtol=1e-12)


def test_equivalent_bad_input():
    with pytest.raises(ValueError, match=r"cov must be positive semi-definite"):
        asy.deterministic_equivalent(np.array([[1.0, 2.0], [2.0, 1.0]]), 1)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        asy.deterministic_equivalent(cv.isotropic(3), [2, -1])


# ------------------------------------------------------------- pinv_trace
@pytest.mark.parametrize("n", [8, 60])
def test_pinv_trace_matches_monte_carlo_on_both_sides_of_the_rank(n):
    # E ||X^+||_F^2: exact Wishart moments for an isotropic covariance, either side of d
    cov = cv.isotropic(30, scale=2.0)
    eq = asy.deterministic_equivalent(cov, n)
    x = cov.sample(n, 7, batch=3000)
    draws = np.sum(np.linalg.pinv(x) ** 2, axis=(-2, -1))
    se = draws.std(ddof=1) / np.sqrt(draws.size)
    assert abs(draws.mean() - eq.pinv_trace[0]) < 4 * se


def test_pinv_trace_is_inverse_kappa_for_a_decaying_spectrum():
    cov = cv.power_law(400, 1.0)
    eq = asy.deterministic_equivalent(cov, 40)
    assert eq.pinv_trace[0] == pytest.approx(1.0 / eq.kappa[0], rel=1e-12)
    x = cov.sample(40, 3, batch=200)
    mc = np.mean(np.sum(np.linalg.pinv(x) ** 2, axis=(-2, -1)))
    assert mc == pytest.approx(eq.pinv_trace[0], rel=0.05)


def test_zero_covariance_costs_no_noise() -> None:
    # Sigma = 0: every design is X = 0, X^+ = 0 and the risk of any weights is 0
    eq = asy.deterministic_equivalent(np.zeros((4, 4)), [1, 2, 3, 7])
    np.testing.assert_array_equal(eq.noise_factor, 0.0)
    np.testing.assert_array_equal(eq.pinv_trace, 0.0)
    np.testing.assert_array_equal(eq.bias_weights, 0.0)
