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

:func:`finetune` is the limit; :func:`train` runs the gradient descent itself, with the
settings (``lr``, ``max_steps``, ``tol``) and the :class:`TrainResult` shared by the three
architectures (see :mod:`finetune_theory._training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._random import SeedLike
from ._risk import SimulatedRisk, monte_carlo, risk_setting
from ._training import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TOL,
    Monitor,
    TrainResult,
    check_train_options,
    relative_movement,
    renamed_start,
)
from ._validation import (
    as_matrix,
    as_vector,
    check_lr,
    check_nonnegative,
    check_positive,
    check_positive_int,
    output_like,
    regression_problem,
    sample_sizes,
)
from .asymptotics import deterministic_equivalent, numerical_rank, ridge_equivalent
from .covariance import Covariance, as_covariance
from .exceptions import ConvergenceError, DivergenceError, UnreachableRiskError

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "UnreachableRiskError",
    "TrainResult",
    "SimulatedRisk",
    "SampleComplexity",
    "finetune",
    "default_lr",
    "train",
    "excess_risk",
    "expected_risk",
    "optimal_ridge",
    "expected_risk_early_stopping",
    "optimal_stopping_time",
    "simulate_risk",
    "sample_complexity",
    "sample_complexity_reduction",
    "similarity",
    "MEASURES",
]


# ----------------------------------------------------------------------- the limit
def finetune(X: Any, y: Any, theta_source: Any, *, ridge: float = 0.0) -> np.ndarray:
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
    # singular values below max(n, d) * eps * s_max are rounding noise of a rank-deficient X
    # (numpy's default cutoff 1e-15 * s_max keeps them for large matrices and blows up)
    rcond = max(x.shape[-2:]) * np.finfo(np.float64).eps
    return ts + np.einsum("...dn,...n->...d", np.linalg.pinv(x, rcond=rcond), residual)


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


def default_lr(
    X: Any, y: Any = None, start: Any = None, *, fraction: float = 1.0
) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction / L`` with ``L = lambda_max(X^T X / n)``.

    Takes what :func:`train` takes; the step of the quadratic loss depends on ``X`` alone, so
    ``y`` and ``start`` may be left out. GD is stable for ``fraction < 2``; the default
    ``1 / L`` never raises the loss. Batched over leading axes of ``X``; a zero design gets
    ``fraction``.

    Examples
    --------
    >>> import numpy as np
    >>> default_lr(np.array([[2.0, 0.0], [0.0, 1.0]]))  # L = 4 / 2
    0.5
    """
    x = as_matrix(X, "X", batch=True)
    fraction = check_positive(fraction, "fraction")
    if fraction >= 2:
        raise ValueError(f"fraction must be < 2 (stability), got {fraction}")
    return output_like(fraction * _default_lr(x))


def _default_lr(x: np.ndarray) -> np.ndarray:
    top = np.asarray(np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / x.shape[-2], dtype=np.float64)
    return np.where(top > 0, 1.0 / np.where(top > 0, top, 1.0), 1.0)


@renamed_start("theta_source")
def train(
    X: Any,
    y: Any,
    start: Any,
    *,
    lr: Any = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    tol: float = DEFAULT_TOL,
    strict: bool = True,
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||X theta - y||^2`` from ``start``.

    Its limit is :func:`finetune`; the three ``train`` functions of the package share their
    settings and result (:mod:`finetune_theory._training`).

    Parameters
    ----------
    X, y, start : arrays, shapes (..., n, d), (..., n), (..., d)
        As ``X, y, theta_source`` for :func:`finetune` (``start`` is the source vector);
        leading axes are independent problems trained together.
    lr : float or array, optional
        Step size (one per problem, broadcast over the batch). Default :func:`default_lr`
        per problem, ``1 / L`` with ``L`` the largest eigenvalue of ``X^T X / n``.
    max_steps : int
        Step budget.
    tol : float
        A problem stops when its loss is at most ``tol`` times the zero predictor's loss
        ``(1/2n) ||y||^2`` (it interpolates), or when one step changed its loss by at most
        ``max(tol, 8 eps)`` times the loss (least squares when ``n > d``).
    strict : bool
        Raise :class:`ConvergenceError` for problems still running after ``max_steps``
        (default); with False return them with ``converged`` False.

    Returns
    -------
    TrainResult
        ``weights`` and ``theta`` are the final vector ``(..., d)``, ``start`` is
        ``start``; the other fields have the batch shape.

    Raises
    ------
    DivergenceError
        The loss blew up (the step is too large: GD is stable only for ``lr < 2 / L``).
    ConvergenceError
        Some problem did not stop within ``max_steps`` (with ``strict=True``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> out = train(X, np.array([2.0, 1.0]), np.zeros(3), tol=1e-20)
    >>> out.theta.round(8), bool(out.interpolated)
    (array([2., 1., 0.]), True)
    """
    x, yy, ts = regression_problem(X, y, start, name="start")
    max_steps, tol = check_train_options(max_steps, tol)
    n = x.shape[-2]
    batch = x.shape[:-2]
    step = _default_lr(x) if lr is None else check_lr(lr, batch)
    theta = np.array(ts, dtype=np.float64, copy=True)
    monitor = Monitor(yy, batch, tol, step, max_steps)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            res = np.einsum("...nd,...d->...n", x, theta) - yy
            if not monitor.update(t, 0.5 * np.mean(res * res, axis=-1)) or t == max_steps:
                break
            g = np.einsum("...nd,...n->...d", x, res) / n
            theta -= (step * monitor.active)[..., None] * g
    monitor.finish(bool(strict))
    diff = theta - ts
    return TrainResult(
        weights=theta,
        theta=theta,
        start=np.array(ts),
        loss=monitor.loss,
        steps=monitor.steps,
        lr=step,
        converged=monitor.converged,
        interpolated=monitor.interpolated,
        movement=relative_movement(np.sum(diff * diff, -1), np.sum(ts * ts, -1)),
        history_steps=monitor.history_steps,
        loss_history=monitor.loss_history,
    )


# ------------------------------------------------------------------------- risks
def excess_risk(cov: Any, theta: Any, theta_target: Any) -> np.ndarray | float:
    """Excess population risk ``(theta - theta_T)^T Sigma (theta - theta_T)``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta : array, shape (..., d)
        Weights (leading axes batched).
    theta_target : array, shape (d,) or (..., d)

    Returns
    -------
    float or ndarray of shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> excess_risk(np.diag([4.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    4.0
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


def expected_risk(
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    n: Any,
    *,
    noise: float = 0.0,
    ridge: float = 0.0,
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
    ridge : float
        Ridge towards the source (see :func:`finetune`). ``0``: fine-tuning to zero training
        loss. Positive: the deterministic equivalent of ridge towards the source
        (:func:`finetune_theory.asymptotics.ridge_equivalent`), bias plus noise.

    Returns
    -------
    float or ndarray
        Exact for isotropic ``cov`` (bias ``(1 - n/d) ||Delta||^2`` times the scale, noise
        ``sigma^2 n / (d - n - 1)``); the deterministic equivalent otherwise. For ``n`` at least
        the rank of ``cov`` the start is forgotten and the least-squares noise term
        ``sigma^2 r / (n - r - 1)`` remains. ``inf`` where the expectation diverges
        (``n`` within one of the rank, with noise).

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(expected_risk(np.eye(100), ts, tt, 40), 6)  # (1 - n/d) ||Delta||^2
    0.6
    >>> round(expected_risk(np.eye(100), ts, tt, 40, ridge=1e9), 6)  # the source's own risk
    1.0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    lam = check_nonnegative(ridge, "ridge")
    ns, scalar = sample_sizes(n)
    if lam > 0:
        req = ridge_equivalent(c, ns, lam)
        coords = c.coords(ts - tt)
        risk = req.bias_weights @ (coords * coords) + sigma**2 * req.noise_factor
        return output_like(risk, scalar)
    eq = deterministic_equivalent(c, ns)
    coords = c.coords(ts - tt)
    risk = eq.bias_weights @ (coords * coords)
    if sigma > 0:
        risk = risk + sigma**2 * eq.noise_factor
    return output_like(risk, scalar)


_RIDGE_GRID = np.logspace(-8, 4, 121)


def _ridge_curve(
    c: Covariance, coords2: np.ndarray, n: int, sigma2: float, ridges: np.ndarray
) -> np.ndarray:
    """Ridge deterministic-equivalent risk at one ``n`` over an array of ridges (scaled)."""
    req = ridge_equivalent(c, np.full(ridges.shape, n), ridges)
    return req.bias_weights @ coords2 + sigma2 * req.noise_factor


def optimal_ridge(
    cov: Any, theta_source: Any, theta_target: Any, n: Any, *, noise: float
) -> np.ndarray | float:
    """The ridge towards the source that minimises :func:`expected_risk`.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
    noise : float
        Label-noise standard deviation ``sigma``.

    Returns
    -------
    float or ndarray
        The minimiser, found on a log grid of ``tr(cov)/d`` times ``1e-8 .. 1e4`` and refined
        by golden-section search in ``log ridge``. ``0.0`` without noise and ``n`` below the rank
        (interpolation is then best), ``inf`` when
        the source itself beats every ridge (the minimum at the largest one).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> tt = rng.standard_normal(200) / np.sqrt(200)
    >>> lam = optimal_ridge(np.eye(200), np.zeros(200), tt, 400, noise=0.5)
    >>> formula = 0.5**2 * 200 / (400 * tt @ tt)  # first order: sigma^2 d / (n ||Delta||^2)
    >>> bool(abs(lam / formula - 1) < 0.01)  # the finite-size weights move it by 0.3 % here
    True
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    ns, scalar = sample_sizes(n)
    coords = c.coords(ts - tt)
    coords2 = coords * coords
    scale = max(float(np.mean(c.eigvals)), 1e-300)
    grid = scale * _RIDGE_GRID
    out = np.empty(ns.shape)
    for j, m in enumerate(ns):
        risk = _ridge_curve(c, coords2, int(m), sigma**2, grid)
        i = int(np.argmin(risk))
        if sigma == 0 and m < numerical_rank(c.eigvals):
            out[j] = 0.0  # noiseless below the rank the bias grows with the ridge
            continue
        if i == grid.size - 1:
            out[j] = math.inf
            continue
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, grid.size - 1)])
        g = (math.sqrt(5.0) - 1.0) / 2.0
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa, fb = _ridge_curve(c, coords2, int(m), sigma**2, np.exp([a, b]))
        for _ in range(60):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - g * (hi - lo)
                fa = float(_ridge_curve(c, coords2, int(m), sigma**2, np.exp([a]))[0])
            else:
                lo, a, fa = a, b, fb
                b = lo + g * (hi - lo)
                fb = float(_ridge_curve(c, coords2, int(m), sigma**2, np.exp([b]))[0])
        out[j] = math.exp(0.5 * (lo + hi))
    return output_like(out, scalar)


def expected_risk_early_stopping(
    cov: Any, theta_source: Any, theta_target: Any, n: Any, t: float, *, noise: float = 0.0
) -> np.ndarray | float:
    """Approximate expected excess risk of gradient flow from the source stopped at time ``t``.

    Gradient flow on ``(1/2n) ||X theta - y||^2`` from ``theta_S`` gives
    ``theta(t) - theta_T = exp(-t S) Delta + (I - exp(-t S)) S^+ X^T xi / n`` with
    ``S = X^T X / n``, exactly. Its expected risk needs moments of
    ``exp(-t Sigma_hat)`` that have no closed form; this function uses the documented
    approximation *early stopping at time t ~ ridge at 1/t* (the ridge deterministic
    equivalent of :func:`expected_risk` with ``ridge = 1/t``). Ali, Kolter and Tibshirani (2019)
    bound the ratio of the two risks. Measured against Monte Carlo of the exact flow (100
    designs, d = 200, n in {50, 100, 300}, isotropic and ``lambda_i = 1/i`` spectra, ``t``
    from 0.3 to 30 over the mean eigenvalue; figures in ``docs/advisor.md``): within 21% for
    the isotropic spectrum, up to 54% for the power law at small ``t`` (the ridge filter
    ``lambda/(lambda + 1/t)`` decays slower than ``1 - exp(-t lambda)``), and within 13% at
    the best ``t`` of :func:`optimal_stopping_time`. ``t = inf`` is fine-tuning to zero
    training loss.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,)
    n : int or array of int
    t : float
        Stopping time (positive; ``inf`` allowed).
    noise : float
        Label-noise standard deviation.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(expected_risk_early_stopping(np.eye(100), ts, tt, 40, 1e-9), 6)  # not moved
    1.0
    """
    if isinstance(t, int | float | np.floating) and t == math.inf:
        ridge = 0.0
    else:
        ridge = 1.0 / check_positive(t, "t")
    return expected_risk(cov, theta_source, theta_target, n, noise=noise, ridge=ridge)


def optimal_stopping_time(
    cov: Any, theta_source: Any, theta_target: Any, n: Any, *, noise: float
) -> np.ndarray | float:
    """The stopping time minimising :func:`expected_risk_early_stopping` (``1 / optimal_ridge``).

    ``inf`` means running to zero training loss is best; ``0`` means not moving from the
    source is best.

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> optimal_stopping_time(np.eye(100), ts, tt, 40, noise=0.0)  # noiseless: interpolate
    inf
    """
    lam = optimal_ridge(cov, theta_source, theta_target, n, noise=noise)
    with np.errstate(divide="ignore"):
        t = np.where(np.asarray(lam) > 0, 1.0 / np.maximum(lam, 1e-300), np.inf)
        t = np.where(np.isinf(np.asarray(lam)), 0.0, t)
    return output_like(t)


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
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    repeats = check_positive_int(repeats, "repeats")
    ns, scalar = sample_sizes(n)
    return monte_carlo(
        c, tt, ns, scalar, sigma, repeats, seed, lambda x, y: _finetune_fast(x, y, ts)
    )


# ----------------------------------------------------------- sample complexity
@dataclass(frozen=True)
class SampleComplexity:
    """Samples needed to reach a risk, fine-tuning against training from scratch.

    Attributes
    ----------
    eps : float
    n_finetune, n_scratch : int
    reduction : float
        ``n_scratch / n_finetune``; ``inf`` when the source suffices (``n_finetune == 0``) and
        scratch needs data, ``1`` when neither needs any. Keep the ``source_suffices`` cases
        apart from true reductions; a value below 1 means fine-tuning needs *more* samples.
    """

    eps: float
    n_finetune: int
    n_scratch: int
    reduction: float

    @property
    def source_suffices(self) -> bool:
        """The source alone meets ``eps`` (``n_finetune == 0``): no target data is needed."""
        return self.n_finetune == 0

    @property
    def helps(self) -> bool:
        """Fine-tuning needs fewer samples than training from scratch (``reduction > 1``)."""
        return self.reduction > 1


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
        ``0`` when the source alone already meets ``eps`` (its risk ``||theta_S -
        theta_T||^2_Sigma`` is at most ``eps``): no target sample is needed, and a ratio of
        sample sizes against it is not a reduction (see :func:`sample_complexity_reduction`).

    Raises
    ------
    UnreachableRiskError
        When no ``n <= n_max`` reaches ``eps`` (the message gives the best risk on offer).

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> c = covariance.isotropic(10)
    >>> sample_complexity(c, np.zeros(10), np.ones(10), eps=5.0)  # (1 - n/10) * 10 <= 5
    5
    >>> sample_complexity(c, np.full(10, 0.9), np.ones(10), eps=0.5)  # the source suffices
    0
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    eps = check_positive(eps, "eps")
    sigma = check_nonnegative(noise, "noise")
    if n_max is not None:
        n_max = check_positive_int(n_max, "n_max")
    if float(c.quad(ts - tt)) <= eps:
        return 0  # the source suffices: with no target data the model is the source
    r = numerical_rank(c.eigvals)
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
    """Samples needed by fine-tuning and by training from scratch, and their ratio.

    See :func:`sample_complexity` for the arguments; scratch is ``theta_S = 0``. When the source
    alone meets ``eps`` the fine-tuning count is ``0`` and ``reduction`` is ``inf``
    (``SampleComplexity.source_suffices``), not a ratio of sample sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> c = covariance.isotropic(10)
    >>> out = sample_complexity_reduction(c, np.zeros(10), np.ones(10), eps=5.0)
    >>> out.n_finetune, out.n_scratch, out.reduction, out.helps
    (5, 5, 1.0, False)
    >>> sample_complexity_reduction(c, np.full(10, 0.9), np.ones(10), eps=0.5).source_suffices
    True
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    n_ft = sample_complexity(c, ts, tt, eps, noise=noise, n_max=n_max)
    n_sc = sample_complexity(c, np.zeros_like(ts), tt, eps, noise=noise, n_max=n_max)
    if n_ft > 0:
        reduction = n_sc / n_ft
    else:
        reduction = math.inf if n_sc > 0 else 1.0
    return SampleComplexity(eps=float(eps), n_finetune=n_ft, n_scratch=n_sc, reduction=reduction)


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
    cov: Any, theta_source: Any, theta_target: Any, n: Any, *, k: int | None = None
) -> dict[str, Any]:
    """The covariance-aware similarity measure and its alternatives, by name.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,) or (..., d)
        One pair, or many pairs along leading axes (then every value is an array).
    n : int or array of int
        Number of target samples; an array adds a last axis, one entry per ``n``.
    k : int, optional
        Split index of the spectral bound (the ``k`` leading directions get the inverse
        weighting). Default ``max(1, n // 2)`` for each ``n``, clipped to ``d - 1``.

    Returns
    -------
    dict
        Keys of :data:`MEASURES`; values of shape ``(...)`` for a single ``n`` (floats for a
        single pair), ``(..., len(n))`` for an array. ``covariance_aware`` equals the
        noiseless :func:`expected_risk`. ``euclidean_cov_error`` uses the typical
        operator-norm error of a sample covariance, ``lambda_1 max(sqrt(r_0 / n), r_0 / n)``
        with effective rank ``r_0 = tr(Sigma) / lambda_1`` (constants set to one).

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(similarity(np.eye(100), ts, tt, 40)["covariance_aware"], 6)
    0.6
    >>> similarity(np.eye(100), ts, tt, [20, 40])["covariance_aware"].round(6)
    array([0.8, 0.6])
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    tt = as_vector(theta_target, "theta_target", batch=True)
    if ts.shape[-1] != tt.shape[-1]:
        raise ValueError(
            f"theta_source has dimension {ts.shape[-1]} but theta_target has dimension "
            f"{tt.shape[-1]}"
        )
    c = as_covariance(cov, "cov", d=ts.shape[-1])
    ns, scalar = sample_sizes(n)
    if k is not None:
        k = check_positive_int(k, "k", minimum=0)
    d = c.d
    lam = c.eigvals
    coords = c.coords(ts - tt)
    sq = coords * coords
    r0 = lam.sum() / lam[0] if lam[0] > 0 else 0.0
    weights = deterministic_equivalent(c, ns).bias_weights  # (len(n), d)
    spectral = []
    for nj in ns:
        kj = min(max(1, int(nj) // 2) if k is None else k, d - 1)
        head_lam = lam[:kj]
        safe = np.where(head_lam > 0, head_lam, 1.0)
        head = np.sum(
            np.where(head_lam > 0, sq[..., :kj] / safe, np.where(sq[..., :kj] > 0, np.inf, 0.0)),
            axis=-1,
        )
        # a zero eigenvalue among the k leading ones means every later one is zero too: the
        # head term's factor (sum_{i>k} lambda_i / n)^2 vanishes and the term is zero (not
        # inf * 0)
        scale = (lam[kj:].sum() / nj) ** 2
        head_term = head * scale if scale > 0 else np.zeros_like(head)
        spectral.append(sq[..., kj:] @ lam[kj:] + head_term)
    ratio = r0 / ns.astype(np.float64)
    cov_err = lam[0] * np.maximum(np.sqrt(ratio), ratio)
    euclid = sq.sum(axis=-1)[..., None]
    shape = (*sq.shape[:-1], ns.size)
    out = {
        "covariance_aware": sq @ weights.T,
        "spectral": np.stack(spectral, axis=-1),
        "euclidean_cov_error": euclid * cov_err,
        "source_risk": np.broadcast_to((sq @ lam)[..., None], shape),
        "euclidean": np.broadcast_to(euclid, shape),
    }
    return {key: output_like(np.array(value), scalar) for key, value in out.items()}
