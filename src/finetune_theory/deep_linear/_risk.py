"""Risks of fine-tuning deep linear networks: expected scale and risk, Monte Carlo, frozen floor."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._random import SeedLike
from .._risk import SimulatedRisk, monte_carlo, risk_setting
from .._validation import (
    check_depth,
    check_nonnegative,
    check_positive_int,
    output_like,
    sample_sizes,
)
from ..asymptotics import DeterministicEquivalent, deterministic_equivalent
from ..covariance import CovarianceLike
from ._closed import (
    beta_rule,
    norm_covariances,
    scale_derivatives,
    scale_root,
)
from ._limit import _limit

_BETA_NODES = 48  # Gauss nodes over the seen fraction (docs/deep_linear.md, section 6.1)


def _fluctuation_terms(
    a2: np.ndarray,
    b2: np.ndarray,
    seen: np.ndarray,
    a_bar: np.ndarray,
    b_bar: np.ndarray,
    c2: float,
    depth: float,
    cov: dict[str, np.ndarray],
    cross: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(E s - s, E R - R)`` of the fluctuations of the norms, one entry per row.

    ``a2, b2, seen``: the deterministic equivalents of ``||X^+ y||^2``, ``||P_perp theta_S||^2``
    and ``||P_X theta_S||^2``; ``a_bar, b_bar`` those of ``A`` and ``B``; ``cov`` from
    :func:`norm_covariances`. The seen fraction ``t = ||P_X theta_S||^2 / c2`` is integrated
    over the Beta law of its mean and variance (the exact law for an isotropic covariance) with
    a Gauss rule; given ``t``, ``a2``, ``A`` and ``B`` are replaced by their linear regressions
    on ``b2`` and the rest of their spread enters at second order, the design part of it scaled
    by ``t / E t`` (it comes from the seen components of the source) and the chi-square part
    of the noise, ``Var(xi' (XX')^-1 xi)``, kept whole (``docs/deep_linear.md``, section 6.1).
    Rows whose variance is too large for a Beta law with both parameters above 1 keep the plain
    second-order expansion in ``(a2, b2)``. ``cross`` (:func:`_noise_cross`) times ``E s_a`` is
    the mean of the noise cross term ``2 <X^+ xi, P_perp (s theta_S - theta_T)>_Sigma``.
    """
    ds, dr = np.zeros(a2.shape), np.zeros(a2.shape)
    vbb, vab = cov["bb"], cov["ab"]
    m = seen / c2
    with np.errstate(divide="ignore", invalid="ignore"):
        total = m * (1.0 - m) * c2**2 / vbb - 1.0
    beta_ok = (vbb > 0) & (m * total > 1.0) & ((1.0 - m) * total > 1.0)
    # rows too spread for the Beta law: the plain second-order expansion, all at once
    fb = ~beta_ok
    if fb.any():
        s0, s_a, s_b, s_aa, s_ab, s_bb = scale_derivatives(a2[fb], b2[fb], c2, depth, seen[fb])
        g = {q: cov[q][fb] for q in cov}
        ds[fb] = 0.5 * (s_aa * g["aa"] + 2 * s_ab * g["ab"] + s_bb * g["bb"])
        slope = 2 * (a_bar[fb] * s0 - b_bar[fb])  # dR/ds; d2R/ds2 = 2 A
        h_aa = 2 * a_bar[fb] * s_a**2 + slope * s_aa
        h_bb = 2 * a_bar[fb] * s_b**2 + slope * s_bb
        h_ab = 2 * a_bar[fb] * s_a * s_b + slope * s_ab
        dr[fb] = (
            0.5 * (h_aa * g["aa"] + h_bb * g["bb"] + 2 * h_ab * g["ab"])
            + 2 * s0 * (s_a * g["Aa"] + s_b * g["Ab"])
            - 2 * (s_a * g["Ba"] + s_b * g["Bb"])
            + cross[fb] * s_a
        )
    for j in np.flatnonzero(beta_ok):
        t, w = beta_rule(m[j] * total[j], (1.0 - m[j]) * total[j], _BETA_NODES)
        db = c2 * (1.0 - t) - b2[j]
        k_a, k_big_a, k_big_b = (cov[q][j] / vbb[j] for q in ("ab", "Ab", "Bb"))
        chi = cov["aa_chi"][j]
        frac = t / m[j]
        va = max(cov["aa"][j] - chi - vab[j] ** 2 / vbb[j], 0.0) * frac + chi
        c_aa = (cov["Aa"][j] - k_big_a * vab[j]) * frac
        c_ba = (cov["Ba"][j] - k_big_b * vab[j]) * frac
        aj = np.maximum(a2[j] + k_a * db, 1e-6 * a2[j])
        big_a, big_b = a_bar[j] + k_big_a * db, b_bar[j] + k_big_b * db
        sj, s_a, _, s_aa, _, _ = scale_derivatives(aj, b2[j] + db, c2, depth, c2 * t)
        e_s = sj + 0.5 * s_aa * va
        e_r = (
            big_a * sj**2
            - 2 * big_b * sj
            + (big_a * s_a**2 + (big_a * sj - big_b) * s_aa) * va
            + 2 * sj * s_a * c_aa
            - 2 * s_a * c_ba
            + cross[j] * s_a
        )
        s0 = scale_root(a2[j], b2[j], c2, depth, seen_sq=seen[j])
        ds[j] = w @ e_s - s0
        dr[j] = w @ e_r - (a_bar[j] * s0**2 - 2 * b_bar[j] * s0)
    return ds, dr


