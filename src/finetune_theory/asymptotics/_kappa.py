"""The scale ``kappa`` of the deterministic equivalent and the first-order quantities."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import EIG_RTOL, ROUNDING, TINY
from .._validation import check_positive_int_array


def numerical_rank(eigvals: np.ndarray) -> int:
    """Number of eigenvalues above ``1e-12`` times the largest.

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
        Eigenvalues of a covariance, in descending order (the first is taken as the largest).

    Returns
    -------
    int
        0 when there are none or the first is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> numerical_rank(np.array([2.0, 1.0, 1e-20, 0.0]))
    2
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    if lam.size == 0 or lam[0] <= 0:
        return 0
    return int(np.count_nonzero(lam > EIG_RTOL * lam[0]))


def solve_kappa(eigvals: np.ndarray, n: ArrayLike) -> np.ndarray:
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

    Examples
    --------
    An isotropic spectrum of rank ``d`` has the closed form ``kappa = d / n - 1``:

    >>> import numpy as np
    >>> np.round(solve_kappa(np.ones(100), [20, 50, 100]), 12).tolist()
    [4.0, 1.0, 0.0]
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
    # Newton in log kappa with a bisection safeguard; each row stops on its own once a step
    # is within rounding (8 eps) of its log kappa: its value does not depend on other rows
    todo = np.arange(m.size)
    for _ in range(200):
        tt, mm = t[todo], m[todo]
        q = lam_pos[None, :] / (lam_pos[None, :] + np.exp(tt)[:, None])
        f = q.sum(axis=1) - mm
        # d f / d log k = -sum lam k / (lam + k)^2 = -sum q (1 - q)
        df = -(q * (1.0 - q)).sum(axis=1)
        lo[todo] = np.where(f > 0, tt, lo[todo])
        hi[todo] = np.where(f > 0, hi[todo], tt)
        newton = tt - f / np.where(df < 0, df, -1.0)
        inside = (newton > lo[todo]) & (newton < hi[todo])
        t_new = np.where(inside, newton, 0.5 * (lo[todo] + hi[todo]))
        t[todo] = t_new
        moving = np.abs(t_new - tt) > ROUNDING * np.maximum(1.0, np.abs(tt))
        todo = todo[moving]
        if todo.size == 0:
            break
    kappa[active] = np.exp(t)
    return kappa


def solve_ridge_kappa(eigvals: np.ndarray, n: ArrayLike, ridge: ArrayLike) -> np.ndarray:
    """Solve ``ridge = kappa (1 - (1/n) sum_i lambda_i / (lambda_i + kappa))`` for ``kappa``.

    Vectorised over ``n`` and ``ridge`` (broadcast together). The left side minus the right
    increases in ``kappa`` above the interpolation root (:func:`solve_kappa`, zero when
    ``n`` is at least the rank), so bisection in ``log kappa`` between that root and
    ``ridge + sum(lambda) / n`` finds the unique root.

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
        Eigenvalues of the covariance (any order, ``>= 0``).
    n : int or array of int
        Sample sizes.
    ridge : float or array of float
        Ridge ``lambda`` (positive, finite), broadcast against ``n``.

    Returns
    -------
    ndarray
        ``kappa``, of the broadcast shape of ``np.atleast_1d(n)`` and ``ridge``.

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
    lo = np.log(np.maximum(base, TINY))
    lo = np.where(base > 0, lo, np.log(np.maximum(flat_l, TINY)) - 1.0)
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


def _first_order_weights(lam: np.ndarray, q: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """First-order bias weights ``lambda_i (1 - q_i)^2 / (1 - rho)`` (rows of ``q``, ``rho``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam[None, :] * (1.0 - q) ** 2 / (1.0 - rho)[:, None]


def _fractions(lam: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """``q = lambda_i / (lambda_i + kappa)`` for each ``kappa`` (rows), ``0`` where both vanish."""
    denom = lam[None, :] + kappa[:, None]
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, lam[None, :] / safe, 0.0)
