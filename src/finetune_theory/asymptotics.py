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
  averaged over ``z`` exactly by Laplace transforms of the deterministic equivalent of the
  resolvent trace, with the central-limit mean and variance of ``tr A`` across designs
  (:func:`_finite_size_bias`). A strong spike then gets the inverse-Wishart factor that the
  first order misses. Within a few samples of the rank the unseen space is small and a dual
  route takes over (:func:`_dual_bias_weights`: the unseen space is the row space of a
  ``k``-sample design with covariance ``Sigma^{-1}``, ``k = r - n``, averaged exactly over the
  direction's own column); between the two, an empirical factor tames the expansions.

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
from scipy.integrate import cumulative_simpson
from scipy.interpolate import PchipInterpolator
from scipy.special import gammainc

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
        if exact:
            bias = np.where(interp[:, None], _first_order_weights(lam, frac, rho), 0.0)
            # exact Wishart moments: n / (r - n - 1) below the rank, r / (n - r - 1) above it
            below = np.where(r - nf - 1 > 0, nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0), np.inf)
        else:
            # finite-size forms (docs/linear.md, section 3): the noise factor rho / (1 - rho -
            # eps), exact for isotropic covariances and infinite from n = r - 1 on, and bias
            # weights with the leave-one-direction-out fluctuation of each learned direction
            _, bias, below = _finite_size_forms(lam, kappa, frac, nf)
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


# the Laplace route of _finite_size_bias: nodes per e-fold of the grid in kappa' - kappa (the
# cumulative Simpson rule converges as h^4: 3 nodes are within 4e-4 of a grid eight times
# finer), its default lowest node (log of kappa' / kappa - 1; lower for large n (1 - rho)),
# how far past each direction's decay scale it runs, and the most eigenvalues evaluated
# directly (beyond, a log-spaced grid of them, interpolated monotonically in log lambda)
_NODES_PER_EFOLD = 3
_GRID_LOW = -18.0
_GRID_REACH = 45.0
_EVAL_EIGVALS = 160
_CHUNK_CELLS = 4_000_000


