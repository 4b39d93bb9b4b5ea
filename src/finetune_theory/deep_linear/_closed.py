"""Private closed-form pieces of :mod:`finetune_theory.deep_linear`.

* :func:`solve_scale`: the scalar equation for the scale ``s_N`` of the source in the unseen
  subspace, vectorised, from squared norms (realised ones for :func:`deep_linear.finetune`,
  deterministic equivalents for :func:`deep_linear.expected_risk`);
* :func:`projections`: ``X^+ y``, ``P_perp theta_S`` and ``P_X theta_S``, batched;
* :func:`scale_derivatives`, :func:`norm_covariances`, :func:`beta_rule`: the pieces of the
  fluctuation correction of :func:`deep_linear.expected_risk`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh_tridiagonal

from .._numerics import pinv
from .._validation import check_depth

__all__ = [
    "solve_scale",
    "scale_root",
    "scale_derivatives",
    "norm_covariances",
    "beta_rule",
    "pinv",
    "projections",
]


def solve_scale(
    target_sq: ArrayLike,
    perp_sq: ArrayLike,
    source_sq: ArrayLike,
    depth: float,
    *,
    seen_sq: ArrayLike | None = None,
) -> np.ndarray:
    """The scale ``s_N`` from squared norms (vectorised; the core of the closed form).

    The root ``s > 0`` of ``s^(N/(N-1)) c = sqrt(a^2 + b^2 s^2)`` with ``a^2 = target_sq``
    (``||X^+ y||^2``), ``b^2 = perp_sq`` (``||P_perp theta_S||^2``) and ``c^2 = source_sq``
    (``||theta_S||^2``); see :func:`scale_root`, which this validates ``depth`` for.

    Parameters
    ----------
    target_sq : array-like
        ``||X^+ y||^2``, the squared norm of the minimum-norm interpolant.
    perp_sq : array-like
        ``||P_perp theta_S||^2``, the squared norm of the source outside the row space of ``X``.
    source_sq : array-like
        ``||theta_S||^2`` (positive).
    depth : int or math.inf
        Depth ``N`` of the network (depth 1 gives ``s = 1``).
    seen_sq : array-like, optional
        ``||P_X theta_S||^2``, used at ``depth = inf`` instead of ``source_sq - perp_sq`` to
        avoid the cancellation.

    Returns
    -------
    ndarray
        ``s_N``, of the broadcast shape of the norms.

    Examples
    --------
    >>> import math
    >>> float(solve_scale(1.0, 0.0, 1.0, 2))  # s^2 = 1: nothing unseen, s = (a / c)^(1/p)
    1.0
    >>> float(solve_scale(4.0, 3.0, 4.0, math.inf))  # a / sqrt(c^2 - b^2) = 2 / 1
    2.0
    """
    return scale_root(target_sq, perp_sq, source_sq, check_depth(depth), seen_sq=seen_sq)


def scale_root(
    target_sq: Any, perp_sq: Any, source_sq: Any, depth: float, *, seen_sq: Any = None
) -> np.ndarray:
    """The scale ``s_N`` from squared norms (vectorised; the core of the closed form).

    Solves ``s^(N/(N-1)) c = sqrt(a^2 + b^2 s^2)`` for ``s > 0`` with ``a^2 = target_sq``
    (``||X^+ y||^2``), ``b^2 = perp_sq`` (``||P_perp theta_S||^2``) and ``c^2 = source_sq``
    (``||theta_S||^2``). In ``t = log s`` the equation reads
    ``h(t) = (2/(N-1)) t + log c^2 - log(a^2 e^(-2t) + b^2) = 0``; ``h`` is strictly increasing
    (its slope exceeds ``2/(N-1)``) and concave, so the root is unique, and Newton's method
    started left of it climbs to it monotonically. It is bracketed by
    ``max(log(a/c)/p, (N-1) log(b/c)) <= t <= max(log(2a^2/c^2)/(2p), (N-1)/2 log(2b^2/c^2))``
    with ``p = N/(N-1)``; the bracket also guards each step.

    Depth 1 gives ``s = 1``; ``depth = inf`` gives ``a / sqrt(c^2 - b^2)``, for which
    ``seen_sq`` (``||P_X theta_S||^2``) may be passed to avoid the cancellation. ``a = b = 0``
    gives ``s = 0``. ``depth`` is already validated (an int ``>= 1`` or ``math.inf``).
    """
    a2, b2, c2 = (np.asarray(v, dtype=np.float64) for v in (target_sq, perp_sq, source_sq))
    a2, b2, c2 = np.broadcast_arrays(a2, b2, c2)
    if np.any(c2 <= 0):
        raise ValueError("theta_source must be nonzero: zero weights are a stationary point")
    if depth == 1:
        return np.ones(a2.shape)
    if math.isinf(depth):
        seen = c2 - b2 if seen_sq is None else np.broadcast_to(np.asarray(seen_sq, float), a2.shape)
        if np.any(seen <= 1e-24 * c2):
            raise ValueError(
                "theta_source has no component in the row space of X (P_X theta_S = 0): the "
                "infinite-depth scale ||X^+ y|| / ||P_X theta_S|| does not exist"
            )
        return np.sqrt(a2 / seen)
    p = depth / (depth - 1.0)
    k = 2.0 / (depth - 1.0)
    with np.errstate(divide="ignore"):
        la, lb, lc = 0.5 * np.log(a2), 0.5 * np.log(b2), 0.5 * np.log(c2)
    both_zero = (a2 <= 0) & (b2 <= 0)
    la = np.where(both_zero, lc, la)  # placeholder root, overwritten below
    lo = np.maximum((la - lc) / p, (depth - 1.0) * (lb - lc))
    hi = np.maximum(
        (math.log(2.0) + 2 * (la - lc)) / (2 * p),
        0.5 * (depth - 1.0) * (math.log(2.0) + 2 * (lb - lc)),
    )
    t = lo.copy()
    for _ in range(200):
        mix = np.logaddexp(2 * la - 2 * t, 2 * lb)
        h = k * t + 2 * lc - mix
        q = np.exp(2 * la - 2 * t - mix)
        slope = k + 2 * q
        lo = np.where(h < 0, t, lo)
        hi = np.where(h < 0, hi, t)
        newton = t - h / slope
        t_new = np.where((newton >= lo) & (newton <= hi), newton, 0.5 * (lo + hi))
        if np.all(np.abs(t_new - t) <= 4e-16 * np.maximum(1.0, np.abs(t))):
            t = t_new
            break
        t = t_new
    return np.where(both_zero, 0.0, np.exp(t))


def projections(
    x: np.ndarray, yy: np.ndarray, ts: np.ndarray, design: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X^+ y``, ``P_perp theta_S`` and ``P_X theta_S`` of validated, broadcast arrays.

    ``design`` is ``X`` before broadcasting (so that one design shared by a batch of labels
    gets one pseudo-inverse).
    """
    n, d = x.shape[-2:]
    batch = x.shape[:-2]
    inv = pinv(design)
    sol = np.einsum("...dn,...n->...d", inv, yy)
    seen = np.einsum("...dn,...n->...d", inv, np.einsum("...nd,...d->...n", x, ts))
    seen = np.broadcast_to(seen, (*batch, d))
    return sol, ts - seen, seen


