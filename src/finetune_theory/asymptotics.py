"""Deterministic equivalents of interpolation from a Gaussian design.

For ``n`` samples ``x ~ N(0, Sigma)`` with ``n`` below the rank ``r`` of ``Sigma``, the random
projection ``P_perp = I - P_X`` onto the directions the data does not see behaves, for large
``d`` and ``n``, like a deterministic operator diagonal in the eigenbasis of ``Sigma``. Its scale
is ``kappa > 0``, the root of

    n = sum_i lambda_i / (lambda_i + kappa).

With ``rho = (1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2`` and ``q_i = lambda_i / (lambda_i +
kappa)``, to first order:

* ``E ||P_perp theta||^2 ~ sum_i kappa / (lambda_i + kappa) <theta, v_i>^2`` (``perp_weights``);
* ``E ||P_perp theta||^2_Sigma ~ sum_i w_i <theta, v_i>^2`` with
  ``w_i = kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 - rho)``;
* the label-noise part of the risk is ``sigma^2 rho / (1 - rho)``.

At the sizes people use (``n`` from ten to a few hundred) the first-order bias weights of
well-seen directions are low (about -10 % for strong spikes at ``n = 20``, -20 % for the top
directions of ``lambda_i = i^-3``) and so is the noise factor of steep spectra. The package
returns finite-size forms (``docs/linear.md``, section 3):

* ``noise_factor = rho / (1 - rho - eps)``, ``eps = sum q^2 (1 - q) / (n sum q (1 - q))``:
  the exact isotropic ``n / (d - n - 1)`` when ``q_i = n / d``, and ``inf`` from ``n = r - 1``
  on, where the expectation diverges;
* ``bias_weights`` from the exact identity ``(P_perp Sigma P_perp)_ii = lambda_i (1 + z^T R z)
  / (1 + lambda_i z^T A z)^2`` (``z`` independent of the Gram matrix without direction ``i``),
  with the fluctuation of ``z^T A z`` averaged over a Gamma law whose degrees of freedom come
  from the deterministic equivalent (:func:`_finite_size_bias`). A strong spike then gets the
  inverse-Wishart factor ``E u^-2`` that the first order misses.

Ridge towards the source (:func:`ridge_equivalent`) uses the same bias weights at its own
``kappa`` and the first-order noise factor.

For an isotropic ``Sigma`` the first-order bias parts are exact at every size (``kappa = s (d/n -
1)``); the package keeps them there, with the exact noise factor ``n / (d - n - 1)``. When
``n >= r`` the data sees every direction of positive variance: the bias vanishes and the noise
factor is the least-squares one, ``r / (n - r - 1)`` (infinite for ``n`` in ``{r, r + 1}``,
where its expectation diverges).

This module is shared by the linear and deep-linear predictions; every formula above lives here.
"""

from __future__ import annotations

import functools
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
    frac = _fractions(lam, kappa)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(interp, (frac**2).sum(axis=1) / nf, 1.0)
        perp = np.where(interp[:, None], 1.0 - frac, 0.0)
        perp = np.where(lam[None, :] > _RANK_RTOL * max(lam[0], 1e-300), perp, 1.0)
        one_minus_rho = np.where(interp, 1.0 - rho, 1.0)
        if exact:
            bias = np.where(
                interp[:, None], lam[None, :] * (1.0 - frac) ** 2 / one_minus_rho[:, None], 0.0
            )
            # exact Wishart moments: n / (r - n - 1) below the rank, r / (n - r - 1) above it
            below = np.where(r - nf - 1 > 0, nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0), np.inf)
        else:
            # finite-size forms (docs/linear.md, section 3): the noise factor rho / (1 - rho -
            # eps), exact for isotropic covariances and infinite from n = r - 1 on, and bias
            # weights with the leave-one-direction-out fluctuation of each learned direction
            _, bias, below = _finite_size_forms(lam, kappa, frac, nf, bounded=False)
            below = np.where(nf >= r - 1, np.inf, below)
            bias = np.where(interp[:, None], bias, 0.0)
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


def _finite_size_eps(q: np.ndarray, nf: np.ndarray) -> np.ndarray:
    """``eps`` of the finite-size noise factor ``rho / (1 - rho - eps)``, for each ``n``.

    ``eps = sum_i q_i^2 (1 - q_i) / (n sum_i q_i (1 - q_i))`` with ``q_i = lambda_i / (lambda_i
    + kappa)`` (rows of ``q``): the ``q (1 - q)``-weighted mean of ``q``, over ``n``. It is
    ``rho / n`` for an isotropic covariance (the exact Wishart ``n / (d - n - 1)``) and smaller
    for steep spectra, whose ``q (1 - q)`` sits on directions the data sees only in part.
    """
    spread = (q * (1.0 - q)).sum(axis=-1)
    third = (q * q * (1.0 - q)).sum(axis=-1)
    return third / (nf * np.where(spread > 0, spread, 1.0))


