"""Private pieces shared by the risk functions of :mod:`~finetune_theory.linear` and
:mod:`~finetune_theory.deep_linear`: the validation of a (covariance, source, target) setting
and the Monte Carlo driver behind every ``simulate_risk``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._random import SeedLike, as_generator
from ._validation import output_like, teacher_vectors
from .covariance import Covariance, CovarianceLike, as_covariance

__all__ = ["SimulatedRisk", "risk_setting", "monte_carlo"]


@dataclass(frozen=True)
class SimulatedRisk:
    """Monte Carlo estimate of the expected risk.

    Parameters
    ----------
    n : int or ndarray of int
        The sample sizes (an int when a single ``n`` was asked for).
    mean : float or ndarray
        Mean excess risk over repeats, one per ``n`` (a float for a single ``n``).
    stderr : float or ndarray
        Its standard error: the sample standard deviation over repeats divided by
        ``sqrt(repeats)`` (``inf`` for a single repeat), of the same shape.
    repeats : int
        Number of independent training sets drawn per ``n``.

    Examples
    --------
    >>> from finetune_theory import covariance, linear
    >>> mc = linear.simulate_risk(covariance.isotropic(3), [0.0] * 3, [1.0] * 3, 2, repeats=5)
    >>> type(mc).__name__, mc.n, mc.repeats
    ('SimulatedRisk', 2, 5)
    """

    n: int | np.ndarray
    mean: float | np.ndarray
    stderr: float | np.ndarray
    repeats: int


def risk_setting(
    cov: CovarianceLike, theta_source: ArrayLike, theta_target: ArrayLike
) -> tuple[Covariance, np.ndarray, np.ndarray]:
    """Validate one source, one target and a covariance of their dimension."""
    ts, tt = teacher_vectors(theta_source, theta_target)
    return as_covariance(cov, "cov", d=ts.size), ts, tt


def _chunk(repeats: int, n: int, d: int, budget_bytes: float = 2.0e8) -> int:
    per = 8.0 * (3 * n * d + d)
    return max(1, min(repeats, int(budget_bytes // per)))


def monte_carlo(
    cov: Covariance,
    theta_target: np.ndarray,
    ns: np.ndarray,
    scalar: bool,
    sigma: float,
    repeats: int,
    seed: SeedLike,
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> SimulatedRisk:
    """The Monte Carlo driver of every ``simulate_risk``.

    For each ``n`` draws ``repeats`` Gaussian designs ``x ~ N(0, cov)`` with labels
    ``x theta_T + sigma xi`` (in memory-bounded chunks, one batch per chunk), maps each batch
    to weights with ``estimator(x, y)`` (shapes ``(b, n, d), (b, n) -> (b, d)``) and averages
    their excess risk. Arguments are already validated; ``scalar`` says whether ``n`` was.
    """
    rng = as_generator(seed)
    means = np.empty(ns.size)
    errs = np.empty(ns.size)
    for j, nj in enumerate(ns):
        risks = np.empty(repeats)
        size = _chunk(repeats, int(nj), cov.d)
        for start in range(0, repeats, size):
            b = min(size, repeats - start)
            x = cov.sample(int(nj), seed=rng, batch=b)
            y = x @ theta_target + sigma * rng.standard_normal((b, int(nj)))
            risks[start : start + b] = cov.quad(estimator(x, y) - theta_target)
        means[j] = risks.mean()
        errs[j] = risks.std(ddof=1) / math.sqrt(repeats) if repeats > 1 else np.inf
    return SimulatedRisk(
        n=output_like(ns, scalar, kind=int),
        mean=output_like(means, scalar),
        stderr=output_like(errs, scalar),
        repeats=repeats,
    )
