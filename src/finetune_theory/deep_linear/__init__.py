"""Fine-tuning deep linear networks: what gradient descent converges to from pretrained weights.

The network ``f(x) = W_N ... W_1 x`` (scalar output, hidden widths ``h_j``) realises the
end-to-end vector ``theta^T = W_N ... W_1``. Started from *balanced* weights
(``W_{j+1}^T W_{j+1} = W_j W_j^T``) whose product is the source ``theta_S``, gradient descent on
``(1/2n) ||X theta - y||^2`` with small steps converges to

    theta_hat_N = X^+ y + s_N P_perp theta_S,

where ``P_perp`` projects onto the directions the data does not see and ``s_N > 0`` is the root
of ``s^(N/(N-1)) ||theta_S|| = sqrt(||X^+ y||^2 + s^2 ||P_perp theta_S||^2)`` (``s_1 = 1``). Depth
lets the network rescale the source inside the unseen subspace; as ``N -> inf`` the scale tends
to ``||X^+ y|| / ||P_X theta_S||``. See ``docs/deep_linear.md`` for the derivation.

Contents: weights (:func:`balanced_init`, :func:`pretrain`, :func:`end_to_end`,
:func:`imbalance`), training (:func:`train`, :func:`default_lr`), the closed-form limit
(:func:`finetune`, :func:`finetune_scale`, :func:`solve_scale`), risks (:func:`expected_risk`,
:func:`simulate_risk`, :func:`frozen_risk_floor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._random import SeedLike, as_generator
from .._risk import SimulatedRisk, monte_carlo, risk_setting
from .._training import TrainResult, check_train_options
from .._validation import (
    as_vector,
    check_depth,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_positive_int,
    output_like,
    regression_problem,
    sample_sizes,
)
from ..asymptotics import DeterministicEquivalent, deterministic_equivalent
from ..covariance import as_covariance
from ..exceptions import ConvergenceError, DivergenceError
from ._closed import (
    beta_rule,
    norm_covariances,
    pinv,
    projections,
    scale_derivatives,
    scale_root,
    solve_scale,
)
from ._nets import (
    as_data,
    as_frozen,
    as_net,
    gauss_newton_bound,
    gradient_descent,
    left_products,
    line_search_descent,
)

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "TrainResult",
    "PretrainResult",
    "SimulatedRisk",
    "DEFAULT_LR_FRACTION",
    "balanced_init",
    "pretrain",
    "end_to_end",
    "imbalance",
    "default_lr",
    "train",
    "solve_scale",
    "finetune_scale",
    "finetune",
    "expected_scale",
    "expected_risk",
    "simulate_risk",
    "frozen_risk_floor",
]

#: default step: this fraction of the inverse curvature bound (GD is stable below 2)
DEFAULT_LR_FRACTION = 0.5


# =========================================================================== weights
def _depth_int(depth: Any) -> int:
    value = check_depth(depth)
    if math.isinf(value):
        raise ValueError("depth must be a finite integer >= 1 for a network, got inf")
    return int(value)


def balanced_init(
    theta_source: Any, depth: int, width: int, *, seed: SeedLike = 0
) -> list[np.ndarray]:
    """Balanced rank-one weights whose product is ``theta_source``.

    With ``c = ||theta_S||^(1/N)`` and random unit vectors ``u_1 .. u_{N-1}`` in ``R^width``:
    ``W_1 = c u_1 theta_S^T / ||theta_S||``, ``W_j = c u_j u_{j-1}^T``, ``W_N = c u_{N-1}^T``. Then
    ``W_{j+1}^T W_{j+1} = W_j W_j^T = c^2 u_j u_j^T`` and ``W_N ... W_1 = theta_S^T``.

    Parameters
    ----------
    theta_source : array, shape (d,) or (B, d)
        End-to-end vector; a leading axis gives one network per row.
    depth : int
        Number of layers ``N >= 1`` (depth 1 is ``[theta_source[None, :]]``).
    width : int
        Hidden width ``h >= 1`` (ignored at depth 1, still checked).
    seed : int or SeedSequence
        Draws the hidden directions ``u_j``.

    Returns
    -------
    list of ndarray
        ``[W_1 (h, d), W_2 (h, h), ..., W_N (1, h)]``, with a leading batch axis when
        ``theta_source`` has one.
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    if ts.ndim > 2:
        raise ValueError(f"theta_source must have shape (d,) or (B, d), got {ts.shape}")
    depth = _depth_int(depth)
    width = check_positive_int(width, "width")
    batched = ts.ndim == 2
    t = ts if batched else ts[None]
    if depth == 1:
        layers = [t[:, None, :].copy()]
    else:
        norm = np.linalg.norm(t, axis=1)
        c = norm ** (1.0 / depth)
        direction = t / np.where(norm > 0, norm, 1.0)[:, None]
        u = as_generator(seed).standard_normal((t.shape[0], depth - 1, width))
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        cc = c[:, None, None]
        layers = [cc * u[:, 0, :, None] * direction[:, None, :]]
        for j in range(1, depth - 1):
            layers.append(cc * u[:, j, :, None] * u[:, j - 1, None, :])
        layers.append(cc * u[:, depth - 2, None, :])
    return layers if batched else [w[0] for w in layers]


