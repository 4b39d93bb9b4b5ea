"""The search for the smallest sample size whose expected risk meets a level.

Shared by the ``sample_complexity`` of :mod:`~finetune_theory.linear` and
:mod:`~finetune_theory.deep_linear`: each wraps its expected risk in a :class:`RiskCurve` and
calls :func:`smallest_n`, which evaluates ``O(log r)`` sample sizes instead of every ``n`` up to
the rank ``r``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from .exceptions import UnreachableRiskError

__all__ = ["RiskCurve", "smallest_n"]

#: sizes per factor of two in the first look at the curve below the rank
_PER_OCTAVE = 1


class RiskCurve(Protocol):
    """The expected risk of one setting as a function of the sample size.

    ``rank`` is the numerical rank of the covariance, ``sigma`` the label-noise standard
    deviation, ``source_risk`` the risk of the source itself (``n = 0``); calling the curve on
    an array of sizes returns their expected risks. Above the rank the risk must be the noise
    term ``sigma^2 r / (n - r - 1)`` alone (the bias is learned), as it is for every
    architecture's ``expected_risk``.
    """

    rank: int
    sigma: float
    source_risk: float

    def __call__(self, ns: ArrayLike) -> np.ndarray: ...


def smallest_n(curve: RiskCurve, eps: float, n_max: int | None) -> int:
    """The smallest ``n`` (``0``: the source) whose risk on ``curve`` is at most ``eps``.

    Below the rank the risk falls with ``n`` (its bias) and, with noise, rises again close to
    the rank (its noise factor diverges there): it is unimodal. Log-spaced sizes find the first
    one at or below ``eps``; the first crossing lies between it and the size before, and
    bisection finds it. When no size hits, the minimum is refined by a ternary search between
    the neighbours of the lowest one, which finds a dip below ``eps`` between the sizes. Above
    the rank the noise term decreases in ``n``: its crossing is settled on the values the curve
    itself returns.

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` (the message gives the best risk on offer).

    Examples
    --------
    >>> import numpy as np
    >>> class Isotropic:  # (1 - n / 10) * 10, zero from the rank on
    ...     rank, sigma, source_risk = 10, 0.0, 10.0
    ...     def __call__(self, ns):
    ...         return np.maximum(10.0 - np.asarray(ns, dtype=float), 0.0)
    >>> smallest_n(Isotropic(), 5.0, None), smallest_n(Isotropic(), 20.0, None)
    (5, 0)
    >>> smallest_n(Isotropic(), 0.5, 4)
    Traceback (most recent call last):
    ...
    finetune_theory.exceptions.UnreachableRiskError: no n <= n_max = 4 reaches risk eps = 0.5: \
the lowest expected risk there is 6 (at n = 4)
    """
    if curve.source_risk <= eps:
        return 0  # the source suffices: with no target data the model is the source
    sigma, r = curve.sigma, curve.rank
    top = r if n_max is None else min(r, n_max)
    best_n, best_risk = 0, math.inf
    if top >= 1:
        count = max(2, int(math.ceil(_PER_OCTAVE * math.log2(top))) + 1)
        grid = np.unique(np.rint(np.geomspace(1, top, count)).astype(np.int64))
        risk = curve(grid)
        hits = np.flatnonzero(risk <= eps)
        i = int(np.argmin(risk))
        best_n, best_risk = int(grid[i]), float(risk[i])
        if hits.size == 0:
            lo = int(grid[i - 1]) if i > 0 else 1
            hi = int(grid[i + 1]) if i + 1 < grid.size else int(grid[i])
            m = _lowest(curve, lo, hi)
            best_n, best_risk = m, float(curve(np.array([m]))[0])
            if best_risk <= eps:
                grid, hits = np.array([lo, m]), np.array([1])
        if hits.size:
            j = int(hits[0])
            below, above = (int(grid[j - 1]) if j > 0 else 0), int(grid[j])
            while above - below > 1:  # curve(below) > eps >= curve(above)
                mid = (below + above) // 2
                if curve(np.array([mid]))[0] <= eps:
                    above = mid
                else:
                    below = mid
            return above
    # above the rank only noise remains, sigma^2 r / (n - r - 1), decreasing in n
    if sigma > 0:
        # first guess from the formula, then settle the boundary on the very values that the
        # curve returns, so that rounding cannot move the answer by one either way
        guess = r + 1 + max(1, math.ceil(sigma**2 * r / eps))
        window = np.arange(max(r + 2, guess - 2), guess + 3)
        tail = curve(window)
        n_ls = int(window[np.flatnonzero(tail <= eps)[0]]) if np.any(tail <= eps) else guess + 3
        while float(curve(np.array([n_ls]))[0]) > eps:
            n_ls += 1
    else:
        n_ls = r
    if n_max is None or n_ls <= n_max:
        return int(n_ls)
    raise UnreachableRiskError(
        f"no n <= n_max = {n_max} reaches risk eps = {eps:.3g}: the lowest expected risk there "
        f"is {best_risk:.3g} (at n = {best_n})"
        + (f"; the label noise alone needs n >= {n_ls}" if sigma > 0 else "")
    )


def _lowest(curve: RiskCurve, lo: int, hi: int) -> int:
    """The ``n`` in ``[lo, hi]`` of lowest risk, by ternary search (the curve is unimodal)."""
    while hi - lo > 2:
        a, b = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        fa, fb = curve(np.array([a, b]))
        if fa <= fb:
            hi = b
        else:
            lo = a
    ns = np.arange(lo, hi + 1)
    return int(ns[np.argmin(curve(ns))])
