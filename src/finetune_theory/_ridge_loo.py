"""Leave-one-out residuals of ridge regression with a refitted intercept, in closed form.

Private, shared by :class:`finetune_theory.estimator.FineTunedRegressor` (``alpha="loo"``)
and the advisor (the user's ``RidgeCV`` and its bootstrap): one implementation of the
efficient leave-one-out that scikit-learn's ``RidgeCV`` uses. For centred inputs ``X`` with
eigen-decomposition ``X X^T = U diag(g) U^T`` the hat matrix of ridge ``alpha`` is
``U diag(g / (g + alpha)) U^T`` plus the intercept's leverage (``1/n`` unweighted), and the
leave-one-out residual of row ``i`` is ``(z_i - fit_i) / (1 - h_ii)``.
"""

from __future__ import annotations

import numpy as np

from ._numerics import TINY

__all__ = ["gram_basis", "loo_residuals"]


def gram_basis(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors and squared singular values of a batch of centred designs.

    Through the smaller of the two Gram matrices; directions whose squared singular value is
    below ``1e-12`` of the largest are zeroed.

    Parameters
    ----------
    xc : ndarray, shape (B, k, d)

    Returns
    -------
    u : ndarray, shape (B, k, r)
    g : ndarray, shape (B, r)
        ``r = min(k, d)``.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((1, 6, 3))
    >>> u, g = gram_basis(x)
    >>> bool(np.allclose(np.sort(g[0]), np.sort(np.linalg.svd(x[0])[1] ** 2)))
    True
    """
    _, k, d = xc.shape
    if k <= d:
        g, u = np.linalg.eigh(xc @ np.swapaxes(xc, 1, 2))  # (B, k), (B, k, k)
    else:
        g, w = np.linalg.eigh(np.swapaxes(xc, 1, 2) @ xc)  # (B, d), (B, d, d)
        u = (xc @ w) / np.sqrt(np.maximum(g, TINY))[:, None, :]
    g = np.maximum(g, 0.0)
    tiny = g <= 1e-12 * np.maximum(g.max(axis=1, keepdims=True), TINY)
    return np.where(tiny[:, None, :], 0.0, u), np.where(tiny, 0.0, g)


def loo_residuals(
    u: np.ndarray,
    g: np.ndarray,
    zc: np.ndarray,
    alphas: np.ndarray,
    leverage: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out residuals of ridge for every alpha, label set and design.

    Parameters
    ----------
    u, g : ndarray
        :func:`gram_basis` of the centred designs, shapes (B, k, r) and (B, r).
    zc : ndarray, shape (J, B, k)
        Centred labels (one set per start).
    alphas : ndarray, shape (A,)
        Penalties in scikit-learn's units (``||z - X w||^2 + alpha ||w||^2``).
    leverage : ndarray, shape (k,) or scalar
        The intercept's leverage on each row (``1 / k`` unweighted).

    Returns
    -------
    residuals : ndarray, shape (J, B, A, k)
        Non-finite where a row's leverage reaches 1.
    uz : ndarray, shape (J, B, r)
        ``U^T z`` (for the fitted coefficients).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal((7, 3)); z = rng.standard_normal(7)
    >>> xc, zc = x - x.mean(0), z - z.mean()
    >>> u, g = gram_basis(xc[None])
    >>> res, _ = loo_residuals(u, g, zc[None, None], np.array([0.5]), 1 / 7)
    >>> keep = np.arange(7) != 0  # refit without row 0, with its own intercept
    >>> xk, zk = x[keep], z[keep]
    >>> w = np.linalg.solve((xk - xk.mean(0)).T @ (xk - xk.mean(0)) + 0.5 * np.eye(3),
    ...                     (xk - xk.mean(0)).T @ (zk - zk.mean()))
    >>> pred = zk.mean() + (x[0] - xk.mean(0)) @ w
    >>> bool(np.isclose(res[0, 0, 0, 0], z[0] - pred))
    True
    """
    a = np.asarray(alphas, dtype=np.float64)
    shrink = g[:, None, :] / (g[:, None, :] + a[None, :, None])  # (B, A, r)
    uz = np.einsum("bkr,jbk->jbr", u, zc)  # (J, B, r)
    hat = np.asarray(leverage, dtype=np.float64) + np.einsum("bkr,bar->bak", u * u, shrink)
    fit = np.einsum("bkr,jbar->jbak", u, shrink[None] * uz[:, :, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (zc[:, :, None, :] - fit) / (1.0 - hat)[None]
    return np.where(hat[None] < 1.0 - 1e-12, res, np.inf), uz
