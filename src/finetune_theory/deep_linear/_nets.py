"""Private engine of :mod:`finetune_theory.deep_linear`: weights, products, gradients, GD loops.

A deep linear network with scalar output is a list of layer matrices
``[W_1 (h_1 x d), W_2 (h_2 x h_1), ..., W_N (1 x h_{N-1})]``; internally every array carries a
leading batch axis of independent repeats: ``(B, h_j, h_{j-1})``. The end-to-end vector is
``theta^T = W_N ... W_1``.

Hand-written gradients of ``L = (1/2n) ||X theta - y||^2``. With ``g = X^T (X theta - y) / n``
(the gradient with respect to ``theta``), the left products ``a_j = W_N ... W_{j+1}`` (a row
vector of size ``h_j``; ``a_N = 1``) and the right products applied to ``g``,
``b_j = W_{j-1} ... W_1 g`` (``b_1 = g``),

    dL / dW_j = a_j^T b_j^T,

an outer product, so a step costs a few matrix-vector products per layer and no matrix-matrix
product (:func:`gradient_descent` also keeps ``W_1`` in the row space of ``X``, see there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._training import ROUNDING, Monitor, TrainResult, relative_movement
from .._validation import as_array, as_matrix, as_vector
from ..exceptions import ConvergenceError

__all__ = [
    "Net",
    "as_net",
    "as_frozen",
    "as_data",
    "left_products",
    "loss_and_gradients",
    "gradient_descent",
    "line_search_descent",
    "gauss_newton_bound",
]


@dataclass
class Net:
    """Validated weights, always batched: ``layers[j]`` has shape ``(B, h_j, h_{j-1})``."""

    layers: list[np.ndarray]
    batched: bool

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def batch(self) -> int:
        return int(self.layers[0].shape[0])

    @property
    def d(self) -> int:
        return int(self.layers[0].shape[-1])

    def out(self, layers: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Layers in the caller's batching (batch axis dropped when the input had none)."""
        src = self.layers if layers is None else layers
        return [w.copy() if self.batched else w[0].copy() for w in src]


def as_net(weights: Any, name: str = "weights") -> Net:
    """Validate a list of layer matrices (unbatched 2-D or batched 3-D, all alike)."""
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence) or not weights:
        raise ValueError(
            f"{name} must be a non-empty list of layer matrices [W_1, ..., W_N] (depth >= 1), "
            f"got {type(weights).__name__}"
        )
    layers = [as_array(w, f"{name}[{j}]", min_ndim=2, max_ndim=3) for j, w in enumerate(weights)]
    ndims = {w.ndim for w in layers}
    if len(ndims) != 1:
        raise ValueError(f"{name} mixes batched (3-D) and unbatched (2-D) layers")
    batched = layers[0].ndim == 3
    if not batched:
        layers = [w[None] for w in layers]
    sizes = {w.shape[0] for w in layers}
    if len(sizes) != 1:
        raise ValueError(f"{name} layers have different batch sizes {sorted(sizes)}")
    for j in range(1, len(layers)):
        if layers[j].shape[-1] != layers[j - 1].shape[-2]:
            raise ValueError(
                f"{name}[{j}] has {layers[j].shape[-1]} columns but {name}[{j - 1}] has "
                f"{layers[j - 1].shape[-2]} rows: the layers do not chain"
            )
    if layers[-1].shape[-2] != 1:
        raise ValueError(
            f"{name}[{len(layers) - 1}] (the output layer) must have 1 row, "
            f"got shape {layers[-1].shape[-2:]}"
        )
    return Net([np.array(w, dtype=np.float64, copy=True) for w in layers], batched)


def as_frozen(frozen: Any, depth: int) -> np.ndarray:
    """A boolean mask of trainable layers from the indices in ``frozen`` (0 = ``W_1``).

    ``frozen`` is a collection of layer indices shared by every repeat, or a list with one such
    collection per repeat (a batch trained under several freezing patterns at once); the mask
    has shape ``(depth,)`` or ``(B, depth)``.
    """
    if (
        isinstance(frozen, list | tuple)
        and frozen
        and all(isinstance(f, list | tuple | range | np.ndarray) for f in frozen)
    ):
        return np.stack([_frozen_mask(f, depth) for f in frozen])
    return _frozen_mask(frozen, depth)


