"""Ridge with its penalty chosen by leave-one-out: on the user's rows, and by parametric bootstrap.

Private to :mod:`finetune_theory.advisor`. A user's ``RidgeCV`` (intercept refitted, penalty
``alpha ||w||^2`` on the sum of squares, alpha chosen by the closed-form leave-one-out error)
is modelled twice:

* on the user's own labelled rows (:func:`loo_curves`): the leave-one-out error of every
  alpha and start, exactly as ``RidgeCV`` computes it; the smallest is what the user's choice
  will show them;
* inside the fitted Gaussian model (:func:`loo_ridge_bootstrap`): synthetic labelled sets drawn
  in the covariance eigenbasis (inputs ``N(0, diag(eigvals))``, coefficients
  ``N(0, diag(energy_j))``, noise ``N(0, noise_var)``), the same choice made on each, and the
  exact test error of the chosen fit averaged; also the leave-one-out error at the chosen alpha,
  whose ratio to the test error is the choice's optimism. Every start sees the same designs and
  noise (common random numbers), and the sample sizes share one nested design (the first
  ``k`` rows of the largest), drawn in chunks of draws so that memory stays bounded.

Both use one routine (:func:`_loo_fit`) working from the smaller Gram matrix of each design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._numerics import TINY
from .._random import as_generator
from .._ridge_loo import gram_basis, loo_residuals
from ._constants import BOOT_SEED, USER_ALPHAS

__all__ = ["BootResult", "loo_curves", "loo_ridge_bootstrap", "USER_ALPHAS", "BOOT_SEED"]

#: draws per chunk (memory: chunk x rows x d floats)
_CHUNK = 8


@dataclass(frozen=True)
class BootResult:
    """Bootstrap means at each sample size (arrays of shape (J, K)).

    Attributes
    ----------
    excess : mean excess risk ``(w - Delta)^T diag(eigvals) (w - Delta)`` of the chosen fit
    excess_se : its Monte Carlo standard error
    test : mean test MSE of the chosen fit, ``(excess + noise_var) (1 + 1/k)``
    loo : mean leave-one-out error at the chosen alpha
    log_gap_sd : standard deviation over the draws of ``log(test / loo)`` at the chosen alpha:
        how far one set's leave-one-out error misses its own test MSE (choice included)
    interp_log_sd : standard deviation over the draws of ``log`` of the test MSE of the
        minimum-norm interpolant (``finetune``) fitted to each set: how far one user's
        interpolant's test MSE strays from design to design
    interp_log_mean : ``E log`` of ``excess + noise_var`` of the interpolant over the draws
    draws : ndarray, shape (K,), the draws used at each size
    """

    excess: np.ndarray
    excess_se: np.ndarray
    test: np.ndarray
    loo: np.ndarray
    log_gap_sd: np.ndarray
    interp_log_sd: np.ndarray
    interp_log_mean: np.ndarray
    draws: np.ndarray


def _loo_fit(
    x: np.ndarray, z: np.ndarray, alphas: np.ndarray, interpolant: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-out errors of ridge with a refitted intercept, for a batch of designs.

    Parameters
    ----------
    x : ndarray, shape (B, k, d)
    z : ndarray, shape (J, B, k)
        Labels (one set per start).
    alphas : ndarray, shape (A,)
    interpolant : bool
        Return the minimum-norm interpolant's slopes (least squares once ``k > d``) instead of
        the leave-one-out residuals as the fourth result.

    Returns
    -------
    loo : ndarray, shape (J, B, A)
        Mean squared leave-one-out residual of each alpha.
    pick : ndarray, shape (J, B)
        Index of the first smallest (as ``RidgeCV``).
    coef : ndarray, shape (J, B, d)
        The slopes fitted at the picked alpha.
    resid : ndarray, shape (J, B, k)
        The leave-one-out residuals at the picked alpha.
    """
    xc = x - x.mean(axis=1, keepdims=True)
    zc = z - z.mean(axis=2, keepdims=True)
    k = xc.shape[1]
    u, g = gram_basis(xc)
    a = np.asarray(alphas, dtype=np.float64)
    res, uz = loo_residuals(u, g, zc, a, 1.0 / k)
    with np.errstate(invalid="ignore", over="ignore"):
        loo = np.mean(res**2, axis=3)
    loo = np.where(np.isfinite(loo), loo, np.inf)
    pick = np.argmin(loo, axis=2)
    resid = np.take_along_axis(res, pick[:, :, None, None], axis=2)[:, :, 0]
    inv = 1.0 / (g[None, :, :] + a[pick][:, :, None])  # (J, B, r)
    inv = np.where(g[None] > 0, inv, 0.0)
    c = np.einsum("bkr,jbr->jbk", u, inv * uz)  # dual coefficients
    coef = np.einsum("bkd,jbk->jbd", xc, c)
    if interpolant:
        inv0 = np.where(g > 0, 1.0 / np.where(g > 0, g, 1.0), 0.0)  # (B, r)
        c0 = np.einsum("bkr,jbr->jbk", u, inv0[None] * uz)
        return loo, pick, coef, np.einsum("bkd,jbk->jbd", xc, c0)
    return loo, pick, coef, resid