def _noise_cross(
    lam: np.ndarray, u: np.ndarray, v: np.ndarray, eq: DeterministicEquivalent, sigma: float
) -> np.ndarray:
    """``4 sigma^2 E theta_T' (X'X)^+ Sigma P_perp theta_S``, per row of ``eq``.

    The noise cross term ``2 <X^+ xi, P_perp (s theta_S - theta_T)>_Sigma`` has mean ``2 E s
    xi' X^{+T} Sigma P_perp theta_S``: by Stein's lemma over ``xi`` (``s`` depends on it
    through ``a2 = ||X^+ y||^2``, whose gradient in ``xi`` is ``2 X^{+T} theta_T`` plus a
    term of higher order) it is ``s_a`` times this. The matrix is diagonal in the eigenbasis
    (sign flips of the coordinates keep the law of ``X``), and ``mu (X'X + mu)^-1 Sigma mu
    (X'X + mu)^-1 = P_perp Sigma P_perp + mu ((X'X)^+ Sigma P_perp + P_perp Sigma (X'X)^+) +
    O(mu^2)``, so its diagonal is half the ``mu``-derivative at 0 of the ridge bias weights
    (``mu = n ridge``). At first order, with ``D = n (1 - rho)`` and ``d kappa / d mu = 1 /
    D``: ``m_i = w_i (q_i - sum q^2 (1 - q) / D) / (kappa D)``, ``w_i = lambda_i (1 - q_i)^2
    / (1 - rho)`` (docs/deep_linear.md, section 6.1).
    """
    kappa = eq.kappa[:, None]
    q = lam[None, :] / (lam[None, :] + kappa)
    den = eq.n[:, None] * (1.0 - eq.rho[:, None])
    first = lam[None, :] * (1.0 - q) ** 2 / (1.0 - eq.rho[:, None])
    spread = (q * q * (1.0 - q)).sum(axis=1, keepdims=True) / den
    m = first * (q - spread) / (kappa * den)
    return 4.0 * sigma**2 * (m @ (u * v))