# the Gamma averages of _fluctuation_means: quadrature nodes, the limit of the closed-form
# expansion (in q^2 / alpha) and the chunk of pairs integrated at once
_FLUCT_NODES = 96
_SERIES_LIMIT = 1e-5
_MIN_DOF = 4.0
_TABLE_LOG_T = (-10.0, 25.0, 281)
_TABLE_ALPHA = (2.5, 256.0, 75)
_FLUCT_CHUNK = 4096


def _fluctuation_quadrature(alpha: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E (1 + t u)^-2, E u (1 + t u)^-2)`` for ``u ~ Gamma(alpha, rate alpha)`` (mean one).

    From ``(1 + x)^-2 = int_0^inf v e^{-v (1 + x)} dv`` and the Laplace transforms
    ``E e^{-b u} = (1 + b/alpha)^-alpha``, ``E u e^{-b u} = (1 + b/alpha)^-(alpha + 1)``, the
    two means are ``int_0^inf v e^-v (1 + v t/alpha)^-alpha [1, (1 + v t/alpha)^-1] dv``,
    smooth integrals in ``log v`` taken by the trapezoid rule (exponentially accurate for
    analytic integrands; 96 nodes agree with 600 to 1e-6) over a range that covers the scale
    ``min(alpha, 1) / t``.
    """
    lo = np.minimum(-12.0, np.log(np.minimum(alpha, 1.0) / t) - 12.0)
    hi = 3.7
    grid = np.linspace(0.0, 1.0, _FLUCT_NODES)
    y = lo[:, None] + (hi - lo)[:, None] * grid[None, :]
    v = np.exp(y)
    x = v * (t / alpha)[:, None]
    f0 = np.exp(2.0 * y - v - alpha[:, None] * np.log1p(x))
    f1 = f0 / (1.0 + x)
    h = (hi - lo) / (_FLUCT_NODES - 1)

    def trapezoid(f: np.ndarray) -> np.ndarray:
        return h * (f.sum(axis=1) - 0.5 * (f[:, 0] + f[:, -1]))

    return trapezoid(f0), trapezoid(f1)


def _fluctuation_means(alpha: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E (1 + t u)^-2, E u (1 + t u)^-2)``, ``u ~ Gamma(alpha, rate alpha)``, vectorised.

    Three routes, by where each is accurate (all within 5e-4 of adaptive quadrature, tested):
    the fourth-order expansion in the central moments of ``u`` (closed form; its expansion
    variable is ``q (u - 1)`` with ``q = t / (1 + t)``) wherever ``15 q^4 <= 1e-5 alpha^3`` and
    ``alpha >= 2``; elsewhere the cubic interpolation of :func:`_fluctuation_table` for
    ``alpha >= 2.5`` and the trapezoid of :func:`_fluctuation_quadrature` below.
    """
    p = 1.0 / (1.0 + t)
    xp = t * p
    # central moments of u: 1/a, 2/a^2, 3/a^2 + 6/a^3
    inv = 1.0 / alpha
    m2, m3 = inv, 2.0 * inv * inv
    m4 = 3.0 * inv * inv + 6.0 * inv**3
    xp2 = xp * xp
    xp3 = xp2 * xp
    xp4 = xp2 * xp2
    # Taylor coefficients at u = 1 of (1 + t u)^-2 and of u (1 + t u)^-2, times E (u - 1)^k
    p2 = p * p
    g0 = p2 * (1.0 + 3.0 * xp2 * m2 - 4.0 * xp3 * m3 + 5.0 * xp4 * m4)
    g1 = p2 * (
        1.0
        + (3.0 * xp2 - 2.0 * xp) * m2
        + (3.0 * xp2 - 4.0 * xp3) * m3
        + (5.0 * xp4 - 4.0 * xp3) * m4
    )
    hard = (alpha < 2.0) | (15.0 * xp**4 > _SERIES_LIMIT * alpha**3)
    tabled = hard & (alpha >= _TABLE_ALPHA[0])
    if np.any(tabled):
        lt = np.minimum(np.log(t[tabled]), _TABLE_LOG_T[1])
        values = _interpolate_table(lt, np.log(alpha[tabled]))
        scale = p[tabled] ** 2
        g0[tabled] = np.exp(values[:, 0]) * scale
        g1[tabled] = np.exp(values[:, 1]) * scale
    rest = np.nonzero((hard & (alpha < _TABLE_ALPHA[0])).ravel())[0]
    a_flat, t_flat = alpha.ravel(), t.ravel()
    g0_flat, g1_flat = g0.reshape(-1), g1.reshape(-1)
    for start in range(0, rest.size, _FLUCT_CHUNK):  # bounded memory: chunk x nodes
        part = rest[start : start + _FLUCT_CHUNK]
        g0_flat[part], g1_flat[part] = _fluctuation_quadrature(a_flat[part], t_flat[part])
    return g0, g1


