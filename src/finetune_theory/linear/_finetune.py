"""What gradient descent from the source converges to, and ridge towards the source."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import pinv
from .._validation import check_nonnegative, regression_problem


def finetune(
    X: ArrayLike, y: ArrayLike, theta_source: ArrayLike, *, ridge: float = 0.0
) -> np.ndarray:
    """What gradient descent from ``theta_source`` converges to (or ridge towards it).

    Parameters
    ----------
    X : array, shape (..., n, d)
        Target inputs; leading axes are independent problems.
    y : array, shape (..., n)
        Target labels.
    theta_source : array, shape (..., d)
        Pretrained weights (zeros for training from scratch).
    ridge : float
        Penalty ``lambda >= 0`` of ridge towards the source (L2-SP): the minimiser of
        ``(1/2n) ||X theta - y||^2 + (lambda/2) ||theta - theta_source||^2``, which is
        ``theta_source + (X^T X + n lambda I)^{-1} X^T (y - X theta_source)``. ``0`` (default)
        is the limit of gradient descent below; a huge ridge keeps the source.

    Returns
    -------
    ndarray, shape (..., d)
        ``theta_source + X^+ (y - X theta_source)``: the interpolant closest to the source when
        ``n < d``, the least-squares solution when ``X`` has full column rank, and the
        pseudo-inverse limit when ``X`` is rank-deficient (``ridge = 0``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0]])
    >>> finetune(X, np.array([2.0]), np.array([0.0, 1.0, 1.0]))
    array([2., 1., 1.])
    """
    x, yy, ts = regression_problem(X, y, theta_source)
    lam = check_nonnegative(ridge, "ridge")
    residual = yy - np.einsum("...nd,...d->...n", x, ts)
    if lam > 0:
        return ts + _ridge_step(x, residual, lam)
    return ts + np.einsum("...dn,...n->...d", pinv(x), residual)


def _ridge_step(x: np.ndarray, residual: np.ndarray, ridge: float) -> np.ndarray:
    """``(X^T X + n ridge I)^{-1} X^T r``, through the smaller of the two Gram matrices."""
    n, d = x.shape[-2:]
    if n < d:  # X^T (X X^T + n ridge I)^{-1} r
        gram = x @ np.swapaxes(x, -1, -2) + n * ridge * np.eye(n)
        z = np.linalg.solve(gram, residual[..., None])[..., 0]
        return np.einsum("...nd,...n->...d", x, z)
    gram = np.swapaxes(x, -1, -2) @ x + n * ridge * np.eye(d)
    rhs = np.einsum("...nd,...n->...d", x, residual)
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def _finetune_fast(x: np.ndarray, y: np.ndarray, theta_source: np.ndarray) -> np.ndarray:
    """:func:`finetune` for batches of well-conditioned designs, through Cholesky.

    Solves with the smaller Gram matrix (``X X^T`` when ``n < d``, ``X^T X`` otherwise), which
    costs a fraction of the SVD behind the pseudo-inverse. Falls back to :func:`finetune` when
    a Gram matrix is not numerically positive definite or is badly conditioned (``cond > 1e8``),
    so rank-deficient designs still get the pseudo-inverse limit.
    """
    n, d = x.shape[-2:]
    residual = y - (x @ theta_source[..., None])[..., 0]
    wide = n < d
    gram = x @ np.swapaxes(x, -1, -2) if wide else np.swapaxes(x, -1, -2) @ x
    try:
        chol = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        return finetune(x, y, theta_source)
    diag = np.abs(np.diagonal(chol, axis1=-2, axis2=-1))
    if not np.all(diag > 0) or np.max(np.max(diag, -1) / np.min(diag, -1)) ** 2 > 1e8:
        return finetune(x, y, theta_source)
    rhs = residual if wide else (residual[..., None, :] @ x)[..., 0, :]
    z = np.linalg.solve(gram, rhs[..., None])[..., 0]
    step = (z[..., None, :] @ x)[..., 0, :] if wide else z
    return theta_source + step
