"""Private closed-form pieces of :mod:`finetune_theory.deep_linear`.

* :func:`solve_scale`: the scalar equation for the scale ``s_N`` of the source in the unseen
  subspace, vectorised, from squared norms (realised ones for :func:`deep_linear.finetune`,
  deterministic equivalents for :func:`deep_linear.expected_risk`);
* :func:`projections`: ``X^+ y``, ``P_perp theta_S`` and ``P_X theta_S``, batched.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_depth

__all__ = ["solve_scale", "scale_root", "pinv", "projections"]


def pinv(x: np.ndarray) -> np.ndarray:
    """Batched pseudo-inverse with the cutoff :func:`linear.finetune` uses.

    Singular values below ``max(n, d) * eps * s_max`` count as zero (the usual numerical-rank
    tolerance), so a rank-deficient design is treated as such.
    """
    rcond = max(x.shape[-2:]) * np.finfo(np.float64).eps
    return np.linalg.pinv(x, rcond=rcond)


def solve_scale(
    target_sq: Any, perp_sq: Any, source_sq: Any, depth: Any, *, seen_sq: Any = None
) -> np.ndarray:
    """The scale ``s_N`` from squared norms (vectorised; the core of the closed form).

    See :func:`scale_root`, which this validates ``depth`` for.
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