@functools.cache
def _fluctuation_table() -> np.ndarray:
    """``log(g_k (1 + t)^2)`` for ``k = 0, 1`` on the grid of ``(log t, log alpha)``, built once.

    Shape ``(n_t, n_alpha, 2)``. On ``alpha in [2.5, 256]`` and ``log t in [-10, 25]`` both are
    smooth (the Gamma law has the moment ``E u^-2`` there, so they level off as ``t`` grows);
    beyond ``log t = 25`` the value at 25 is used (the change is below ``e^{-25 (alpha - 2)}``).
    """
    log_t = np.linspace(*_TABLE_LOG_T)
    log_a = np.linspace(np.log(_TABLE_ALPHA[0]), np.log(_TABLE_ALPHA[1]), _TABLE_ALPHA[2])
    tt, aa = np.meshgrid(np.exp(log_t), np.exp(log_a), indexing="ij")
    g0, g1 = _fluctuation_quadrature(aa.ravel(), tt.ravel())
    scale = 2.0 * np.log1p(tt.ravel())
    return np.stack([np.log(g0) + scale, np.log(g1) + scale], axis=-1).reshape(*tt.shape, 2)


def _cubic_weights(u: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stencil start and the four Lagrange weights of cubic interpolation at grid position u."""
    i = np.clip(np.floor(u).astype(np.int64), 1, size - 3)
    f = u - i
    w = np.stack(
        [
            -f * (f - 1.0) * (f - 2.0) / 6.0,
            (f + 1.0) * (f - 1.0) * (f - 2.0) / 2.0,
            -(f + 1.0) * f * (f - 2.0) / 2.0,
            (f + 1.0) * f * (f - 1.0) / 6.0,
        ]
    )
    return i - 1, w


def _interpolate_table(log_t: np.ndarray, log_alpha: np.ndarray) -> np.ndarray:
    """Tensor-product cubic interpolation of :func:`_fluctuation_table`, shape ``(m, 2)``.

    Within 5e-4 of the quadrature over the table's range (checked in
    ``tests/test_asymptotics.py``), at a few gathers per point.
    """
    table = _fluctuation_table()
    lo_t, hi_t, n_t = _TABLE_LOG_T
    lo_a, hi_a, n_a = np.log(_TABLE_ALPHA[0]), np.log(_TABLE_ALPHA[1]), _TABLE_ALPHA[2]
    it, wt = _cubic_weights((log_t - lo_t) / (hi_t - lo_t) * (n_t - 1), n_t)
    ia, wa = _cubic_weights((log_alpha - lo_a) / (hi_a - lo_a) * (n_a - 1), n_a)
    out = np.zeros((log_t.size, 2))
    for a in range(4):
        for b in range(4):
            out += (wt[a] * wa[b])[:, None] * table[it + a, ia + b]
    return out


def _finite_size_bias(
    lam: np.ndarray, kappa: np.ndarray, q: np.ndarray, nf: np.ndarray, eps: np.ndarray
) -> np.ndarray:
    """Bias weights ``E (P_perp Sigma P_perp)_ii`` with the finite-size fluctuation.

    Exactly, ``(P_perp Sigma P_perp)_ii = lambda_i (1 + z^T R z) / (1 + lambda_i z^T A z)^2``
    where ``z`` (the i-th standardised column of ``X``) is independent of the Gram matrix
    without direction ``i`` (``A`` its inverse, ``R = A X_{-i} Sigma_{-i} X_{-i}^T A``; for
    ridge, the Gram matrix plus ``n ridge I``). The first-order weights replace both quadratic
    forms by their means. Here ``u = z^T A z / tr A`` fluctuates as a Gamma law with ``D =
    n (1 - rho_{-i})`` degrees of freedom (``(tr A)^2 / tr A^2`` from the deterministic
    equivalent; at least 4), ``z^T R z`` moves with it (``= u`` times its mean, see the
    comment below), and the traces are the leave-one-direction-out ones (``kappa_{-i}`` to
    first order in ``q_i``). A direction the data barely sees keeps ``lambda_i (1 + nu)``
    (``nu`` the finite-size noise factor); a well-seen one gains the factor ``E u^-2 = (D/2)^2
    / ((D/2 - 1)(D/2 - 2))`` over the first-order ``kappa^2 / lambda_i``, exact for a strong
    spike on a flat, wide bulk (docs/linear.md, section 3).
    """
    q2 = q * q
    own3 = q2 * (1.0 - q)
    s2 = q2.sum(axis=1)
    third = own3.sum(axis=1)
    nn = nf[:, None]
    # kappa without direction i, to first order in q_i: the derivative in log kappa of the
    # defining equation is n - sum q^2 (interpolation and ridge alike)
    room = np.maximum(nf - s2, 1e-300)[:, None]  # n (1 - rho)
    shift = -q / room
    # n (1 - rho_{-i}) to the same order; within a few samples of the rank the first-order
    # step is large, and the degrees of freedom are kept at no less than half of n (1 - rho)
    dof = np.maximum(nn - (s2[:, None] - q2) + 2.0 * (third[:, None] - own3) * shift, 0.5 * room)
    rho_i = 1.0 - dof / nn
    # E z^T R z: the finite-size noise factor of the spectrum without i (exact as a mean, and
    # exact in the weight of a direction the data does not see, q_i -> 0); for a well-seen
    # direction the fluctuations of numerator and denominator largely cancel and the
    # first-order rho_{-i} / (1 - rho_{-i}) does better (an isotropic covariance, for which
    # the first-order weights are exact at every size, is the extreme case). The two are
    # blended with the squared unseen fraction (1 - q_i)^2; the finite-size excess is capped
    # at a factor 2 near the rank, where the weights vanish
    first = rho_i / (1.0 - rho_i)
    room_i = np.maximum(1.0 - rho_i - eps[:, None], 0.5 * (1.0 - rho_i))
    lead = first + (rho_i / room_i - first) * (1.0 - q) ** 2
    with np.errstate(divide="ignore", over="ignore"):
        t = np.where(kappa[:, None] > 0, lam[None, :] / (kappa[:, None] * np.exp(shift)), 0.0)
    # u = z^T A z / tr A as a Gamma law with D = n (1 - rho_{-i}) degrees of freedom, held at
    # _MIN_DOF or more: with fewer, the law puts most of its mass at u ~ 0 (the direction
    # unseen), which near the rank is not what happens (the bias weights must vanish there)
    g0, g1 = _fluctuation_means(0.5 * np.maximum(dof, _MIN_DOF), t)
    bias = lam[None, :] * (g0 + lead * g1)
    return bias


def _fractions(lam: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """``q = lambda_i / (lambda_i + kappa)`` for each ``kappa`` (rows), ``0`` where both vanish."""
    denom = lam[None, :] + kappa[:, None]
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, lam[None, :] / safe, 0.0)


def _finite_size_forms(
    lam: np.ndarray, kappa: np.ndarray, q: np.ndarray, nf: np.ndarray, *, bounded: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho, bias_weights, noise_factor)`` of the finite-size forms at each ``(n, kappa)``.

    Shared by interpolation (``kappa`` from :func:`solve_kappa`) and ridge (``kappa`` from
    :func:`solve_ridge_kappa`). The noise factor is ``rho / (1 - rho - eps)`` for interpolation
    (``inf`` where that denominator is not positive) and the first-order ``rho / (1 - rho)``
    for ridge (``bounded=True``: finite for every positive ridge).
    """
    rho = (q * q).sum(axis=1) / nf
    eps = _finite_size_eps(q, nf)
    if bounded:
        noise = rho / (1.0 - rho)
    else:
        room = 1.0 - rho - eps
        noise = np.where(room > 0, rho / np.where(room > 0, room, 1.0), np.inf)
    return rho, _finite_size_bias(lam, kappa, q, nf, eps), noise


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
    k = kappa.ravel()
    nf = ns.ravel()
    rho, bias, noise = _finite_size_forms(lam, k, _fractions(lam, k), nf, bounded=True)
    return RidgeEquivalent(
        n=ns.ravel().astype(np.int64),
        ridge=lr.ravel(),
        kappa=k,
        rho=rho,
        bias_weights=bias,
        noise_factor=noise,
    )
