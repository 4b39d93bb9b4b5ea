"""The closed-form limit of fine-tuning a balanced deep linear network."""

from __future__ import annotations

import warnings
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .._validation import (
    check_depth,
    output_like,
    regression_problem,
)
from ._closed import (
    pinv,
    projections,
    scale_root,
)


def _closed_form(X: Any, y: Any, theta_source: Any, depth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate once, then :func:`_limit`."""
    depth = check_depth(depth)
    x, yy, ts = regression_problem(X, y, theta_source)
    return _limit(x, yy, ts, depth, np.asarray(X, dtype=np.float64))


def _limit(
    x: np.ndarray, yy: np.ndarray, ts: np.ndarray, depth: float, design: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The closed form and ``s_N`` on validated, broadcast arrays (``design``: ``X`` before
    broadcasting, so that a shared design gets one pseudo-inverse)."""
    if depth == 1:  # the arithmetic of linear.finetune, so that depth 1 is it to the bit
        residual = yy - np.einsum("...nd,...d->...n", x, ts)
        theta = ts + np.einsum("...dn,...n->...d", pinv(x), residual)
        return theta, np.ones(theta.shape[:-1])
    sol, perp, seen = projections(x, yy, ts, x if design is None else design)
    s = scale_root(
        np.sum(sol * sol, -1),
        np.sum(perp * perp, -1),
        np.sum(ts * ts, -1),
        depth,
        seen_sq=np.sum(seen * seen, -1),
    )
    return sol + s[..., None] * perp, s


def finetune_scale(
    X: ArrayLike, y: ArrayLike, theta_source: ArrayLike, depth: float
) -> np.ndarray | float:
    """The scale ``s_N`` of the source inside the unseen subspace (see :func:`finetune`).

    Parameters
    ----------
    X : array-like, shape (..., n, d)
        Target inputs; leading axes are a batch of independent problems.
    y : array-like, shape (..., n)
        Target labels.
    theta_source : array-like, shape (..., d)
        End-to-end vector of the pretrained (balanced) network; must be nonzero for ``N >= 2``.
    depth : int or math.inf
        Depth ``N`` of the network.

    Returns
    -------
    float or ndarray
        ``s_N`` (a float for a single problem, else of the batch shape).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0]])
    >>> finetune_scale(X, np.array([2.0]), np.array([1.0, 1.0]), math.inf)  # 2 / 1
    2.0
    >>> finetune_scale(X, np.array([2.0]), np.array([1.0, 1.0]), 1)
    1.0
    """
    _, s = _closed_form(X, y, theta_source, depth)
    return output_like(s)


@overload
def finetune(
    X: ArrayLike,
    y: ArrayLike,
    theta_source: ArrayLike,
    depth: float,
    *,
    return_scale: Literal[False] | None = None,
) -> np.ndarray: ...


@overload
def finetune(
    X: ArrayLike,
    y: ArrayLike,
    theta_source: ArrayLike,
    depth: float,
    *,
    return_scale: Literal[True],
) -> tuple[np.ndarray, np.ndarray | float]: ...


def finetune(
    X: ArrayLike,
    y: ArrayLike,
    theta_source: ArrayLike,
    depth: float,
    *,
    return_scale: bool | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray | float]:
    """The end-to-end vector that fine-tuning a balanced depth-``N`` network converges to.

    Parameters
    ----------
    X : array, shape (..., n, d)
    y : array, shape (..., n)
    theta_source : array, shape (..., d)
        End-to-end vector of the pretrained (balanced) network; must be nonzero for ``N >= 2``.
    depth : int or math.inf
    return_scale : bool, optional
        Deprecated: :func:`finetune_scale` gives ``s_N``. ``True`` still returns the pair
        ``(theta, s_N)``, with a ``DeprecationWarning``.

    Returns
    -------
    ndarray, shape (..., d)
        ``X^+ y + s_N P_perp theta_S`` (depth 1: :func:`finetune_theory.linear.finetune`;
        ``depth = inf``: ``s = ||X^+ y|| / ||P_X theta_S||``).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0]])
    >>> finetune(X, np.array([2.0]), np.array([1.0, 1.0]), math.inf)
    array([2., 2.])
    """
    theta, s = _closed_form(X, y, theta_source, depth)
    if return_scale is not None:
        warnings.warn(
            "finetune(..., return_scale=...) is deprecated and will be removed: finetune returns "
            "the vector, finetune_scale(X, y, theta_source, depth) the scale",
            DeprecationWarning,
            stacklevel=2,
        )
        if return_scale:
            return theta, output_like(s)
    return theta
