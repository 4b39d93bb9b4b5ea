"""The kernel predictor: the lazy, infinite-width limit of training the ReLU network."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import (
    as_array,
    check_same_dim,
)
from ._kernel import _solve_spd, _sphere_inputs, ntk
from ._network import ReluNetwork


def kernel_predictor(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    *,
    start: ReluNetwork | None = None,
    kernel: str = "analytic",
) -> np.ndarray:
    """Predictions of lazy training: ``f_0(x) + K(x, X) H^-1 (y - f_0(X))``.

    Parameters
    ----------
    X_train : array, shape (..., n, d)
    y_train : array, shape (..., n)
    X_test : array, shape (..., t, d)
    start : ReluNetwork, optional
        The weights training starts from (the pretrained network when fine-tuning); ``f_0`` is
        its output. ``None`` means ``f_0 = 0`` (a symmetric initialisation).
    kernel : {"analytic", "empirical"}
        ``"analytic"``: the infinite-width kernel :func:`ntk` (the theory's predictor);
        ``"empirical"``: the NTK of ``start`` (the linearised network), which needs ``start``.

    Returns
    -------
    ndarray, shape (..., t)
    """
    x = _sphere_inputs(X_train, "X_train", False)
    xt = _sphere_inputs(X_test, "X_test", False)
    check_same_dim(x.shape[-1], xt, "X_test", what="the input dimension of X_train")
    lab = as_array(y_train, "y_train", min_ndim=1)
    check_same_dim(x.shape[-2], lab, "y_train", what="the number of rows of X_train, n")
    if kernel not in ("analytic", "empirical"):
        raise ValueError(f"kernel must be 'analytic' or 'empirical', got {kernel!r}")
    if start is not None and not isinstance(start, ReluNetwork):
        raise ValueError(f"start must be a ReluNetwork or None, got {type(start).__name__}")
    if kernel == "empirical":
        if start is None:
            raise ValueError("start is required with kernel='empirical'")
        H, K = start.ntk(x), start.ntk(xt, x)
    else:
        H, K = ntk(x), ntk(xt, x)
    f_train = 0.0 if start is None else start(x)
    f_test = 0.0 if start is None else start(xt)
    r = lab - f_train
    H_b = np.broadcast_to(H, (*np.broadcast_shapes(H.shape[:-2], r.shape[:-1]), *H.shape[-2:]))
    coef = _solve_spd(H_b, np.broadcast_to(r, H_b.shape[:-1]), "X_train")
    return f_test + np.einsum("...tn,...n->...t", K, coef)