def scale_derivatives(
    a2: np.ndarray, b2: np.ndarray, c2: float, depth: float, seen: np.ndarray
) -> tuple[np.ndarray, ...]:
    """``s`` and its first and second partial derivatives in ``a2`` and ``b2`` (1-d arrays).

    Implicit differentiation of ``F(s) = c2 s^(2p) - a2 - b2 s^2 = 0`` (``p = N/(N-1)``); at
    infinite depth ``s = sqrt(a2 / seen)`` with ``seen = c2 - b2``. ``depth >= 2``. Returns
    ``(s, s_a, s_b, s_aa, s_ab, s_bb)``.
    """
    s = scale_root(a2, b2, c2, depth, seen_sq=seen)
    if math.isinf(depth):
        s_a, s_b = s / (2 * a2), s / (2 * seen)
        return s, s_a, s_b, -s / (4 * a2**2), s / (4 * a2 * seen), 3 * s / (4 * seen**2)
    p = depth / (depth - 1.0)
    f_s = 2 * p * c2 * s ** (2 * p - 1) - 2 * b2 * s
    f_ss = 2 * p * (2 * p - 1) * c2 * s ** (2 * p - 2) - 2 * b2
    s_a, s_b = 1.0 / f_s, s**2 / f_s
    s_aa = -f_ss * s_a**2 / f_s
    s_ab = (2 * s * s_a - f_ss * s_a * s_b) / f_s
    s_bb = (4 * s * s_b - f_ss * s_b**2) / f_s
    return s, s_a, s_b, s_aa, s_ab, s_bb