def loo_curves(x: np.ndarray, z: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out error of ``RidgeCV`` on the user's rows, for every start.

    Parameters
    ----------
    x : ndarray, shape (n, d)
    z : ndarray, shape (J, n)
        The labels minus each start's prediction (``y - X theta_j``).
    alphas : ndarray, shape (A,)

    Returns
    -------
    loo : ndarray, shape (J, A)
    residuals : ndarray, shape (J, n)
        The leave-one-out residuals at each start's chosen alpha.

    Examples
    --------
    >>> from sklearn.linear_model import RidgeCV
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((12, 5)); y = x[:, 0] + rng.standard_normal(12)
    >>> loo, _ = loo_curves(x, y[None], np.logspace(-2, 2, 9))
    >>> cv = RidgeCV(alphas=np.logspace(-2, 2, 9), store_cv_results=True).fit(x, y)
    >>> bool(np.allclose(loo[0], cv.cv_results_.mean(axis=0)))
    True
    """
    xx = np.asarray(x, dtype=np.float64)[None]
    zz = np.asarray(z, dtype=np.float64)[:, None, :]
    loo, _, _, resid = _loo_fit(xx, zz, alphas)
    return loo[:, 0], resid[:, 0]


def loo_ridge_bootstrap(
    eigvals: np.ndarray,
    energy: np.ndarray,
    noise_var: float,
    ns: np.ndarray,
    alphas: np.ndarray,
    draws: np.ndarray | int,
    seed: int = BOOT_SEED,
) -> BootResult:
    """The user's leave-one-out ridge inside the fitted Gaussian model, at each size in ``ns``.

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
    energy : ndarray, shape (J, d)
        ``E <Delta_j, v_k>^2`` of each start.
    noise_var : float
    ns : ndarray of int, shape (K,)
        Labelled sizes (at least 3), increasing.
    alphas : ndarray, shape (A,)
    draws : int or ndarray of int, shape (K,)
        Synthetic labelled sets at each size (a size's sets are the first rows of the largest
        size's; a size with fewer draws uses the first ones).
    seed : int

    Returns
    -------
    BootResult

    Examples
    --------
    >>> lam = np.ones(5)
    >>> res = loo_ridge_bootstrap(lam, np.full((1, 5), 0.1), 0.5, np.array([400]),
    ...                           np.logspace(-2, 3, 20), 16)
    >>> bool(res.excess[0, 0] < 5 * 0.5 / 400 * 1.5)  # n >> d: about least squares' d s^2/n
    True
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    en = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    ks = np.asarray(ns, dtype=np.int64)
    nd = np.broadcast_to(np.asarray(draws, dtype=np.int64), ks.shape).copy()
    j, d = en.shape
    total = int(nd.max())
    top = int(ks.max())
    keys = ("excess", "excess2", "test", "loo", "gap", "gap2", "interp", "interp2")
    sums = {key: np.zeros((j, ks.size)) for key in keys}
    ss = np.random.SeedSequence([int(seed), d, top, total])
    sd = math.sqrt(max(noise_var, 0.0))
    for c0 in range(0, total, _CHUNK):
        rng = as_generator(ss.spawn(1)[0])
        b = min(_CHUNK, total - c0)
        x = rng.standard_normal((b, top, d)) * np.sqrt(lam)
        delta = rng.standard_normal((b, d))[None] * np.sqrt(en)[:, None, :]  # (J, b, d)
        noise = rng.standard_normal((b, top)) * sd
        y = np.einsum("bnd,jbd->jbn", x, delta) + noise[None]
        for i, k in enumerate(ks):
            use = int(min(b, max(nd[i] - c0, 0)))
            if use == 0:
                continue
            loo, pick, coef, coef0 = _loo_fit(x[:use, :k], y[:, :use, :k], alphas, True)
            exc0 = ((coef0 - delta[:, :use]) ** 2 * lam).sum(axis=2)
            log0 = np.log(np.maximum(exc0 + noise_var, TINY))
            sums["interp"][:, i] += log0.sum(axis=1)
            sums["interp2"][:, i] += (log0**2).sum(axis=1)
            exc = ((coef - delta[:, :use]) ** 2 * lam).sum(axis=2)  # (J, use)
            sums["excess"][:, i] += exc.sum(axis=1)
            sums["excess2"][:, i] += (exc**2).sum(axis=1)
            test = (exc + noise_var) * (1.0 + 1.0 / k)
            shown = np.take_along_axis(loo, pick[:, :, None], axis=2)[..., 0]
            gap = np.log(np.maximum(test, TINY) / np.maximum(shown, TINY))
            sums["test"][:, i] += test.sum(axis=1)
            sums["loo"][:, i] += shown.sum(axis=1)
            sums["gap"][:, i] += gap.sum(axis=1)
            sums["gap2"][:, i] += (gap**2).sum(axis=1)
    cnt = nd.astype(np.float64)[None, :]
    mean = sums["excess"] / cnt
    var = np.maximum(sums["excess2"] / cnt - mean**2, 0.0) * cnt / np.maximum(cnt - 1, 1)
    gap = sums["gap"] / cnt
    gap_var = np.maximum(sums["gap2"] / cnt - gap**2, 0.0) * cnt / np.maximum(cnt - 1, 1)
    lin = sums["interp"] / cnt
    lin_var = np.maximum(sums["interp2"] / cnt - lin**2, 0.0) * cnt / np.maximum(cnt - 1, 1)
    return BootResult(
        excess=mean,
        excess_se=np.sqrt(var / cnt),
        test=sums["test"] / cnt,
        loo=sums["loo"] / cnt,
        log_gap_sd=np.sqrt(gap_var),
        interp_log_sd=np.sqrt(lin_var),
        interp_log_mean=lin,
        draws=nd,
    )
