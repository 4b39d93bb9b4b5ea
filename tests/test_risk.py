"""``finetune_theory._risk``: the Monte Carlo driver of every ``simulate_risk``, against closed
forms."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory import covariance
from finetune_theory._risk import SimulatedRisk, monte_carlo, risk_setting


def _zero(x, y):
    return np.zeros(x.shape[:1] + x.shape[2:])


def _least_squares(x, y):
    return np.linalg.solve(np.swapaxes(x, 1, 2) @ x, np.swapaxes(x, 1, 2) @ y[..., None])[..., 0]


def test_a_constant_estimator_has_its_exact_risk_and_no_spread():
    cov = covariance.power_law(5, a=1.0)
    tt = np.arange(1.0, 6.0)
    out = monte_carlo(cov, tt, np.array([3, 8]), False, 0.5, 4, 0, _zero)
    np.testing.assert_allclose(out.mean, [cov.quad(tt)] * 2, rtol=1e-14)
    np.testing.assert_array_equal(out.stderr, [0.0, 0.0])
    np.testing.assert_array_equal(out.n, [3, 8])
    assert out.repeats == 4


def test_least_squares_matches_its_closed_form_within_the_standard_error():
    # isotropic x, noise sigma: E risk of least squares = sigma^2 d / (n - d - 1)
    d, n, sigma = 4, 16, 0.7
    out = monte_carlo(covariance.isotropic(d), np.ones(d), np.array([n]), True, sigma, 4000, 3,
                      _least_squares)
    exact = sigma**2 * d / (n - d - 1)
    assert isinstance(out.mean, float) and isinstance(out.n, int)
    assert abs(out.mean - exact) < 4 * out.stderr
    assert out.stderr < 0.05 * exact  # the test has power


def test_the_same_seed_gives_the_same_bits_and_one_repeat_no_error_bar():
    cov = covariance.isotropic(3)
    runs = [monte_carlo(cov, np.ones(3), np.array([5]), False, 1.0, 3, 9, _least_squares)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].mean, runs[1].mean)
    other = monte_carlo(cov, np.ones(3), np.array([5]), False, 1.0, 3, 10, _least_squares)
    assert not np.array_equal(other.mean, runs[0].mean)
    one = monte_carlo(cov, np.ones(3), np.array([5]), True, 1.0, 1, 0, _least_squares)
    assert one.stderr == np.inf and isinstance(one, SimulatedRisk)


def test_risk_setting_checks_the_dimensions():
    cov, ts, tt = risk_setting(np.eye(3), [1, 0, 0], [0.0, 1.0, 0.0])
    assert cov.d == 3 and ts.dtype == np.float64 and tt.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError):
        risk_setting(np.eye(2), [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    with pytest.raises(ValueError):
        risk_setting(np.eye(3), [1.0, 0.0], [0.0, 1.0, 0.0])
