"""Fine-tuning in linear regression.

Gradient descent on ``(1/2n) ||X theta - y||^2`` started from the source weights ``theta_S``
moves only inside the row space of ``X``; with a small enough step it converges to

    theta_hat = theta_S + X^+ (y - X theta_S) = P_X theta_T + P_perp theta_S + X^+ xi,

the interpolant closest to the start when ``n < d``, least squares when ``X`` has full column
rank, and the pseudo-inverse limit in between. Everything here follows from that identity:
the excess risk ``(theta - theta_T)^T Sigma (theta - theta_T)``, its expectation over Gaussian
designs (exact for isotropic covariances, the deterministic equivalent of
:mod:`finetune_theory.asymptotics` otherwise), Monte Carlo estimates, sample complexity and the
covariance-aware similarity measure. Training from scratch is ``theta_S = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._random import SeedLike, as_generator
from ._validation import (
    as_vector,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_positive_int_array,
    regression_problem,
    teacher_vectors,
)
from .asymptotics import deterministic_equivalent, numerical_rank
from .covariance import Covariance, as_covariance
from .exceptions import ConvergenceError, DivergenceError, UnreachableRiskError

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "UnreachableRiskError",
    "GDResult",
    "SimulatedRisk",
    "SampleComplexity",
    "finetune",
    "gradient_descent",
    "excess_risk",
    "expected_risk",
    "simulate_risk",
    "sample_complexity",
    "sample_complexity_reduction",
    "similarity",
    "MEASURES",
]


# --------------------------------------------------------------------------- checks
def _pair(
    cov: Any, theta_source: Any, theta_target: Any
) -> tuple[Covariance, np.ndarray, np.ndarray]:
    ts, tt = teacher_vectors(theta_source, theta_target)
    return as_covariance(cov, "cov", d=ts.size), ts, tt


# ----------------------------------------------------------------------- the limit
def finetune(X: Any, y: Any, theta_source: Any) -> np.ndarray:
    """What gradient descent from ``theta_source`` converges to.

    Parameters
    ----------
    X : array, shape (..., n, d)
        Target inputs; leading axes are independent problems.
    y : array, shape (..., n)
        Target labels.
    theta_source : array, shape (..., d)
        Pretrained weights (zeros for training from scratch).

    Returns
    -------
    ndarray, shape (..., d)
        ``theta_source + X^+ (y - X theta_source)``: the interpolant closest to the source when
        ``n < d``, the least-squares solution when ``X`` has full column rank, and the
        pseudo-inverse limit when ``X`` is rank-deficient.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0]])
    >>> finetune(X, np.array([2.0]), np.array([0.0, 1.0, 1.0]))
    array([2., 1., 1.])
    """
    x, yy, ts = regression_problem(X, y, theta_source)
    residual = yy - np.einsum("...nd,...d->...n", x, ts)
    # singular values below max(n, d) * eps * s_max are rounding noise of a rank-deficient X
    # (numpy's default cutoff 1e-15 * s_max keeps them for large matrices and blows up)
    rcond = max(x.shape[-2:]) * np.finfo(np.float64).eps
    return ts + np.einsum("...dn,...n->...d", np.linalg.pinv(x, rcond=rcond), residual)


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


@dataclass(frozen=True)
class GDResult:
    """Outcome of :func:`gradient_descent`.

    Attributes
    ----------
    theta : ndarray, shape (..., d)
        Final weights.
    steps : ndarray of int, shape (...)
        Steps each problem took to reach the tolerance.
    loss : ndarray, shape (...)
        Final training loss ``(1/2n) ||X theta - y||^2``.
    lr : ndarray, shape (...)
        Step size used for each problem.
    history : list of (step, ndarray)
        Mean training loss over the batch at log-spaced steps.
    """

    theta: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    history: list[tuple[int, float]]


def _loss(x: np.ndarray, yy: np.ndarray, theta: np.ndarray) -> np.ndarray:
    res = np.einsum("...nd,...d->...n", x, theta) - yy
    return 0.5 * np.mean(res * res, axis=-1)


def gradient_descent(
    X: Any,
    y: Any,
    theta_source: Any,
    *,
    lr: float | None = None,
    max_steps: int = 100_000,
    tol: float = 1e-11,
) -> GDResult:
    """Full-batch gradient descent on ``(1/2n) ||X theta - y||^2`` from ``theta_source``.

    Parameters
    ----------
    X, y, theta_source : arrays, shapes (..., n, d), (..., n), (..., d)
        As for :func:`finetune`; leading axes are independent problems trained together.
    lr : float, optional
        Step size. Default: ``1 / L`` per problem with ``L`` the largest eigenvalue of
        ``X^T X / n`` (GD is stable for ``lr < 2 / L``).
    max_steps : int
        Step budget; :class:`ConvergenceError` when a problem has not converged by then.
    tol : float
        Stop a problem when its gradient norm falls below ``tol`` times its initial gradient
        norm (or below ``tol`` in absolute terms when that was already tiny).

    Returns
    -------
    GDResult

    Raises
    ------
    DivergenceError
        The loss grew without bound (step size too large).
    ConvergenceError
        Some problem did not reach ``tol`` within ``max_steps``.
    """
    x, yy, ts = regression_problem(X, y, theta_source)
    max_steps = check_positive_int(max_steps, "max_steps")
    tol = check_positive(tol, "tol")
    n = x.shape[-2]
    batch = x.shape[:-2]
    top = np.asarray(np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / n, dtype=np.float64)
    if lr is None:
        step = np.where(top > 0, 1.0 / np.where(top > 0, top, 1.0), 1.0)
    else:
        step = np.broadcast_to(check_positive(lr, "lr"), batch).astype(np.float64)
    theta = np.array(ts, dtype=np.float64, copy=True)

    def grad(th: np.ndarray) -> np.ndarray:
        res = np.einsum("...nd,...d->...n", x, th) - yy
        return np.einsum("...nd,...n->...d", x, res) / n

    g = grad(theta)
    g0 = np.linalg.norm(g, axis=-1)
    threshold = np.maximum(tol * g0, tol * 1e-3)
    loss0 = _loss(x, yy, theta)
    active = np.linalg.norm(g, axis=-1) > threshold
    steps = np.zeros(batch, dtype=np.int64)
    history: list[tuple[int, float]] = [(0, float(np.mean(loss0)))]
    next_log = 1
    t = 0
    while np.any(active) and t < max_steps:
        t += 1
        # a diverging run may overflow before the check below reports it
        with np.errstate(over="ignore", invalid="ignore"):
            theta = np.where(active[..., None], theta - step[..., None] * g, theta)
            g = grad(theta)
            gnorm = np.linalg.norm(g, axis=-1)
        if not np.all(np.isfinite(gnorm)) or np.any(gnorm > 1e12 * np.maximum(g0, 1e-300)):
            bad = float(np.max(step * top))
            raise DivergenceError(
                f"gradient descent diverged at step {t}: lr * L = {bad:.3g} "
                f"(stable only below 2); use a smaller lr or leave lr=None"
            )
        steps = np.where(active, t, steps)
        active = active & (gnorm > threshold)
        if t >= next_log:
            history.append((t, float(np.mean(_loss(x, yy, theta)))))
            next_log = max(next_log + 1, int(next_log * 1.25))
    if np.any(active):
        left = int(np.count_nonzero(active))
        raise ConvergenceError(
            f"{left} problem(s) did not converge in {max_steps} steps (gradient norm still "
            f"{float(np.max(np.where(active, gnorm, 0))):.3g}); raise max_steps or lr"
        )
    final = _loss(x, yy, theta)
    if history[-1][0] != t:
        history.append((t, float(np.mean(final))))
    return GDResult(theta=theta, steps=steps, loss=final, lr=step, history=history)


# ------------------------------------------------------------------------- risks
def excess_risk(theta: Any, theta_target: Any, cov: Any) -> np.ndarray | float:
    """Excess population risk ``(theta - theta_T)^T Sigma (theta - theta_T)``.

    Parameters
    ----------
    theta : array, shape (..., d)
        Weights (leading axes batched).
    theta_target : array, shape (d,) or (..., d)
    cov : Covariance or (d, d) array

    Returns
    -------
    float or ndarray of shape (...)
    """
    th = as_vector(theta, "theta", batch=True)
    tt = as_vector(theta_target, "theta_target", batch=True)
    if th.shape[-1] != tt.shape[-1]:
        raise ValueError(
            f"theta has dimension {th.shape[-1]} but theta_target has dimension {tt.shape[-1]}"
        )
    try:
        np.broadcast_shapes(th.shape, tt.shape)
    except ValueError:
        raise ValueError(
            f"batch shapes do not match: theta {th.shape}, theta_target {tt.shape}"
        ) from None
    c = as_covariance(cov, "cov", d=th.shape[-1])
    return c.quad(th - tt)


def _as_n(n: Any) -> tuple[np.ndarray, bool]:
    return check_positive_int_array(n, "n")


def expected_risk(
    cov: Any, theta_source: Any, theta_target: Any, n: Any, *, noise: float = 0.0
) -> np.ndarray | float:
    """Expected excess risk of fine-tuning on ``n`` Gaussian samples ``x ~ N(0, cov)``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
        Sample sizes; an array gives a whole learning curve.
    noise : float
        Label-noise standard deviation ``sigma``.

    Returns
    -------
    float or ndarray
        Exact for isotropic ``cov`` (bias ``(1 - n/d) ||Delta||^2`` times the scale, noise
        ``sigma^2 n / (d - n - 1)``); the deterministic equivalent otherwise. For ``n`` at least
        the rank of ``cov`` the start is forgotten and the least-squares noise term
        ``sigma^2 r / (n - r - 1)`` remains. ``inf`` where the expectation diverges
        (``n`` within one of the rank, with noise).
    """
    c, ts, tt = _pair(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    ns, scalar = _as_n(n)
    eq = deterministic_equivalent(c, ns)
    coords = c.coords(ts - tt)
    risk = eq.bias_weights @ (coords * coords)
    if sigma > 0:
        risk = risk + sigma**2 * eq.noise_factor
    return float(risk[0]) if scalar else risk


@dataclass(frozen=True)
class SimulatedRisk:
    """Monte Carlo estimate of the expected risk.

    Attributes
    ----------
    n : ndarray of int
    mean, stderr : ndarray
        Mean excess risk over repeats and its standard error.
    repeats : int
    """

    n: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    repeats: int


def _chunk(repeats: int, n: int, d: int, budget_bytes: float = 2.0e8) -> int:
    per = 8.0 * (3 * n * d + d)
    return max(1, min(repeats, int(budget_bytes // per)))


def simulate_risk(
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    n: Any,
    *,
    noise: float = 0.0,
    repeats: int = 100,
    seed: SeedLike = 0,
) -> SimulatedRisk:
    """Monte Carlo of the fine-tuning risk over Gaussian designs and label noise.

    All repeats at one ``n`` are drawn and solved as one batch (in memory-bounded chunks).

    Parameters
    ----------
    cov, theta_source, theta_target, n, noise
        As for :func:`expected_risk`.
    repeats : int
        Independent designs per ``n``.
    seed : int or SeedSequence
        The same seed gives the same numbers.

    Returns
    -------
    SimulatedRisk
    """
    c, ts, tt = _pair(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    repeats = check_positive_int(repeats, "repeats")
    ns, _ = _as_n(n)
    return _monte_carlo(c, tt, ns, sigma, repeats, seed, lambda x, y: _finetune_fast(x, y, ts))


def _monte_carlo(
    cov: Covariance,
    theta_target: np.ndarray,
    ns: np.ndarray,
    sigma: float,
    repeats: int,
    seed: SeedLike,
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> SimulatedRisk:
    """Monte Carlo driver shared by the ``simulate_risk`` functions of every architecture.

    For each ``n`` draws ``repeats`` Gaussian designs ``x ~ N(0, cov)`` with labels
    ``x theta_T + sigma xi`` (in memory-bounded chunks, one batch per chunk), maps each batch
    to weights with ``estimator(x, y)`` (shapes ``(b, n, d), (b, n) -> (b, d)``) and averages
    their excess risk. Arguments are already validated.
    """
    rng = as_generator(seed)
    means = np.empty(ns.size)
    errs = np.empty(ns.size)
    for j, nj in enumerate(ns):
        risks = np.empty(repeats)
        size = _chunk(repeats, int(nj), cov.d)
        for start in range(0, repeats, size):
            b = min(size, repeats - start)
            x = cov.sample(int(nj), rng, batch=b)
            y = x @ theta_target + sigma * rng.standard_normal((b, int(nj)))
            risks[start : start + b] = cov.quad(estimator(x, y) - theta_target)
        means[j] = risks.mean()
        errs[j] = risks.std(ddof=1) / math.sqrt(repeats) if repeats > 1 else np.inf
    return SimulatedRisk(n=ns, mean=means, stderr=errs, repeats=repeats)


# ----------------------------------------------------------- sample complexity
@dataclass(frozen=True)
class SampleComplexity:
    """Samples needed to reach a risk, fine-tuning against training from scratch.

    Attributes
    ----------
    eps : float
    n_finetune, n_scratch : int
    reduction : float
        ``n_scratch / n_finetune``.
    """

    eps: float
    n_finetune: int
    n_scratch: int
    reduction: float


def sample_complexity(
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    eps: float,
    *,
    noise: float = 0.0,
    n_max: int | None = None,
) -> int:
    """The smallest ``n`` whose expected risk (:func:`expected_risk`) is at most ``eps``.

    Parameters
    ----------
    cov, theta_source, theta_target, noise
        As for :func:`expected_risk`; ``theta_source = 0`` is training from scratch.
    eps : float
        Target excess risk, ``> 0``.
    n_max : int, optional
        Largest sample size allowed. Without it the answer always exists: noiseless, ``n``
        equal to the rank of ``cov`` gives zero risk; with noise, least squares reaches any
        ``eps`` once ``n > r + 1 + sigma^2 r / eps``.

    Returns
    -------
    int

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` (the message gives the best risk on offer).
    """
    c, ts, tt = _pair(cov, theta_source, theta_target)
    eps = check_positive(eps, "eps")
    sigma = check_nonnegative(noise, "noise")
    if n_max is not None:
        n_max = check_positive_int(n_max, "n_max")
    r = numerical_rank(c.eigvals)
    if r == 0:
        return 1
    # below the rank: scan every n (the curve may rise near n = r with noise)
    top = r if n_max is None else min(r, n_max)
    ns = np.arange(1, top + 1)
    risk = np.atleast_1d(expected_risk(c, ts, tt, ns, noise=sigma))
    hits = np.flatnonzero(risk <= eps)
    if hits.size:
        return int(ns[hits[0]])
    # above the rank only noise remains, sigma^2 r / (n - r - 1), decreasing in n
    if sigma > 0:
        # first guess from the formula, then settle the boundary on the very values that
        # expected_risk returns, so that rounding cannot move the answer by one either way
        guess = r + 1 + max(1, math.ceil(sigma**2 * r / eps))
        window = np.arange(max(r + 2, guess - 2), guess + 3)
        tail = np.atleast_1d(expected_risk(c, ts, tt, window, noise=sigma))
        n_ls = int(window[np.flatnonzero(tail <= eps)[0]]) if np.any(tail <= eps) else guess + 3
        while float(expected_risk(c, ts, tt, n_ls, noise=sigma)) > eps:
            n_ls += 1
    else:
        n_ls = r
    if n_max is None or n_ls <= n_max:
        return int(n_ls)
    best = int(ns[np.argmin(risk)])
    raise UnreachableRiskError(
        f"no n <= n_max = {n_max} reaches risk eps = {eps:.3g}: the lowest expected risk there "
        f"is {float(risk.min()):.3g} (at n = {best})"
        + (f"; the label noise alone needs n >= {n_ls}" if sigma > 0 else "")
    )


def sample_complexity_reduction(
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    eps: float,
    *,
    noise: float = 0.0,
    n_max: int | None = None,
) -> SampleComplexity:
    """Samples needed by fine-tuning and by training from scratch, and their ratio."""
    c, ts, tt = _pair(cov, theta_source, theta_target)
    n_ft = sample_complexity(c, ts, tt, eps, noise=noise, n_max=n_max)
    n_sc = sample_complexity(c, np.zeros_like(ts), tt, eps, noise=noise, n_max=n_max)
    return SampleComplexity(eps=float(eps), n_finetune=n_ft, n_scratch=n_sc, reduction=n_sc / n_ft)


# ----------------------------------------------------------------- similarity
#: the measures returned by :func:`similarity`, in display order, with a one-line meaning
MEASURES: dict[str, str] = {
    "covariance_aware": "sum_i w_i(n, Sigma) <Delta, v_i>^2: the expected fine-tuning risk",
    "spectral": "||Delta_>k||^2_Sigma>k + ||Delta_<=k||^2_(Sigma<=k)^-1 (sum_i>k lambda_i / n)^2",
    "euclidean_cov_error": "||Delta||^2 * E||Sigma - Sigma_hat||, the Euclidean bias-bound shape",
    "source_risk": "||Delta||^2_Sigma: the risk of the source model without fine-tuning",
    "euclidean": "||Delta||^2",
}


def similarity(
    cov: Any, theta_source: Any, theta_target: Any, n: int, *, k: int | None = None
) -> dict[str, Any]:
    """The covariance-aware similarity measure and its alternatives, by name.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,) or (..., d)
        One pair, or many pairs along leading axes (then every value is an array).
    n : int
        Number of target samples.
    k : int, optional
        Split index of the spectral bound (the ``k`` leading directions get the inverse
        weighting). Default ``max(1, n // 2)``, clipped to ``d - 1``.

    Returns
    -------
    dict
        Keys of :data:`MEASURES`. ``covariance_aware`` equals the noiseless
        :func:`expected_risk`. ``euclidean_cov_error`` uses the typical operator-norm error of
        a sample covariance, ``lambda_1 max(sqrt(r_0 / n), r_0 / n)`` with effective rank
        ``r_0 = tr(Sigma) / lambda_1`` (constants set to one).
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    tt = as_vector(theta_target, "theta_target", batch=True)
    if ts.shape[-1] != tt.shape[-1]:
        raise ValueError(
            f"theta_source has dimension {ts.shape[-1]} but theta_target has dimension "
            f"{tt.shape[-1]}"
        )
    c = as_covariance(cov, "cov", d=ts.shape[-1])
    n = check_positive_int(n, "n")
    d = c.d
    k = max(1, n // 2) if k is None else check_positive_int(k, "k", minimum=0)
    k = min(k, d - 1)
    lam = c.eigvals
    coords = c.coords(ts - tt)
    sq = coords * coords
    head_lam = lam[:k]
    safe = np.where(head_lam > 0, head_lam, 1.0)
    head = np.sum(
        np.where(head_lam > 0, sq[..., :k] / safe, np.where(sq[..., :k] > 0, np.inf, 0.0)), axis=-1
    )
    r0 = lam.sum() / lam[0] if lam[0] > 0 else 0.0
    cov_err = lam[0] * max(math.sqrt(r0 / n), r0 / n)
    # a zero eigenvalue among the k leading ones means every later one is zero too: the head
    # term's factor (sum_{i>k} lambda_i / n)^2 vanishes and the term is zero (not inf * 0)
    scale = (lam[k:].sum() / n) ** 2
    head_term = head * scale if scale > 0 else np.zeros_like(head)
    weights = deterministic_equivalent(c, n).bias_weights[0]
    out = {
        "covariance_aware": sq @ weights,
        "spectral": sq[..., k:] @ lam[k:] + head_term,
        "euclidean_cov_error": sq.sum(axis=-1) * cov_err,
        "source_risk": sq @ lam,
        "euclidean": sq.sum(axis=-1),
    }
    if sq.ndim == 1:
        return {key: float(value) for key, value in out.items()}
    return out
