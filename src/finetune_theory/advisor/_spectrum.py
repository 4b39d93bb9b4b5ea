"""The target inputs' covariance in thin form: Ledoit-Wolf spectrum and its leading eigenvectors.

Private to :mod:`finetune_theory.advisor`. With ``N`` input rows in ``d`` dimensions the
sample covariance has rank at most ``N - 1``; its Ledoit-Wolf shrinkage towards ``mu I``
(``mu`` the mean variance) keeps the sample eigenvectors and moves every eigenvalue to
``(1 - s) l_k + s mu``, so the ``d - r`` directions outside the rows' span share one eigenvalue
``s mu`` and need no basis. Everything is computed from the smaller of the two Gram matrices
(``N x N`` or ``d x d``): ``O(N d min(N, d))`` operations instead of a ``d x d``
eigendecomposition of a dense shrunk matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numerics import EIG_RTOL, TINY

__all__ = ["Spectrum", "ledoit_wolf_spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of the shrunk covariance (descending) and the leading eigenvectors.

    Attributes
    ----------
    eigvals : ndarray, shape (d,)
    vecs : ndarray, shape (d, r)
        Eigenvectors of the first ``r`` eigenvalues; the remaining ``d - r`` directions (the
        orthogonal complement) all have the eigenvalue ``eigvals[r:]`` (equal).
    shrinkage : float
        The Ledoit-Wolf weight ``s``.
    """

    eigvals: np.ndarray
    vecs: np.ndarray
    shrinkage: float

    @property
    def d(self) -> int:
        return int(self.eigvals.size)

    def coords(self, rows: np.ndarray) -> np.ndarray:
        """Coordinates of ``rows`` (shape (..., d)) on all ``d`` eigen-directions, those outside
        the span of the leading ones set to zero (exact for vectors inside the span)."""
        r = self.vecs.shape[1]
        inside = rows @ self.vecs
        pad = np.zeros(inside.shape[:-1] + (self.d - r,))
        return np.concatenate([inside, pad], axis=-1)

    def quad(self, vectors: np.ndarray) -> np.ndarray:
        """``v^T Sigma v`` for each row ``v`` of ``vectors`` (shape (k, d))."""
        v = np.atleast_2d(vectors)
        r = self.vecs.shape[1]
        inside = v @ self.vecs
        out = (inside**2) @ self.eigvals[:r]
        if r < self.d:
            rest = np.maximum((v**2).sum(axis=1) - (inside**2).sum(axis=1), 0.0)
            out = out + self.eigvals[r] * rest
        return out


def ledoit_wolf_spectrum(x: np.ndarray) -> Spectrum:
    """Ledoit-Wolf estimate of the covariance of the rows of ``x``, in thin form.

    The same estimate as scikit-learn's ``ledoit_wolf`` (rows centred, divided by ``N``), from
    the smaller Gram matrix.

    Parameters
    ----------
    x : ndarray, shape (N, d)

    Returns
    -------
    Spectrum

    Examples
    --------
    >>> from sklearn.covariance import ledoit_wolf
    >>> x = np.random.default_rng(0).standard_normal((6, 9)) * np.arange(1, 10)
    >>> spec = ledoit_wolf_spectrum(x)
    >>> dense = np.linalg.eigvalsh(ledoit_wolf(x)[0])[::-1]
    >>> bool(np.allclose(spec.eigvals, dense))
    True
    """
    xc = np.asarray(x, dtype=np.float64)
    xc = xc - xc.mean(axis=0)
    big_n, d = xc.shape
    if big_n >= d:
        s2, vecs = np.linalg.eigh(xc.T @ xc)
    else:
        s2, u = np.linalg.eigh(xc @ xc.T)
        s2 = np.maximum(s2, 0.0)
        vecs = (xc.T @ u) / np.sqrt(np.maximum(s2, TINY))
    order = np.argsort(s2)[::-1]
    s2, vecs = np.maximum(s2[order], 0.0), vecs[:, order]
    keep = s2 > EIG_RTOL * max(float(s2[0]) if s2.size else 0.0, TINY)
    s2, vecs = s2[keep], vecs[:, keep]
    emp = s2 / big_n  # nonzero eigenvalues of the sample covariance (divided by N)
    mu = float(emp.sum()) / d
    # scikit-learn's shrinkage: beta from the rows' fourth moments, delta from ||S - mu I||_F^2
    delta_ = float((emp**2).sum())  # ||S||_F^2
    beta_ = float(((xc**2).sum(axis=1) ** 2).sum())  # sum_i ||x_i||^4
    beta = (beta_ / big_n - delta_) / (d * big_n)
    delta = (delta_ - 2.0 * mu * emp.sum() + d * mu**2) / d
    beta = min(beta, delta)
    shrink = 0.0 if beta == 0 or delta <= 0 else beta / delta
    lead = (1.0 - shrink) * emp + shrink * mu
    lam = np.concatenate([lead, np.full(d - lead.size, shrink * mu)])
    return Spectrum(eigvals=lam, vecs=vecs, shrinkage=float(shrink))
