"""Gradient descent itself: ``train`` and its default step."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._training import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TOL,
    Monitor,
    TrainResult,
    check_train_options,
    relative_movement,
    renamed_start,
)
from .._validation import as_matrix, check_lr, check_positive, output_like, regression_problem


def default_lr(
    X: ArrayLike,
    y: ArrayLike | None = None,
    start: ArrayLike | None = None,
    *,
    fraction: float = 1.0,
) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction / L`` with ``L = lambda_max(X^T X / n)``.

    Takes what :func:`train` takes; the step of the quadratic loss depends on ``X`` alone, so
    ``y`` and ``start`` may be left out. GD is stable for ``fraction < 2``; the default
    ``1 / L`` never raises the loss. Batched over leading axes of ``X``; a zero design gets
    ``fraction``.

    Parameters
    ----------
    X : array-like, shape (n, d) or (..., n, d)
        Training inputs; leading axes are a batch of independent problems.
    y : array-like, optional
        Training labels (not used: the step does not depend on them).
    start : array-like, optional
        Starting weights (not used).
    fraction : float, default 1.0
        The step as a fraction of ``1 / L``, in ``(0, 2)``.

    Returns
    -------
    float, or ndarray of the batch shape

    Examples
    --------
    >>> import numpy as np
    >>> default_lr(np.array([[2.0, 0.0], [0.0, 1.0]]))  # L = 4 / 2
    0.5
    """
    x = as_matrix(X, "X", batch=True)
    fraction = check_positive(fraction, "fraction")
    if fraction >= 2:
        raise ValueError(f"fraction must be < 2 (stability), got {fraction}")
    return output_like(fraction * _default_lr(x))


def _default_lr(x: np.ndarray) -> np.ndarray:
    top = np.asarray(np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / x.shape[-2], dtype=np.float64)
    return np.where(top > 0, 1.0 / np.where(top > 0, top, 1.0), 1.0)


@renamed_start("theta_source")
def train(
    X: ArrayLike,
    y: ArrayLike,
    start: ArrayLike,
    *,
    lr: ArrayLike | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    tol: float = DEFAULT_TOL,
    strict: bool = True,
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||X theta - y||^2`` from ``start``.

    Its limit is :func:`finetune`; the three ``train`` functions of the package share their
    settings and result (:mod:`finetune_theory._training`).

    Parameters
    ----------
    X, y, start : arrays, shapes (..., n, d), (..., n), (..., d)
        As ``X, y, theta_source`` for :func:`finetune` (``start`` is the source vector);
        leading axes are independent problems trained together.
    lr : float or array, optional
        Step size (one per problem, broadcast over the batch). Default :func:`default_lr`
        per problem, ``1 / L`` with ``L`` the largest eigenvalue of ``X^T X / n``.
    max_steps : int
        Step budget.
    tol : float
        A problem stops when its loss is at most ``tol`` times the zero predictor's loss
        ``(1/2n) ||y||^2`` (it interpolates), or when one step changed its loss by at most
        ``max(tol, 8 eps)`` times the loss (least squares when ``n > d``).
    strict : bool
        Raise :class:`ConvergenceError` for problems still running after ``max_steps``
        (default); with False return them with ``converged`` False.

    Returns
    -------
    TrainResult
        ``weights`` and ``theta`` are the final vector ``(..., d)``, ``start`` is
        ``start``; the other fields have the batch shape.

    Raises
    ------
    DivergenceError
        The loss blew up (the step is too large: GD is stable only for ``lr < 2 / L``).
    ConvergenceError
        Some problem did not stop within ``max_steps`` (with ``strict=True``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> out = train(X, np.array([2.0, 1.0]), np.zeros(3), tol=1e-20)
    >>> out.theta.round(8), bool(out.interpolated)
    (array([2., 1., 0.]), True)
    """
    x, yy, ts = regression_problem(X, y, start, name="start")
    max_steps, tol = check_train_options(max_steps, tol)
    n = x.shape[-2]
    batch = x.shape[:-2]
    step = _default_lr(x) if lr is None else check_lr(lr, batch)
    theta = np.array(ts, dtype=np.float64, copy=True)
    monitor = Monitor(yy, batch, tol, step, max_steps)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            res = np.einsum("...nd,...d->...n", x, theta) - yy
            if not monitor.update(t, 0.5 * np.mean(res * res, axis=-1)) or t == max_steps:
                break
            g = np.einsum("...nd,...n->...d", x, res) / n
            theta -= (step * monitor.active)[..., None] * g
    monitor.finish(bool(strict))
    diff = theta - ts
    return TrainResult(
        weights=theta,
        theta=theta,
        start=np.array(ts),
        loss=monitor.loss,
        steps=monitor.steps,
        lr=step,
        converged=monitor.converged,
        interpolated=monitor.interpolated,
        movement=relative_movement(np.sum(diff * diff, -1), np.sum(ts * ts, -1)),
        history_steps=monitor.history_steps,
        loss_history=monitor.loss_history,
    )