def _frozen_mask(frozen: Any, depth: int) -> np.ndarray:
    if isinstance(frozen, int | np.integer) and not isinstance(frozen, bool):
        frozen = (frozen,)
    if not isinstance(frozen, Iterable) or isinstance(frozen, str):
        raise ValueError(f"frozen must be a collection of layer indices, got {frozen!r}")
    trainable = np.ones(depth, dtype=bool)
    for k in frozen:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ValueError(f"frozen must hold integer layer indices, got {k!r}")
        if not 0 <= int(k) < depth:
            raise ValueError(
                f"frozen index {int(k)} is out of range for a depth-{depth} network "
                f"(valid: 0 .. {depth - 1}, 0 is the input layer W_1)"
            )
        trainable[int(k)] = False
    if not trainable.any():
        raise ValueError(f"frozen lists every layer of the depth-{depth} network: none to train")
    return trainable


def as_data(X: Any, y: Any, net: Net) -> tuple[np.ndarray, np.ndarray, Net, bool]:
    """Validate ``X``, ``y`` against the weights and broadcast all three to one batch size."""
    x = as_matrix(X, "X", batch=True)
    yy = as_vector(y, "y", batch=True)
    if x.ndim > 3:
        raise ValueError(f"X must have shape (n, d) or (batch, n, d), got {x.shape}")
    if yy.ndim > 2:
        raise ValueError(f"y must have shape (n,) or (batch, n), got {yy.shape}")
    if x.shape[-1] != net.d:
        raise ValueError(f"X has {x.shape[-1]} columns but weights[0] has {net.d} (d)")
    if yy.shape[-1] != x.shape[-2]:
        raise ValueError(f"y has {yy.shape[-1]} entries but X has {x.shape[-2]} rows")
    sizes = {
        "weights": net.batch if net.batched else None,
        "X": x.shape[0] if x.ndim == 3 else None,
        "y": yy.shape[0] if yy.ndim == 2 else None,
    }
    given = {k: v for k, v in sizes.items() if v is not None}
    if len(set(given.values())) > 1:
        raise ValueError(f"batch sizes do not match: {given}")
    batched = bool(given)
    b = next(iter(given.values())) if given else 1
    x = np.broadcast_to(x if x.ndim == 3 else x[None], (b, *x.shape[-2:]))
    yy = np.broadcast_to(yy if yy.ndim == 2 else yy[None], (b, yy.shape[-1]))
    if net.batch != b:
        net = Net([np.repeat(w, b, axis=0) for w in net.layers], batched)
    else:
        net = Net(net.layers, batched)
    return x, yy, net, batched