def end_to_end(weights: Any) -> np.ndarray:
    """The end-to-end vector ``(W_N ... W_1)^T``: shape ``(d,)``, or ``(B, d)`` when batched."""
    net = as_net(weights)
    theta = left_products(net.layers)[0]
    return theta if net.batched else theta[0]


def imbalance(weights: Any) -> np.ndarray | float:
    """How far the weights are from balanced, relative to their size.

    ``max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F / max(||W_j W_j^T||_F, ||W_{j+1}^T W_{j+1}||_F)``
    over consecutive layers (0 for depth 1 and for balanced weights).

    Returns
    -------
    float, or ndarray of shape (B,) for batched weights
    """
    net = as_net(weights)
    worst = _imbalance(net.layers)
    return worst if net.batched else float(worst[0])


def _imbalance(layers: list[np.ndarray]) -> np.ndarray:
    """:func:`imbalance` of validated batched layers, shape ``(B,)``."""
    worst = np.zeros(layers[0].shape[0])
    for lower, upper in zip(layers[:-1], layers[1:], strict=True):
        gram_low = np.matmul(lower, np.swapaxes(lower, 1, 2))
        gram_up = np.matmul(np.swapaxes(upper, 1, 2), upper)
        size = np.maximum(
            np.linalg.norm(gram_low, axis=(1, 2)), np.linalg.norm(gram_up, axis=(1, 2))
        )
        gap = np.linalg.norm(gram_up - gram_low, axis=(1, 2))
        worst = np.maximum(worst, np.where(size > 0, gap / np.where(size > 0, size, 1.0), 0.0))
    return worst


