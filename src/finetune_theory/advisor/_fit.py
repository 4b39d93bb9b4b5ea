"""The advisor's statistical core: how the source-target difference spreads over the spectrum.

Private to :mod:`finetune_theory.advisor`. The expected fine-tuning risk at ``n`` samples is
``sum_k w_k(n) <Delta, v_k>^2 + sigma^2 noise_factor(n)`` (section 1 of the theory), so a
prediction needs the spectrum ``(lambda_k, v_k)`` of the target inputs, the energy
``E <Delta, v_k>^2`` of the difference on each eigen-direction and the noise level ``sigma^2``.
With ``n`` labelled samples and ``d > n`` features the energies cannot be estimated one by one;
the advisor fits a two-parameter profile instead and lets the data refine it.

Model (empirical Bayes). In the estimated eigenbasis, the coordinates of
``Delta = theta_S - theta_T`` are independent Gaussians ``c_k ~ N(0, s k^t)``: a scale ``s`` and a
tilt ``t`` (``t < 0``: the difference sits in the top directions; ``t > 0``: in the tail). The
centred residuals of the source, ``r = y_c - X_c theta_S = -X_c Delta + noise``, are then
Gaussian given the inputs with covariance ``s P D_t P^T + sigma^2 I`` (``P = X_c V``,
``D_t = diag(k^t)``). The advisor maximises this marginal likelihood over ``(t, s, sigma^2)``
(a grid over ``t`` and over ``sigma^2 / s``, with ``s`` profiled out in closed form), then takes
the posterior second moments ``E[c_k^2 | r] = mu_k^2 + var_k`` as the energies. Every
quantity comes from one thin SVD of ``P D_t^{1/2}`` per grid value of ``t``, shared by all
sources (only the residuals differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numerics import TINY

__all__ = ["ProfileFit", "TILTS", "helmert", "fit_profiles", "thin_svd"]

#: grid of tilts t (energy of the difference on the k-th eigen-direction ~ k^t)
TILTS = np.linspace(-4.0, 4.0, 33)
#: grid of noise-to-signal ratios sigma^2 / s (in units of the mean eigenvalue of P D_t P^T)
_PHIS = np.concatenate([[0.0], np.logspace(-10, 4, 57)])


@dataclass(frozen=True)
class ProfileFit:
    """Fitted profile of one or more sources (arrays have a leading source axis).

    Parameters
    ----------
    tilt : ndarray, shape (S,)
        The profile's tilt ``t`` (prior energy ``s k^t`` of the ``k``-th eigendirection) at
        the maximum of the marginal likelihood.
    scale : ndarray, shape (S,)
        The profile's scale ``s`` at that maximum.
    noise_var : ndarray, shape (S,)
        The label-noise variance ``sigma^2`` at that maximum.
    energy : ndarray, shape (S, d)
        Posterior ``E[<Delta, v_k>^2 | data]`` in the estimated eigenbasis.
    mean : ndarray, shape (S, d)
        Posterior mean ``E[<Delta, v_k> | data]`` (signed; ``Delta = theta_S - theta_T``).
    prior_energy : ndarray, shape (S, d)
        ``s k^t`` (the fitted profile before the data refines it).
    loglik : ndarray, shape (S,)
        Maximised log marginal likelihood (up to a constant shared by all sources).

    Examples
    --------
    >>> p = np.eye(3)
    >>> fit = fit_profiles(p, np.zeros((2, 3)))  # two sources that reproduce the labels
    >>> fit.energy.shape, fit.noise_var.tolist()
    ((2, 3), [0.0, 0.0])
    """

    tilt: np.ndarray
    scale: np.ndarray
    noise_var: np.ndarray
    energy: np.ndarray
    mean: np.ndarray
    prior_energy: np.ndarray
    loglik: np.ndarray


def helmert(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Project ``a`` along ``axis`` on an orthonormal basis of the zero-mean vectors.

    Row ``j`` of the result (``j = 1 .. n-1``) is ``(a_0 + .. + a_{j-1} - j a_j) / sqrt(j (j+1))``:
    the Helmert contrasts. It removes the mean exactly and leaves ``n - 1`` rows that are
    independent and Gaussian when the rows of ``a`` are (centring by the sample mean would leave
    ``n`` correlated rows). Costs ``O(n)`` per column, no ``n x n`` matrix.
    """
    x = np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0)
    n = x.shape[0]
    j = np.arange(1, n, dtype=np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
    head = np.cumsum(x, axis=0)[:-1]
    out = (head - j * x[1:]) / np.sqrt(j * (j + 1.0))
    return np.moveaxis(out, 0, axis)


def _profile_nll(
    g: np.ndarray, rt2: np.ndarray, rest: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihood with ``s`` profiled out, for every source and every ratio phi.

    ``g``: nonzero eigenvalues of ``P D_t P^T`` normalised to mean one, shape (q,);
    ``rt2``: squared residual coordinates on their eigenvectors, (S, q); ``rest``: residual
    energy outside their span, (S,). Returns (S, len(_PHIS)) values and the profiled ``s``.
    """
    q = g.size
    outside = m - q
    phi = _PHIS
    denom = g[None, :] + phi[:, None]  # (F, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        quad = rt2 @ (1.0 / denom).T  # (S, F)
        if outside > 0:
            quad = quad + np.where(phi > 0, rest[:, None] / np.where(phi > 0, phi, 1.0), np.inf)
        s_hat = quad / m
        logdet = np.log(denom).sum(axis=1)
        if outside > 0:
            logdet = logdet + outside * np.where(
                phi > 0, np.log(np.where(phi > 0, phi, 1.0)), -np.inf
            )
        nll = 0.5 * (m * np.log(np.maximum(s_hat, TINY)) + logdet[None, :])
    bad = ~np.isfinite(nll) | (s_hat <= 0) | ~np.isfinite(s_hat)
    return np.where(bad, np.inf, nll), s_hat


def _fixed_noise_nll(
    g: np.ndarray, rt2: np.ndarray, rest: np.ndarray, m: int, noise: float, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihood on a grid of scales ``s`` (normalised units) at a fixed noise.

    Returns (S, len(grid)) values and the grid.
    """
    grid = scale * np.concatenate([[0.0], np.logspace(-8, 3, 89)])
    e = grid[:, None] * g[None, :] + noise  # (G, q)
    outside = m - g.size
    nll = 0.5 * (np.log(e).sum(axis=1)[None, :] + rt2 @ (1.0 / e).T)
    if outside > 0:
        nll = nll + 0.5 * (outside * np.log(noise) + rest[:, None] / noise)
    return nll, grid


def thin_svd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``U, s, W^T`` of the thin SVD of ``a`` (m, d) from the smaller Gram matrix.

    Singular values below ``1e-6`` of the largest are dropped (their squares are below the
    Gram route's rounding).

    Examples
    --------
    >>> a = np.random.default_rng(0).standard_normal((4, 7))
    >>> u, s, wt = thin_svd(a)
    >>> bool(np.allclose((u * s) @ wt, a))
    True
    """
    m, d_all = a.shape
    nz = np.flatnonzero(np.any(a != 0, axis=0))  # columns outside the rows' span are zero

    a = a[:, nz] if nz.size < d_all else a
    d = a.shape[1]
    if m <= d:
        g, u = np.linalg.eigh(a @ a.T)
        order = np.argsort(g)[::-1]
        g, u = g[order], u[:, order]
        keep = g > _GRAM_RTOL * max(float(g[0]) if g.size else 0.0, TINY)
        g, u = g[keep], u[:, keep]
        sv = np.sqrt(g)
        wt = (u.T @ a) / sv[:, None]
    else:
        g, w = np.linalg.eigh(a.T @ a)
        order = np.argsort(g)[::-1]
        g, w = g[order], w[:, order]
        keep = g > _GRAM_RTOL * max(float(g[0]) if g.size else 0.0, TINY)
        g, w = g[keep], w[:, keep]
        sv = np.sqrt(g)
        u = (a @ w) / sv[None, :]
        wt = w.T
    if d < d_all:
        out = np.zeros((wt.shape[0], d_all))
        out[:, nz] = wt
        wt = out

    return u, sv, wt


#: squared singular values below this fraction of the largest are dropped by :func:`thin_svd`
_GRAM_RTOL = 1e-12


def fit_profiles(
    p: np.ndarray,
    residuals: np.ndarray,
    noise_var: float | None = None,
    cache: dict | None = None,
) -> ProfileFit:
    """Fit the profile of each source by maximum marginal likelihood.

    Parameters
    ----------
    p : ndarray, shape (m, d)
        Centred labelled inputs in the eigenbasis (rows already projected by
        the Helmert contrasts of :func:`helmert`, so ``m = n - 1``).
    residuals : ndarray, shape (S, m)
        Centred residuals of each source, projected the same way.
    noise_var : float, optional
        Hold the label-noise variance at this value (shared by every source) and fit only
        ``(t, s)``; default: fit it too, per source.
    cache : dict, optional
        Keeps the decomposition of ``P D_t^{1/2}`` per tilt between calls on the same ``p``.

    Returns
    -------
    ProfileFit

    Examples
    --------
    A difference planted in the first eigen-direction, observed without noise on 200 rows:

    >>> rng = np.random.default_rng(0)
    >>> p = rng.standard_normal((200, 5)) * np.sqrt([4.0, 2.0, 1.0, 0.5, 0.25])
    >>> delta = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    >>> fit = fit_profiles(p, -(p @ delta)[None, :])
    >>> int(np.argmax(fit.energy[0])), bool(abs(fit.mean[0, 0] - 1.0) < 0.05)
    (0, True)
    """
    m, d = p.shape
    k = np.arange(1, d + 1, dtype=np.float64)
    res = np.atleast_2d(residuals)
    n_src = res.shape[0]
    rr = np.sum(res * res, axis=1)
    best_nll = np.full(n_src, np.inf)
    best_t = np.zeros(n_src)
    best_s = np.zeros(n_src)
    best_noise = np.zeros(n_src)
    if noise_var is not None:  # a floor keeps the fixed-noise likelihood finite
        fixed = max(float(noise_var), 1e-10 * float(rr.mean()) / m, TINY)
    cache = {} if cache is None else cache
    for t in TILTS:
        if float(t) not in cache:  # (the right factor is not kept: d columns per tilt)
            u, sv, _ = thin_svd(p * k ** (t / 2.0))
            cache[float(t)] = (u, sv)
        u, sv = cache[float(t)]
        g = sv * sv
        if g.size == 0:
            continue
        gbar = g.mean()
        rt2 = (res @ u) ** 2
        rest = np.maximum(rr - rt2.sum(axis=1), 0.0)
        if noise_var is None:
            nll, s_hat = _profile_nll(g / gbar, rt2, rest, m)
            j = np.argmin(nll, axis=1)
            s_norm = s_hat[np.arange(n_src), j]  # the scale in units where mean(g) = 1
            noise_j = _PHIS[j] * s_norm
        else:
            nll, grid = _fixed_noise_nll(g / gbar, rt2, rest, m, fixed, float(rr.mean()) / m)
            j = np.argmin(nll, axis=1)
            s_norm = grid[j]
            noise_j = np.full(n_src, fixed)
        val = nll[np.arange(n_src), j]
        better = val < best_nll
        best_nll = np.where(better, val, best_nll)
        best_t = np.where(better, t, best_t)
        best_s = np.where(better, s_norm / gbar, best_s)
        best_noise = np.where(better, noise_j, best_noise)
    # a source that reproduces the labels exactly leaves nothing to fit
    exact = rr <= 1e-28 * max(float(rr.max(initial=0.0)), 1.0)
    empty = exact | ~np.isfinite(best_nll)
    best_s = np.where(empty, 0.0, best_s)
    noise_fit = np.where(empty, 0.0, best_noise)
    energy = np.zeros((n_src, d))
    mean = np.zeros((n_src, d))
    for t in np.unique(best_t):
        idx = np.flatnonzero(best_t == t)
        mean[idx], energy[idx] = _posterior_moments(p, res[idx], best_s[idx], t, noise_fit[idx])
    prior = best_s[:, None] * k[None, :] ** best_t[:, None]
    return ProfileFit(
        tilt=best_t,
        scale=best_s,
        noise_var=noise_fit,
        energy=energy,
        mean=mean,
        prior_energy=prior,
        loglik=-best_nll,
    )


def _posterior_energy(
    p: np.ndarray, res: np.ndarray, s: np.ndarray, t: float, noise_var: np.ndarray
) -> np.ndarray:
    """``E[c_k^2 | r] = mu_k^2 + var_k`` for sources sharing the tilt ``t``."""
    return _posterior_moments(p, res, s, t, noise_var)[1]


def _posterior_moments(
    p: np.ndarray,
    res: np.ndarray,
    s: np.ndarray,
    t: float,
    noise_var: np.ndarray,
    svd: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean ``mu_k`` and second moment ``mu_k^2 + var_k`` of ``c_k`` given ``r``.

    With ``M = P D^{1/2} = U S W^T`` and ``K = s M M^T + sigma^2 I``, and ``r = -P c + noise``:
    ``mu = -s D^{1/2} M^T K^{-1} r`` and
    ``var_k = s D_k (1 - s sum_j W_jk^2 g_j / (s g_j + sigma^2))``.
    """
    d = p.shape[1]
    k = np.arange(1, d + 1, dtype=np.float64)
    dh = k ** (t / 2.0)
    u, sv, wt = thin_svd(p * dh) if svd is None else svd
    g = sv * sv
    s = s[:, None]
    sig = noise_var[:, None]
    denom = s * g[None, :] + sig  # (S, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(denom > 0, s * sv[None, :] / np.where(denom > 0, denom, 1.0), 0.0)
        shrink = np.where(denom > 0, s * g[None, :] / np.where(denom > 0, denom, 1.0), 0.0)
    mu = -((res @ u) * coef) @ wt * dh[None, :]  # (S, d)
    var = s * (dh * dh)[None, :] * (1.0 - shrink @ (wt * wt))
    return mu, mu * mu + np.maximum(var, 0.0)
