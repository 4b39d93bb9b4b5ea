"""Weights of a deep linear network: balanced initialisation, end-to-end vector, balance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import safe_divide
from .._random import SeedLike, as_generator
from .._validation import as_array, as_vector, check_depth, check_positive_int
from ..exceptions import InputTypeError
from ._nets import Net, as_net, left_products

#: a network's weights: the layer matrices ``[W_1, ..., W_N]``, each ``(..., h_j, h_{j-1})``
Layers = Sequence[ArrayLike]


def _layer_list(start: Any, name: str = "start") -> tuple[list[np.ndarray], tuple[int, ...]]:
    """The layers of ``start`` as float64 arrays and their common leading (batch) shape.

    A wrong kind of object (not a list of layer matrices) is a ``TypeError``; layers that do not
    share their leading axes are a ``ValueError``.
    """
    if isinstance(start, np.ndarray | str | bytes) or not isinstance(start, Sequence):
        raise InputTypeError(
            f"{name} must be a list of layer matrices [W_1, ..., W_N], got {type(start).__name__}"
        )
    if not start:
        raise ValueError(f"{name} must hold at least one layer (depth >= 1), got an empty list")
    layers = [as_array(w, f"{name}[{j}]", min_ndim=2) for j, w in enumerate(start)]
    shapes = {w.shape[:-2] for w in layers}
    if len(shapes) != 1:
        raise ValueError(
            f"{name} layers have different leading (batch) shapes {sorted(shapes)}: every layer "
            "carries the same batch axes"
        )
    return layers, layers[0].shape[:-2]


def _flat(a: np.ndarray, batch: tuple[int, ...], core: int) -> np.ndarray:
    """``a`` with its ``core`` trailing axes kept and the leading ones broadcast to ``batch``,
    then merged into one axis (a view unless broadcasting forces a copy)."""
    shape = a.shape[a.ndim - core :]
    return np.broadcast_to(a, (*batch, *shape)).reshape(-1, *shape)


def _as_net(start: Any, name: str = "start") -> tuple[Net, tuple[int, ...]]:
    """Validated weights of any batch shape ``(..., h, h')`` as an internal :class:`Net` with
    one batch axis, and the batch shape to restore on output."""
    layers, batch = _layer_list(start, name)
    if len(batch) > 1:
        layers = [w.reshape(-1, *w.shape[-2:]) for w in layers]
    return as_net(layers, name), batch


def _unflat(a: Any, batch: tuple[int, ...], lead: int = 0) -> Any:
    """Undo :func:`_flat` on a result: the merged axis (after ``lead`` axes) back to ``batch``."""
    if len(batch) <= 1:
        return a
    a = np.asarray(a)
    return a.reshape(*a.shape[:lead], *batch, *a.shape[lead + 1 :])


def _depth_int(depth: Any) -> int:
    value = check_depth(depth)
    if math.isinf(value):
        raise ValueError("depth must be a finite integer >= 1 for a network, got inf")
    return int(value)


def balanced_init(
    theta_source: ArrayLike, depth: int, width: int, *, seed: SeedLike = 0
) -> list[np.ndarray]:
    """Balanced rank-one weights whose product is ``theta_source``.

    With ``c = ||theta_S||^(1/N)`` and random unit vectors ``u_1 .. u_{N-1}`` in ``R^width``:
    ``W_1 = c u_1 theta_S^T / ||theta_S||``, ``W_j = c u_j u_{j-1}^T``, ``W_N = c u_{N-1}^T``. Then
    ``W_{j+1}^T W_{j+1} = W_j W_j^T = c^2 u_j u_j^T`` and ``W_N ... W_1 = theta_S^T``.

    Parameters
    ----------
    theta_source : array, shape (d,) or (..., d)
        End-to-end vector; leading axes give one network per vector (the batch).
    depth : int
        Number of layers ``N >= 1`` (depth 1 is ``[theta_source[..., None, :]]``).
    width : int
        Hidden width ``h >= 1`` (ignored at depth 1, still checked).
    seed : int, SeedSequence or Generator
        Draws the hidden directions ``u_j``.

    Returns
    -------
    list of ndarray
        ``[W_1 (..., h, d), W_2 (..., h, h), ..., W_N (..., 1, h)]``, with the leading axes of
        ``theta_source``.

    Examples
    --------
    >>> import numpy as np
    >>> w = balanced_init(np.array([3.0, 4.0]), depth=3, width=5, seed=0)
    >>> [layer.shape for layer in w]
    [(5, 2), (5, 5), (1, 5)]
    >>> end_to_end(w).round(12), round(imbalance(w), 12)
    (array([3., 4.]), 0.0)
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    depth = _depth_int(depth)
    width = check_positive_int(width, "width")
    batch = ts.shape[:-1]
    t = ts.reshape(-1, ts.shape[-1])
    if depth == 1:
        layers = [t[:, None, :].copy()]
    else:
        norm = np.linalg.norm(t, axis=1)
        c = norm ** (1.0 / depth)
        direction = safe_divide(t, norm[:, None])
        u = as_generator(seed).standard_normal((t.shape[0], depth - 1, width))
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        cc = c[:, None, None]
        layers = [cc * u[:, 0, :, None] * direction[:, None, :]]
        for j in range(1, depth - 1):
            layers.append(cc * u[:, j, :, None] * u[:, j - 1, None, :])
        layers.append(cc * u[:, depth - 2, None, :])
    return [w.reshape(*batch, *w.shape[1:]) for w in layers]


def end_to_end(weights: Layers) -> np.ndarray:
    """The end-to-end vector ``(W_N ... W_1)^T`` of layers ``(..., h_j, h_{j-1})``.

    Parameters
    ----------
    weights : list of arrays
        The layers ``[W_1 (..., h_1, d), ..., W_N (..., 1, h_{N-1})]``, all with the same
        leading (batch) axes, or none.

    Returns
    -------
    ndarray, shape (..., d)

    Examples
    --------
    >>> import numpy as np
    >>> end_to_end([np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[2.0, 1.0]])])
    array([2., 5.])
    """
    net, batch = _as_net(weights, "weights")
    theta = left_products(net.layers)[0]
    return _unflat(theta if net.batched else theta[0], batch)


def imbalance(weights: Layers) -> np.ndarray | float:
    """How far the weights are from balanced, relative to their size.

    ``max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F / max(||W_j W_j^T||_F, ||W_{j+1}^T W_{j+1}||_F)``
    over consecutive layers (0 for depth 1 and for balanced weights).

    Parameters
    ----------
    weights : list of arrays
        The layers ``[W_1 (..., h_1, d), ..., W_N (..., 1, h_{N-1})]``, all with the same
        leading (batch) axes, or none.

    Returns
    -------
    float, or ndarray of the batch shape for batched weights

    Examples
    --------
    >>> import numpy as np
    >>> imbalance([np.array([[1.0, 0.0]]), np.array([[2.0]])])  # |4 - 1| / 4
    0.75
    """
    net, batch = _as_net(weights, "weights")
    worst = _imbalance(net.layers)
    return _unflat(worst, batch) if net.batched else float(worst[0])


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
        worst = np.maximum(worst, safe_divide(gap, size))
    return worst


def _second_singular_ratio(layers: list[np.ndarray]) -> np.ndarray:
    """Largest ratio over layers of the second to the first singular value, shape ``(B,)``."""
    worst = np.zeros(layers[0].shape[0])
    for w in layers:
        if min(w.shape[1:]) < 2:
            continue
        sv = np.linalg.svd(w, compute_uv=False)
        worst = np.maximum(worst, safe_divide(sv[:, 1], sv[:, 0]))
    return worst
