"""Training a deep linear network: the default step, ``train`` and ``pretrain``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import safe_divide
from .._random import SeedLike, as_generator
from .._training import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TOL,
    PretrainResult,
    TrainResult,
    check_train_options,
    renamed_start,
)
from .._validation import (
    as_matrix,
    as_vector,
    check_lr,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_positive_int,
    output_like,
)
from ..covariance import CovarianceLike, as_covariance
from ..exceptions import InputTypeError
from ._closed import (
    pinv,
)
from ._nets import (
    Net,
    as_data,
    as_frozen,
    as_net,
    gauss_newton_bound,
    gradient_descent,
    left_products,
    line_search_descent,
)
from ._weights import (
    Layers,
    _as_net,
    _depth_int,
    _flat,
    _imbalance,
    _second_singular_ratio,
    _unflat,
)

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
    ratio = safe_divide(goal, start, where_zero=1.0)
    curv = curv * np.maximum(ratio, 1.0) ** (2.0 - 2.0 / depth)
    top = np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / x.shape[1]
    curv = np.where(curv > 0, curv, np.where(top > 0, top, 1.0))
    return fraction / curv


def _problem(
    X: Any, y: Any, start: Any
) -> tuple[np.ndarray, np.ndarray, Net, bool, tuple[int, ...]]:
    """Validate ``X (..., n, d)``, ``y (..., n)`` and layers ``(..., h, h')`` of any batch shape.

    Returns the arrays with their batch merged into one axis, as the internal engine takes
    them, whether there is a batch, and the batch shape to restore on output.
    """
    net, wb = _as_net(start)
    x = as_matrix(X, "X", batch=True)
    yy = as_vector(y, "y", batch=True)
    if x.shape[-1] != net.d:
        raise ValueError(f"X has {x.shape[-1]} columns but start[0] has {net.d} (d)")
    if yy.shape[-1] != x.shape[-2]:
        raise ValueError(f"y has {yy.shape[-1]} entries but X has {x.shape[-2]} rows")
    try:
        batch = np.broadcast_shapes(wb, x.shape[:-2], yy.shape[:-1])
    except ValueError:
        raise ValueError(
            f"batch shapes do not match: X {x.shape[:-2]}, y {yy.shape[:-1]}, start {wb}"
        ) from None
    if len(batch) > 1:
        x, yy = _flat(x, batch, 2), _flat(yy, batch, 1)
        if len(wb) != len(batch) or wb != batch:
            layers = [_flat(w.reshape(*wb, *w.shape[1:]), batch, 2) for w in net.layers]
            net = as_net(layers, "start")
    x, yy, net, batched = as_data(x, yy, net)
    return x, yy, net, batched, batch


def _unflat_result(res: TrainResult, batch: tuple[int, ...]) -> TrainResult:
    """A result of the engine (one batch axis) with its batch axes restored."""
    if len(batch) <= 1:
        return res
    return replace(
        res,
        weights=[_unflat(w, batch) for w in res.weights],
        start=[_unflat(w, batch) for w in res.start],
        theta=_unflat(res.theta, batch),
        loss=_unflat(res.loss, batch),
        steps=_unflat(res.steps, batch),
        lr=_unflat(res.lr, batch),
        converged=_unflat(res.converged, batch),
        interpolated=_unflat(res.interpolated, batch),
        movement=_unflat(res.movement, batch),
        loss_history=_unflat(res.loss_history, batch, lead=1),
    )


@renamed_start("weights")
def default_lr(
    X: ArrayLike,
    y: ArrayLike | None = None,
    start: Layers | None = None,
    *,
    fraction: float = DEFAULT_LR_FRACTION,
    frozen: Iterable[int] | Sequence[Iterable[int]] | int = (),
) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction`` over a bound on the loss curvature.

    Takes what :func:`train` takes (``y`` and ``start`` are required here: the step depends on
    the weights and on how far the data pulls them). The curvature of the loss in weight space
    near interpolation is at most
    ``lambda_max(X^T X / n) * sum_{j trainable} ||W_N..W_{j+1}||^2 ||W_{j-1}..W_1||_op^2``
    (the squared Jacobian from the trainable weights to ``theta`` times the data curvature;
    ``N ||theta||^(2 - 2/N) lambda_max`` for balanced rank-one weights). Balanced layers grow like
    ``||theta||^(1/N)``, so the bound is multiplied by ``(||X^+ y|| / ||theta_0||)^(2 - 2/N)``
    when the data asks for a larger end-to-end vector than the start. GD is stable for
    ``fraction < 2``; the default 0.5 leaves room for the neglected residual term.

    Parameters
    ----------
    X : array-like, shape (n, d) or (..., n, d)
        Training inputs; leading axes are a batch of independent problems.
    y : array-like, shape (n,) or (..., n)
        Training labels (required).
    start : list of arrays
        The weights training starts from, as in :func:`train` (required).
    fraction : float, default 0.5
        The step as a fraction of the inverse curvature bound, in ``(0, 2)``.
    frozen : int or collection of int, default ()
        Indices of layers kept fixed (their gradients do not enter the bound); 0 is the input
        layer ``W_1``, ``N - 1`` the output layer.

    Returns
    -------
    float, or ndarray of the batch shape

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import deep_linear as dl
    >>> X, y = np.eye(2), np.array([1.0, 1.0])
    >>> w = dl.balanced_init(np.array([1.0, 1.0]), depth=2, width=3, seed=0)
    >>> lr = dl.default_lr(X, y, w)  # 0.5 / (2 ||theta|| lambda_max(X^T X / n))
    >>> bool(np.isclose(lr, 0.5 / (2 * np.sqrt(2) * 0.5)))
    True
    """
    if y is None or start is None:
        raise InputTypeError("deep_linear.default_lr needs y and start: its step depends on both")
    x, yy, net, batched, batch = _problem(X, y, start)
    fraction = check_positive(fraction, "fraction")
    if fraction >= 2:
        raise ValueError(f"fraction must be < 2 (stability), got {fraction}")
    trainable = as_frozen(frozen, net.depth)
    lr = _default_lr(net.layers, x, yy, trainable, fraction)
    return _unflat(lr, batch) if batched else float(lr[0])


@renamed_start("weights")
def train(
    X: ArrayLike,
    y: ArrayLike,
    start: Layers,
    *,
    lr: ArrayLike | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    tol: float = DEFAULT_TOL,
    strict: bool = True,
    frozen: Iterable[int] | Sequence[Iterable[int]] | int = (),
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||f(X) - y||^2`` for a deep linear network.

    The settings and the result are those of every ``train`` of the package
    (:mod:`finetune_theory._training`); its limit from balanced weights is :func:`finetune`.

    Parameters
    ----------
    X : array, shape (n, d) or (..., n, d)
    y : array, shape (n,) or (..., n)
        Leading axes are a batch of independent problems, broadcast against the weights'.
    start : list of arrays
        The weights training starts from: ``[W_1 (..., h_1, d), ..., W_N (..., 1, h_{N-1})]``,
        all layers with the same leading (batch) axes, or none. Any depth ``N >= 1`` and any
        widths. The arrays are not modified.
    lr : float or array of the batch shape, optional
        Step size. Default :func:`default_lr` per problem (half the inverse of a bound on the
        curvature of the loss), which is stable; smaller steps follow the gradient flow more
        closely (the drift from the closed form of :func:`finetune` is linear in ``lr``).
    max_steps : int
        Step budget.
    tol : float
        A problem stops when its loss is at most ``tol`` times the zero predictor's loss
        ``(1/2n) ||y||^2`` (it interpolates), or when one step changed its loss by at most
        ``max(tol, 8 eps)`` times the loss (a stationary point that does not interpolate, e.g.
        with the first layer frozen; ``interpolated`` is then False).
    strict : bool
        Raise :class:`ConvergenceError` when some problem has not stopped within ``max_steps``
        (default). With False, return the weights reached and mark those problems in
        ``converged`` (useful where the limit is approached sublinearly, e.g. a frozen first
        layer and a product of several trainable layers shrinking towards zero).
    frozen : collection of int, or a list of them
        Indices of layers kept fixed; 0 is the input layer ``W_1``, ``N - 1`` the output layer.
        A list with one collection per repeat freezes each repeat of a batch its own way.

    Returns
    -------
    TrainResult
        Final weights (the list of layers), end-to-end vector, loss, steps, step sizes, and the
        loss at log-spaced steps; fields are scalars for unbatched input and have the batch
        shape otherwise. The same inputs give the same bits.

    Raises
    ------
    DivergenceError
        The loss blew up (the step is too large).
    ConvergenceError
        Some problem had not stopped within ``max_steps`` (with ``strict=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import deep_linear as dl
    >>> X, y = np.array([[1.0, 0.0]]), np.array([2.0])
    >>> out = dl.train(X, y, dl.balanced_init(np.ones(2), depth=2, width=3, seed=0))
    >>> limit = dl.finetune(X, y, np.ones(2), 2)  # gradient flow's limit; GD drifts by O(lr)
    >>> bool(out.interpolated), bool(np.abs(out.theta - limit).max() < 0.01)
    (True, True)
    """
    x, yy, net, _, batch = _problem(X, y, start)
    trainable = as_frozen(frozen, net.depth)
    max_steps, tol = check_train_options(max_steps, tol)
    if lr is None:
        step = _default_lr(net.layers, x, yy, trainable, DEFAULT_LR_FRACTION)
    else:
        step = np.broadcast_to(check_lr(lr, batch).reshape(-1), (net.batch,)).copy()
    result = gradient_descent(net, x, yy, step, trainable, max_steps, tol, bool(strict))
    return _unflat_result(result, batch)


def pretrain(
    theta_source: ArrayLike,
    cov: CovarianceLike,
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
    theta_source : array, shape (d,) or (..., d)
        The source teacher; leading axes pretrain one network per vector (the batch).
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
        Pretrain this many networks of one source ``(d,)`` at once (each its own data and
        initialisation); the result then has the batch shape ``(repeats,)``.
    armijo, move : float
        Line-search constants (see ``_nets.line_search_descent``): the accepted
        decrease fraction, and the largest move per step relative to the weights' norm.
    max_steps, tol
        As for :func:`train` (the defaults suit the line search from a small start).
    seed : int, SeedSequence or Generator

    Returns
    -------
    PretrainResult
        ``weights`` (the layers to fine-tune from), ``theta``, ``source_error``, ``imbalance``
        and ``rank_one`` with the batch shape (floats for one network); ``training`` is the run
        (line-search GD) with its batch axes merged into one.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> from finetune_theory import deep_linear as dl
    >>> pre = dl.pretrain(np.ones(3), covariance.isotropic(3), n_source=6, depth=2, width=3)
    >>> pre.source_error < 1e-4, pre.imbalance < 0.01
    (True, True)
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    batch_shape = ts.shape[:-1]
    ts = ts.reshape(-1, ts.shape[-1]) if ts.ndim > 2 else ts
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
        batch_shape = (b,)
    sources = np.broadcast_to(ts, (b, d))
    norm = np.linalg.norm(sources, axis=1)
    if np.any(norm == 0):
        raise ValueError("theta_source must be nonzero to pretrain towards it")
    rng = as_generator(seed)
    x = c.sample(n_source, seed=rng, batch=b)
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

    def fmt(v: np.ndarray) -> Any:
        return _unflat(v, batch_shape) if batched else v[0]

    return PretrainResult(
        weights=[fmt(v) for v in w],
        theta=fmt(theta),
        source_error=output_like(fmt(np.linalg.norm(theta - sources, axis=1) / norm)),
        training=result,
        imbalance=output_like(fmt(_imbalance(w))),
        rank_one=output_like(fmt(_second_singular_ratio(w))),
    )