def _finite_size_bias(
    lam: np.ndarray, kappa: np.ndarray, nf: np.ndarray, eps: np.ndarray, mu0: np.ndarray
) -> np.ndarray:
    """Bias weights ``E (P_perp Sigma P_perp)_ii`` with the finite-size fluctuation, per row.

    Exactly, ``(P_perp Sigma P_perp)_ii = lambda_i (1 + z^T R z) / (1 + lambda_i z^T A z)^2``
    where ``z`` (the i-th standardised column of ``X``) is independent of the Gram matrix
    ``G`` of the other columns, ``A = (G + mu0)^{-1}`` (``mu0 = n ridge``; 0 for
    interpolation) and ``R = A M A`` with ``M = X_{-i} Sigma_{-i} X_{-i}^T``. The average over
    ``z`` is exact through Laplace transforms (docs/linear.md, section 3.2):
    ``(1 + x)^-2 = int v e^{-v (1 + x)} dv``, ``E e^{-s z^T A z} = exp(-1/2 int_0^{2s}
    delta(mu0 + nu) dnu)`` and ``E z^T R z e^{-s z^T A z} = E e^{-s z^T A z} (phi(mu0) -
    phi(mu0 + 2s)) / (2s)``, with ``delta(mu) = tr (G + mu)^{-1}`` and ``phi(mu) = tr M (G +
    mu)^{-1}`` replaced by their deterministic equivalents for the spectrum without ``i``
    (one Halley step from the full spectrum). Along ``kappa' >= kappa`` these are explicit:
    ``delta = 1 / kappa'``, ``mu = kappa' (n - sum q')`` and ``phi = sum lambda q'`` with
    ``q' = lambda / (lambda + kappa')``, so no equation is solved on the grid. Two
    finite-size means enter: ``E tr A`` exceeds ``1 / kappa`` by the factor ``1 + sum q^2 (1
    - q) / D^2`` (``D = n (1 - rho)``, the mean term of the central limit theorem for
    linear spectral statistics), which rescales ``z^T A z``, and ``E z^T R z`` is the
    finite-size noise factor, which rescales the numerator.
    """
    out = np.zeros((kappa.size, lam.size))
    pos = lam > _RANK_RTOL * max(float(lam[0]) if lam.size else 0.0, 1e-300)
    if not np.any(pos):
        return out
    uniq = np.unique(lam[pos])
    if uniq.size <= _EVAL_EIGVALS:
        ev, exact = uniq, True
    else:
        ev, exact = np.geomspace(uniq[0], uniq[-1], _EVAL_EIGVALS), False
    rank = int(pos.sum())
    rows = np.nonzero(kappa > 0)[0]
    k0, n, m0 = kappa[rows], nf[rows], mu0[rows]
    qe = ev[None, :] / (ev[None, :] + k0[:, None])
    q_all = lam[None, :] / (lam[None, :] + k0[:, None])
    # Near the rank the spectrum without i is itself near its rank and the expansions
    # overshoot by a factor that depends on the room left, m = r - 1 - sum_j q_j (r - 1 - n
    # for interpolation; a ridge adds n - sum q): measured on i^-1 and i^-2 at d = 30, 60 and
    # 200, +3 % at m = 9, +10 % at m = 5, +23 % at m = 3, +31..48 % at m = 1, whatever the
    # spectrum. The weights are divided by the fitted 1 + 3 / (m^2 + 6) (docs/linear.md,
    # 3.2: an empirical factor, not derived) and, for m <= 1, replaced by the first order
    # (between m = 1 and 3 a linear blend). For interpolation the dual route below replaces
    # all of this up to _DUAL_FULL samples from the rank and is blended in up to _DUAL_LAST;
    # the factor and the first order remain for a ridge and for tiny ranks
    w = _first_order_weights(ev, qe, (q_all * q_all).sum(axis=1) / n)
    # (below the rank only: from n = r on, with a ridge, the expansions hold again within 1 %
    # for n >= r + 5 or a moderate ridge, measured; at n ~ r with a tiny ridge neither form
    # is accurate, the expectation being dominated by nearly singular designs)
    room = np.where(n < rank, rank - 1.0 - q_all.sum(axis=1), np.inf)
    taper = np.clip((room - 1.0) / 2.0, 0.0, 1.0)
    # a ridge keeps K + n ridge I away from singular: the factor fades with c0 = n ridge /
    # kappa = n - sum q (0 for interpolation, n for a huge ridge, where the route is exact)
    c0 = m0 / k0
    with np.errstate(over="ignore"):
        near = 1.0 + 3.0 / ((np.maximum(room, 0.0) ** 2 + 6.0) * (1.0 + c0) ** 4)
    # within a few samples of the rank the unseen space is small: the dual route, exact in its
    # average over the direction's own column, takes over (fully up to _DUAL_FULL samples from
    # the rank, blended out by _DUAL_LAST; a ridge fades it as it fades the factor above)
    k_left = rank - n
    share = np.clip((_DUAL_LAST - k_left) / (_DUAL_LAST - _DUAL_FULL), 0.0, 1.0)
    share = np.where((k_left >= 1) & (n >= 2.0 * k_left), share, 0.0)
    with np.errstate(over="ignore"):
        share = share / (1.0 + c0) ** 4
    # (the rows it replaces whole skip the Laplace route)
    live = np.nonzero((taper > 0) & (share < 1.0))[0]
    e = eps[rows]
    # rows are batched by the size of their grid, so that each row's weights are the same bits
    # whether it is computed alone or with others
    scale, var, numer = _laplace_scales(lam, ev, k0[live], n[live], e[live], m0[live])
    low, nodes = _grid_nodes(lam, scale, k0[live], n[live], m0[live])
    grids = np.stack([low, nodes.astype(np.float64)], axis=1)
    for key in np.unique(grids, axis=0):
        where = np.flatnonzero(np.all(grids == key, axis=1))  # positions within ``live``
        size = int(key[1])
        chunk = max(1, _CHUNK_CELLS // (int(size) * max(lam.size, _SCALE_NODES * ev.size)))
        for start in range(0, where.size, chunk):
            at = where[start : start + chunk]
            part = live[at]
            lap = _laplace_weights(
                lam, ev, k0[part], n[part], m0[part], scale[at], var[at], numer[at], key[0], size
            )
            # a non-positive value (n ~ r with a vanishing ridge) falls back to the first order
            lap = np.where(lap > 0, lap / near[part, None], w[part])
            w[part] += taper[part, None] * (lap - w[part])
    if np.any(share > 1e-12):
        # at most _DUAL_EIGVALS directions evaluated, the others interpolated monotonically
        # in log lambda (as for ``ev`` below): the totals stay within 6e-4 of evaluating every
        # node (d = 200 and 2000; i^-1, i^-2, i^-3, 0.97^i), the scan of d = 2000 costs a
        # third less
        dev = ev if ev.size <= _DUAL_EIGVALS else np.geomspace(ev[0], ev[-1], _DUAL_EIGVALS)
        for j in np.nonzero(share > 1e-12)[0]:
            dual = _dual_bias_weights(lam[pos], dev, int(round(k_left[j])))
            if dev is not ev:
                fit = PchipInterpolator(np.log(dev), np.log(dual / dev))
                dual = ev * np.exp(fit(np.log(ev)))
            w[j] += share[j] * (dual - w[j])
    w = np.maximum(w, 1e-300 * ev[None, :])
    if exact:
        out[np.ix_(rows, np.nonzero(pos)[0])] = w[:, np.searchsorted(ev, lam[pos])]
    else:
        ratio = PchipInterpolator(np.log(ev), np.log(w / ev[None, :]), axis=1)(np.log(lam[pos]))
        out[np.ix_(rows, np.nonzero(pos)[0])] = lam[pos][None, :] * np.exp(ratio)
    return out


#: the dual route near the rank: used alone up to this many samples below the rank, blended out
#: linearly by ``_DUAL_LAST``, with ``_DUAL_NODES`` Gauss-Laguerre nodes, evaluated at no more
#: than ``_DUAL_EIGVALS`` eigenvalues
_DUAL_FULL = 4
_DUAL_LAST = 10
_DUAL_NODES = 64
_DUAL_EIGVALS = 48


def _dual_sums(
    lam: np.ndarray, e: np.ndarray, kp: np.ndarray, full: bool = True
) -> tuple[np.ndarray, ...]:
    """Sums over the spectrum ``lam`` without one direction of variance ``e`` (rows of ``kp``).

    With ``p_j = 1 / (1 + kappa' lambda_j)`` (the dual fractions): ``sum p``, ``sum p^2``
    and, if ``full``, ``sum lambda p`` and ``sum (log(1 - p) + p)``, each less the term of
    ``e`` (``log(1 - p) = -log1p(1 / (kappa' lambda))``).
    """
    z = kp[..., None] * lam
    p = 1.0 / (1.0 + z)
    ze = kp * e[:, None]
    pe = 1.0 / (1.0 + ze)
    s1 = p.sum(axis=-1) - pe
    s2 = np.einsum("...j,...j->...", p, p) - pe * pe
    if not full:
        return s1, s2
    phi = p @ lam - e[:, None] * pe
    f = (p - np.log1p(1.0 / z)).sum(axis=-1) - (pe - np.log1p(1.0 / ze))
    return s1, s2, phi, f


def _dual_bias_weights(lam: np.ndarray, e: np.ndarray, k: int) -> np.ndarray:
    """Bias weights at ``n = r - k`` for directions of variance ``e``, from the dual design.

    ``lam``: the positive spectrum (rank ``r``). The unseen space of ``X = Z Lambda^{1/2}`` is
    ``Lambda^{-1/2}`` times a uniform ``k``-dimensional subspace, i.e. the row space of a ``k x
    r`` design ``Y`` with rows ``N(0, Lambda^{-1})``. For direction ``i``, with ``g`` its column
    of ``Y`` (scaled to ``N(0, I_k)``), ``B = Y_{-i} Y_{-i}^T`` and ``C = Y_{-i} Lambda Y_{-i}^T``
    (without ``i``, independent of ``g``), Sherman-Morrison gives exactly

        (P_perp Sigma P_perp)_ii = lambda_i (r_i + a_i^2) / (lambda_i + a_i)^2,
        a_i = g^T B^{-1} g,  r_i = g^T B^{-1} C B^{-1} g.

    Averaged over ``g`` through ``(lambda + a)^{-2} = int v e^{-v (lambda + a)} dv``:
    ``w_i = lambda_i int v e^{-v lambda_i} e^{L(v)} ((phi(0) - phi(2v)) / (2v) + delta(2v)^2 -
    2 delta'(2v)) dv`` with ``L(v) = -1/2 int_0^{2v} delta``, ``delta(mu) = tr (B + mu)^{-1}``
    and ``phi(mu) = tr C (B + mu)^{-1}``. These are replaced by the deterministic equivalent
    of the ``k``-sample dual Gram, explicit along ``kappa'``: ``delta = 1 / kappa'``, ``mu =
    kappa' (k - sum p)``, ``phi = sum lambda p`` and ``int_0^mu delta = k log(kappa' /
    kappa_0) - [sum (log(1 - p) + p)]_{kappa_0}^{kappa'}`` (``p = 1 / (1 + kappa' lambda)``,
    sums without ``i``). ``a`` is rescaled by the central-limit mean of ``tr B^{-1}``, ``1 +
    sum p^2 (1 - p) / (k - sum p^2)^2`` (as ``z^T A z`` in :func:`_finite_size_bias`); the
    ``v`` integral is a Gauss-Laguerre rule in ``x = v lambda_i``.
    """
    # the full dual spectrum 1 / lambda: its scale is the usual kappa at k samples
    full = float(solve_kappa(1.0 / lam, k)[0])
    p = 1.0 / (1.0 + full * lam)
    c = 1.0 + float((p * p * (1.0 - p)).sum()) / (k - float((p * p).sum())) ** 2
    step = max(1, _CHUNK_CELLS // (2 * _DUAL_NODES * lam.size))
    return np.concatenate([_dual_chunk(lam, e[i : i + step], k, c) for i in range(0, e.size, step)])


def _dual_kappa0(lam: np.ndarray, e: np.ndarray, k: int) -> np.ndarray:
    """``kappa_0`` with ``sum p = k`` over the spectrum without one direction of variance ``e``."""
    lo = np.full(e.size, -np.log(lam.max()) - 40.0)
    hi = np.full(e.size, -np.log(lam.min()) + 40.0)
    for _ in range(90):  # bisection in log kappa'
        mid = 0.5 * (lo + hi)
        kp = np.exp(mid)
        s1 = (1.0 / (1.0 + kp[:, None] * lam)).sum(axis=1) - 1.0 / (1.0 + kp * e)
        lo, hi = np.where(s1 > k, mid, lo), np.where(s1 > k, hi, mid)
    return np.exp(0.5 * (lo + hi))


def _dual_chunk(lam: np.ndarray, e: np.ndarray, k: int, c: float) -> np.ndarray:
    """:func:`_dual_bias_weights` for a chunk of directions, with the factor ``c``."""
    k0 = _dual_kappa0(lam, e, k)[:, None]
    outer = e / c
    x, wl = np.polynomial.laguerre.laggauss(_DUAL_NODES)
    mu = 2.0 * x[None, :] / outer[:, None]
    _, s20, phi0, f0 = _dual_sums(lam, e, k0)
    # mu(kappa') is increasing and convex: Newton from the tangent at kappa_0 (to the right)
    kp = k0 + mu / (k - s20)
    for _ in range(40):
        s1, s2 = _dual_sums(lam, e, kp, full=False)
        step = (kp * (k - s1) - mu) / (k - s2)
        kp = kp - step
        if float(np.max(np.abs(step) / kp)) < 1e-13:
            break
    _, s2, phi, f = _dual_sums(lam, e, kp)
    log_lap = -0.5 * (k * np.log(kp / k0) - (f - f0))
    bracket = (phi0 - phi) / mu + kp**-2.0 + 2.0 / (kp**2 * (k - s2))
    return c * (wl * x * np.exp(log_lap) * bracket).sum(axis=1) / outer


def _grid_nodes(
    lam: np.ndarray, scale: np.ndarray, k0: np.ndarray, n: np.ndarray, m0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest node (a whole number) and node count of each row's grid in ``y``.

    The grid starts low enough that ``int_0^{nu_1} delta`` is below ``1e-7`` (below the first
    node ``L = 1`` is assumed) and runs past every direction's scale; in units of ``kappa``.
    """
    q = lam[None, :] / (lam[None, :] + k0[:, None])
    room = np.maximum(n - (q * q).sum(axis=1), 1e-300)
    low = np.minimum(_GRID_LOW, np.floor(np.log(1e-7 / room)))
    top = (_GRID_REACH * (scale / k0[:, None]).max(axis=1) + m0 / k0 + (lam.sum() / k0)) / n + 1.0
    nodes = np.ceil((np.log(top) - low) * _NODES_PER_EFOLD).astype(np.int64) + 1
    return low, nodes


def _laplace_scales(
    lam: np.ndarray, ev: np.ndarray, k0: np.ndarray, n: np.ndarray, eps: np.ndarray, m0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scale, var, numer)`` of each row and direction evaluated (shapes ``(R, m)``)."""
    q0 = lam[None, :] / (lam[None, :] + k0[:, None])
    qe = ev[None, :] / (ev[None, :] + k0[:, None])
    stretch, var = _inverse_trace_moments(q0, qe, m0 / k0)
    rho_i = ((q0 * q0).sum(axis=1)[:, None] - qe * qe) / n[:, None]
    numer = (1.0 - rho_i) / np.maximum(1.0 - rho_i - eps[:, None], 0.5 * (1.0 - rho_i))
    return 2.0 * ev[None, :] * stretch, var, numer  # nu = scale * v


def _laplace_weights(
    lam: np.ndarray,
    ev: np.ndarray,
    k0: np.ndarray,
    n: np.ndarray,
    m0: np.ndarray,
    scale: np.ndarray,
    var: np.ndarray,
    numer: np.ndarray,
    low: float,
    nodes: int,
) -> np.ndarray:
    """The weights of :func:`_finite_size_bias` for directions of eigenvalue ``ev``.

    Vectorised over rows (``k0, n, m0`` of shape ``(R,)``; ``scale, var, numer`` of
    :func:`_laplace_scales`, ``(R, m)``; result ``(R, m)``) that share the grid of
    :func:`_grid_nodes`: ``nodes`` nodes in ``y = log(kappa' / kappa - 1)`` from ``low``, so
    that ``nu(y)`` runs from ~0 to past every scale; node 0 is ``kappa' = kappa`` (``nu = 0``).
    """
    col = (slice(None), None)
    y = low + np.arange(nodes) / _NODES_PER_EFOLD
    h = np.full(k0.size, 1.0 / _NODES_PER_EFOLD)
    # everything below in units of kappa (each row its own): scale-free, no overflow
    lam_r = lam[None, :] / k0[:, None]
    ev_r = (ev[None, :] / k0[:, None])[:, None, :]
    m0_r = m0 / k0
    scale = scale / k0[:, None]
    kr = np.broadcast_to(1.0 + np.concatenate([[0.0], np.exp(y)]), (k0.size, nodes + 1))
    q = lam_r[:, None, :] / (lam_r[:, None, :] + kr[..., None])  # (R, G + 1, d)
    q2 = q * q
    sum_q, sum_q2, sum_q3 = q.sum(axis=-1), q2.sum(axis=-1), (q2 * q).sum(axis=-1)
    phi_all = (q * lam_r[:, None, :]).sum(axis=-1)  # row by row, the same bits in any batch
    del q, q2
    nu = np.maximum(kr * (n[col] - sum_q) - m0_r[col], 0.0)
    nu[:, 0] = 0.0
    dnu = (n[col] - sum_q2) * (kr - 1.0)  # d nu / d y
    # delta_{-i}: one Halley step from delta = 1 / kappa' of the equation delta mu + sum_j
    # lambda_j delta / (1 + lambda_j delta) = n without direction i, and phi_{-i} = sum_{j !=
    # i} lambda_j^2 delta / (1 + lambda_j delta) to second order in the step
    e = (..., None)
    qn = ev_r / (ev_r + kr[e])  # (R, G + 1, m)
    slope = (nu + m0_r[col])[e] + kr[e] * ((sum_q - sum_q2)[e] - qn * (1.0 - qn))
    bend = kr[e] ** 2 * ((sum_q2 - sum_q3)[e] - qn * qn * (1.0 - qn))
    step = qn / slope / np.maximum(1.0 - qn * bend / slope**2, 0.5)
    dl = 1.0 / kr[e] + step
    phi = (
        phi_all[e]
        - ev_r * qn
        + kr[e] ** 2 * (sum_q2[e] - qn * qn) * step
        - kr[e] ** 3 * (sum_q3[e] - qn**3) * step**2
    )
    # cumulative integral of delta_{-i} over nu: the first piece [0, nu_1], then Simpson
    cum = 0.5 * (dl[:, :1] + dl[:, 1:2]) * nu[:, 1:2, None] + h[:, None, None] * (
        cumulative_simpson(dl[:, 1:] * dnu[:, 1:, None], dx=1.0, axis=1, initial=0.0)
    )
    phi0, phi, nu, dnu = phi[:, 0], phi[:, 1:], nu[:, 1:], dnu[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(nu[e] > 0, (phi0[:, None, :] - phi) / nu[e], 0.0)
    # the fluctuation of the scale of A across designs (relative variance from the central
    # limit theorem of tr (G + mu0)^{-1}), averaged by Gauss-Hermite over a log-normal factor
    nodes_x, gh = _hermite_nodes()
    sig2 = np.log1p(np.minimum(var, 1.0))
    factors = np.exp(-0.5 * sig2[None] + np.sqrt(sig2)[None] * nodes_x[:, None, None])
    weights = np.zeros(scale.shape)
    jac = dnu / np.where(nu > 0, nu, 1.0)
    # int v e^-v L(nu) (1 + numer ratio) dv (dv = v dnu / nu). Below the grid's first node
    # L = 1 and the ratio is its nu -> 0 value -phi'_{-i}(mu0), so that piece is ``start``
    # times P(2, v_1) = 1 - (1 + v_1) e^-v_1. Where v_1 is not small (a direction whose scale
    # is near the first node: a huge ridge) the trapezoid would start on a large integrand;
    # there the nu -> 0 limit is integrated in closed form over the whole line (``start``) and
    # only the difference, which vanishes at the first node, on the grid
    start = 1.0 + numer * ratio[:, 0]
    for k in range(nodes_x.size):  # (K,) nodes, (R, m) each
        sk = scale * factors[k]
        v = nu[e] / sk[:, None, :]
        g = v * v * np.exp(-v) * jac[e]
        f = g * np.exp(-0.5 * cum) * (1.0 + numer[:, None, :] * ratio)
        body = h[col] * (f.sum(axis=1) - 0.5 * (f[:, 0] + f[:, -1]))
        v1 = nu[:, :1] / sk
        if np.any(v1 > _HEAD_SPLIT):
            base = h[col] * (g.sum(axis=1) - 0.5 * (g[:, 0] + g[:, -1]))
            body = np.where(v1 > _HEAD_SPLIT, start * (1.0 - base) + body, body)
            head = np.where(v1 > _HEAD_SPLIT, 0.0, start * gammainc(2.0, v1))
        else:
            head = start * gammainc(2.0, v1)
        weights += gh[k] * (head + body)
    return ev * weights


_SCALE_NODES = 3
_HEAD_SPLIT = 1e-3


@functools.cache
def _hermite_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and normalised weights (a standard normal law)."""
    x, w = np.polynomial.hermite_e.hermegauss(_SCALE_NODES)
    return x, w / w.sum()


def _inverse_trace_moments(
    q: np.ndarray, qe: np.ndarray, c0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean factor and relative variance of ``tr (G + mu0)^{-1}`` without each direction.

    ``G`` is the Gram matrix of the columns other than ``i``; per row, ``qe`` (shape ``(R,
    m)``) are the fractions of the directions evaluated, ``q`` (``(R, d)``) those of the
    whole spectrum at ``kappa`` and ``c0 = mu0 / kappa`` (``(R,)``); results ``(R, m)``.
    The central limit theorem for linear spectral statistics of sample covariance matrices
    (real Gaussian data) gives, with ``D = n (1 - rho) = c0 + sum q (1 - q)`` and ``delta(mu)``
    the deterministic equivalent, the mean ``(1 / kappa) (1 + sum q^2 (1 - q) / D^2)`` and
    the variance ``2 (d3 / (6 d1) - (d2 / (2 d1))^2)``, ``dk`` the k-th derivative of
    ``delta`` in ``mu`` (implicit differentiation of ``delta (mu + sum lambda / (1 + lambda
    delta)) = n``). Both are checked against Monte Carlo in ``tests/test_asymptotics.py``.
    """
    tot = (slice(None), None)
    spread = (q * (1.0 - q)).sum(axis=-1)
    s1 = spread[tot] - qe * (1.0 - qe)
    s2 = (q * q * (1.0 - q)).sum(axis=-1)[tot] - qe * qe * (1.0 - qe)
    s3 = (q**3 * (1.0 - q)).sum(axis=-1)[tot] - qe**3 * (1.0 - qe)
    c0 = np.asarray(c0, dtype=np.float64)[tot]
    den = np.maximum(c0 + s1, 0.5 * (c0 + spread[tot]))
    mean = 1.0 + s2 / den**2
    # in units of kappa (delta = 1): g' = s1, g'' = -2 s2, g''' = 6 s3
    d1 = -1.0 / den
    d2 = -(2.0 * d1 - 2.0 * s2 * d1 * d1) / den
    d3 = -(3.0 * d2 - 6.0 * s2 * d1 * d2 + 6.0 * s3 * d1**3) / den
    var = np.maximum(2.0 * (d3 / (6.0 * d1) - (d2 / (2.0 * d1)) ** 2), 0.0)
    return mean, var


def _first_order_weights(lam: np.ndarray, q: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """First-order bias weights ``lambda_i (1 - q_i)^2 / (1 - rho)`` (rows of ``q``, ``rho``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam[None, :] * (1.0 - q) ** 2 / (1.0 - rho)[:, None]


def _fractions(lam: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """``q = lambda_i / (lambda_i + kappa)`` for each ``kappa`` (rows), ``0`` where both vanish."""
    denom = lam[None, :] + kappa[:, None]
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, lam[None, :] / safe, 0.0)


def _finite_size_forms(
    lam: np.ndarray,
    kappa: np.ndarray,
    q: np.ndarray,
    nf: np.ndarray,
    ridge: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho, bias_weights, noise_factor)`` of the finite-size forms at each ``(n, kappa)``.

    Shared by interpolation (``kappa`` from :func:`solve_kappa`) and ridge (``kappa`` from
    :func:`solve_ridge_kappa`). The noise factor is ``rho / (1 - rho - eps)`` for interpolation
    (``inf`` where that denominator is not positive) and the first-order ``rho / (1 - rho)``
    for ridge (``ridge`` given, one per row: finite for every positive ridge).
    """
    rho = (q * q).sum(axis=1) / nf
    eps = _finite_size_eps(q, nf)
    if ridge is not None:
        noise = rho / (1.0 - rho)
        mu0 = nf * ridge
    else:
        room = 1.0 - rho - eps
        noise = np.where(room > 0, rho / np.where(room > 0, room, 1.0), np.inf)
        mu0 = np.zeros_like(nf)
    return rho, _finite_size_bias(lam, kappa, nf, eps, mu0), noise


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
        ``w_i``, the expected bias part of the excess risk being ``sum_i w_i <theta_S -
        theta_T, v_i>^2``: to first order ``kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 -
        rho)``; the finite-size weights of :func:`_finite_size_bias` (``docs/linear.md``, 3.2).
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
              + sigma^2 rho / (1 - rho)

    to first order; the bias weights returned are the finite-size ones of the interpolation
    path (the same Laplace route at ``mu0 = n ridge``), the noise factor the first-order one.

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
    rho, bias, noise = _finite_size_forms(lam, k, _fractions(lam, k), nf, lr.ravel())
    return RidgeEquivalent(
        n=ns.ravel().astype(np.int64),
        ridge=lr.ravel(),
        kappa=k,
        rho=rho,
        bias_weights=bias,
        noise_factor=noise,
    )
