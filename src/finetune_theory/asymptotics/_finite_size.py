"""Finite-size corrections of the deterministic equivalent (docs/linear.md, section 3)."""

from __future__ import annotations

import functools

import numpy as np
from scipy.integrate import cumulative_simpson
from scipy.interpolate import PchipInterpolator
from scipy.special import gammainc

from .._numerics import EIG_RTOL, TINY
from ._constants import (
    CHUNK_CELLS,
    DUAL_EIGVALS,
    DUAL_FULL,
    DUAL_LAST,
    EVAL_EIGVALS,
    GRID_LOW,
    GRID_REACH,
    HEAD_MASS,
    HEAD_SPLIT,
    NEAR_RANK,
    NODES_PER_EFOLD,
    RIDGE_FADE,
    SCALE_NODES,
    TAIL_TERMS,
    TAIL_X,
    TAPER_WIDTH,
)
from ._dual import _dual_bias_weights
from ._kappa import _first_order_weights


def _noise_eps(q: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """``eps`` of the finite-size noise factor ``rho / (1 - rho - eps)``, for each row.

    The noise factor is ``tr (K + mu0)^-1 M (K + mu0)^-1 = -d/dmu d/dt log det(K + mu0 + t
    M)`` at ``t = 0`` (``K = X X^T``, ``M = X Sigma X^T``; ``K + t M`` is the Gram matrix of
    the spectrum ``lambda + t lambda^2``). The central limit theorem for linear spectral
    statistics of real Gaussian sample covariance matrices gives ``E log det(K + mu) =``
    (deterministic equivalent) ``+ 1/2 log D + o(1)``, ``D = mu delta + sum q (1 - q)``, whose
    ``mu``-derivative is the mean term ``delta sum q^2 (1 - q) / D^2`` of ``E tr (K +
    mu)^-1`` used for the bias (docs/linear.md, section 3.1). Differentiating the first
    term gives the first order ``sum q^2 / D = rho / (1 - rho)``, the second the correction

        c = -(tau s2 + s2') / D^2 + 2 s2 D' / D^3,

    with ``s2 = sum q^2 (1 - q)``, ``tau = -sum q^2 / D`` (the ``t``-derivative of ``log
    delta``), ``g = q^2 + tau q (1 - q)`` (of ``q``), ``s2' = sum (2q - 3q^2) g`` and ``D' =
    c0 tau + sum (1 - 2q) g``. It is summed as the geometric series ``rho / (1 - rho) / (1 -
    c / NF1)``, i.e. ``eps = (1 - rho)^2 c / rho``, which is the exact ``n / (d - n - 1)``
    for an isotropic covariance (the plain sum is exact there to second order only).

    ``q`` (rows) are the fractions at each row's ``kappa``; ``c0 = mu0 / kappa`` (zero for
    interpolation).
    """
    c0 = np.asarray(c0, dtype=np.float64)
    one_q = q * (1.0 - q)
    qq = q * q
    sum_qq = qq.sum(axis=-1)
    den = c0 + one_q.sum(axis=-1)
    s2 = (qq * (1.0 - q)).sum(axis=-1)
    tau = -sum_qq / den
    g = qq + tau[..., None] * one_q
    ds2 = ((2.0 * q - 3.0 * qq) * g).sum(axis=-1)
    dden = c0 * tau + ((1.0 - 2.0 * q) * g).sum(axis=-1)
    c = -(tau * s2 + ds2) / den**2 + 2.0 * s2 * dden / den**3
    # (1 - rho)^2 c / rho, with n = c0 + sum q, rho = sum q^2 / n and 1 - rho = D / n
    n = c0 + q.sum(axis=-1)
    return den * den * c / (n * np.where(sum_qq > 0, sum_qq, 1.0))


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
    pos = lam > EIG_RTOL * max(float(lam[0]) if lam.size else 0.0, TINY)
    if not np.any(pos):
        return out
    uniq = np.unique(lam[pos])
    if uniq.size <= EVAL_EIGVALS:
        ev, exact = uniq, True
    else:
        ev, exact = np.geomspace(uniq[0], uniq[-1], EVAL_EIGVALS), False
    rank = int(pos.sum())
    rows = np.nonzero(kappa > 0)[0]
    k0, n, m0 = kappa[rows], nf[rows], mu0[rows]
    qe = ev[None, :] / (ev[None, :] + k0[:, None])
    q_all = lam[None, :] / (lam[None, :] + k0[:, None])
    # Near the rank (docs/linear.md, 3.3 and 3.4): the Laplace weights divided by the fitted
    # near-rank factor of the room m = r - 1 - sum q (a ridge adds c0 = n - sum q to it),
    # tapered to the first order below m = 1; for interpolation the dual route replaces them
    # up to DUAL_FULL samples from the rank, blended out by DUAL_LAST. Each fitted constant
    # is in _constants with its measured effect on the stored Monte Carlo grid
    w = _first_order_weights(ev, qe, (q_all * q_all).sum(axis=1) / n)
    # (below the rank only: from n = r on, with a ridge, the expansions hold again within 1 %
    # for n >= r + 5 or a moderate ridge, measured; at n ~ r with a tiny ridge neither form
    # is accurate, the expectation being dominated by nearly singular designs)
    room = np.where(n < rank, rank - 1.0 - q_all.sum(axis=1), np.inf)
    taper = np.clip((room - 1.0) / TAPER_WIDTH, 0.0, 1.0)
    # a ridge keeps K + n ridge I away from singular: the factor and the dual route fade with
    # c0 = n ridge / kappa (0 for interpolation, n for a huge ridge, where the route is exact)
    c0 = m0 / k0
    with np.errstate(over="ignore"):
        near = 1.0 + NEAR_RANK / ((np.maximum(room, 0.0) ** 2 + 6.0) * (1.0 + c0) ** RIDGE_FADE)
    # the dual route: exact in its average over the direction's own column
    k_left = rank - n
    share = np.clip((DUAL_LAST - k_left) / (DUAL_LAST - DUAL_FULL), 0.0, 1.0)
    share = np.where((k_left >= 1) & (n >= 2.0 * k_left), share, 0.0)
    with np.errstate(over="ignore"):
        share = share / (1.0 + c0) ** RIDGE_FADE
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
        chunk = max(1, CHUNK_CELLS // (int(size) * max(lam.size, SCALE_NODES * ev.size)))
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
        # at most DUAL_EIGVALS directions evaluated, the others interpolated monotonically
        # in log lambda (as for ``ev`` below): the totals stay within 6e-4 of evaluating every
        # node (d = 200 and 2000; i^-1, i^-2, i^-3, 0.97^i), the scan of d = 2000 costs a
        # third less
        dev = ev if ev.size <= DUAL_EIGVALS else np.geomspace(ev[0], ev[-1], DUAL_EIGVALS)
        for j in np.nonzero(share > 1e-12)[0]:
            dual = _dual_bias_weights(lam[pos], dev, int(round(k_left[j])))
            if dev is not ev:
                fit = PchipInterpolator(np.log(dev), np.log(dual / dev))
                dual = ev * np.exp(fit(np.log(ev)))
            w[j] += share[j] * (dual - w[j])
    w = np.maximum(w, TINY * ev[None, :])
    if exact:
        out[np.ix_(rows, np.nonzero(pos)[0])] = w[:, np.searchsorted(ev, lam[pos])]
    else:
        ratio = PchipInterpolator(np.log(ev), np.log(w / ev[None, :]), axis=1)(np.log(lam[pos]))
        out[np.ix_(rows, np.nonzero(pos)[0])] = lam[pos][None, :] * np.exp(ratio)
    return out


def _grid_nodes(
    lam: np.ndarray, scale: np.ndarray, k0: np.ndarray, n: np.ndarray, m0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest node (a whole number) and node count of each row's grid in ``y``.

    The grid starts low enough that ``int_0^{nu_1} delta`` is below ``1e-7`` (below the first
    node ``L = 1`` is assumed) and runs past every direction's scale; in units of ``kappa``.
    """
    q = lam[None, :] / (lam[None, :] + k0[:, None])
    room = np.maximum(n - (q * q).sum(axis=1), TINY)
    low = np.minimum(GRID_LOW, np.floor(np.log(HEAD_MASS / room)))
    top = (GRID_REACH * (scale / k0[:, None]).max(axis=1) + m0 / k0 + (lam.sum() / k0)) / n + 1.0
    nodes = np.ceil((np.log(top) - low) * NODES_PER_EFOLD).astype(np.int64) + 1
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
    y = low + np.arange(nodes) / NODES_PER_EFOLD
    h = np.full(k0.size, 1.0 / NODES_PER_EFOLD)
    # everything below in units of kappa (each row its own): scale-free, no overflow
    lam_r = lam[None, :] / k0[:, None]
    ev_r = (ev[None, :] / k0[:, None])[:, None, :]
    m0_r = m0 / k0
    scale = scale / k0[:, None]
    kr = np.broadcast_to(1.0 + np.concatenate([[0.0], np.exp(y)]), (k0.size, nodes + 1))
    sum_q, sum_q2, sum_q3, phi_all = _grid_sums(lam_r, kr)
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
    core = np.exp(-0.5 * cum) * (1.0 + numer[:, None, :] * ratio)  # the same at every node
    for k in range(nodes_x.size):  # (K,) nodes, (R, m) each
        sk = scale * factors[k]
        v = nu[e] / sk[:, None, :]
        g = v * v * np.exp(-v) * jac[e]
        f = g * core
        body = h[col] * (_node_sum(f) - 0.5 * (f[:, 0] + f[:, -1]))
        v1 = nu[:, :1] / sk
        if np.any(v1 > HEAD_SPLIT):
            base = h[col] * (_node_sum(g) - 0.5 * (g[:, 0] + g[:, -1]))
            body = np.where(v1 > HEAD_SPLIT, start * (1.0 - base) + body, body)
            head = np.where(v1 > HEAD_SPLIT, 0.0, start * gammainc(2.0, v1))
        else:
            head = start * gammainc(2.0, v1)
        weights += gh[k] * (head + body)
    return ev * weights


def _grid_sums(lam_r: np.ndarray, kr: np.ndarray) -> tuple[np.ndarray, ...]:
    """``sum q``, ``sum q^2``, ``sum q^3`` and ``sum (lambda / kappa) q`` at every grid node.

    ``lam_r`` (``(R, d)``) is the spectrum in units of each row's ``kappa``, ``kr`` (``(R, G)``,
    all ``>= 1``) the nodes ``kappa' / kappa``; ``q = x / (1 + x)`` with ``x = lam_r / kr``.
    Directions with ``lam_r < TAIL_X`` have ``x < TAIL_X`` at every node: their sums are power
    series in ``x`` whose coefficients are the row's moments ``sum lam_r^k`` (``TAIL_TERMS``
    terms: the first omitted one is below 1e-18 of the leading one), so each node costs the
    directions above ``TAIL_X`` and ``TAIL_TERMS`` terms instead of all ``d``. Each row is
    computed alone (the same bits in any batch).
    """
    k = np.arange(1, TAIL_TERMS + 1, dtype=np.float64)
    sign = np.where(k % 2 == 1, 1.0, -1.0)  # (-1)^(k + 1)
    # coefficients of x^k in q, q^2, q^3 and x q
    coef = np.stack([sign, -sign * (k - 1.0), sign * (k - 1.0) * (k - 2.0) / 2.0, -sign])
    coef[3, 0] = 0.0
    out = np.empty((4, *kr.shape))
    for r in range(kr.shape[0]):
        row = lam_r[r]
        head = row[row >= TAIL_X]
        tail = row[row < TAIL_X]
        moments = np.empty(TAIL_TERMS)
        power = tail.copy()
        for j in range(TAIL_TERMS):
            moments[j] = power.sum()
            power *= tail
        node = kr[r]
        series = (node[:, None] ** -k[None, :]) @ (coef * moments).T  # (G, 4)
        # repeated eigenvalues (a flat bulk) once each, with their multiplicity
        head, count = np.unique(head, return_counts=True)
        count = count.astype(np.float64)
        q = np.add(head, node[:, None])
        np.divide(head, q, out=q)
        q2 = q * q
        out[0, r] = q @ count + series[:, 0]
        out[3, r] = q @ (count * head) + node * series[:, 3]
        out[1, r] = q2 @ count + series[:, 1]
        np.multiply(q2, q, out=q)
        out[2, r] = q @ count + series[:, 2]
    return out[0], out[1], out[2], out[3]


def _node_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the grid axis (1) of ``(R, G, m)``, each ``(row, direction)`` alone.

    The reduction runs along a contiguous last axis, so a row gets the same bits whatever other
    rows share the batch (a strided reduction's order depends on the batch shape).
    """
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).sum(axis=-1)