# ========================================================================== training
def _pinv_solution(x: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """``X^+ y`` batched: the minimum-norm least-squares solution."""
    return np.matmul(pinv(x), yy[:, :, None])[:, :, 0]


def _default_lr(
    layers: list[np.ndarray], x: np.ndarray, yy: np.ndarray, trainable: np.ndarray, fraction: float
) -> np.ndarray:
    depth = len(layers)
    curv = gauss_newton_bound(layers, x, trainable)
    theta = left_products(layers)[0]
    start = np.linalg.norm(theta, axis=1)
    goal = np.linalg.norm(_pinv_solution(x, yy), axis=1)
    ratio = np.where(start > 0, goal / np.where(start > 0, start, 1.0), 1.0)
    curv = curv * np.maximum(ratio, 1.0) ** (2.0 - 2.0 / depth)
    top = np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / x.shape[1]
    curv = np.where(curv > 0, curv, np.where(top > 0, top, 1.0))
    return fraction / curv


def default_lr(
    X: Any, y: Any, weights: Any, *, frozen: Any = (), fraction: float = DEFAULT_LR_FRACTION
) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction`` over a bound on the loss curvature.

    The curvature of the loss in weight space near interpolation is at most
    ``lambda_max(X^T X / n) * sum_{j trainable} ||W_N..W_{j+1}||^2 ||W_{j-1}..W_1||_op^2``
    (the squared Jacobian from the trainable weights to ``theta`` times the data curvature;
    ``N ||theta||^(2 - 2/N) lambda_max`` for balanced rank-one weights). Balanced layers grow like
    ``||theta||^(1/N)``, so the bound is multiplied by ``(||X^+ y|| / ||theta_0||)^(2 - 2/N)``
    when the data asks for a larger end-to-end vector than the start. GD is stable for
    ``fraction < 2``; the default 0.5 leaves room for the neglected residual term.

    Returns
    -------
    float, or ndarray of shape (B,) for a batch
    """
    net = as_net(weights)
    x, yy, net, batched = as_data(X, y, net)
    fraction = check_positive(fraction, "fraction")
    trainable = as_frozen(frozen, net.depth)
    lr = _default_lr(net.layers, x, yy, trainable, fraction)
    return lr if batched else float(lr[0])  # one value per repeat, of a batch of one


def train(
    X: Any,
    y: Any,
    weights: Any,
    *,
    lr: Any = None,
    max_steps: int = 200_000,
    tol: float = 1e-12,
    frozen: Any = (),
    strict: bool = True,
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||f(X) - y||^2`` for a deep linear network.

    The settings and the result are those of every ``train`` of the package
    (:mod:`finetune_theory._training`); its limit from balanced weights is :func:`finetune`.

    Parameters
    ----------
    X : array, shape (n, d) or (B, n, d)
    y : array, shape (n,) or (B, n)
        Unbatched weights or data are shared by every repeat.
    weights : list of arrays
        The start: ``[W_1 (h_1, d), ..., W_N (1, h_{N-1})]``, or batched
        ``(B, h_1, d), ..., (B, 1, h)``: ``B`` independent repeats trained together, each with
        its own weights and data. Any depth ``N >= 1`` and any widths. The arrays are not
        modified.
    lr : float or array of shape (B,), optional
        Step size. Default :func:`default_lr` per repeat (half the inverse of a bound on the
        curvature of the loss), which is stable; smaller steps follow the gradient flow more
        closely (the drift from the closed form of :func:`finetune` is linear in ``lr``).
    max_steps : int
        Step budget.
    tol : float
        A repeat stops when its loss is at most ``tol`` times the zero predictor's loss
        ``(1/2n) ||y||^2`` (it interpolates), or when one step changed its loss by at most
        ``max(tol, 8 eps)`` times the loss (a stationary point that does not interpolate, e.g.
        with the first layer frozen; ``interpolated`` is then False).
    frozen : collection of int
        Indices of layers kept fixed; 0 is the input layer ``W_1``, ``N - 1`` the output layer.
    strict : bool
        Raise :class:`ConvergenceError` when some repeat has not stopped within ``max_steps``
        (default). With False, return the weights reached and mark those repeats in
        ``converged`` (useful where the limit is approached sublinearly, e.g. a frozen first
        layer and a product of several trainable layers shrinking towards zero).

    Returns
    -------
    TrainResult
        Final weights (the list of layers), end-to-end vector, loss, steps, step sizes, and the
        loss at log-spaced steps; fields are scalars for unbatched input. The same inputs give
        the same bits.

    Raises
    ------
    DivergenceError
        The loss blew up (the step is too large).
    ConvergenceError
        Some repeat had not stopped within ``max_steps`` (with ``strict=True``).
    """
    net = as_net(weights)
    x, yy, net, _ = as_data(X, y, net)
    trainable = as_frozen(frozen, net.depth)
    max_steps, tol = check_train_options(max_steps, tol)
    if lr is None:
        step = _default_lr(net.layers, x, yy, trainable, DEFAULT_LR_FRACTION)
    else:
        step = as_vector(np.atleast_1d(lr), "lr")
        if step.size not in (1, net.batch):
            raise ValueError(f"lr must be a scalar or have one value per repeat ({net.batch})")
        if np.any(step <= 0):
            raise ValueError(f"lr must be > 0, got {float(step.min())}")
        step = np.broadcast_to(step, (net.batch,)).copy()
    return gradient_descent(net, x, yy, step, trainable, max_steps, tol, bool(strict))


@dataclass(frozen=True)
class PretrainResult:
    """Outcome of :func:`pretrain`.

    Attributes
    ----------
    weights : list of ndarray
        Pretrained layers (batched when ``repeats`` was given).
    theta : ndarray
        Their end-to-end vector.
    imbalance : ndarray or float
        :func:`imbalance` of the pretrained weights.
    rank_one : ndarray or float
        Largest ratio, over layers, of the second to the first singular value: how far the
        pretrained layers are from rank one.
    source_error : ndarray or float
        ``||theta - theta_source|| / ||theta_source||``.
    training : TrainResult
        The pretraining run (line-search GD).
    """

    weights: list[np.ndarray]
    theta: np.ndarray
    imbalance: np.ndarray | float
    rank_one: np.ndarray | float
    source_error: np.ndarray | float
    training: TrainResult


def _second_singular_ratio(layers: list[np.ndarray]) -> np.ndarray:
    worst = np.zeros(layers[0].shape[0])
    for w in layers:
        if min(w.shape[1:]) < 2:
            continue
        sv = np.linalg.svd(w, compute_uv=False)
        worst = np.maximum(worst, sv[:, 1] / np.where(sv[:, 0] > 0, sv[:, 0], 1.0))
    return worst


def pretrain(
    theta_source: Any,
    cov: Any,
    *,
    n_source: int,
    depth: int,
    width: int,
    noise: float = 0.0,
    init_scale: float = 0.05,
    armijo: float = 0.98,
    move: float = 0.01,
    repeats: int | None = None,
    max_steps: int = 100_000,
    tol: float = 1e-14,
    seed: SeedLike = 0,
) -> PretrainResult:
    """Pretrain a deep linear network on source data by GD from a small random initialisation.

    Draws ``n_source`` inputs ``x ~ N(0, cov)`` with labels ``theta_source^T x`` (plus noise),
    initialises each layer with i.i.d. Gaussian entries scaled so that its Frobenius norm is
    about ``init_scale * ||theta_source||^(1/N)`` (the size of a balanced layer), and trains all
    layers by gradient descent with a backtracking step (the loss is almost flat near the
    origin, and a fixed step small enough for the end would take very long to leave it).

    Gradient flow conserves ``W_{j+1}^T W_{j+1} - W_j W_j^T``, so a small start gives nearly
    balanced, nearly rank-one weights: the reported :attr:`PretrainResult.imbalance` is of order
    ``init_scale^2``.

    Parameters
    ----------
    theta_source : array, shape (d,) or (B, d)
        The source teacher; a leading axis pretrains one network per row.
    cov : Covariance or (d, d) array
        Covariance of the source inputs.
    n_source : int
        Source samples (``>= d`` with no noise pins the end-to-end vector to ``theta_source``).
    depth, width : int
    noise : float
        Label-noise standard deviation on the source data.
    init_scale : float
        Size of the random initial layers relative to a balanced layer.
    repeats : int, optional
        Pretrain this many networks of one source at once (each its own data and
        initialisation); the result is then batched.
    armijo, move : float
        Line-search constants (see ``_nets.line_search_descent``): the accepted
        decrease fraction, and the largest move per step relative to the weights' norm.
    max_steps, tol
        As for :func:`train`.
    seed : int or SeedSequence

    Returns
    -------
    PretrainResult
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    if ts.ndim > 2:
        raise ValueError(f"theta_source must have shape (d,) or (B, d), got {ts.shape}")
    d = ts.shape[-1]
    c = as_covariance(cov, "cov", d=d)
    n_source = check_positive_int(n_source, "n_source")
    depth = _depth_int(depth)
    width = check_positive_int(width, "width")
    sigma = check_nonnegative(noise, "noise")
    init_scale = check_positive(init_scale, "init_scale")
    move = check_positive(move, "move")
    armijo = check_open_unit(armijo, "armijo")
    max_steps, tol = check_train_options(max_steps, tol)
    batched = repeats is not None or ts.ndim == 2
    b = ts.shape[0] if ts.ndim == 2 else 1
    if repeats is not None:
        repeats = check_positive_int(repeats, "repeats")
        if ts.ndim == 2 and repeats != b:
            raise ValueError(f"repeats = {repeats} but theta_source holds {b} sources")
        b = repeats
    sources = np.broadcast_to(ts, (b, d))
    norm = np.linalg.norm(sources, axis=1)
    if np.any(norm == 0):
        raise ValueError("theta_source must be nonzero to pretrain towards it")
    rng = as_generator(seed)
    x = c.sample(n_source, rng, batch=b)
    yy = np.matmul(x, sources[:, :, None])[:, :, 0] + sigma * rng.standard_normal((b, n_source))
    widths = [d] + [width] * (depth - 1) + [1]
    size = init_scale * norm ** (1.0 / depth)
    layers = [
        rng.standard_normal((b, widths[j + 1], widths[j]))
        * (size / math.sqrt(widths[j + 1] * widths[j]))[:, None, None]
        for j in range(depth)
    ]
    net = as_net(layers)
    top = np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / n_source
    if np.any(top <= 0):
        raise ValueError(
            "cov has no variance: every source input is zero, so nothing pulls the network "
            "towards theta_source"
        )
    lr0 = 1.0 / (top * norm ** (2 - 2 / depth))
    result = line_search_descent(net, x, yy, lr0, max_steps, tol, armijo=armijo, move=move)
    w = [np.asarray(v) for v in result.weights]
    theta = left_products(w)[0]
    out = w if batched else [v[0] for v in w]

    def fmt(v: np.ndarray) -> Any:
        return v if batched else float(v[0])

    return PretrainResult(
        weights=out,
        theta=theta if batched else theta[0],
        imbalance=fmt(_imbalance(w)),
        rank_one=fmt(_second_singular_ratio(w)),
        source_error=fmt(np.linalg.norm(theta - sources, axis=1) / norm),
        training=result,
    )


# ======================================================================= closed form
def _closed_form(X: Any, y: Any, theta_source: Any, depth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate once, then :func:`_limit`."""
    depth = check_depth(depth)
    x, yy, ts = regression_problem(X, y, theta_source)
    return _limit(x, yy, ts, depth, np.asarray(X, dtype=np.float64))


def _limit(
    x: np.ndarray, yy: np.ndarray, ts: np.ndarray, depth: float, design: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The closed form and ``s_N`` on validated, broadcast arrays (``design``: ``X`` before
    broadcasting, so that a shared design gets one pseudo-inverse)."""
    if depth == 1:  # the arithmetic of linear.finetune, so that depth 1 is it to the bit
        residual = yy - np.einsum("...nd,...d->...n", x, ts)
        theta = ts + np.einsum("...dn,...n->...d", pinv(x), residual)
        return theta, np.ones(theta.shape[:-1])
    sol, perp, seen = projections(x, yy, ts, x if design is None else design)
    s = scale_root(
        np.sum(sol * sol, -1),
        np.sum(perp * perp, -1),
        np.sum(ts * ts, -1),
        depth,
        seen_sq=np.sum(seen * seen, -1),
    )
    return sol + s[..., None] * perp, s


def finetune_scale(X: Any, y: Any, theta_source: Any, depth: Any) -> np.ndarray | float:
    """The scale ``s_N`` of the source inside the unseen subspace (see :func:`finetune`)."""
    _, s = _closed_form(X, y, theta_source, depth)
    return output_like(s)


def finetune(
    X: Any, y: Any, theta_source: Any, depth: Any, *, return_scale: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray | float]:
    """The end-to-end vector that fine-tuning a balanced depth-``N`` network converges to.

    Parameters
    ----------
    X : array, shape (..., n, d)
    y : array, shape (..., n)
    theta_source : array, shape (..., d)
        End-to-end vector of the pretrained (balanced) network; must be nonzero for ``N >= 2``.
    depth : int or math.inf
    return_scale : bool
        Also return ``s_N``.

    Returns
    -------
    ndarray, shape (..., d)
        ``X^+ y + s_N P_perp theta_S`` (depth 1: :func:`finetune_theory.linear.finetune`;
        ``depth = inf``: ``s = ||X^+ y|| / ||P_X theta_S||``), and ``s_N`` when asked.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0]])
    >>> finetune(X, np.array([2.0]), np.array([1.0, 1.0]), math.inf)
    array([2., 2.])
    """
    theta, s = _closed_form(X, y, theta_source, depth)
    if return_scale:
        return theta, output_like(s)
    return theta


# ============================================================================ risks
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
    second-order expansion in ``(a2, b2)``.
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
        )
        s0 = scale_root(a2[j], b2[j], c2, depth, seen_sq=seen[j])
        ds[j] = w @ e_s - s0
        dr[j] = w @ e_r - (a_bar[j] * s0**2 - 2 * b_bar[j] * s0)
    return ds, dr


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
        ds[idx], dr[idx] = _fluctuation_terms(
            target_sq[idx], perp_sq[idx], seen_sq[idx], a_bar, b_bar, c2, depth, cov
        )
    return s, ds, dr


def expected_scale(
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    n: Any,
    depth: Any,
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

    Examples
    --------
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
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    n: Any,
    depth: Any,
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
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    ns, scalar = sample_sizes(n)
    eq = deterministic_equivalent(c, ns)
    if depth == 1:
        coords = c.coords(ts - tt)
        risk = eq.bias_weights @ (coords * coords)
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
    cov: Any,
    theta_source: Any,
    theta_target: Any,
    n: Any,
    depth: Any,
    *,
    noise: float = 0.0,
    repeats: int = 100,
    seed: SeedLike = 0,
) -> SimulatedRisk:
    """Monte Carlo of the closed-form risk (:func:`finetune`) over Gaussian designs.

    Mirrors :func:`finetune_theory.linear.simulate_risk`; all repeats at one ``n`` form one
    batch (in memory-bounded chunks). The same seed gives the same numbers; a single ``n``
    gives a float ``mean`` and ``stderr``.
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    sigma = check_nonnegative(noise, "noise")
    depth = check_depth(depth)
    repeats = check_positive_int(repeats, "repeats")
    ns, scalar = sample_sizes(n)

    def estimator(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _limit(x, y, np.broadcast_to(ts, (x.shape[0], ts.size)), depth)[0]

    return monte_carlo(c, tt, ns, scalar, sigma, repeats, seed, estimator)


def frozen_risk_floor(cov: Any, theta_source: Any, theta_target: Any) -> float:
    """``min_a ||a theta_S - theta_T||^2_Sigma``: the best risk with the rank-one ``W_1`` frozen.

    With the pretrained first layer fixed, the network can only express ``a theta_S^T x``; the
    best such predictor scales by ``a* = <theta_S, theta_T>_Sigma / ||theta_S||^2_Sigma``. When
    ``theta_T`` is ``Sigma``-orthogonal to ``theta_S`` the floor is ``||theta_T||^2_Sigma``, the
    risk of predicting zero, whatever the number of samples.
    """
    c, ts, tt = risk_setting(cov, theta_source, theta_target)
    qs = float(c.quad(ts))
    cross = float(np.sum(c.eigvals * c.coords(ts) * c.coords(tt)))
    a = cross / qs if qs > 0 else 0.0
    return float(c.quad(a * ts - tt))
