"""The generalization bound of the lazy ReLU network and the sample size it predicts."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import (
    as_array,
    check_open_unit,
    check_positive,
    output_like,
    teacher_vectors,
)
from ..exceptions import UnreachableRiskError
from ._kernel import _residual, _rkhs_norm_sq, _sphere_inputs

#: confidence level of the bound: it holds with probability at least ``1 - DEFAULT_DELTA``
DEFAULT_DELTA = 0.05


def residual_bound(
    X: ArrayLike, residual: ArrayLike, *, normalize: bool = False
) -> np.ndarray | float:
    """The data-dependent part of the bound, ``sqrt(2 r^T H^-1 r / n)``.

    ``r`` is what training has to fit: the labels from scratch, ``y - f_S(X)`` when fine-tuning
    from a source network ``f_S``. See :func:`rkhs_norm_sq` for the arguments.

    Parameters
    ----------
    X : array_like, shape (..., n, d)
        Training inputs on the unit sphere.
    residual : array_like, shape (..., n)
        What training has to fit.
    normalize : bool, default False
        ``False``: rows off the unit sphere raise ``ValueError``; ``True``: rows are divided by
        their norm first.

    Examples
    --------
    >>> import numpy as np
    >>> round(residual_bound(np.eye(2), np.array([1.0, 1.0])), 12)  # H = I / 2: sqrt(2 * 4 / 2)
    2.0
    """
    x = _sphere_inputs(X, "X", normalize)
    q = _rkhs_norm_sq(x, _residual(residual, x.shape[-2]))
    return output_like(np.sqrt(2.0 * q / x.shape[-2]))


def confidence_term(n: ArrayLike, delta: float = DEFAULT_DELTA) -> np.ndarray | float:
    """The sample-size term of the bound, ``3 sqrt(log(2 (1 + sqrt(n/2)) / delta) / (2 n))``.

    ``3 sqrt(log(2/delta') / (2 n))`` is the usual concentration term of a Rademacher bound
    for a loss with values in ``[0, 1]``; the data-dependent radius is covered by a union over
    ``1 + sqrt(n/2)`` grid values (``delta' = delta / (1 + sqrt(n/2))``), which is why the
    smallest eigenvalue ``lambda_0`` of ``H`` does not appear (see ``docs/relu.md``).
    Decreasing in ``n`` for every ``delta < 1``.

    Parameters
    ----------
    n : int or array_like
        Number of target samples.
    delta : float, default 0.05
        The bound holds with probability ``1 - delta``.

    Examples
    --------
    >>> round(confidence_term(100), 6)  # 3 sqrt(log(2 (1 + sqrt(50)) / 0.05) / 200)
    0.509875
    >>> confidence_term(400) < confidence_term(100)
    True
    """
    return output_like(_confidence(_check_n(n), check_open_unit(delta, "delta")))


def _check_n(n: Any) -> np.ndarray:
    n_arr = np.asarray(n, dtype=np.float64)
    if n_arr.size == 0 or not np.all(np.isfinite(n_arr)) or np.any(n_arr < 1):
        raise ValueError(f"n must hold finite sample sizes >= 1, got {np.ravel(n_arr)[:5]}")
    return n_arr


def _confidence(n_arr: np.ndarray, delta: float) -> np.ndarray:
    """:func:`confidence_term` of validated inputs."""
    return 3.0 * np.sqrt(np.log(2.0 * (1.0 + np.sqrt(n_arr / 2.0)) / delta) / (2.0 * n_arr))


def generalization_bound(
    X: ArrayLike,
    residual: ArrayLike,
    *,
    train_loss: ArrayLike = 0.0,
    delta: float = DEFAULT_DELTA,
    normalize: bool = False,
) -> np.ndarray | float:
    """The full bound on the test risk of the trained network (a reconstruction).

    ``train_loss + sqrt(2 r^T H^-1 r / n) + confidence_term(n, delta)``: it bounds, with
    probability ``1 - delta``, the population risk under the ramp loss
    ``min(|f(x) - y|, 1)`` (1-Lipschitz with values in ``[0, 1]``) of a network of infinite
    width trained from the weights that produced the residual ``r``. Finite-width corrections
    (vanishing as the width grows) are left out.

    Parameters
    ----------
    X : array, shape (..., n, d)
    residual : array, shape (..., n)
    train_loss : float or array
        The ramp loss on the training set at the end of training (0 at interpolation).
    delta : float
        Failure probability, in ``(0, 1)``.
    normalize : bool, default False
        ``False``: rows of ``X`` off the unit sphere raise ``ValueError``; ``True``: rows are
        divided by their norm first.

    Examples
    --------
    >>> import numpy as np
    >>> X, r = np.eye(2), np.array([1.0, 1.0])
    >>> bool(generalization_bound(X, r) == residual_bound(X, r) + confidence_term(2))
    True
    """
    x = _sphere_inputs(X, "X", normalize)
    r = _residual(residual, x.shape[-2])
    tl = as_array(train_loss, "train_loss")
    if np.any(tl < 0):
        raise ValueError("train_loss must be >= 0")
    delta = check_open_unit(delta, "delta")
    n = x.shape[-2]
    out = (
        tl
        + np.sqrt(2.0 * _rkhs_norm_sq(x, r) / n)
        + _confidence(np.asarray(n, dtype=np.float64), delta)
    )
    return output_like(out)


def _check_distance(distance: Any) -> np.ndarray:
    dist = as_array(distance, "distance")
    if np.any(dist < 0):
        raise ValueError("distance must be >= 0")
    return dist


def predicted_bound(
    distance: ArrayLike, n: ArrayLike, *, label_scale: float = 1.0, delta: float = DEFAULT_DELTA
) -> np.ndarray | float:
    """The bound predicted from the teacher distance: ``sqrt(8 s^2 D^2 / n) + confidence``.

    Uses ``r^T H^-1 r <= 4 s^2 D^2`` for a linear residual ``r = s (theta_T - theta_S)^T x``
    (``D = ||theta_T - theta_S||``, labels ``s theta^T x``); for training from scratch pass
    ``D = ||theta_T||``. Broadcasts over ``distance`` and ``n``.

    Warnings
    --------
    The inequality holds for an *exactly linear* residual. A pretrained source network is not
    exactly ``s theta_S^T x``: its approximation error enters the residual, and at a small
    teacher distance it can dominate, so that the measured ``r^T H^-1 r`` exceeds
    ``4 s^2 D^2`` and this prediction is *optimistic*. For a pretrained source, add the
    source's own error: pass ``D + e / s`` with ``e`` an upper bound on the RMS distance
    between the source network and ``s theta_S^T x`` (by the triangle inequality in the RKHS
    norm when the source error is itself a linear function), or use
    :func:`generalization_bound` with the measured residual.

    Parameters
    ----------
    distance : float or array_like
        The teacher distance ``D``.
    n : int or array_like
        Number of target samples.
    label_scale : float, default 1.0
        ``s`` in the labels ``s theta^T x``.
    delta : float, default 0.05
        The bound holds with probability ``1 - delta``.

    Examples
    --------
    >>> import numpy as np
    >>> b = predicted_bound(0.5, 1000)  # sqrt(8 * 0.25 / 1000) + confidence_term(1000)
    >>> bool(np.isclose(b, np.sqrt(2e-3) + confidence_term(1000)))
    True
    """
    dist = _check_distance(distance)
    s = check_positive(label_scale, "label_scale")
    n_arr = _check_n(n)
    return output_like(_predicted(dist, n_arr, s, check_open_unit(delta, "delta")))


def _predicted(dist: np.ndarray, n: np.ndarray, s: float, delta: float) -> np.ndarray:
    """:func:`predicted_bound` of validated inputs."""
    return np.sqrt(8.0 * s * s * dist * dist / n) + np.asarray(confidence_term(n, delta))


def sample_complexity_bound(
    distance: ArrayLike,
    eps: ArrayLike,
    *,
    label_scale: float = 1.0,
    delta: float = DEFAULT_DELTA,
) -> np.ndarray | int:
    """Predicted ``n(eps)``: the smallest ``n`` with ``predicted_bound(distance, n) <= eps``.

    Fine-tuning: ``distance = ||theta_T - theta_S||``; from scratch: ``distance = ||theta_T||``.
    For small ``eps`` it behaves as ``8 s^2 D^2 / eps^2`` plus the confidence term's share.
    Broadcasts over ``distance`` and ``eps`` (an integer bisection run on all entries at once).

    Parameters
    ----------
    distance : float or array_like
        The teacher distance ``D``.
    eps : float or array_like
        The requested risk.
    label_scale : float, default 1.0
        ``s`` in the labels ``s theta^T x``.
    delta : float, default 0.05
        The bound holds with probability ``1 - delta``.

    Raises
    ------
    UnreachableRiskError
        When the bound stays above ``eps`` for every ``n <= 2**52``.

    Examples
    --------
    >>> n = sample_complexity_bound(0.5, 0.3)
    >>> bool(predicted_bound(0.5, n) <= 0.3 < predicted_bound(0.5, n - 1))
    True
    """
    dist = _check_distance(distance)
    e = as_array(eps, "eps")
    if np.any(e <= 0):
        raise ValueError("eps must be > 0")
    if np.any(e >= 1):
        raise ValueError("eps must be < 1 (the bound is about a loss with values in [0, 1])")
    s = check_positive(label_scale, "label_scale")
    delta = check_open_unit(delta, "delta")
    dist, e = np.broadcast_arrays(dist, e)
    top = 2**52

    def ok(n: np.ndarray) -> np.ndarray:
        return _predicted(dist, n, s, delta) <= e

    if not np.all(ok(np.full(dist.shape, float(top)))):
        raise UnreachableRiskError(
            f"eps is too small: the predicted bound stays above it for n <= {top}"
        )
    lo = np.zeros(dist.shape, dtype=np.int64)  # bound(lo) > eps (lo = 0 stands for "none")
    hi = np.full(dist.shape, top, dtype=np.int64)  # bound(hi) <= eps
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        good = ok(np.maximum(mid, 1).astype(np.float64))
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
    return output_like(hi, kind=int)


def risk_bound(
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    label_scale: float = 1.0,
    delta: float = DEFAULT_DELTA,
) -> np.ndarray | float:
    """The risk statement of the ReLU network: its bound on the test risk, from the teachers.

    The lazy ReLU network's theory gives a bound, not an expected risk: with probability
    ``1 - delta`` the ramp-loss risk of fine-tuning from (a network computing)
    ``s theta_S^T x`` on ``n`` target samples labelled ``s theta_T^T x``, inputs uniform on the
    sphere, is at most :func:`predicted_bound` at ``D = ||theta_T - theta_S||``.
    ``theta_source = 0`` is training from scratch. The counterpart of ``expected_risk`` in
    :mod:`~finetune_theory.linear` and :mod:`~finetune_theory.deep_linear` (no covariance:
    the inputs are uniform on the sphere); a scalar ``n`` gives a float, an array an array.

    Parameters
    ----------
    theta_source : array_like, shape (d,)
        The source teacher (0: training from scratch).
    theta_target : array_like, shape (d,)
        The target teacher.
    n : int or array_like
        Number of target samples.
    label_scale : float, default 1.0
        ``s`` in the labels ``s theta^T x``.
    delta : float, default 0.05
        The bound holds with probability ``1 - delta``.

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.array([1.0, 0.0]), np.array([1.0, 0.5])
    >>> bool(risk_bound(ts, tt, 1000) == predicted_bound(0.5, 1000))
    True
    >>> bool(risk_bound(ts, tt, 1000) < risk_bound(np.zeros(2), tt, 1000))  # vs scratch
    True
    """
    ts, tt = teacher_vectors(theta_source, theta_target)
    return predicted_bound(float(np.linalg.norm(tt - ts)), n, label_scale=label_scale, delta=delta)


def sample_complexity(
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    eps: ArrayLike,
    *,
    label_scale: float = 1.0,
    delta: float = DEFAULT_DELTA,
) -> np.ndarray | int:
    """The smallest ``n`` whose :func:`risk_bound` is at most ``eps``.

    :func:`sample_complexity_bound` at ``D = ||theta_T - theta_S||``; ``theta_source = 0`` is
    training from scratch. The counterpart of ``sample_complexity`` in the linear modules.

    Parameters
    ----------
    theta_source : array_like, shape (d,)
        The source teacher (0: training from scratch).
    theta_target : array_like, shape (d,)
        The target teacher.
    eps : float or array_like
        The requested risk.
    label_scale : float, default 1.0
        ``s`` in the labels ``s theta^T x``.
    delta : float, default 0.05
        The bound holds with probability ``1 - delta``.

    Raises
    ------
    UnreachableRiskError
        When the bound stays above ``eps`` for every ``n <= 2**52``.

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.array([1.0, 0.0]), np.array([1.0, 0.5])
    >>> n = sample_complexity(ts, tt, 0.3)
    >>> n == sample_complexity_bound(0.5, 0.3), bool(risk_bound(ts, tt, n) <= 0.3)
    (True, True)
    """
    ts, tt = teacher_vectors(theta_source, theta_target)
    return sample_complexity_bound(
        float(np.linalg.norm(tt - ts)), eps, label_scale=label_scale, delta=delta
    )