def _expected_scale(
    c: Any, ts: np.ndarray, tt: np.ndarray, eq: Any, depth: float, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plug-in ``s_N`` on validated inputs and its second-order corrections.

    Returns ``(s, ds, dr)``: the root of the scalar equation at the deterministic equivalents of
    the norms, the convexity correction of its mean ``E s_N - s`` and that of the risk of the
    limit (zero where they do not apply: depth 1, ``n`` at or above the rank, infinite
    ``s``). See ``docs/deep_linear.md``, section 6.
    """
    u, v = c.coords(ts), c.coords(tt)
    cs, ct = u * u, v * v
    perp_sq = eq.perp_weights @ cs
    seen_sq = (1.0 - eq.perp_weights) @ cs
    target_sq = (1.0 - eq.perp_weights) @ ct
    if sigma > 0:
        target_sq = target_sq + sigma**2 * eq.pinv_trace
    finite = np.isfinite(target_sq)
    s = np.full(eq.n.shape, np.inf)
    ds = np.zeros(eq.n.shape)
    dr = np.zeros(eq.n.shape)
    # the data sees every direction of the source: it is forgotten (s = 1 by convention); with
    # a rank-deficient covariance the part of theta_S in its null space stays unseen at any n
    unseen = (eq.n >= eq.rank) & (perp_sq <= 0)
    ok = finite & ~unseen
    c2 = float(ts @ ts)
    if np.any(ok):
        s[ok] = scale_root(target_sq[ok], perp_sq[ok], c2, depth, seen_sq=seen_sq[ok])
    s[unseen] = 1.0
    fluct = ok & (eq.n < eq.rank) & (target_sq > 0) & (perp_sq > 0) & (depth > 1)
    if np.any(fluct):
        idx = np.flatnonzero(fluct)
        sub = DeterministicEquivalent(
            **{
                f: (getattr(eq, f)[idx] if f not in ("rank", "exact") else getattr(eq, f))
                for f in DeterministicEquivalent.__dataclass_fields__
            }
        )
        cov = norm_covariances(c.eigvals, u, v, sub, sigma)
        a_bar = sub.bias_weights @ cs
        b_bar = sub.bias_weights @ (u * v)
        cross = _noise_cross(c.eigvals, u, v, sub, sigma)
        ds[idx], dr[idx] = _fluctuation_terms(
            target_sq[idx], perp_sq[idx], seen_sq[idx], a_bar, b_bar, c2, depth, cov, cross
        )
    return s, ds, dr


def expected_scale(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    depth: float,
    *,
    noise: float = 0.0,
    correct: bool = True,
) -> np.ndarray | float:
    """Asymptotic ``s_N`` over Gaussian designs: :func:`solve_scale` of deterministic equivalents.

    ``||P_perp theta_S||^2 ~ sum_i perp_weights_i <theta_S, v_i>^2`` and
    ``||X^+ y||^2 ~ ||theta_T||^2 - sum_i perp_weights_i <theta_T, v_i>^2``
    ``+ sigma^2 E ||X^+||_F^2`` (``pinv_trace`` of the deterministic equivalent). With
    ``correct=True`` (default) the spread of the norms ``q = (||X^+ y||^2, ||P_perp theta_S||^2)``
    over designs is added: the seen fraction of the source is integrated over a Beta law and
    the rest of the spread enters at second order, ``(1/2) sum_jk d2s/dq_j dq_k Cov(q_j, q_k)``;
    ``s_N`` is convex in the norms, so the plug-in alone is low at small ``n``
    (``docs/deep_linear.md``, section 6).

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the target inputs.
    theta_source : array-like, shape (d,)
        The source (pretrained) end-to-end vector.
    theta_target : array-like, shape (d,)
        The target teacher.
    n : int or array-like of int
        Number of target samples.
    depth : int or math.inf
        Depth ``N`` of the balanced network.
    noise : float, default 0.0
        Label-noise standard deviation.
    correct : bool, default True
        Add the correction for the spread of the norms over designs (see above).

    Returns
    -------
    float or ndarray
        ``s_N`` at each ``n`` (a float for a single ``n``).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from finetune_theory import covariance as cv
    >>> ts = np.ones(100) / 10.0
    >>> plug = expected_scale(cv.isotropic(100), ts, 0.5 * ts, 10, math.inf, correct=False)
    >>> round(float(plug), 12)  # noiseless, theta_T = 0.5 theta_S: s_inf = 0.5 exactly
    0.5
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    ns, scalar = sample_sizes(n)
    eq = deterministic_equivalent(c, ns)
    s, ds, _ = _expected_scale(c, ts, tt, eq, depth, sigma)
    return output_like(s + ds if correct else s, scalar)


def expected_risk(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    depth: float,
    *,
    noise: float = 0.0,
    correct: bool = True,
) -> np.ndarray | float:
    """Asymptotic excess risk of fine-tuning a balanced depth-``N`` network on ``n`` samples.

    The scale ``s_N`` comes from :func:`expected_scale`; the risk is then the linear one
    (:func:`finetune_theory.linear.expected_risk`) of the rescaled source ``s_N theta_S``,
    ``sum_i w_i <s_N theta_S - theta_T, v_i>^2 + sigma^2 rho / (1 - rho)``. Depth 1 is exactly
    :func:`finetune_theory.linear.expected_risk`.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
    depth : int or math.inf
    noise : float
        Label-noise standard deviation.
    correct : bool
        Add the second-order (convexity) correction for the spread of ``s_N`` over designs
        (default). The risk of the limit is convex in ``s_N``, which depends nonlinearly on the
        random norms, so the plug-in alone is low at small ``n`` (11-12% noiseless at depth inf
        and ``n = 10``, 20-40% with noise; ``docs/deep_linear.md``, section 6). No effect at
        depth 1 or at and above the rank.

    Returns
    -------
    float or ndarray (``inf`` where the noise term diverges)

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance, linear
    >>> c, ts, tt = covariance.isotropic(10), np.full(10, 0.3), np.ones(10)
    >>> bool(expected_risk(c, ts, tt, 4, 1) == linear.expected_risk(c, ts, tt, 4))  # depth 1
    True
    >>> expected_risk(c, ts, tt, [4, 10], 3)  # the data sees every direction at n = d
    array([1.41062171, 0.        ])
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    ns, scalar = sample_sizes(n)
    eq = deterministic_equivalent(c, ns)
    if depth == 1:
        coords = c.coords(ts - tt)  # the arithmetic of linear.expected_risk, to the bit
        risk = np.sum(eq.bias_weights * (coords * coords), axis=-1)
    else:
        s, _, dr = _expected_scale(c, ts, tt, eq, depth, sigma)
        finite = np.isfinite(s)
        diff = np.where(finite, s, 0.0)[:, None] * c.coords(ts)[None, :] - c.coords(tt)[None, :]
        risk = np.where(finite, np.sum(eq.bias_weights * diff * diff, axis=-1), np.inf)
        if correct:
            risk = risk + np.where(finite, dr, 0.0)
    if sigma > 0:
        risk = risk + sigma**2 * eq.noise_factor
    return output_like(risk, scalar)


def simulate_risk(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    depth: float,
    *,
    noise: float = 0.0,
    repeats: int = 100,
    seed: SeedLike = 0,
) -> SimulatedRisk:
    """Monte Carlo of the closed-form risk (:func:`finetune`) over Gaussian designs.

    Mirrors :func:`finetune_theory.linear.simulate_risk`; all repeats at one ``n`` form one
    batch (in memory-bounded chunks). The same seed gives the same numbers; a single ``n``
    gives a float ``mean`` and ``stderr``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the target inputs.
    theta_source : array-like, shape (d,)
        The source (pretrained) end-to-end vector.
    theta_target : array-like, shape (d,)
        The target teacher.
    n : int or array-like of int
        Number of target samples.
    depth : int or math.inf
        Depth ``N`` of the balanced network.
    noise : float, default 0.0
        Label-noise standard deviation.
    repeats : int, default 100
        Independent designs drawn per ``n``.
    seed : int, SeedSequence or Generator, default 0
        Seed of the draws.

    Returns
    -------
    SimulatedRisk

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> c, ts, tt = covariance.isotropic(10), np.full(10, 0.3), np.ones(10)
    >>> mc = simulate_risk(c, ts, tt, 4, 3, repeats=400, seed=0)
    >>> bool(abs(mc.mean - expected_risk(c, ts, tt, 4, 3)) < 4 * mc.stderr + 0.05)
    True
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    repeats = check_positive_int(repeats, "repeats")
    ns, scalar = sample_sizes(n)

    def estimator(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _limit(x, y, np.broadcast_to(ts, (x.shape[0], ts.size)), depth)[0]

    return monte_carlo(c, tt, ns, scalar, sigma, repeats, seed, estimator)


def frozen_risk_floor(
    cov: CovarianceLike, theta_source: ArrayLike, theta_target: ArrayLike
) -> float:
    """``min_a ||a theta_S - theta_T||^2_Sigma``: the best risk with the rank-one ``W_1`` frozen.

    With the pretrained first layer fixed, the network can only express ``a theta_S^T x``; the
    best such predictor scales by ``a* = <theta_S, theta_T>_Sigma / ||theta_S||^2_Sigma``. When
    ``theta_T`` is ``Sigma``-orthogonal to ``theta_S`` the floor is ``||theta_T||^2_Sigma``, the
    risk of predicting zero, whatever the number of samples.

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the target inputs.
    theta_source : array-like, shape (d,)
        The source (pretrained) end-to-end vector, the direction of the frozen ``W_1``.
    theta_target : array-like, shape (d,)
        The target teacher.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> frozen_risk_floor(np.eye(2), np.array([1.0, 0.0]), np.array([2.0, 1.0]))  # a* = 2
    1.0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    qs = float(c.quad(ts))
    cross = float(np.sum(c.eigvals * c.coords(ts) * c.coords(tt)))
    a = cross / qs if qs > 0 else 0.0
    return float(c.quad(a * ts - tt))
