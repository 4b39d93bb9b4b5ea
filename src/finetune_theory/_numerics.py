"""Named numerical tolerances and small guards shared by every module.

Each constant below is used wherever the package needs that tolerance; a module that needs a
new one adds it here with the reason it has its value.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TINY", "EIG_RTOL", "ROUNDING", "safe_divide", "pinv"]

#: the smallest positive scale used to keep a denominator or a logarithm's argument away
#: from zero; far below any value the package computes with (float64's tiny is 2.2e-308)
TINY = 1e-300
#: eigenvalues below this fraction of the largest are treated as zero (a spread below it
#: counts as isotropic)
EIG_RTOL = 1e-12
#: a few units in the last place of float64: relative changes below this are rounding
ROUNDING = 8 * np.finfo(np.float64).eps


def safe_divide(num: ArrayLike, den: ArrayLike, *, where_zero: float = 0.0) -> NDArray[np.float64]:
    """``num / den`` elementwise, with ``where_zero`` wherever ``den`` is zero.

    Parameters
    ----------
    num, den : array_like
        Numerator and denominator, broadcast together.
    where_zero : float, default 0.0
        The value returned where ``den == 0`` (no warning is raised there).

    Returns
    -------
    ndarray
        The quotient, float64.

    Examples
    --------
    >>> safe_divide([1.0, 2.0], [2.0, 0.0])
    array([0.5, 0. ])
    >>> safe_divide([1.0, 0.0], [0.0, 0.0], where_zero=np.inf)
    array([inf, inf])
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    ok = den != 0
    out = np.divide(num, np.where(ok, den, 1.0))
    return np.where(ok, out, where_zero)


def pinv(x: ArrayLike) -> NDArray[np.float64]:
    """Batched pseudo-inverse with the package's one cutoff for a numerically zero singular value.

    Singular values below ``max(n, d) * eps * s_max`` count as zero (the usual numerical-rank
    tolerance; numpy's default ``1e-15 * s_max`` keeps rounding noise of a rank-deficient
    matrix with more than a few rows and blows it up).

    Parameters
    ----------
    x : array_like, shape (..., n, d)

    Returns
    -------
    ndarray, shape (..., d, n)

    Examples
    --------
    >>> pinv(np.array([[2.0, 0.0], [0.0, 1e-17]]))  # the second singular value is rounding
    array([[0.5, 0. ],
           [0. , 0. ]])
    """
    x = np.asarray(x, dtype=np.float64)
    rcond = max(x.shape[-2:]) * np.finfo(np.float64).eps
    return np.linalg.pinv(x, rcond=rcond)
