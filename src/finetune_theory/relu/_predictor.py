"""The kernel predictor: the lazy, infinite-width limit of training the ReLU network."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._validation import (
    as_array,
    check_same_dim,
)
from ..exceptions import InputTypeError
from ._kernel import _solve_spd, _sphere_inputs, ntk
from ._network import ReluNetwork


def finetune(
    X: ArrayLike,
    y: ArrayLike,
    X_test: ArrayLike,
    *,
    start: ReluNetwork | None = None,
    kernel: str = "analytic",
) -> np.ndarray:
    """The limit of fine-tuning the ReLU network: the kernel predictor of lazy training.

    ``f_0(x) + K(x, X) H^-1 (y - f_0(X))``: what :func:`train` from ``start`` converges to in
    the lazy, infinite-width limit, evaluated at ``X_test`` (the limit is a function, not a
    finite weight vector, so it is returned through its predictions). It is a prediction of
    the trained network, exact only in that limit. Also available as ``kernel_predictor``.

    Parameters
    ----------
    X : array, shape (..., n, d)
        Training inputs on the unit sphere.
    y : array, shape (..., n)
        Training labels.
    X_test : array, shape (..., t, d)
        Where to predict.
    start : ReluNetwork, optional
        The weights training starts from (the pretrained network when fine-tuning); ``f_0`` is
        its output. ``None`` means ``f_0 = 0`` (a symmetric initialisation, training from
        scratch).
    kernel : {"analytic", "empirical"}
        ``"analytic"``: the infinite-width kernel :func:`ntk` (the theory's predictor);
        ``"empirical"``: the NTK of ``start`` (the linearised network), which needs ``start``.

    Returns
    -------
    ndarray, shape (..., t)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(3)[:2]
    >>> finetune(X, np.array([1.0, -1.0]), X)  # the predictor interpolates its data
    array([ 1., -1.])
    >>> finetune(X, np.zeros(2), np.eye(3)[2:])  # orthogonal input: k(0) = 0
    array([0.])
    """
    x = _sphere_inputs(X, "X", False)
    xt = _sphere_inputs(X_test, "X_test", False)
    check_same_dim(x.shape[-1], xt, "X_test", what="the input dimension of X")
    lab = as_array(y, "y", min_ndim=1)
    check_same_dim(x.shape[-2], lab, "y", what="the number of rows of X, n")
    if kernel not in ("analytic", "empirical"):
        raise ValueError(f"kernel must be 'analytic' or 'empirical', got {kernel!r}")
    if start is not None and not isinstance(start, ReluNetwork):
        raise InputTypeError(f"start must be a ReluNetwork or None, got {type(start).__name__}")
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
    coef = _solve_spd(H_b, np.broadcast_to(r, H_b.shape[:-1]), "X")
    return f_test + np.einsum("...tn,...n->...t", K, coef)


def kernel_predictor(
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_test: ArrayLike,
    *,
    start: ReluNetwork | None = None,
    kernel: str = "analytic",
) -> np.ndarray:
    """The kernel predictor of lazy training: :func:`finetune` under its descriptive name.

    The arguments are those of :func:`finetune` (``X_train``, ``y_train`` are its ``X``, ``y``).

    Parameters
    ----------
    X_train : array_like, shape (..., n, d)
        Training inputs on the unit sphere.
    y_train : array_like, shape (..., n)
        Training labels.
    X_test : array_like, shape (..., t, d)
        Where to predict.
    start : ReluNetwork, optional
        The weights training starts from; ``None``: training from scratch.
    kernel : {"analytic", "empirical"}, default "analytic"
        The infinite-width kernel, or the NTK of ``start``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(3)[:2]
    >>> bool(np.array_equal(kernel_predictor(X, np.ones(2), X), finetune(X, np.ones(2), X)))
    True
    """
    return finetune(X_train, y_train, X_test, start=start, kernel=kernel)
