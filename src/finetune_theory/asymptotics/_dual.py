"""Near the rank: the bias weights from the dual design (docs/linear.md, section 3.3)."""

from __future__ import annotations

import numpy as np

from ._constants import CHUNK_CELLS, DUAL_NODES
from ._kappa import solve_kappa


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
    step = max(1, CHUNK_CELLS // (2 * DUAL_NODES * lam.size))
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
    x, wl = np.polynomial.laguerre.laggauss(DUAL_NODES)
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
