"""Sample complexity of fine-tuning and of training from scratch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._risk import risk_setting
from .._sample_search import smallest_n
from .._validation import check_nonnegative, check_positive, check_positive_int
from ..asymptotics import deterministic_equivalent, numerical_rank
from ..covariance import Covariance, CovarianceLike
from ._risk import _interpolation_risk


@dataclass(frozen=True)
class SampleComplexity:
    """Samples needed to reach a risk, fine-tuning against training from scratch.

    Parameters
    ----------
    eps : float
        The target excess risk both counts are for.
    n_finetune : int
        Samples fine-tuning from the source needs to reach ``eps`` (``0``: the source alone
        does).
    n_scratch : int
        Samples training from scratch (``theta_S = 0``) needs to reach ``eps``.
    reduction : float
        ``n_scratch / n_finetune``; ``inf`` when the source suffices (``n_finetune == 0``) and
        scratch needs data, ``1`` when neither needs any. Keep the ``source_suffices`` cases
        apart from true reductions; a value below 1 means fine-tuning needs *more* samples.

    Examples
    --------
    >>> out = SampleComplexity(eps=0.1, n_finetune=20, n_scratch=100, reduction=5.0)
    >>> out.helps, out.source_suffices
    (True, False)
    >>> SampleComplexity(eps=0.1, n_finetune=0, n_scratch=100, reduction=float("inf")).helps
    True
    """

    eps: float
    n_finetune: int
    n_scratch: int
    reduction: float

    @property
    def source_suffices(self) -> bool:
        """The source alone meets ``eps`` (``n_finetune == 0``): no target data is needed."""
        return self.n_finetune == 0

    @property
    def helps(self) -> bool:
        """Fine-tuning needs fewer samples than training from scratch (``reduction > 1``)."""
        return self.reduction > 1


def sample_complexity(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    eps: float,
    *,
    noise: float = 0.0,
    n_max: int | None = None,
) -> int:
    """The smallest ``n`` whose expected risk (:func:`expected_risk`) is at most ``eps``.

    Parameters
    ----------
    cov, theta_source, theta_target, noise
        As for :func:`expected_risk`; ``theta_source = 0`` is training from scratch.
    eps : float
        Target excess risk, ``> 0``.
    n_max : int, optional
        Largest sample size allowed. Without it the answer always exists: noiseless, ``n``
        equal to the rank of ``cov`` gives zero risk; with noise, least squares reaches any
        ``eps`` once ``n > r + 1 + sigma^2 r / eps``.

    Returns
    -------
    int
        ``0`` when the source alone already meets ``eps`` (its risk ``||theta_S -
        theta_T||^2_Sigma`` is at most ``eps``): no target sample is needed, and a ratio of
        sample sizes against it is not a reduction (see :func:`sample_complexity_reduction`).

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` (the message gives the best risk on offer).

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> c = covariance.isotropic(10)
    >>> sample_complexity(c, np.zeros(10), np.ones(10), eps=5.0)  # (1 - n/10) * 10 <= 5
    5
    >>> sample_complexity(c, np.full(10, 0.9), np.ones(10), eps=0.5)  # the source suffices
    0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    eps = check_positive(eps, "eps")
    sigma = check_nonnegative(noise, "noise")
    if n_max is not None:
        n_max = check_positive_int(n_max, "n_max")
    curve = _RiskCurve(c, ts - tt, sigma)
    return smallest_n(curve, eps, n_max)


class _RiskCurve:
    """The expected risk of one covariance and noise level at any ``n``, each ``n`` once.

    The rows of the deterministic equivalent are computed on demand and kept, so that a search
    over ``n`` prepares the spectrum once and evaluates ``O(log r)`` sizes; the scratch and
    fine-tuning searches of :func:`sample_complexity_reduction` share them. Each row has the
    bits of :func:`expected_risk` at that ``n`` (rows are reduced one by one).
    """

    def __init__(self, c: Covariance, delta: np.ndarray, sigma: float) -> None:
        self.cov = c
        self.sigma = sigma
        self.rank = numerical_rank(c.eigvals)
        self.coords2 = c.coords(delta) ** 2
        self.source_risk = float(c.quad(delta))
        self._rows: dict[int, tuple[np.ndarray, float]] = {}

    def with_delta(self, delta: np.ndarray) -> _RiskCurve:
        """The same covariance, noise and computed rows for another difference ``delta``."""
        other = _RiskCurve.__new__(_RiskCurve)
        other.__dict__.update(self.__dict__)
        other.coords2 = self.cov.coords(delta) ** 2
        other.source_risk = float(self.cov.quad(delta))
        return other

    def __call__(self, ns: ArrayLike) -> np.ndarray:
        ns = np.atleast_1d(np.asarray(ns, dtype=np.int64))
        todo = sorted({int(m) for m in ns} - self._rows.keys())
        if todo:
            eq = deterministic_equivalent(self.cov, np.array(todo))
            for j, m in enumerate(todo):
                self._rows[m] = (eq.bias_weights[j], float(eq.noise_factor[j]))
        weights = np.stack([self._rows[int(m)][0] for m in ns])
        noise = np.array([self._rows[int(m)][1] for m in ns])
        return _interpolation_risk(weights, noise, self.coords2, self.sigma)


def sample_complexity_reduction(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    eps: float,
    *,
    noise: float = 0.0,
    n_max: int | None = None,
) -> SampleComplexity:
    """Samples needed by fine-tuning and by training from scratch, and their ratio.

    See :func:`sample_complexity` for the arguments; scratch is ``theta_S = 0``. When the source
    alone meets ``eps`` the fine-tuning count is ``0`` and ``reduction`` is ``inf``
    (``SampleComplexity.source_suffices``), not a ratio of sample sizes.

    Parameters
    ----------
    cov, theta_source, theta_target, noise
        As for :func:`expected_risk` (``noise`` defaults to ``0.0``); scratch starts from
        ``theta_S = 0`` instead of ``theta_source``.
    eps : float
        Target excess risk, ``> 0``.
    n_max : int, optional
        Largest sample size allowed to either count (see :func:`sample_complexity`).

    Returns
    -------
    SampleComplexity
        Both counts and their ratio.

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` for one of the two.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> c = covariance.isotropic(10)
    >>> out = sample_complexity_reduction(c, np.zeros(10), np.ones(10), eps=5.0)
    >>> out.n_finetune, out.n_scratch, out.reduction, out.helps
    (5, 5, 1.0, False)
    >>> sample_complexity_reduction(c, np.full(10, 0.9), np.ones(10), eps=0.5).source_suffices
    True
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    eps = check_positive(eps, "eps")
    sigma = check_nonnegative(noise, "noise")
    if n_max is not None:
        n_max = check_positive_int(n_max, "n_max")
    tuned = _RiskCurve(c, ts - tt, sigma)
    n_ft = smallest_n(tuned, eps, n_max)
    n_sc = smallest_n(tuned.with_delta(-tt), eps, n_max)
    if n_ft > 0:
        reduction = n_sc / n_ft
    else:
        reduction = math.inf if n_sc > 0 else 1.0
    return SampleComplexity(eps=float(eps), n_finetune=n_ft, n_scratch=n_sc, reduction=reduction)
