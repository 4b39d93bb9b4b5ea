"""Risks: exact, expected (deterministic equivalent), optimal ridge, early stopping, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import TINY
from .._random import SeedLike
from .._risk import SimulatedRisk, monte_carlo, risk_setting
from .._validation import (
    as_vector,
    check_nonnegative,
    check_positive,
    check_positive_int,
    output_like,
    sample_sizes,
)
from ..asymptotics import deterministic_equivalent, numerical_rank, ridge_equivalent
from ..covariance import Covariance, CovarianceLike, as_covariance
from ._finetune import _finetune_fast


def excess_risk(
    cov: CovarianceLike, theta: ArrayLike, theta_target: ArrayLike
) -> np.ndarray | float:
    """Excess population risk ``(theta - theta_T)^T Sigma (theta - theta_T)``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta : array, shape (..., d)
        Weights (leading axes batched).
    theta_target : array, shape (d,) or (..., d)

    Returns
    -------
    float or ndarray of shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> excess_risk(np.diag([4.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    4.0
    """
    th = as_vector(theta, "theta", batch=True)
    tt = as_vector(theta_target, "theta_target", batch=True)
    if th.shape[-1] != tt.shape[-1]:
        raise ValueError(
            f"theta has dimension {th.shape[-1]} but theta_target has dimension {tt.shape[-1]}"
        )
    try:
        np.broadcast_shapes(th.shape, tt.shape)
    except ValueError:
        raise ValueError(
            f"batch shapes do not match: theta {th.shape}, theta_target {tt.shape}"
        ) from None
    c = as_covariance(cov, "cov", d=th.shape[-1])
    return c.quad(th - tt)


def expected_risk(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    noise: float = 0.0,
    ridge: float = 0.0,
) -> np.ndarray | float:
    """Expected excess risk of fine-tuning on ``n`` Gaussian samples ``x ~ N(0, cov)``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
        Sample sizes; an array gives a whole learning curve.
    noise : float
        Label-noise standard deviation ``sigma``.
    ridge : float
        Ridge towards the source (see :func:`finetune`). ``0``: fine-tuning to zero training
        loss. Positive: the deterministic equivalent of ridge towards the source
        (:func:`finetune_theory.asymptotics.ridge_equivalent`), bias plus noise.

    Returns
    -------
    float or ndarray
        Exact for isotropic ``cov`` (bias ``(1 - n/d) ||Delta||^2`` times the scale, noise
        ``sigma^2 n / (d - n - 1)``); the deterministic equivalent otherwise. For ``n`` at least
        the rank of ``cov`` the start is forgotten and the least-squares noise term
        ``sigma^2 r / (n - r - 1)`` remains. ``inf`` where the expectation diverges
        (``n`` within one of the rank, with noise).

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(expected_risk(np.eye(100), ts, tt, 40), 6)  # (1 - n/d) ||Delta||^2
    0.6
    >>> round(expected_risk(np.eye(100), ts, tt, 40, ridge=1e9), 6)  # the source's own risk
    1.0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    lam = check_nonnegative(ridge, "ridge")
    ns, scalar = sample_sizes(n)
    if lam > 0:
        req = ridge_equivalent(c, ns, lam)
        coords = c.coords(ts - tt)
        risk = req.bias_weights @ (coords * coords) + sigma**2 * req.noise_factor
        return output_like(risk, scalar)
    eq = deterministic_equivalent(c, ns)
    coords = c.coords(ts - tt)
    return output_like(
        _interpolation_risk(eq.bias_weights, eq.noise_factor, coords**2, sigma), scalar
    )


def _interpolation_risk(
    weights: np.ndarray, noise_factor: np.ndarray, coords2: np.ndarray, sigma: float
) -> np.ndarray:
    """Risk rows ``sum_i w_i <Delta, v_i>^2 + sigma^2 noise_factor`` of the equivalent's rows.

    Each row is reduced on its own (no matrix product), so a row has the same bits whichever
    other rows are computed with it: :func:`sample_complexity` relies on it.
    """
    risk = np.sum(weights * coords2, axis=-1)
    if sigma > 0:
        risk = risk + sigma**2 * noise_factor
    return risk


_RIDGE_GRID = np.logspace(-8, 4, 121)


def _ridge_curve(
    c: Covariance, coords2: np.ndarray, n: int, sigma2: float, ridges: np.ndarray
) -> np.ndarray:
    """Ridge deterministic-equivalent risk at one ``n`` over an array of ridges (scaled)."""
    req = ridge_equivalent(c, np.full(ridges.shape, n), ridges)
    return req.bias_weights @ coords2 + sigma2 * req.noise_factor


def optimal_ridge(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    noise: float,
) -> np.ndarray | float:
    """The ridge towards the source that minimises :func:`expected_risk`.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
    noise : float
        Label-noise standard deviation ``sigma``.

    Returns
    -------
    float or ndarray
        The minimiser, found on a log grid of ``tr(cov)/d`` times ``1e-8 .. 1e4`` and refined
        by golden-section search in ``log ridge``. ``0.0`` without noise and ``n`` below the rank
        (interpolation is then best), ``inf`` when
        the source itself beats every ridge (the minimum at the largest one).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> tt = rng.standard_normal(200) / np.sqrt(200)
    >>> lam = optimal_ridge(np.eye(200), np.zeros(200), tt, 400, noise=0.5)
    >>> formula = 0.5**2 * 200 / (400 * tt @ tt)  # first order: sigma^2 d / (n ||Delta||^2)
    >>> bool(abs(lam / formula - 1) < 0.01)  # the finite-size weights move it by 0.3 % here
    True
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    ns, scalar = sample_sizes(n)
    coords = c.coords(ts - tt)
    coords2 = coords * coords
    scale = max(float(np.mean(c.eigvals)), TINY)
    grid = scale * _RIDGE_GRID
    out = np.empty(ns.shape)
    for j, m in enumerate(ns):
        risk = _ridge_curve(c, coords2, int(m), sigma**2, grid)
        i = int(np.argmin(risk))
        if sigma == 0 and m < numerical_rank(c.eigvals):
            out[j] = 0.0  # noiseless below the rank the bias grows with the ridge
            continue
        if i == grid.size - 1:
            out[j] = math.inf
            continue
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, grid.size - 1)])
        g = (math.sqrt(5.0) - 1.0) / 2.0
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa, fb = _ridge_curve(c, coords2, int(m), sigma**2, np.exp([a, b]))
        for _ in range(60):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - g * (hi - lo)
                fa = float(_ridge_curve(c, coords2, int(m), sigma**2, np.exp([a]))[0])
            else:
                lo, a, fa = a, b, fb
                b = lo + g * (hi - lo)
                fb = float(_ridge_curve(c, coords2, int(m), sigma**2, np.exp([b]))[0])
        out[j] = math.exp(0.5 * (lo + hi))
    return output_like(out, scalar)


def expected_risk_early_stopping(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    t: float,
    *,
    noise: float = 0.0,
) -> np.ndarray | float:
    """Approximate expected excess risk of gradient flow from the source stopped at time ``t``.

    Gradient flow on ``(1/2n) ||X theta - y||^2`` from ``theta_S`` gives
    ``theta(t) - theta_T = exp(-t S) Delta + (I - exp(-t S)) S^+ X^T xi / n`` with
    ``S = X^T X / n``, exactly. Its expected risk needs moments of
    ``exp(-t Sigma_hat)`` that have no closed form; this function uses the documented
    approximation *early stopping at time t ~ ridge at 1/t* (the ridge deterministic
    equivalent of :func:`expected_risk` with ``ridge = 1/t``). Ali, Kolter and Tibshirani (2019)
    bound the ratio of the two risks. Measured against Monte Carlo of the exact flow (100
    designs, d = 200, n in {50, 100, 300}, isotropic and ``lambda_i = 1/i`` spectra, ``t``
    from 0.3 to 30 over the mean eigenvalue; figures in ``docs/advisor.md``): within 21% for
    the isotropic spectrum, up to 54% for the power law at small ``t`` (the ridge filter
    ``lambda/(lambda + 1/t)`` decays slower than ``1 - exp(-t lambda)``), and within 13% at
    the best ``t`` of :func:`optimal_stopping_time`. ``t = inf`` is fine-tuning to zero
    training loss.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
    t : float
        Stopping time (positive; ``inf`` allowed).
    noise : float
        Label-noise standard deviation.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(expected_risk_early_stopping(np.eye(100), ts, tt, 40, 1e-9), 6)  # not moved
    1.0
    """
    if isinstance(t, int | float | np.floating) and t == math.inf:
        ridge = 0.0
    else:
        ridge = 1.0 / check_positive(t, "t")
    return expected_risk(cov, theta_source, theta_target, n, noise=noise, ridge=ridge)


def optimal_stopping_time(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    noise: float,
) -> np.ndarray | float:
    """The stopping time minimising :func:`expected_risk_early_stopping` (``1 / optimal_ridge``).

    ``inf`` means running to zero training loss is best; ``0`` means not moving from the
    source is best.

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the target inputs.
    theta_source : array-like, shape (d,)
        The source teacher, where gradient descent starts.
    theta_target : array-like, shape (d,)
        The target teacher.
    n : int or array-like of int
        Number of target samples.
    noise : float
        Label-noise standard deviation.

    Returns
    -------
    float or ndarray
        The gradient-flow time at each ``n`` (a float for a single ``n``).

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> optimal_stopping_time(np.eye(100), ts, tt, 40, noise=0.0)  # noiseless: interpolate
    inf
    """
    lam = optimal_ridge(cov, theta_source, theta_target, n, noise=noise)
    with np.errstate(divide="ignore"):
        t = np.where(np.asarray(lam) > 0, 1.0 / np.maximum(lam, TINY), np.inf)
        t = np.where(np.isinf(np.asarray(lam)), 0.0, t)
    return output_like(t)


def simulate_risk(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    noise: float = 0.0,
    repeats: int = 100,
    seed: SeedLike = 0,
) -> SimulatedRisk:
    """Monte Carlo of the fine-tuning risk over Gaussian designs and label noise.

    All repeats at one ``n`` are drawn and solved as one batch (in memory-bounded chunks).

    Parameters
    ----------
    cov, theta_source, theta_target, n, noise
        As for :func:`expected_risk`.
    repeats : int
        Independent designs per ``n``.
    seed : int or SeedSequence
        The same seed gives the same numbers.

    Returns
    -------
    SimulatedRisk

    Examples
    --------
    Isotropic inputs, a source at zero and a unit target: the expected risk is ``1 - n / d``.

    >>> import numpy as np
    >>> sim = simulate_risk(np.eye(20), np.zeros(20), np.ones(20) / 20**0.5, 10, repeats=2000)
    >>> sim.repeats, bool(abs(sim.mean - 0.5) < 4 * sim.stderr)
    (2000, True)
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    repeats = check_positive_int(repeats, "repeats")
    ns, scalar = sample_sizes(n)
    return monte_carlo(
        c, tt, ns, scalar, sigma, repeats, seed, lambda x, y: _finetune_fast(x, y, ts)
    )
