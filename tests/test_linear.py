"""Fine-tuning in linear regression: the limit of GD, risks, sample complexity, similarity.

Oracles used here are independent of the code under test: a KKT system and the normal
equations for the limit, a rank factorisation for the pseudo-inverse, gradient descent itself,
the average over the signed-permutation group and scipy's inverse-Wishart means for the exact
isotropic risk, and Monte Carlo (tolerances from its standard error) for the expectations.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import invwishart

from finetune_theory import asymptotics as asy
from finetune_theory import covariance as cv
from finetune_theory import linear as lin
from finetune_theory._random import as_generator


def _design(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal(d)


def _closest_interpolant_kkt(x: np.ndarray, y: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """argmin ||theta - ts||^2 s.t. X theta = y, from the KKT system (X of full row rank)."""
    n, d = x.shape
    kkt = np.block([[np.eye(d), x.T], [x, np.zeros((n, n))]])
    return np.linalg.solve(kkt, np.r_[ts, y])[:d]


# ============================================================== the limit of GD
def test_docstring_example():
    out = lin.finetune(np.array([[1.0, 0.0, 0.0]]), np.array([2.0]), np.array([0.0, 1.0, 1.0]))
    np.testing.assert_allclose(out, [2.0, 1.0, 1.0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), extra=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_finetune_is_the_closest_interpolant_when_n_below_d(n, extra, seed):
    d = n + extra
    x, y, ts = _design(n, d, seed)
    theta = lin.finetune(x, y, ts)
    np.testing.assert_allclose(x @ theta, y, atol=1e-9 * (1 + np.abs(y).max()))
    np.testing.assert_allclose(theta, _closest_interpolant_kkt(x, y, ts), atol=1e-8)
    # any other interpolant theta + z, z in the null space of X, is farther from the source
    z = np.random.default_rng(seed + 1).standard_normal(d)
    z -= np.linalg.lstsq(x, x @ z, rcond=None)[0]  # remove the row-space part
    np.testing.assert_allclose(x @ z, 0.0, atol=1e-9 * (1 + np.abs(z).max()))
    near = np.linalg.norm(theta - ts)
    far = np.linalg.norm(theta + z - ts)
    assert far**2 == pytest.approx(near**2 + np.linalg.norm(z) ** 2, rel=1e-8, abs=1e-10)
    assert far >= near


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 10), extra=st.integers(0, 15), seed=st.integers(0, 2**16))
def test_finetune_is_least_squares_when_n_at_least_d(d, extra, seed):
    n = d + extra
    x, y, ts = _design(n, d, seed)
    want = np.linalg.solve(x.T @ x, x.T @ y)  # normal equations; the start is forgotten
    np.testing.assert_allclose(lin.finetune(x, y, ts), want, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(lin.finetune(x, y, np.zeros(d)), want, rtol=1e-7, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 15), d=st.integers(2, 15), rank=st.integers(1, 4), seed=st.integers(0, 999))
def test_rank_deficient_design_gives_the_pseudo_inverse_limit(n, d, rank, seed):
    rank = min(rank, n - 1, d - 1) if min(n, d) > 1 else 1
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, rank)), rng.standard_normal((rank, d))
    x, y, ts = a @ b, rng.standard_normal(n), rng.standard_normal(d)
    # X = A B with full-rank factors: X^+ = B^T (B B^T)^-1 (A^T A)^-1 A^T
    pinv = b.T @ np.linalg.solve(b @ b.T, np.linalg.solve(a.T @ a, a.T))
    want = ts + pinv @ (y - x @ ts)
    np.testing.assert_allclose(lin.finetune(x, y, ts), want, rtol=1e-6, atol=1e-7)


def test_large_rank_deficient_design_is_not_swamped_by_rounding():
    # rounding leaves singular values near 1e-15 s_max on a 1500 x 300 rank-30 design; a
    # pseudo-inverse that inverts them returns weights of size 1e10 instead of the limit
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1500, 30)), rng.standard_normal((30, 300))
    x, y, ts = a @ b, rng.standard_normal(1500), rng.standard_normal(300)
    pinv = b.T @ np.linalg.solve(b @ b.T, np.linalg.solve(a.T @ a, a.T))
    want = ts + pinv @ (y - x @ ts)
    np.testing.assert_allclose(lin.finetune(x, y, ts), want, rtol=1e-8, atol=1e-8)


def test_finetune_batched_equals_one_at_a_time():
    rng = np.random.default_rng(2)
    x, y, ts = rng.standard_normal((3, 4, 6)), rng.standard_normal((3, 4)), rng.standard_normal(6)
    out = lin.finetune(x, y, ts)
    assert out.shape == (3, 6)
    for i in range(3):
        np.testing.assert_allclose(out[i], lin.finetune(x[i], y[i], ts), rtol=1e-12)
    # one design shared by several label vectors
    assert lin.finetune(x[0], y, ts).shape == (3, 6)


# ------------------------------------------------------------------ gradient descent
@pytest.mark.parametrize(("n", "d"), [(8, 30), (40, 10), (15, 15)])
def test_train_ends_at_finetune(n, d):
    x, y, ts = _design(n, d, seed=n * d)
    if n == d:  # square but rank 5: the pseudo-inverse limit
        x = x[:, :5] @ np.random.default_rng(0).standard_normal((5, d))
    res = lin.train(x, y, ts, tol=1e-24)
    want = lin.finetune(x, y, ts)
    best = 0.5 * np.mean((x @ want - y) ** 2)
    # the stopping rule is on the loss: at a stationary point (least squares) it stops once a
    # step changes the loss by rounding only, so the loss is right to ~1e-15 and the weights
    # to about the square root of that
    if n < d:
        assert float(res.loss) <= 1e-24 * 0.5 * np.mean(y**2)
    else:
        assert float(res.loss) - best <= 1e-13 * best
    rel = 1e-8 if n < d else 1e-6
    assert np.linalg.norm(res.theta - want) <= rel * np.linalg.norm(want)
    assert res.steps > 0 and res.converged
    assert bool(res.interpolated) == (n < d)  # least squares stops at a stationary point
    top = np.linalg.norm(x, 2) ** 2 / n
    assert float(res.lr) == pytest.approx(1 / top)
    # with lr = 1/L the training loss never goes up
    losses = [value for _, value in res.history]
    assert np.all(np.diff(losses) <= 1e-12 * losses[0])
    if n < d:
        assert float(res.loss) < 1e-18 * (1 + float(np.sum(y**2)))


def test_train_batched():
    rng = np.random.default_rng(3)
    x, y, ts = rng.standard_normal((4, 6, 20)), rng.standard_normal((4, 6)), rng.standard_normal(20)
    res = lin.train(x, y, ts, tol=1e-20)
    want = lin.finetune(x, y, ts)
    assert res.theta.shape == (4, 20) and res.steps.shape == (4,) and res.lr.shape == (4,)
    err = np.linalg.norm(res.theta - want, axis=-1) / np.linalg.norm(want, axis=-1)
    assert np.all(err <= 1e-8)
    single = lin.train(x[2], y[2], ts, tol=1e-20)
    np.testing.assert_allclose(single.theta, res.theta[2], rtol=1e-12)
    assert int(single.steps) == int(res.steps[2])


def test_train_stops_at_the_first_step_below_tol_times_the_zero_loss():
    # oracle: the same iteration written out as a plain loop
    x, y, ts = _design(8, 30, seed=21)
    tol, lr = 1e-6, 0.5 / (np.linalg.norm(x, 2) ** 2 / 8)
    res = lin.train(x, y, ts, lr=lr, tol=tol)
    zero = 0.5 * np.mean(y**2)
    theta, steps = ts.copy(), 0
    while 0.5 * np.mean((x @ theta - y) ** 2) > tol * zero:
        theta -= lr * x.T @ (x @ theta - y) / 8
        steps += 1
    assert int(res.steps) == steps and res.interpolated
    np.testing.assert_allclose(res.theta, theta, rtol=1e-12)
    assert float(res.loss) <= tol * zero < res.loss_history[-2]
    assert res.initial_loss == pytest.approx(0.5 * np.mean((x @ ts - y) ** 2))
    assert res.start is not res.theta and np.array_equal(res.start, ts)
    assert res.movement == pytest.approx(np.linalg.norm(theta - ts) / np.linalg.norm(ts))


def test_train_at_an_interpolating_start_takes_no_step():
    x, _, ts = _design(3, 8, seed=4)
    res = lin.train(x, x @ ts, ts)
    assert int(res.steps) == 0
    np.testing.assert_array_equal(res.theta, ts)


@pytest.mark.parametrize("factor", [2.5, 10.0, 1e300])
def test_train_diverges_for_a_large_step(factor):
    x, y, ts = _design(10, 20, seed=5)
    lr = factor / (np.linalg.norm(x, 2) ** 2 / 10)
    with pytest.raises(lin.DivergenceError, match=r"diverged at step \d+ .* use a smaller lr"):
        lin.train(x, y, ts, lr=lr)


def test_train_reports_too_few_steps():
    x, y, ts = _design(10, 20, seed=6)
    with pytest.raises(lin.ConvergenceError, match=r"1 of 1 problem\(s\) did not converge in 3"):
        lin.train(x, y, ts, max_steps=3)
    loose = lin.train(x, y, ts, max_steps=3, strict=False)
    assert not loose.converged and int(loose.steps) == 3


# ============================================================== risks
def test_excess_risk_is_the_sigma_norm():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 5))
    m = a @ a.T
    th, tt = rng.standard_normal((3, 5)), rng.standard_normal(5)
    want = np.einsum("bi,ij,bj->b", th - tt, m, th - tt)
    np.testing.assert_allclose(lin.excess_risk(m, th, tt), want, rtol=1e-12)
    assert isinstance(lin.excess_risk(cv.from_matrix(m), th[0], tt), float)


# ------------------------------------------------------------------ isotropic: exact
def _signed_permutations(d: int):
    for perm in itertools.permutations(range(d)):
        for signs in itertools.product((1.0, -1.0), repeat=d):
            q = np.zeros((d, d))
            q[np.arange(d), perm] = signs
            yield q


@pytest.mark.parametrize("n", [1, 2, 3])
def test_isotropic_bias_from_the_group_average_of_p_perp(n):
    """An exact oracle for (1 - n/d) ||Delta||^2, independent of Monte Carlo.

    An isotropic Gaussian design is invariant under X -> X Q^T for every signed permutation
    Q, so E[P_perp] equals E of the group average of Q P_perp Q^T. That average is computed
    here for one draw and turns out to be (1 - n/d) I exactly, hence the closed form.
    """
    d, s = 4, 1.7
    x = cv.isotropic(d, s).sample(n, seed=n)
    p_perp = np.eye(d) - np.linalg.pinv(x) @ x
    group = list(_signed_permutations(d))
    assert len(group) == 2**d * math.factorial(d)
    avg = sum(q @ p_perp @ q.T for q in group) / len(group)
    np.testing.assert_allclose(avg, (1 - n / d) * np.eye(d), atol=1e-12)
    delta = np.array([0.3, -1.0, 2.0, 0.5])
    want = s * delta @ avg @ delta  # risk weights the projection by Sigma = s I
    got = lin.expected_risk(cv.isotropic(d, s), delta, np.zeros(d), n)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(("d", "n", "s"), [(30, 5, 1.0), (30, 20, 2.5), (12, 40, 0.3)])
def test_isotropic_noise_term_is_the_inverse_wishart_mean(d, n, s):
    """sigma^2 n/(d-n-1) below d and sigma^2 d/(n-d-1) above, from scipy's inverse Wishart.

    Below d: risk = s xi^T (X X^T)^-1 xi with X X^T ~ W_n(d, s I). Above d: risk =
    s xi^T X (X^T X)^-2 X^T xi, mean s sigma^2 tr E (X^T X)^-1 with X^T X ~ W_d(n, s I).
    """
    sigma = 0.7
    if n < d:
        mean_inv = invwishart(df=d, scale=np.eye(n) / s).mean()
    else:
        mean_inv = invwishart(df=n, scale=np.eye(d) / s).mean()
    want = s * sigma**2 * np.trace(mean_inv)
    zero = np.zeros(d)
    got = lin.expected_risk(cv.isotropic(d, s), zero, zero, n, noise=sigma)
    assert got == pytest.approx(want, rel=1e-12)
    # the Monte Carlo agrees within 4 standard errors
    sim = lin.simulate_risk(cv.isotropic(d, s), zero, zero, n, noise=sigma, repeats=3000, seed=1)
    assert abs(sim.mean - got) < 4 * sim.stderr


def test_isotropic_full_risk_against_monte_carlo():
    d, s, sigma = 40, 2.0, 0.5
    c = cv.isotropic(d, s)
    rng = np.random.default_rng(8)
    ts, tt = rng.standard_normal(d), rng.standard_normal(d)
    ns = np.array([4, 15, 28, 60])
    exact = lin.expected_risk(c, ts, tt, ns, noise=sigma)
    delta2 = np.sum((ts - tt) ** 2)
    formula = np.where(ns < d, s * (1 - ns / d) * delta2, 0.0) + sigma**2 * np.where(
        ns < d, ns / (d - ns - 1), d / (ns - d - 1)
    )
    np.testing.assert_allclose(exact, formula, rtol=1e-12)
    sim = lin.simulate_risk(c, ts, tt, ns, noise=sigma, repeats=1500, seed=2)
    assert np.all(np.abs(sim.mean - exact) < 4 * sim.stderr)


def test_isotropic_edges():
    c = cv.isotropic(10)
    ts, tt = np.ones(10), np.zeros(10)
    risk = lin.expected_risk(c, ts, tt, [9, 10, 11, 12], noise=1.0)
    assert np.all(np.isinf(risk[:3])) and risk[3] == pytest.approx(10.0)
    np.testing.assert_array_equal(lin.expected_risk(c, ts, tt, [10, 11, 50]), 0.0)
    # training from scratch with n = 0 samples would be the full risk; n = 1 removes 1/d of it
    assert lin.expected_risk(c, ts, tt, 1) == pytest.approx(0.9 * 10)


# ------------------------------------------------------------------ anisotropic: asymptotic
#: asymptotic allowance of the deterministic equivalent (relative), from the errors measured
#: in docs/linear.md (power law, n = d/10, a <= 2): below 13 % at d = 30, 2.5 % at d = 200
ALLOWANCE = {30: 0.15, 200: 0.03}


@pytest.mark.parametrize(("d", "a", "noise"), [(30, 2.0, 0.0), (200, 1.0, 0.0), (200, 2.0, 0.3)])
def test_deterministic_equivalent_against_monte_carlo(d, a, noise):
    n, repeats = d // 10, 1000
    c = cv.power_law(d, a)
    delta = np.random.default_rng(9).standard_normal(d)
    zero = np.zeros(d)
    want = lin.expected_risk(c, delta, zero, n, noise=noise)
    sim = lin.simulate_risk(c, delta, zero, n, noise=noise, repeats=repeats, seed=3)
    assert abs(sim.mean - want) < 4 * sim.stderr + ALLOWANCE[d] * want


def test_the_same_distance_gives_very_different_risks():
    # a unit difference along the top eigenvector is learned from 10 samples (risk far below
    # the source's own risk lambda_1); along the last one it is kept, inflated by 1/(1 - rho)
    c = cv.power_law(100, 2.0)
    top, tail, zero = np.eye(100)[0], np.eye(100)[-1], np.zeros(100)
    rho = float(asy.deterministic_equivalent(c, 10).rho[0])
    assert lin.expected_risk(c, top, zero, 10) < 0.01 * 1.0
    # (the finite-size weight of a barely seen direction is within 2 % of lambda / (1 - rho))
    assert lin.expected_risk(c, tail, zero, 10) == pytest.approx(1e-4 / (1 - rho), rel=0.02)
    sim = lin.simulate_risk(c, top, zero, 10, repeats=400, seed=4)
    assert sim.mean < 0.01


# ------------------------------------------------------------------ shapes and seeds
def test_expected_risk_shapes():
    c = cv.power_law(20, 1.0)
    ts, tt = np.ones(20), np.zeros(20)
    assert isinstance(lin.expected_risk(c, ts, tt, 5), float)
    out = lin.expected_risk(c, ts, tt, np.array([2, 5, 30]))
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    assert out[0] == pytest.approx(lin.expected_risk(c, ts, tt, 2))
    assert lin.expected_risk(c, ts, tt, [5]).shape == (1,)
    # noiseless learning curve falls to zero at the rank
    assert np.all(np.diff(lin.expected_risk(c, ts, tt, np.arange(1, 21))) < 0)


def test_simulate_risk_seeds_and_shapes():
    c = cv.power_law(15, 1.0)
    ts, tt = np.ones(15), np.zeros(15)
    a = lin.simulate_risk(c, ts, tt, [3, 20], noise=0.2, repeats=30, seed=5)
    b = lin.simulate_risk(c, ts, tt, [3, 20], noise=0.2, repeats=30, seed=5)
    other = lin.simulate_risk(c, ts, tt, [3, 20], noise=0.2, repeats=30, seed=6)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.stderr, b.stderr)
    assert not np.allclose(a.mean, other.mean)
    assert a.mean.shape == a.stderr.shape == (2,) and a.repeats == 30
    np.testing.assert_array_equal(a.n, [3, 20])
    one = lin.simulate_risk(c, ts, tt, 4, repeats=5)
    # scalar in, scalar out: a single n gives floats, the same as the first entry of a curve
    assert isinstance(one.mean, float) and isinstance(one.stderr, float) and one.n == 4
    assert one.mean == lin.simulate_risk(c, ts, tt, [4, 9], repeats=5).mean[0]


def test_simulate_risk_batched_equals_a_loop_over_the_same_draws():
    """The batch solves the same problems as one-by-one least squares on the same draws."""
    c = cv.rotated(cv.power_law(12, 1.0), seed=1)
    rng0 = np.random.default_rng(2)
    ts, tt = rng0.standard_normal(12), rng0.standard_normal(12)
    ns, repeats, sigma = [4, 30], 25, 0.4
    sim = lin.simulate_risk(c, ts, tt, ns, noise=sigma, repeats=repeats, seed=7)
    rng = as_generator(7)
    for j, n in enumerate(ns):
        x = c.sample(n, seed=rng, batch=repeats)
        y = x @ tt + sigma * rng.standard_normal((repeats, n))
        risks = []
        for r in range(repeats):
            step = np.linalg.lstsq(x[r], y[r] - x[r] @ ts, rcond=None)[0]  # min-norm solution
            diff = ts + step - tt
            risks.append(diff @ c.matrix @ diff)
        assert sim.mean[j] == pytest.approx(np.mean(risks), rel=1e-9)
        assert sim.stderr[j] == pytest.approx(np.std(risks, ddof=1) / np.sqrt(repeats), rel=1e-7)


# ------------------------------------------------------------------ rotation invariance
def test_common_rotation_leaves_everything_invariant():
    d, n = 16, 5
    c = cv.power_law(d, 1.0)
    q = cv.random_rotation(d, seed=11)
    turned = cv.rotated(c, seed=11)
    np.testing.assert_allclose(turned.matrix, c.rotate(q).matrix, atol=1e-14)
    rng = np.random.default_rng(12)
    ts, tt = rng.standard_normal(d), rng.standard_normal(d)
    x, y = c.sample(n, seed=0), rng.standard_normal(n)
    theta = lin.finetune(x, y, ts)
    np.testing.assert_allclose(lin.finetune(x @ q.T, y, q @ ts), q @ theta, atol=1e-12)
    assert lin.excess_risk(turned, q @ theta, q @ tt) == pytest.approx(
        lin.excess_risk(c, theta, tt), rel=1e-10
    )
    for cov_r in (turned, turned.matrix):
        np.testing.assert_allclose(
            lin.expected_risk(cov_r, q @ ts, q @ tt, [2, 5, 15, 20], noise=0.1),
            lin.expected_risk(c, ts, tt, [2, 5, 15, 20], noise=0.1),
            rtol=1e-9,
        )
    kwargs = {"noise": 0.3, "repeats": 20, "seed": 13}
    np.testing.assert_allclose(
        lin.simulate_risk(turned, q @ ts, q @ tt, [3, 25], **kwargs).mean,
        lin.simulate_risk(c, ts, tt, [3, 25], **kwargs).mean,
        rtol=1e-9,
    )


# ============================================================== sample complexity
def _brute_force(cov, ts, tt, eps, noise, top):
    # n = 0 is the source itself: no data, the risk is ||theta_S - theta_T||^2_Sigma
    if cv.as_covariance(cov).quad(np.asarray(ts) - tt) <= eps:
        return 0
    ns = np.arange(1, top)
    risk = lin.expected_risk(cov, ts, tt, ns, noise=noise)
    hits = np.flatnonzero(risk <= eps)
    return int(ns[hits[0]]) if hits.size else None


@pytest.mark.parametrize(
    "cov", [cv.isotropic(25, 2.0), cv.power_law(25, 1.5), cv.rotated(cv.spiked(25, [9.0, 4.0]))]
)
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_sample_complexity_is_the_smallest_n(cov, noise):
    rng = np.random.default_rng(14)
    ts, tt = rng.standard_normal(25), rng.standard_normal(25)
    start = lin.expected_risk(cov, ts, tt, 1, noise=noise)
    for eps in start * np.geomspace(0.9, 1e-3, 9):
        n = lin.sample_complexity(cov, ts, tt, eps, noise=noise)
        top = 25 + 3 + int(noise**2 * 25 / eps) + 5
        assert n == _brute_force(cov, ts, tt, eps, noise, top)
        assert lin.expected_risk(cov, ts, tt, n, noise=noise) <= eps
        if n > 1:
            assert lin.expected_risk(cov, ts, tt, n - 1, noise=noise) > eps


def test_sample_complexity_at_exact_noise_boundaries():
    # eps = sigma^2 r / k sits exactly on the least-squares curve; rounding must not shift n
    c, ts, tt = cv.isotropic(10), np.full(10, 0.3), np.zeros(10)
    for sigma in (0.1, 0.3, 0.7):
        for k in range(1, 40):
            eps = sigma**2 * 10 / k
            assert lin.sample_complexity(c, ts, tt, eps, noise=sigma) == _brute_force(
                c, ts, tt, eps, sigma, 200
            )


def test_sample_complexity_noise_floor_and_n_max():
    c = cv.power_law(20, 1.0)
    ts, tt = np.ones(20), np.zeros(20)
    # noiseless: n = rank always reaches eps
    assert lin.sample_complexity(c, ts, tt, 1e-12) == 20
    with pytest.raises(lin.UnreachableRiskError, match=r"no n <= n_max = 5 reaches risk eps"):
        lin.sample_complexity(c, ts, tt, 1e-3, n_max=5)
    # with noise the floor sigma^2 r/(n - r - 1) needs many samples
    with pytest.raises(lin.UnreachableRiskError, match=r"label noise alone needs n >= 221"):
        lin.sample_complexity(c, ts, tt, 0.1, noise=1.0, n_max=60)
    assert lin.sample_complexity(c, ts, tt, 0.1, noise=1.0) == 221
    assert lin.sample_complexity(c, ts, tt, 0.1, noise=1.0, n_max=221) == 221
    assert issubclass(lin.UnreachableRiskError, ValueError)
    # a zero covariance: every model has zero risk, the source already suffices
    assert lin.sample_complexity(cv.Covariance(np.zeros(3)), np.ones(3), np.zeros(3), 0.1) == 0


def test_sample_complexity_is_zero_when_the_source_suffices():
    c = cv.power_law(50, 1.0)
    rng = np.random.default_rng(3)
    tt = rng.standard_normal(50)
    ts = tt + 0.01 * rng.standard_normal(50)
    source_risk = float(c.quad(ts - tt))
    # just above the source's own risk: no sample is needed; just below: at least one
    assert lin.sample_complexity(c, ts, tt, source_risk * 1.001) == 0
    assert lin.sample_complexity(c, ts, tt, source_risk * 0.999) >= 1
    with_noise = lin.sample_complexity(c, ts, tt, source_risk * 1.001, noise=5.0)
    assert with_noise == 0  # label noise is irrelevant without data
    out = lin.sample_complexity_reduction(c, ts, tt, source_risk * 1.001)
    assert out.source_suffices and out.n_finetune == 0 and out.reduction == np.inf
    assert out.n_scratch == _brute_force(c, np.zeros(50), tt, source_risk * 1.001, 0.0, 60)
    both = lin.sample_complexity_reduction(c, ts, tt, 1e9)
    assert both.n_finetune == both.n_scratch == 0 and both.reduction == 1.0 and not both.helps


def test_reduction_below_one_is_flagged():
    # a source far from the target in the top directions is worse than starting from zero
    c = cv.power_law(60, 1.0)
    tt = np.zeros(60)
    tt[:5] = 1.0
    ts = tt.copy()
    ts[:5] += 3.0
    out = lin.sample_complexity_reduction(c, ts, tt, 0.05 * float(c.quad(tt)))
    assert out.n_finetune > out.n_scratch > 0
    assert out.reduction < 1 and not out.helps and not out.source_suffices


def test_sample_complexity_reduction():
    c = cv.power_law(200, 2.0)
    tt = np.random.default_rng(15).standard_normal(200)
    ts = tt.copy()
    ts[:3] += 0.5  # the source differs from the target only in the top directions
    # the brute-force oracle: every n up to the rank, one curve per start for both levels
    ns = np.arange(1, 201)
    tuned = lin.expected_risk(c, ts, tt, ns)
    scratch = lin.expected_risk(c, np.zeros(200), tt, ns)
    for eps in (1e-2, 1e-3):
        out = lin.sample_complexity_reduction(c, ts, tt, eps)
        assert c.quad(ts - tt) > eps  # the source alone does not suffice: n >= 1
        assert out.n_finetune == ns[np.flatnonzero(tuned <= eps)[0]]
        assert out.n_scratch == ns[np.flatnonzero(scratch <= eps)[0]]
        assert out.reduction == pytest.approx(out.n_scratch / out.n_finetune)
        assert out.reduction > 10 and out.eps == eps


# ============================================================== similarity
def test_similarity_hand_computed_diagonal_case():
    lam = np.array([4.0, 2.0, 1.0, 0.5])
    ts, tt, n = np.ones(4), np.zeros(4), 2
    out = lin.similarity(np.diag(lam), ts, tt, n)
    assert list(out) == list(lin.MEASURES)
    # the measure is the noiseless expected risk (its finite-size weights are checked against
    # an oracle in test_asymptotics), below the source's own risk
    assert out["covariance_aware"] == pytest.approx(
        lin.expected_risk(np.diag(lam), ts, tt, n), rel=1e-12
    )
    assert 0 < out["covariance_aware"] < out["source_risk"]
    # k = n // 2 = 1: tail 2 + 1 + 0.5, head 1/4 times (3.5 / 2)^2
    assert out["spectral"] == pytest.approx(3.5 + 0.25 * 1.75**2, rel=1e-14)
    assert out["source_risk"] == pytest.approx(7.5, rel=1e-14)
    assert out["euclidean"] == pytest.approx(4.0, rel=1e-14)
    r0 = 7.5 / 4.0  # effective rank; error lambda_1 max(sqrt(r0/n), r0/n)
    assert out["euclidean_cov_error"] == pytest.approx(4.0 * 4.0 * math.sqrt(r0 / n), rel=1e-14)
    two = lin.similarity(np.diag(lam), ts, tt, n, k=2)
    assert two["spectral"] == pytest.approx(1.5 + (0.25 + 0.5) * 0.75**2, rel=1e-14)
    assert all(isinstance(v, float) for v in out.values())


def test_similarity_batched_rotated_and_degenerate():
    c = cv.rotated(cv.power_law(30, 1.0), seed=16)
    rng = np.random.default_rng(17)
    ts, tt = rng.standard_normal((5, 30)), rng.standard_normal(30)
    many = lin.similarity(c, ts, tt, 6)
    for i in range(5):
        one = lin.similarity(c, ts[i], tt, 6)
        for key in lin.MEASURES:
            assert many[key][i] == pytest.approx(one[key], rel=1e-12)
        assert one["covariance_aware"] == pytest.approx(lin.expected_risk(c, ts[i], tt, 6))
    # rank below k: the zero-variance head direction contributes nothing, without warnings
    flat = lin.similarity(
        cv.Covariance(np.array([1.0, 0.0, 0.0, 0.0])), np.eye(4)[1], np.zeros(4), 4
    )
    assert flat["spectral"] == 0.0 and flat["source_risk"] == 0.0 and flat["euclidean"] == 1.0


def test_similarity_takes_an_array_of_n():
    c = cv.power_law(30, 1.0)
    rng = np.random.default_rng(18)
    ts, tt = rng.standard_normal((4, 30)), rng.standard_normal(30)
    ns = [3, 10, 40]
    curve = lin.similarity(c, ts, tt, ns)
    for key in lin.MEASURES:
        assert curve[key].shape == (4, 3)
        for j, n in enumerate(ns):
            np.testing.assert_allclose(curve[key][:, j], lin.similarity(c, ts, tt, n)[key])
    one = lin.similarity(c, ts[0], tt, ns)["covariance_aware"]
    np.testing.assert_allclose(one, lin.expected_risk(c, ts[0], tt, ns), rtol=1e-12)


# ============================================================== bad input
_X, _Y, _T = np.ones((3, 5)), np.ones(3), np.zeros(5)
_C = cv.isotropic(5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: lin.finetune(np.ones(5), _Y, _T), r"X must have at least 2 dimensions"),
        (lambda: lin.finetune(_X, np.ones(4), _T), r"y has 4 entries but X has 3 rows"),
        (lambda: lin.finetune(_X, _Y, np.zeros(4)), r"theta_source has dimension 4 but X has 5"),
        (lambda: lin.finetune(_X * np.nan, _Y, _T), r"X contains 15 non-finite"),
        (lambda: lin.finetune(_X, [1.0, np.inf, 0.0], _T), r"y contains 1 non-finite"),
        (lambda: lin.finetune(_X, _Y, [np.nan] * 5), r"theta_source contains 5 non-finite"),
        (lambda: lin.finetune(np.ones((2, 3, 5)), np.ones((4, 3)), _T), r"batch shapes do not"),
        (lambda: lin.train(_X, _Y, _T, lr=0.0), r"lr must be > 0"),
        (lambda: lin.train(_X, _Y, _T, lr=np.nan), r"lr contains 1 non-finite"),
        (lambda: lin.train(_X, _Y, _T, max_steps=0), r"max_steps must be >= 1"),
        (lambda: lin.train(_X, _Y, _T, tol=-1.0), r"tol must be > 0"),
        (lambda: lin.excess_risk(_C, np.ones(4), _T), r"theta has dimension 4 but theta_target"),
        (lambda: lin.excess_risk(np.eye(4), _T, _T), r"cov has dimension 4 but"),
        (lambda: lin.excess_risk(_C, np.ones((3, 5)), np.ones((2, 5))), r"batch shapes do not"),
        (lambda: lin.expected_risk(np.eye(4), _T, _T, 2), r"cov has dimension 4"),
        (lambda: lin.expected_risk(_C, np.ones(4), _T, 2), r"theta_source has dimension 4 but"),
        (lambda: lin.expected_risk(_C, _T, [np.nan] * 5, 2), r"theta_target contains 5"),
        (
            lambda: lin.expected_risk([[1.0, 1.0], [0.0, 1.0]], [1, 1], [0, 0], 1),
            r"cov must be sym",
        ),
        (
            lambda: lin.expected_risk([[1.0, 2.0], [2.0, 1.0]], [1, 1], [0, 0], 1),
            r"cov must be pos",
        ),
        (
            lambda: lin.expected_risk([[1.0, np.nan], [0.0, 1.0]], [1, 1], [0, 0], 1),
            r"cov contains",
        ),
        (lambda: lin.expected_risk(_C, _T, _T, 0), r"n must be >= 1, got 0"),
        (lambda: lin.expected_risk(_C, _T, _T, [3, -2]), r"n must be >= 1"),
        (lambda: lin.expected_risk(_C, _T, _T, 2.5), r"n must hold whole numbers"),
        (lambda: lin.expected_risk(_C, _T, _T, 2, noise=-0.1), r"noise must be >= 0"),
        (lambda: lin.expected_risk(_C, _T, _T, 2, noise=np.inf), r"noise must be finite"),
        (lambda: lin.simulate_risk(_C, _T, _T, 2, repeats=0), r"repeats must be >= 1"),
        (lambda: lin.simulate_risk(_C, _T, _T, 0), r"n must be >= 1"),
        (lambda: lin.simulate_risk(_C, _T, _T, 2, noise=-1.0), r"noise must be >= 0"),
        (lambda: lin.simulate_risk(_C, _T, _T, 2, seed=-3), r"seed must be >= 0"),
        (lambda: lin.sample_complexity(_C, _T, _T, 0.0), r"eps must be > 0, got 0"),
        (lambda: lin.sample_complexity(_C, _T, _T, -1.0), r"eps must be > 0"),
        (lambda: lin.sample_complexity(_C, _T, _T, np.nan), r"eps must be finite"),
        (lambda: lin.sample_complexity(_C, _T, _T, 0.1, n_max=0), r"n_max must be >= 1"),
        (lambda: lin.sample_complexity(_C, _T, _T, 0.1, noise=-1.0), r"noise must be >= 0"),
        (lambda: lin.sample_complexity_reduction(_C, _T, _T, 0.0), r"eps must be > 0"),
        (lambda: lin.similarity(_C, _T, _T, 0), r"n must be >= 1"),
        (lambda: lin.similarity(_C, _T, _T, 2, k=-1), r"k must be >= 0"),
        (lambda: lin.similarity(_C, _T, np.ones(4), 2), r"theta_source has dimension 5 but"),
        (lambda: lin.similarity(np.eye(4), _T, _T, 2), r"cov has dimension 4"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_expected_risk_with_zero_covariance_is_zero_even_with_noise() -> None:
    cov = np.zeros((3, 3))
    risk = lin.expected_risk(cov, [1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1, 2, 5], noise=0.7)
    sim = lin.simulate_risk(cov, [1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1, 2, 5], noise=0.7)
    np.testing.assert_array_equal(risk, 0.0)
    np.testing.assert_array_equal(sim.mean, 0.0)


@pytest.mark.parametrize("centre", [240, 250, 130, 70])
def test_bracket_search_finds_a_narrow_dip_between_its_sizes(centre):
    # a unimodal curve below eps only within 5 of its minimum, wherever that lies between the
    # log-spaced sizes (left or right of the lowest one): the first n of the full scan
    from finetune_theory._sample_search import smallest_n

    class Dip:
        rank, sigma, source_risk = 1000, 0.0, 100.0
        calls: list[int] = []

        def __call__(self, ns):
            ns = np.asarray(ns, dtype=float)
            self.calls += [len(ns)]
            return 1.0 + np.abs(ns - centre) / 10.0

    curve = Dip()
    assert smallest_n(curve, 1.5, None) == centre - 5
    assert sum(curve.calls) < 60  # O(log r) sizes, not a scan


@pytest.mark.parametrize(
    "cov",
    [cv.power_law(60, 1.0), cv.power_law(60, 2.5), cv.spiked(60, [30.0, 10.0]), cv.isotropic(60)],
)
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_bracket_and_bisect_give_the_first_n_of_the_full_scan(cov, noise):
    # the search evaluates O(log r) sizes; the answer must be the first n of a scan of every
    # n, also where eps is exactly a value on the curve and where the noise makes it rise
    rng = np.random.default_rng(3)
    ts, tt = rng.standard_normal(60) * 0.3, rng.standard_normal(60)
    ns = np.arange(1, 70)
    curve = lin.expected_risk(cov, ts, tt, ns, noise=noise)
    finite = curve[np.isfinite(curve) & (curve > 0)]
    levels = list(finite[rng.choice(finite.size, 6, replace=False)])  # exactly on the curve
    levels += list(np.geomspace(finite.min() * 1.01, finite.max(), 5))
    levels += [finite.min() * 0.999, finite.min()]  # just below / at the lowest point
    # the scans, once: a row has the same bits alone or in a batch, so one long curve serves
    # every level (the ones above the rank reach the least-squares noise floor)
    top = 70 + int(noise**2 * 60 / min(levels)) + 5
    grid = np.arange(1, top)
    tuned = lin.expected_risk(cov, ts, tt, grid, noise=noise)
    scratch = lin.expected_risk(cov, np.zeros(60), tt, grid, noise=noise)
    source = float(cv.as_covariance(cov).quad(ts - tt))

    def first(curve, eps, start):
        if start <= eps:
            return 0
        return int(grid[np.flatnonzero(curve <= eps)[0]])

    for eps in levels:
        out = lin.sample_complexity_reduction(cov, ts, tt, eps, noise=noise)
        assert out.n_finetune == first(tuned, eps, source), eps
        assert out.n_scratch == first(scratch, eps, float(cv.as_covariance(cov).quad(tt))), eps
        assert lin.sample_complexity(cov, ts, tt, eps, noise=noise) == out.n_finetune


def test_similarity_split_and_covariance_error_beyond_n_two():
    # Sigma = diag(4, 2, 1, 0.5), Delta = (1, 1, 1, 1). At n = 6 the default split is
    # n // 2 = 3 (clipped to d - 1 = 3): tail 0.5, head (1/4 + 1/2 + 1) (0.5 / 6)^2. At n = 1
    # the effective rank r_0 = 7.5 / 4 exceeds n, so the covariance error is lambda_1 r_0 / n
    # (the linear branch of max(sqrt(r_0 / n), r_0 / n)): 4 * 1.875 = 7.5, times ||Delta||^2
    cov = np.diag([4.0, 2.0, 1.0, 0.5])
    ts, tt = np.ones(4), np.zeros(4)
    out = lin.similarity(cov, ts, tt, [1, 6])
    assert out["spectral"][1] == pytest.approx(0.5 + 1.75 * (0.5 / 6) ** 2, rel=1e-12)
    assert out["euclidean_cov_error"][0] == pytest.approx(4 * 7.5, rel=1e-12)
    assert out["euclidean_cov_error"][1] == pytest.approx(4 * 4 * np.sqrt(1.875 / 6), rel=1e-12)