# ------------------------------------------------------------------ kernels
def left_products(layers: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``a_j = W_N ... W_{j+1}`` for ``j = 0 .. N`` as ``(B, h_j)``; ``a_0`` is ``theta``."""
    depth = len(layers)
    a: list[np.ndarray] = [np.empty(0)] * (depth + 1)
    a[depth] = np.ones((layers[0].shape[0], 1))
    for j in range(depth - 1, -1, -1):
        a[j] = np.matmul(a[j + 1][:, None, :], layers[j])[:, 0, :]
    return a


def _right_products(layers: Sequence[np.ndarray], g: np.ndarray) -> list[np.ndarray]:
    """``b_j = W_{j-1} ... W_1 g`` for ``j = 1 .. N`` (stored at index ``j - 1``)."""
    b = [g]
    for w in layers[:-1]:
        b.append(np.matmul(w, b[-1][:, :, None])[:, :, 0])
    return b


def _residual(x: np.ndarray, yy: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.matmul(x, theta[:, :, None])[:, :, 0] - yy


def _loss_of(x: np.ndarray, yy: np.ndarray, layers: Sequence[np.ndarray]) -> np.ndarray:
    res = _residual(x, yy, left_products(layers)[0])
    return 0.5 * np.mean(res * res, axis=1)


def loss_and_gradients(
    layers: Sequence[np.ndarray], x: np.ndarray, yy: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Loss ``(1/2n) ||X theta - y||^2`` and the hand-written gradients ``a_j^T b_j^T``.

    All arrays batched: layers ``(B, h_j, h_{j-1})``, ``x`` ``(B, n, d)``, ``yy`` ``(B, n)``.
    Both GD loops use these kernels (:func:`gradient_descent` inlines them to form the update
    without storing the gradient matrices).
    """
    a = left_products(layers)
    res = _residual(x, yy, a[0])
    g = np.matmul(res[:, None, :], x)[:, 0, :] / x.shape[1]
    bvec = _right_products(layers, g)
    grads = [a[j + 1][:, :, None] * bvec[j][:, None, :] for j in range(len(layers))]
    return 0.5 * np.mean(res * res, axis=1), grads


def _layer_mask(trainable: np.ndarray, batch: int) -> np.ndarray:
    """The trainable mask ``(B, depth)`` of every repeat (a shared ``(depth,)`` mask repeated)."""
    mask = np.asarray(trainable, dtype=bool)
    if mask.ndim == 1:
        return np.broadcast_to(mask, (batch, mask.size))
    if mask.shape[0] != batch:
        raise ValueError(
            f"frozen gives {mask.shape[0]} per-repeat patterns for a batch of {batch} repeats"
        )
    return mask


def gauss_newton_bound(
    layers: Sequence[np.ndarray], x: np.ndarray, trainable: np.ndarray
) -> np.ndarray:
    """An upper bound on the Gauss-Newton curvature of the loss in weight space, per repeat.

    ``lambda_max(X^T X / n) * sum_{j trainable} ||a_j||^2 ||W_{j-1} ... W_1||_op^2``: the
    squared norm of the Jacobian from the trainable weights to ``theta`` times the data
    curvature. For balanced rank-one weights the sum is ``N ||theta||^(2 - 2/N)``.
    """
    n = x.shape[1]
    top = np.linalg.norm(x, ord=2, axis=(-2, -1)) ** 2 / n
    a = left_products(layers)
    total = np.zeros(x.shape[0])
    right = None  # W_{j-1} ... W_1 as (B, h_{j-1}, d); None stands for the identity
    mask = _layer_mask(trainable, x.shape[0])
    for j, w in enumerate(layers):
        if mask[:, j].any():
            op = 1.0 if right is None else np.linalg.norm(right, ord=2, axis=(-2, -1))
            total = total + np.where(mask[:, j], np.sum(a[j + 1] ** 2, axis=1) * op**2, 0.0)
        right = w if right is None else np.matmul(w, right)
    return top * total


# --------------------------------------------------------------------- results
def _log_history(
    t: int,
    loss: np.ndarray,
    active: np.ndarray,
    next_log: int,
    hist_t: list[int],
    hist_l: list[np.ndarray],
) -> int:
    """Record the loss at log-spaced steps (and at the last one); return the next step to log."""
    if t >= next_log or not active.any():
        hist_t.append(t)
        hist_l.append(loss.copy())
        next_log = max(next_log + 1, int(next_log * 1.25))
    return next_log


def _result(
    net: Net,
    layers: list[np.ndarray],
    loss: np.ndarray,
    steps: np.ndarray,
    lr: np.ndarray,
    interp: np.ndarray,
    converged: np.ndarray,
    hist_t: list[int],
    hist_l: list[np.ndarray],
) -> TrainResult:
    theta = left_products(layers)[0]

    def fmt(v: np.ndarray) -> Any:
        return v if net.batched else v[0]

    pairs = zip(layers, net.layers, strict=True)
    diff_sq = sum(np.sum((w - w0) ** 2, axis=(1, 2)) for w, w0 in pairs)
    start_sq = sum(np.sum(w0 * w0, axis=(1, 2)) for w0 in net.layers)
    hl = np.array(hist_l)
    return TrainResult(
        weights=net.out(layers),
        theta=fmt(theta),
        start=net.out(),
        loss=fmt(loss),
        steps=fmt(steps),
        lr=fmt(lr),
        converged=fmt(converged),
        interpolated=fmt(interp),
        movement=fmt(relative_movement(diff_sq, start_sq)),
        history_steps=np.array(hist_t, dtype=np.int64),
        loss_history=hl if net.batched else hl[:, 0],
    )


def _hidden_run(trainable: np.ndarray, shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """The longest run ``lo .. hi - 1`` of trainable hidden layers of one shape (empty: lo = hi).

    Hidden layers ``1 .. N - 2`` of a run are held in one stacked array so that their update is
    one array operation; a run needs at least two layers to pay off.
    """
    depth = len(shapes)
    best = (1, 1)
    j = 1
    while j < depth - 1:
        if not trainable[j]:
            j += 1
            continue
        k = j
        while k + 1 < depth - 1 and trainable[k + 1] and shapes[k + 1] == shapes[j]:
            k += 1
        if k + 1 - j > best[1] - best[0]:
            best = (j, k + 1)
        j = k + 1
    return best if best[1] - best[0] >= 2 else (1, 1)


def gradient_descent(
    net: Net,
    x: np.ndarray,
    yy: np.ndarray,
    lr: np.ndarray,
    trainable: np.ndarray,
    max_steps: int,
    tol: float,
    strict: bool = True,
) -> TrainResult:
    """Full-batch GD with a fixed step per repeat; see :func:`finetune_theory.deep_linear.train`.

    Stops by the rule shared by every ``train`` (:class:`finetune_theory._training.Monitor`):
    a repeat stops when its loss is at most ``tol`` times the zero predictor's loss
    (interpolation) or when one step changed its loss by at most ``max(tol, 8 eps)`` times the
    loss (a stationary point that does not interpolate). Stopped repeats take steps of size
    zero, so each repeat's result does not depend on the others in the batch.

    Three exact rearrangements make a step cheap (the arithmetic is that of GD, rounded
    differently):

    * every gradient of the input layer is ``a_1^T r^T X / n`` (``r`` the residual), so
      ``W_1 = W_1(0) + C X`` with ``C`` of shape ``(h_1, n)``; with ``M = X W_1(0)^T`` and
      ``K = X X^T`` computed once, the residual is ``r = M a_1 + K C^T a_1 - y`` and
      ``W_1 g = (M^T r + C K r) / n``: a step never touches a vector of length ``d``;
    * the vectors ``a_j`` (rows, ``(B, 1, h_j)``) and ``b_j`` (columns, ``(B, h_j, 1)``) live
      in two preallocated buffers that the batched products write into, so a step allocates
      almost nothing and needs no reshaping;
    * a run of trainable hidden layers of one shape is held in one stacked array (the list
      holds views into it) and updated by one outer product over the run, whose two factors
      are slices of those buffers.
    """
    layers = [w.copy() for w in net.layers]  # net keeps the start
    n = x.shape[1]
    b = net.batch
    mask = _layer_mask(trainable, b)
    monitor = Monitor(yy, (b,), tol, lr, max_steps)
    first = layers[0]
    m_t = np.matmul(first, np.swapaxes(x, 1, 2))  # (M)^T = W_1(0) X^T, (B, h_1, n)
    k_mat = np.matmul(x, np.swapaxes(x, 1, 2))  # K = X X^T, (B, n, n), symmetric
    coef = np.zeros((b, first.shape[1], n))  # W_1 = W_1(0) + coef @ X
    shared = (np.asarray(mask.any(axis=0)), [w.shape[1:] for w in layers])
    loss = np.zeros(b)
    t = 0
    rows = np.arange(b)
    while True:
        # the repeats still running, alone: a stopped repeat's weights no longer change (its
        # steps have size zero), so it leaves the batch and its last loss stands for it
        part = [w[rows] for w in layers[1:]]
        t, part, coef_rows, loss, finished = _descend(
            part,
            coef[rows],
            (m_t[rows], k_mat[rows], yy[rows], lr[rows], mask[rows]),
            shared,
            monitor,
            rows,
            loss,
            t,
            max_steps,
            rows.size < b,
        )
        for w, w_rows in zip(layers[1:], part, strict=True):
            w[rows] = w_rows
        coef[rows] = coef_rows
        if finished:
            break
        rows = np.flatnonzero(monitor.active)
    layers[0] = first + np.matmul(coef, x)
    monitor.finish(strict)
    return _result(
        net,
        layers,
        loss,
        monitor.steps,
        lr,
        monitor.interpolated,
        monitor.converged,
        monitor.hist_t,
        monitor.hist_l,
    )


def _descend(
    hidden: list[np.ndarray],
    coef: np.ndarray,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    shared: tuple[np.ndarray, list[tuple[int, ...]]],
    monitor: Monitor,
    rows: np.ndarray,
    loss: np.ndarray,
    t0: int,
    max_steps: int,
    resume: bool,
) -> tuple[int, list[np.ndarray], np.ndarray, np.ndarray, bool]:
    """Steps of :func:`gradient_descent` from step ``t0`` for the repeats ``rows`` of the batch.

    ``hidden`` are the layers above the first (of these repeats), ``coef`` the first layer's
    coefficients, ``data`` their ``M^T``, ``K``, labels, steps and layer masks; ``loss`` is the
    whole batch's last loss (a new array each step: the stopping rule keeps the previous one).
    Returns the step to resume at, the layers, coefficients and loss reached, and whether
    training is over; it returns early (not over) once half
    of ``rows`` have stopped, so that the caller can drop them from the batch. With
    ``resume`` the stopping rule has seen the loss at ``t0`` already (an early return there).
    """
    m_t, k_mat, yy, lr, mask = data
    trainable, shapes = shared  # layers some repeat of the whole batch trains, their shapes
    layers: list[np.ndarray] = [m_t[:, :, :0]] + list(hidden)  # slot 0 unused (via coef)
    depth = len(layers)
    n = m_t.shape[2]
    b = len(rows)
    # a layer trained by some repeats only: its update is multiplied by 0 or 1 per repeat
    partly = {j: mask[:, j, None, None].astype(np.float64) for j in range(depth)}
    partly = {j: m for j, m in partly.items() if trainable[j] and not mask[:, j].all()}
    y_row = yy[:, None, :]
    widths = [shapes[j][0] for j in range(depth)]  # h_j of a_j and b_j (h_N = 1)
    wide = max(widths)
    a_buf = np.zeros((b, depth + 1, 1, wide))  # a_j = a_buf[:, j, :, :h_j]
    b_buf = np.zeros((b, depth, wide, 1))  # W_j ... W_1 g = b_buf[:, j, :h_j] (j >= 1)
    a = [a_buf[:, j, :, : widths[j - 1]] if j else a_buf[:, 0] for j in range(depth + 1)]
    a[depth][...] = 1.0
    bv = [b_buf[:, j, : widths[j - 1], :] if j else b_buf[:, 0] for j in range(depth)]
    lo, hi = _hidden_run(trainable, shapes)
    if hi > lo:
        stack = np.stack(layers[lo:hi], axis=1)  # (B, K, h, h)
        for k in range(lo, hi):
            layers[k] = stack[:, k - lo]
        outer = np.empty_like(stack)
        run_mask = None
        if any(j in partly for j in range(lo, hi)):
            run_mask = mask[:, lo:hi, None, None].astype(np.float64)
        left_run = a_buf[:, lo + 1 : hi + 1].swapaxes(2, 3)  # a_{j+1}^T, (B, K, h, 1)
        right_run = b_buf[:, lo:hi].swapaxes(2, 3)  # b_{j+1}^T, (B, K, 1, h)
    single = [j for j in range(1, depth) if trainable[j] and not lo <= j < hi]
    ca = np.empty((b, 1, n))
    coef_step = np.empty_like(coef)
    sq = np.empty((b, 1, 1))
    res = np.empty((b, 1, n))
    kr = np.empty((b, 1, n))
    rn_col = np.empty((b, n, 1))
    inv_n = 1.0 / n
    stopped = monitor.stopped
    # the step, folded into the gradient: b_j and the updates come out scaled by lr / n
    step_col = (lr * inv_n * monitor.active[rows])[:, None, None]
    finished = True
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(t0, max_steps + 1):
            for j in range(depth - 1, 0, -1):
                np.matmul(a[j + 1], layers[j], out=a[j])
            np.matmul(a[1], m_t, out=res)
            if trainable[0]:
                np.matmul(a[1], coef, out=ca)
                res += np.matmul(ca, k_mat, out=kr)
            res -= y_row
            loss = loss.copy()
            loss[rows] = np.matmul(res, res.swapaxes(1, 2), out=sq)[:, 0, 0] * (0.5 * inv_n)
            if not (resume and t == t0) and (not monitor.update(t, loss) or t == max_steps):
                break
            if monitor.stopped != stopped:  # stopped repeats take steps of size zero
                stopped = monitor.stopped
                active = monitor.active[rows]
                if 2 * np.count_nonzero(active) <= b:
                    finished = False  # the caller drops the stopped repeats
                    break
                step_col = (lr * inv_n * active)[:, None, None]
            np.multiply(res.swapaxes(1, 2), step_col, out=rn_col)  # lr r / n, a column
            if depth > 1:
                np.matmul(m_t, rn_col, out=bv[1])
                if trainable[0]:
                    bv[1] += np.matmul(coef, np.matmul(k_mat, rn_col))
                for j in range(2, depth):
                    np.matmul(layers[j - 1], bv[j - 1], out=bv[j])
            if hi > lo:
                np.multiply(left_run, right_run, out=outer)
                if run_mask is not None:
                    outer *= run_mask
                stack -= outer
            for j in single:
                update = a[j + 1].swapaxes(1, 2) * bv[j].swapaxes(1, 2)
                layers[j] -= update if j not in partly else update * partly[j]
            if trainable[0]:
                np.multiply(a[1].swapaxes(1, 2), rn_col.swapaxes(1, 2), out=coef_step)
                if 0 in partly:
                    coef_step *= partly[0]
                coef -= coef_step
    return t, layers[1:], coef, loss, finished


def line_search_descent(
    net: Net,
    x: np.ndarray,
    yy: np.ndarray,
    lr0: np.ndarray,
    max_steps: int,
    tol: float,
    *,
    armijo: float = 0.9,
    move: float = 0.02,
    grow: float = 1.5,
    shrink: float = 0.5,
) -> TrainResult:
    """Full-batch GD whose step adapts by backtracking, for pretraining from a small start.

    Near the origin the loss of a deep network is almost flat: a fixed step small enough for
    the end of training would take very long to leave that plateau. Here each step is

    * capped so that it moves the weights by at most ``move`` times their norm (a trust
      region: large moves would break the balance that gradient flow conserves);
    * accepted when it lowers the loss by at least ``armijo`` times its first-order prediction
      ``lr ||grad||^2``, otherwise halved (``shrink``) with the weights left in place; after an
      accepted step the next trial grows by ``grow``.

    Every accepted move is a plain gradient step. On a quadratic the Armijo condition holds
    exactly when ``lr`` times the curvature along the gradient is at most ``2 (1 - armijo)``.
    The stationary-point test of :func:`gradient_descent` applies to a repeat only when its step
    is limited by the curvature (it has been cut back before and is not capped by the trust
    region now); on the plateau the gradient is tiny but the weights still grow by ``move``
    per step.
    """
    layers = net.layers
    scale = 0.5 * np.mean(yy * yy, axis=1)
    threshold = tol * np.where(scale > 0, scale, 1.0)
    b = net.batch
    lr = lr0.astype(np.float64, copy=True)
    active = np.ones(b, dtype=bool)
    steps = np.zeros(b, dtype=np.int64)
    interp = np.zeros(b, dtype=bool)
    saturated = np.zeros(b, dtype=bool)
    hist_t: list[int] = []
    hist_l: list[np.ndarray] = []
    next_log = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            loss, grads = loss_and_gradients(layers, x, yy)
            gsq = sum(np.sum(gr * gr, axis=(1, 2)) for gr in grads)
            wsq = sum(np.sum(w * w, axis=(1, 2)) for w in layers)
            cap = move * np.sqrt(wsq / np.where(gsq > 0, gsq, 1.0))
            capped = (gsq > 0) & (cap < lr)
            lr = np.where(capped, cap, lr)
            fits = loss <= threshold
            still = saturated & ~capped & (lr * gsq <= tol * loss)
            done = active & (fits | still | (gsq == 0))
            steps[done] = t
            interp[done] = fits[done]
            active &= ~done
            next_log = _log_history(t, loss, active, next_log, hist_t, hist_l)
            if not active.any() or t == max_steps:
                break
            for _ in range(200):  # backtrack until every active repeat accepts its step
                trial = [
                    w - (lr * active)[:, None, None] * gr
                    for w, gr in zip(layers, grads, strict=True)
                ]
                new = _loss_of(x, yy, trial)
                # rounding of the loss itself is forgiven: on a plateau the predicted decrease
                # can be far below one unit in the last place of the loss
                slack = ROUNDING * loss
                ok = (np.isfinite(new) & (new <= loss - armijo * lr * gsq + slack)) | ~active
                if ok.all():
                    break
                saturated |= ~ok & (armijo * lr * gsq > slack)
                lr = np.where(ok, lr, lr * shrink)
            else:
                raise ConvergenceError("line search found no decreasing step in 200 halvings")
            layers = trial
            lr = np.where(active, lr * grow, lr)
    if active.any():
        left = int(np.count_nonzero(active))
        raise ConvergenceError(
            f"{left} of {b} repeat(s) did not converge in {max_steps} steps; raise max_steps"
        )
    return _result(net, layers, loss, steps, lr / grow, interp, ~active, hist_t, hist_l)
