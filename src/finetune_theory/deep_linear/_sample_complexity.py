"""Sample complexity of fine-tuning a deep linear network."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._risk import risk_setting
from .._sample_search import smallest_n
from .._validation import check_depth, check_nonnegative, check_positive, check_positive_int
from ..asymptotics import numerical_rank
from ..covariance import Covariance, CovarianceLike
from ._risk import expected_risk


class _DeepRiskCurve:
    """:func:`expected_risk` of one setting as a curve over ``n`` for the shared search."""

    def __init__(
        self,
        c: Covariance,
        ts: np.ndarray,
        tt: np.ndarray,
        depth: float,
        sigma: float,
        correct: bool,
    ) -> None:
        self.args = (c, ts, tt)
        self.depth, self.sigma, self.correct = depth, sigma, correct
        self.rank = numerical_rank(c.eigvals)
        self.source_risk = float(c.quad(ts - tt))

    def __call__(self, ns: ArrayLike) -> np.ndarray:
        risk = expected_risk(*self.args, ns, self.depth, noise=self.sigma, correct=self.correct)
        return np.atleast_1d(np.asarray(risk, dtype=np.float64))


def sample_complexity(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    eps: float,
    depth: float,
    *,
    noise: float = 0.0,
    n_max: int | None = None,
    correct: bool = True,
) -> int:
    """The smallest ``n`` whose expected risk (:func:`expected_risk`) is at most ``eps``.

    The deep-linear counterpart of :func:`finetune_theory.linear.sample_complexity` (depth 1
    gives its answer), by the same search: log-spaced sizes below the rank ``r`` of ``cov``,
    then bisection on the first crossing (with noise the risk may rise again near ``n = r``,
    and a dip between the sizes is found by a ternary search); above the rank the scale of the
    source no longer matters and only the noise term, decreasing in ``n``, remains.

    Parameters
    ----------
    cov, theta_source, theta_target, depth, noise, correct
        As for :func:`expected_risk`.
    eps : float
        Target excess risk, ``> 0``.
    n_max : int, optional
        Largest sample size allowed.

    Returns
    -------
    int
        ``0`` when the source alone already meets ``eps`` (no target sample is needed).

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` (the message gives the best risk on offer).

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance, linear
    >>> c = covariance.isotropic(10)
    >>> sample_complexity(c, np.zeros(10), np.ones(10), 5.0, 1)  # depth 1 is linear regression
    5
    >>> linear.sample_complexity(c, np.zeros(10), np.ones(10), 5.0)
    5
    >>> sample_complexity(c, np.full(10, 0.9), np.ones(10), 0.5, 3)  # the source suffices
    0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    eps = check_positive(eps, "eps")
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    if n_max is not None:
        n_max = check_positive_int(n_max, "n_max")
    return smallest_n(_DeepRiskCurve(c, ts, tt, depth, sigma, correct), eps, n_max)
