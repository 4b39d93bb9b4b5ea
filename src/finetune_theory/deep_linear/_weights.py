"""Weights of a deep linear network: balanced initialisation, end-to-end vector, balance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._random import SeedLike, as_generator
from .._validation import (
    as_vector,
    check_depth,
    check_positive_int,
)
from ._nets import (
    as_net,
    left_products,
)


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


def _second_singular_ratio(layers: list[np.ndarray]) -> np.ndarray:
    worst = np.zeros(layers[0].shape[0])
    for w in layers:
        if min(w.shape[1:]) < 2:
            continue
        sv = np.linalg.svd(w, compute_uv=False)
        worst = np.maximum(worst, sv[:, 1] / np.where(sv[:, 0] > 0, sv[:, 0], 1.0))
    return worst
