"""The analytic NTK of the first layer, its smallest eigenvalue and the RKHS norm of a residual."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import (
    as_array,
    as_matrix,
    check_same_dim,
    output_like,
)

#: how far ``||x||`` may stray from 1 before an input counts as off the sphere
SPHERE_TOL = 1e-6
#: relative pivot under which the Cholesky factor of ``H`` is declared singular
_PIVOT_RTOL = 1e-12


# ------------------------------------------------------------------ the kernel
def _sphere_inputs(X: Any, name: str, normalize: bool, *, batch: bool = True) -> np.ndarray:
    """Validate inputs ``(..., n, d)``; project them on the sphere or reject them off it."""
    x = as_matrix(X, name, batch=batch)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if normalize:
        if np.any(norms == 0):
            raise ValueError(f"{name} has a zero row, which cannot be normalised to the sphere")
        return x / norms
    worst = float(np.max(np.abs(norms - 1.0)))
    if worst > SPHERE_TOL:
        raise ValueError(
            f"{name} must have unit-norm rows (inputs on the sphere); the largest | ||x|| - 1 | is "
            f"{worst:.3g}. Pass normalize=True to project the rows onto the sphere."
        )
    return x


def _kernel_of_cosine(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, -1.0, 1.0)
    return u * (np.pi - np.arccos(u)) / (2.0 * np.pi)


def ntk(X1: ArrayLike, X2: ArrayLike | None = None, *, normalize: bool = False) -> np.ndarray:
    """The analytic NTK Gram matrix of the first layer, ``u (pi - arccos u) / (2 pi)``.

    Parameters
    ----------
    X1 : array, shape (..., n1, d)
        Inputs on the unit sphere (leading axes are a batch).
    X2 : array, shape (..., n2, d), optional
        Second set of inputs; ``X1`` when omitted.
    normalize : bool
        ``False`` (default): rows off the unit sphere raise ``ValueError``. ``True``: rows are
        divided by their norm first.

    Returns
    -------
    ndarray, shape (..., n1, n2)
        ``K[i, j] = u (pi - arccos u) / (2 pi)`` with ``u = x1_i^T x2_j``.

    Examples
    --------
    >>> import numpy as np
    >>> float(ntk(np.array([[1.0, 0.0]]))[0, 0])  # k(1) = 1/2
    0.5
    """
    x1 = _sphere_inputs(X1, "X1", normalize)
    x2 = x1 if X2 is None else _sphere_inputs(X2, "X2", normalize)
    check_same_dim(x1.shape[-1], x2, "X2", what="the input dimension of X1")
    return _kernel_of_cosine(np.matmul(x1, np.swapaxes(x2, -1, -2)))


def ntk_lambda_min(X: ArrayLike, *, normalize: bool = False) -> np.ndarray | float:
    """``lambda_0``: the smallest eigenvalue of the NTK Gram matrix of ``X`` (batched).

    Parameters
    ----------
    X : array_like, shape (..., n, d)
        Inputs on the unit sphere (leading axes are a batch).
    normalize : bool, default False
        ``False``: rows off the unit sphere raise ``ValueError``; ``True``: rows are divided by
        their norm first.

    Examples
    --------
    >>> import numpy as np
    >>> ntk_lambda_min(np.eye(3))  # orthogonal inputs: H = I / 2
    0.5
    """
    out = np.linalg.eigvalsh(ntk(_sphere_inputs(X, "X", normalize)))[..., 0]
    return output_like(out)


def _cholesky(H: np.ndarray, name: str) -> np.ndarray:
    """Batched Cholesky factor; a ``ValueError`` naming ``name`` when ``H`` is singular."""
    hint = "(duplicate inputs make the NTK Gram matrix singular)"
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}: the kernel Gram matrix is singular {hint}") from None
    piv = np.diagonal(L, axis1=-2, axis2=-1) ** 2
    scale = np.max(np.diagonal(H, axis1=-2, axis2=-1), axis=-1)
    ratio = piv.min(axis=-1) / scale
    if np.any(ratio < _PIVOT_RTOL):
        raise ValueError(
            f"{name}: the kernel Gram matrix is singular to working precision (relative "
            f"pivot {float(ratio.min()):.2g}) {hint}"
        )
    return L


def _solve_spd(H: np.ndarray, rhs: np.ndarray, name: str) -> np.ndarray:
    """``H^-1 rhs`` through the Cholesky factor (``rhs`` has shape ``(..., n)``)."""
    L = _cholesky(H, name)
    z = np.linalg.solve(L, rhs[..., None])
    return np.linalg.solve(np.swapaxes(L, -1, -2), z)[..., 0]


def _residual(residual: Any, n: int) -> np.ndarray:
    r = as_array(residual, "residual", min_ndim=1)
    check_same_dim(n, r, "residual", what="the number of rows of X, n")
    return r


def rkhs_norm_sq(
    X: ArrayLike, residual: ArrayLike, *, normalize: bool = False
) -> np.ndarray | float:
    """``r^T H^-1 r``: the squared RKHS norm of the smallest kernel interpolant of ``r``.

    Computed through a Cholesky factor of ``H = ntk(X)``; a singular ``H`` (for example two
    equal inputs) raises ``ValueError``. For an exactly linear residual ``r = X beta`` it never
    exceeds ``4 ||beta||^2`` and approaches it as ``n`` grows.

    Parameters
    ----------
    X : array, shape (..., n, d)
    residual : array, shape (..., n)
    normalize : bool
        As in :func:`ntk`.

    Examples
    --------
    >>> import numpy as np
    >>> round(rkhs_norm_sq(np.eye(2), np.array([1.0, 2.0])), 12)  # H = I / 2: 2 (1 + 4)
    10.0
    """
    x = _sphere_inputs(X, "X", normalize)
    return output_like(_rkhs_norm_sq(x, _residual(residual, x.shape[-2])))


def _rkhs_norm_sq(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """:func:`rkhs_norm_sq` of validated inputs on the sphere."""
    H = _kernel_of_cosine(np.matmul(x, np.swapaxes(x, -1, -2)))
    r_b, H_b = np.broadcast_arrays(r[..., None], H)
    L = _cholesky(H_b, "X")
    z = np.linalg.solve(L, r_b[..., :1])[..., 0]
    return np.sum(z * z, axis=-1)