def norm_covariances(
    lam: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    eq: Any,
    sigma: float,
) -> dict[str, np.ndarray]:
    """Second-order deterministic equivalents of the random norms of the scalar equation.

    ``u``, ``v``: coordinates of ``theta_S`` and ``theta_T`` in the eigenbasis; ``eq`` the
    deterministic equivalent (rows: sample sizes below the rank). The fluctuation ``dP`` of the
    unseen projection has ``Cov(x' dP y, w' dP z) = eta [G(x, w) G(y, z) + G(x, z) G(y, w)]``
    with ``G(x, y) = sum_i p_i (1 - p_i) x_i y_i`` (``p = perp_weights``) and
    ``eta = 1 / (n (1 - rho))``; exact to leading order for an isotropic covariance (uniformly
    random subspace, Beta moments). The ``Sigma``-weighted ``A`` and ``B`` are ``z``-derivatives
    of the same forms for the covariance ``Sigma (1 + z Sigma)^-1`` of the same Gaussian ``Z``,
    whose covariance with the ``z = 0`` forms has the same structure with two-covariance
    weights. Returns the variances and covariances (keys ``aa, bb, ab, Aa, Ab, Ba, Bb``) of
    ``a2 = ||X^+ y||^2``, ``b2 = ||P_perp theta_S||^2``, ``A = ||P_perp theta_S||^2_Sigma``,
    ``B = <P_perp theta_S, P_perp theta_T>_Sigma``, and ``aa_chi``, the part
    ``Var(xi' (XX')^-1 xi)`` of ``aa`` (``docs/deep_linear.md``, section 6.1).
    """
    p = eq.perp_weights
    gam = p * (1.0 - p)
    nf = eq.n.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = 1.0 / (nf * (1.0 - eq.rho))

    def g(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return gam @ (x * y)

    # A = -d/dz u_z' P_z u_z and B = -d/dz u_z' P_z v_z at z = 0, where P_z is the unseen
    # projection of the same Z with covariance Sigma (1 + z Sigma)^-1 and x_z = (1 + z Sigma)^-1/2 x
    # (the ridgeless limit of mu u' (X'X + mu (1 + z Sigma))^-1 u). The two-covariance form of
    # the covariance has the weights sqrt(r_z r) / ((1 + r_z)(1 + r)), r = kappa / lambda, and
    # eta_z = 1 / (n (1 - sum (1 - p_z)(1 - p) / n)); dgam, deta are their z-derivatives at 0
    # (dlog kappa / dz = -kappa n rho / sum p (1 - p)), with the -lambda / 2 of x_z in dgam.
    with np.errstate(divide="ignore", invalid="ignore"):
        dlk = -eq.kappa * nf * eq.rho / np.sum(gam, axis=-1)
    omega = lam[None, :] + dlk[:, None]
    dgam = 0.5 * gam * ((1.0 - 2.0 * p) * omega - lam[None, :])
    deta = -(eta**2) * np.sum(gam * (1.0 - p) * omega, axis=-1)

    def dg(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return dgam @ (x * y)

    guu, guv, gvv = g(u, u), g(u, v), g(v, v)
    duu, duv, dvv = dg(u, u), dg(u, v), dg(v, v)
    out = {
        "aa": 2 * eta * gvv**2,
        "bb": 2 * eta * guu**2,
        "ab": -2 * eta * guv**2,
        "Aa": 2 * deta * guv**2 + 4 * eta * guv * duv,
        "Ab": -2 * deta * guu**2 - 4 * eta * guu * duu,
        "Ba": 2 * deta * guv * gvv + 2 * eta * (duv * gvv + guv * dvv),
        "Bb": -2 * deta * guu * guv - 2 * eta * (duu * guv + guu * duv),
    }
    if sigma > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_k = 1.0 / eq.kappa
        # E (X'X)^+ ~ diag(p_i (1 - p_i) eta / kappa), E tr (XX')^-2 ~ eta / kappa^2:
        # Var(2 theta_T' X^+ xi) + Var(xi' (XX')^-1 xi)
        out["aa_chi"] = 2 * sigma**4 * eta * inv_k**2
        out["aa"] = out["aa"] + 4 * sigma**2 * eta * inv_k * gvv + out["aa_chi"]
    else:
        out["aa_chi"] = np.zeros(nf.shape)
    return out


def beta_rule(a: float, b: float, nodes: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule of the ``Beta(a, b)`` law on ``(0, 1)``: nodes and weights (summing to 1).

    Golub-Welsch on the three-term recurrence of the Jacobi polynomials with weight
    ``(1 - x)^(b - 1) (1 + x)^(a - 1)`` on ``(-1, 1)``, ``t = (1 + x) / 2``; exact for
    polynomials of degree below ``2 nodes``. ``a, b > 0``; stable for large ``a + b`` (a
    concentrated law), where the normalising constant would overflow (scipy's
    ``roots_jacobi`` returns NaN weights there, e.g. at ``a = 500, b = 4500``; below that the
    two agree to 1e-14, ``tests/test_deep_linear_fluctuations.py``).

    Examples
    --------
    >>> t, w = beta_rule(2.0, 3.0, nodes=8)
    >>> round(float(w @ t), 12), round(float(w @ t**2), 12)  # Beta(2, 3): 2/5 and 1/5
    (0.4, 0.2)
    """
    al, be = b - 1.0, a - 1.0
    k = np.arange(nodes, dtype=np.float64)
    s = 2 * k + al + be
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = np.where(k == 0, (be - al) / (al + be + 2), (be**2 - al**2) / (s * (s + 2)))
    kk, ss = k[1:], s[1:]
    off = (2 / ss) * np.sqrt(kk * (kk + al) * (kk + be) * (kk + al + be) / ((ss - 1) * (ss + 1)))
    x, vec = eigh_tridiagonal(diag, off)
    w = vec[0] ** 2
    return np.clip((1.0 + x) / 2.0, 0.0, 1.0), w / w.sum()
