"""Training a deep linear network: the default step, ``train`` and ``pretrain``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._random import SeedLike, as_generator
from .._training import TrainResult, check_train_options
from .._validation import (
    as_vector,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_positive_int,
)
from ..covariance import as_covariance
from ._closed import (
    pinv,
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
from ._weights import _depth_int, _imbalance, _second_singular_ratio

#: default step: this fraction of the inverse curvature bound (GD is stable below 2)
DEFAULT_LR_FRACTION = 0.5


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
