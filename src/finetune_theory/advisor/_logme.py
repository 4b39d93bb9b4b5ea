"""LogME: the log marginal evidence of Bayesian linear regression on features.

A transferability score written from its published description (You et al., ICML 2021): given
features ``F`` (``n x D``) extracted by a pretrained model and target labels ``y``, put a prior
``w ~ N(0, alpha^{-1} I)`` on linear weights and noise ``y | w ~ N(F w, beta^{-1} I)``; maximise
the evidence ``log p(y | F, alpha, beta)`` over ``alpha, beta`` by the usual fixed-point
iteration (MacKay's updates) and report the maximum divided by ``n``. Higher means the
features explain the labels better.

For a linear source model ``x -> theta_S^T x`` the learned representation is the single
feature ``theta_S^T x``; :func:`logme_linear_source` scores a source that way (features and
labels centred, so the intercept is left out). Used by the advisor's validation as a baseline.
"""

from __future__ import annotations

import math

import numpy as np

from .._numerics import TINY

__all__ = ["logme", "log_evidence", "logme_linear_source"]


def log_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """``log p(y | F, alpha, beta) / n`` in closed form (the multivariate normal density).

    ``y ~ N(0, beta^{-1} I + alpha^{-1} F F^T)``; written through the ``D x D`` posterior
    precision ``A = alpha I + beta F^T F`` so that it costs ``O(n D^2)``.
    """
    f = np.asarray(features, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    n, dim = f.shape
    a = alpha * np.eye(dim) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ yy)
    resid = yy - f @ m
    _, logdet = np.linalg.slogdet(a)
    value = (
        0.5 * dim * math.log(alpha)
        + 0.5 * n * math.log(beta)
        - 0.5 * n * math.log(2.0 * math.pi)
        - 0.5 * beta * float(resid @ resid)
        - 0.5 * alpha * float(m @ m)
        - 0.5 * logdet
    )
    return value / n


def logme(
    features: np.ndarray, y: np.ndarray, *, max_iter: int = 100, tol: float = 1e-5
) -> tuple[float, float, float]:
    """Maximise the evidence over ``(alpha, beta)``.

    Parameters
    ----------
    features : ndarray, shape (n, D)
    y : ndarray, shape (n,)
    max_iter, tol
        Fixed-point budget and relative stopping tolerance on ``alpha / beta``.

    Returns
    -------
    (score, alpha, beta)
        ``score`` is the maximised evidence per sample.
    """
    f = np.asarray(features, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    n = f.shape[0]
    u, sv, vt = np.linalg.svd(f, full_matrices=False)
    sig = sv * sv  # eigenvalues of F^T F
    proj = vt @ (f.T @ yy)  # F^T y in the right singular basis
    y2 = float(yy @ yy)
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma = float(np.sum(beta * sig / (alpha + beta * sig)))
        m_coords = beta * proj / (alpha + beta * sig)  # posterior mean in that basis
        m2 = float(m_coords @ m_coords)
        # ||F m - y||^2 = ||y||^2 - 2 m^T F^T y + m^T F^T F m
        res2 = max(y2 - 2.0 * float(m_coords @ proj) + float(sig @ (m_coords * m_coords)), TINY)
        new_alpha = gamma / max(m2, TINY)
        new_beta = max(n - gamma, 1e-12) / res2
        ratio_old = alpha / beta
        alpha, beta = new_alpha, new_beta
        if abs(alpha / beta - ratio_old) / max(ratio_old, TINY) < tol:
            break
    return log_evidence(f, yy, alpha, beta), alpha, beta


def logme_linear_source(X: np.ndarray, y: np.ndarray, theta_source: np.ndarray) -> float:
    """LogME of a linear source model: the evidence of the feature ``theta_S^T x``."""
    x = np.asarray(X, dtype=np.float64)
    feature = x @ np.asarray(theta_source, dtype=np.float64)
    feature = feature - feature.mean()
    yc = np.asarray(y, dtype=np.float64) - float(np.mean(y))
    if not np.any(feature):
        feature = feature + 1e-12  # a constant feature carries nothing; keep the algebra defined
    return logme(feature[:, None], yc)[0]