@functools.cache
def _hermite_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and normalised weights (a standard normal law)."""
    x, w = np.polynomial.hermite_e.hermegauss(SCALE_NODES)
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


def _finite_size_forms(
    lam: np.ndarray,
    kappa: np.ndarray,
    q: np.ndarray,
    nf: np.ndarray,
    ridge: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho, bias_weights, noise_factor)`` of the finite-size forms at each ``(n, kappa)``.

    Shared by interpolation (``kappa`` from :func:`solve_kappa`) and ridge (``kappa`` from
    :func:`solve_ridge_kappa`, ``ridge`` given, one per row; ``mu0 = n ridge``). The noise
    factor is ``rho / (1 - rho - eps)`` with ``eps`` of :func:`_noise_eps` at ``mu0``. Where
    ``eps`` exceeds half of ``1 - rho`` the series it sums has no meaning (within about two
    samples of the rank, or a spectrum so steep that a few directions hold all of it): the
    factor is then twice the first order, where the series' ratio reaches 1/2 (for
    interpolation :func:`deterministic_equivalent` makes it ``inf`` from ``n = r - 1`` on,
    where the expectation diverges).
    """
    rho = (q * q).sum(axis=1) / nf
    mu0 = np.zeros_like(nf) if ridge is None else nf * ridge
    eps = _noise_eps(q, mu0 / np.where(kappa > 0, kappa, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = rho / np.maximum(1.0 - rho - eps, 0.5 * (1.0 - rho))
    return rho, _finite_size_bias(lam, kappa, nf, eps, mu0), noise
