"""Deterministic equivalents of interpolation from a Gaussian design.

For ``n`` samples ``x ~ N(0, Sigma)`` with ``n`` below the rank ``r`` of ``Sigma``, the random
projection ``P_perp = I - P_X`` onto the directions the data does not see behaves, for large
``d`` and ``n``, like a deterministic operator diagonal in the eigenbasis of ``Sigma``. Its scale
is ``kappa > 0``, the root of

    n = sum_i lambda_i / (lambda_i + kappa).

With ``rho = (1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2``:

* ``E ||P_perp theta||^2 ~ sum_i kappa / (lambda_i + kappa) <theta, v_i>^2`` (``perp_weights``);
* ``E ||P_perp theta||^2_Sigma ~ sum_i w_i <theta, v_i>^2`` with
  ``w_i = kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 - rho)`` (``bias_weights``);
* the label-noise part of the risk is ``sigma^2 rho / (1 - rho)`` to first order; the package
  uses ``sigma^2 rho / (1 - rho - rho / n)`` (``noise_factor``), which is the exact isotropic
  value ``n / (d - n - 1)`` when ``rho = n / d`` and tracks Monte Carlo up to the rank for
  anisotropic covariances (``inf`` from ``n = r - 1`` on, where the expectation diverges).

For an isotropic ``Sigma`` the bias parts are exact at every size (``kappa = s (d/n - 1)``) and the
package uses the exact noise factor ``n / (d - n - 1)``. When ``n >= r`` the data sees every
direction of positive variance: the bias vanishes and the noise factor is the least-squares one,
``r / (n - r - 1)`` (infinite for ``n`` in ``{r, r + 1}``, where its expectation diverges).

This module is shared by the linear and deep-linear predictions; every formula above lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_positive_int_array
from .covariance import Covariance, as_covariance

__all__ = [
    "DeterministicEquivalent",
    "deterministic_equivalent",
    "solve_kappa",
    "numerical_rank",
    "RidgeEquivalent",
    "ridge_equivalent",
    "solve_ridge_kappa",
]

_RANK_RTOL = 1e-12


def numerical_rank(eigvals: np.ndarray) -> int:
    """Number of eigenvalues above ``1e-12`` times the largest."""
    lam = np.asarray(eigvals, dtype=np.float64)
    if lam.size == 0 or lam[0] <= 0:
        return 0
    return int(np.count_nonzero(lam > _RANK_RTOL * lam[0]))


def solve_kappa(eigvals: np.ndarray, n: Any) -> np.ndarray:
    """Solve ``n = sum_i lambda_i / (lambda_i + kappa)`` for ``kappa``, vectorised over ``n``.

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
        Eigenvalues of the covariance (any order, ``>= 0``).
    n : int or array of int
        Sample sizes.

    Returns
    -------
    ndarray
        ``kappa`` for each ``n`` (same shape as ``np.atleast_1d(n)``); ``0`` where ``n`` is at
        least the numerical rank.
    """
    lam = np.sort(np.asarray(eigvals, dtype=np.float64))[::-1]
    r = numerical_rank(lam)
    ns, _ = check_positive_int_array(n, "n")
    nf = ns.astype(np.float64)
    kappa = np.zeros(ns.shape)
    active = ns < r
    if not np.any(active):
        return kappa
    lam_pos = lam[:r]
    m = nf[active]
    # f(k) = sum lam/(lam+k) falls from r (k -> 0) to 0; these bounds bracket the root:
    # f(sum(lam)/m) <= m and f(lam_min (r/m - 1)) >= m.
    lo = np.log(lam_pos[-1] * (r / m - 1.0))
    hi = np.log(lam_pos.sum() / m)
    lo = np.minimum(lo, hi)
    t = 0.5 * (lo + hi)
    for _ in range(200):
        k = np.exp(t)
        q = lam_pos[None, :] / (lam_pos[None, :] + k[:, None])
        f = q.sum(axis=1) - m
        # d f / d log k = -sum lam k / (lam + k)^2 = -sum q (1 - q)
        df = -(q * (1.0 - q)).sum(axis=1)
        lo = np.where(f > 0, t, lo)
        hi = np.where(f > 0, hi, t)
        newton = t - f / np.where(df < 0, df, -1.0)
        t_new = np.where((newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
        if np.all(np.abs(t_new - t) <= 1e-15 * np.maximum(1.0, np.abs(t))):
            t = t_new
            break
        t = t_new
    kappa[active] = np.exp(t)
    return kappa


@dataclass(frozen=True)
class DeterministicEquivalent:
    """Per-direction weights of the asymptotic risk at each sample size.

    Attributes
    ----------
    n : ndarray, shape (k,)
    kappa, rho : ndarray, shape (k,)
    bias_weights : ndarray, shape (k, d)
        ``w_i``: the expected ``||P_perp theta||^2_Sigma`` is ``sum_i w_i <theta, v_i>^2``.
    perp_weights : ndarray, shape (k, d)
        The expected ``||P_perp theta||^2`` is ``sum_i perp_weights_i <theta, v_i>^2``.
    noise_factor : ndarray, shape (k,)
        Multiply by the noise variance for the noise part of the risk (may be ``inf``).
    pinv_trace : ndarray, shape (k,)
        ``E ||X^+||_F^2``, so that ``E ||X^+ xi||^2 = sigma^2 pinv_trace``: ``1 / kappa`` below
        the rank (exact isotropic value ``n / (lambda (r - n - 1))``), and the exact Wishart
        value ``tr(Sigma_r^-1) / (n - r - 1)`` above it (``inf`` where it diverges).
    rank : int
        Numerical rank of the covariance.
    exact : bool
        True when the covariance is isotropic (on its range): the bias parts are then exact
        expectations and ``noise_factor`` is the exact Wishart value.
    """

    n: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray
    bias_weights: np.ndarray
    perp_weights: np.ndarray
    noise_factor: np.ndarray
    pinv_trace: np.ndarray
    rank: int
    exact: bool


def deterministic_equivalent(cov: Covariance | np.ndarray, n: Any) -> DeterministicEquivalent:
    """The deterministic equivalent of minimum-distance interpolation at each ``n``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the Gaussian inputs.
    n : int or array of int
        Sample sizes (``>= 1``).

    Returns
    -------
    DeterministicEquivalent
    """
    cov = as_covariance(cov)
    lam = cov.eigvals
    ns, _ = check_positive_int_array(n, "n")
    r = numerical_rank(lam)
    exact = r > 0 and bool(lam[0] - lam[r - 1] <= 1e-12 * lam[0])
    kappa = solve_kappa(lam, ns)
    nf = ns.astype(np.float64)
    interp = ns < r
    k = kappa[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = lam[None, :] + k
        frac = np.where(denom > 0, lam[None, :] / np.where(denom > 0, denom, 1.0), 0.0)
        rho = np.where(interp, (frac**2).sum(axis=1) / nf, 1.0)
        perp = np.where(interp[:, None], 1.0 - frac, 0.0)
        perp = np.where(lam[None, :] > _RANK_RTOL * max(lam[0], 1e-300), perp, 1.0)
        one_minus_rho = np.where(interp, 1.0 - rho, 1.0)
        bias = np.where(
            interp[:, None], lam[None, :] * (1.0 - frac) ** 2 / one_minus_rho[:, None], 0.0
        )
        if exact:
            # exact Wishart moments: n / (r - n - 1) below the rank, r / (n - r - 1) above it
            below = np.where(r - nf - 1 > 0, nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0), np.inf)
        else:
            # finite-size correction: the exact isotropic n / (r - n - 1) is rho / (1 - rho -
            # rho / n) with rho = n / r; the same form with the anisotropic rho (instead of
            # rho / (1 - rho)) tracks Monte Carlo up to the rank (docs/linear.md, section 3),
            # and the expectation is infinite from n = r - 1 on for every covariance
            room = one_minus_rho - rho / nf
            below = np.where(room > 0, rho / np.where(room > 0, room, 1.0), np.inf)
            below = np.where(nf >= r - 1, np.inf, below)
        above = np.where(nf - r - 1 > 0, r / np.where(nf - r - 1 > 0, nf - r - 1, 1.0), np.inf)
        noise = np.where(interp, below, above)
        lam_pos = lam[:r] if r > 0 else np.ones(1)
        if exact:
            pinv_below = below / lam_pos[0]
        else:
            pinv_below = 1.0 / np.where(kappa > 0, kappa, 1.0)
        room = np.where(nf - r - 1 > 0, nf - r - 1, 1.0)
        pinv_above = np.where(nf - r - 1 > 0, np.sum(1.0 / lam_pos) / room, np.inf)
        pinv_trace = np.where(interp, pinv_below, pinv_above)
    if r == 0:
        # no direction has variance: X = 0, so X^+ = 0 and the label noise costs nothing
        noise = np.zeros(ns.shape)
        pinv_trace = np.zeros(ns.shape)
    return DeterministicEquivalent(
        n=ns,
        kappa=kappa,
        rho=np.where(interp, rho, 1.0),
        bias_weights=bias,
        perp_weights=perp,
        noise_factor=noise,
        pinv_trace=pinv_trace,
        rank=r,
        exact=exact,
    )


# ------------------------------------------------------------- ridge towards the source
@dataclass(frozen=True)
class RidgeEquivalent:
    """Per-direction weights of the asymptotic risk of ridge towards the source.

    Attributes
    ----------
    n : ndarray, shape (k,)
    ridge : ndarray, shape (k,)
        The ridge ``lambda`` (in the convention ``(X^T X / n + lambda I)^{-1}``).
    kappa, rho : ndarray, shape (k,)
        ``kappa`` solves ``lambda = kappa (1 - (1/n) sum_i lambda_i / (lambda_i + kappa))``;
        ``rho = (1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2``.
    bias_weights : ndarray, shape (k, d)
        ``kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 - rho)``: the expected bias part of the
        excess risk is ``sum_i w_i <theta_S - theta_T, v_i>^2``.
    noise_factor : ndarray, shape (k,)
        ``rho / (1 - rho)``: multiply by the noise variance for the noise part.
    """

    n: np.ndarray
    ridge: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray
    bias_weights: np.ndarray
    noise_factor: np.ndarray


def solve_ridge_kappa(eigvals: np.ndarray, n: Any, ridge: Any) -> np.ndarray:
    """Solve ``ridge = kappa (1 - (1/n) sum_i lambda_i / (lambda_i + kappa))`` for ``kappa``.

    Vectorised over ``n`` and ``ridge`` (broadcast together). The left side minus the right
    increases in ``kappa`` above the interpolation root (:func:`solve_kappa`, zero when
    ``n`` is at least the rank), so bisection in ``log kappa`` between that root and
    ``ridge + sum(lambda) / n`` finds the unique root.

    Examples
    --------
    >>> import numpy as np
    >>> k = solve_ridge_kappa(np.ones(100), 50, 0.5)  # isotropic: quadratic in kappa
    >>> bool(abs(k[0] * (1 - (1 / 50) * 100 / (1 + k[0])) - 0.5) < 1e-12)
    True
    """
    lam = np.sort(np.asarray(eigvals, dtype=np.float64))[::-1]
    ns, _ = check_positive_int_array(n, "n")
    lr = np.asarray(ridge, dtype=np.float64)
    if lr.size and (not np.all(np.isfinite(lr)) or np.any(lr <= 0)):
        raise ValueError(f"ridge must be positive and finite, got {ridge!r}")
    ns_b, lr_b = np.broadcast_arrays(ns.astype(np.float64), np.atleast_1d(lr))
    flat_n, flat_l = ns_b.ravel(), lr_b.ravel()
    base = solve_kappa(lam, flat_n.astype(np.int64))
    total = lam.sum()
    lo = np.log(np.maximum(base, 1e-300))
    lo = np.where(base > 0, lo, np.log(np.maximum(flat_l, 1e-300)) - 1.0)
    hi = np.log(flat_l + total / flat_n)

    def g(logk: np.ndarray) -> np.ndarray:
        k = np.exp(logk)
        q = (lam[None, :] / (lam[None, :] + k[:, None])).sum(axis=1)
        return k * (1.0 - q / flat_n) - flat_l

    # make sure the lower end is below the root (g < 0) when the interpolation root is 0
    for _ in range(60):
        bad = g(lo) > 0
        if not np.any(bad):
            break
        lo = np.where(bad, lo - 5.0, lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        pos = g(mid) > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
        if np.all(hi - lo < 1e-13):
            break
    return np.exp(0.5 * (lo + hi)).reshape(ns_b.shape)


def ridge_equivalent(cov: Covariance | np.ndarray, n: Any, ridge: Any) -> RidgeEquivalent:
    """Deterministic equivalent of ridge regression towards the source at each ``(n, ridge)``.

    The estimator is ``theta_S + (X^T X / n + ridge I)^{-1} X^T (y - X theta_S) / n``; its
    error is ``ridge (Sigma_hat + ridge I)^{-1} (theta_S - theta_T)`` plus a noise part. With
    ``kappa`` from :func:`solve_ridge_kappa` and ``rho`` as in :class:`RidgeEquivalent`,

        E L ~ sum_i kappa^2 lambda_i <Delta, v_i>^2 / (lambda_i + kappa)^2 / (1 - rho)
              + sigma^2 rho / (1 - rho).

    As ``ridge -> 0`` this tends to the interpolation formula of
    :func:`deterministic_equivalent` (below the rank) or to the least-squares limit; as
    ``ridge -> inf``, ``kappa -> inf`` and the risk tends to the source's own risk
    ``||Delta||^2_Sigma``. No exact finite-``n`` closed form exists for ``ridge > 0``, even for
    an isotropic covariance; the accuracy against Monte Carlo is measured in
    ``tests/test_linear_ridge.py`` and reported in ``docs/advisor.md``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    n : int or array of int
    ridge : float or array of float
        Positive; broadcast against ``n``.

    Returns
    -------
    RidgeEquivalent

    Examples
    --------
    >>> import numpy as np
    >>> eq = ridge_equivalent(np.eye(50), [10, 100], 1e6)  # a huge ridge keeps the source
    >>> np.round(eq.bias_weights[:, 0], 4).tolist()
    [1.0, 1.0]
    """
    cov = as_covariance(cov)
    lam = cov.eigvals
    kappa = solve_ridge_kappa(lam, n, ridge)
    ns, lr = np.broadcast_arrays(
        np.atleast_1d(np.asarray(n)).astype(np.float64), np.atleast_1d(ridge).astype(np.float64)
    )
    k = kappa.ravel()[:, None]
    nf = ns.ravel()
    frac = lam[None, :] / (lam[None, :] + k)
    rho = (frac**2).sum(axis=1) / nf
    one_minus = 1.0 - rho
    bias = lam[None, :] * (k / (lam[None, :] + k)) ** 2 / one_minus[:, None]
    return RidgeEquivalent(
        n=ns.ravel().astype(np.int64),
        ridge=lr.ravel(),
        kappa=k[:, 0],
        rho=rho,
        bias_weights=bias,
        noise_factor=rho / one_minus,
    )
