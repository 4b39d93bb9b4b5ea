"""Sampling laws of observed mean squares, and the intervals built from them.

Private to :mod:`finetune_theory.advisor`. A mean of ``dof`` squared residuals behaves like
``truth * Gamma(k) / k`` with a shape ``k`` that shrinks as the residuals' tails grow
(:func:`tail_shape`); the strategies observed on the labelled rows take their point and
interval from that law, the learned ones a log-normal interval.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import TINY
from ._constants import TAIL_PRIOR, TAIL_PRIOR_ROWS

__all__ = ["tail_shape", "median_factor", "gamma_interval", "log_normal_interval", "gamma_log_se"]


def tail_shape(values: ArrayLike, dof: float) -> float:
    """Gamma shape ``k`` of the sampling law of ``sum(values^2) / dof``.

    ``k = dof / c`` with ``c = Var(v^2) / E[v^2]^2`` (2 for Gaussian values, larger for heavy
    tails), ``c`` the sample value shrunk towards :data:`TAIL_PRIOR` with the weight of
    :data:`TAIL_PRIOR_ROWS` rows (a few rows cannot show a heavy tail).

    Examples
    --------
    >>> v = np.random.default_rng(0).standard_normal(10_000)
    >>> round(tail_shape(v, 10_000) / 5_000, 1)  # Gaussian: c = 2, k = dof / 2
    1.0
    """
    v2 = np.asarray(values, dtype=np.float64) ** 2
    n = v2.size
    mean = float(v2.mean()) if n else 0.0
    sample = float(v2.var(ddof=1)) / mean**2 if n >= 2 and mean > 0 else TAIL_PRIOR
    c = (TAIL_PRIOR_ROWS * TAIL_PRIOR + n * sample) / (TAIL_PRIOR_ROWS + n)
    return max(dof, 0.5) / max(c, 2.0)


def median_factor(shape: ArrayLike) -> np.ndarray:
    """``k / median(Gamma(k))``: turns a mean of squares into a median-unbiased estimate.

    Examples
    --------
    >>> bool(median_factor(1.0) > 1.0 > median_factor(1e6) - 1e-5)
    True
    """
    from scipy.stats import gamma

    k = np.asarray(shape, dtype=np.float64)
    return k / gamma.ppf(0.5, k)


def gamma_log_se(shape: ArrayLike) -> np.ndarray:
    """Standard deviation of ``log Gamma(k)``: ``sqrt(trigamma(k))``.

    Examples
    --------
    >>> round(float(gamma_log_se(50.0)), 3)
    0.142
    """
    from scipy.special import polygamma

    return np.sqrt(polygamma(1, np.asarray(shape, dtype=np.float64)))


def gamma_interval(
    point: ArrayLike, shape: ArrayLike, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of an observed mean square whose sampling law is ``truth * Gamma(k) / k``.

    ``point`` is the median-unbiased estimate; the interval is ``point * median / q`` for the
    upper and lower quantiles ``q`` of ``Gamma(k)``.

    Examples
    --------
    >>> lo, hi = gamma_interval(1.0, 20.0, 0.8)
    >>> bool(lo < 1.0 < hi)
    True
    """
    from scipy.stats import gamma

    k = np.asarray(shape, dtype=np.float64)
    a = (1.0 - confidence) / 2.0
    med = gamma.ppf(0.5, k)
    p = np.asarray(point, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lo = p * med / gamma.ppf(1.0 - a, k)
        hi = p * med / np.maximum(gamma.ppf(a, k), TINY)
    return lo, hi


def log_normal_interval(
    point: ArrayLike, log_se: ArrayLike, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``point * exp(-+ z log_se)`` with ``z`` the normal quantile of the two-sided level.

    Examples
    --------
    >>> lo, hi = log_normal_interval(2.0, 0.0, 0.8)
    >>> float(lo), float(hi)
    (2.0, 2.0)
    """
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = np.asarray(point, dtype=np.float64)
    se = np.asarray(log_se, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        lo = np.where(np.isfinite(p), p * np.exp(-z * se), np.inf)
        hi = np.where(np.isfinite(p), p * np.exp(z * se), np.inf)
    return lo, hi
