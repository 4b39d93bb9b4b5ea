"""The two-layer ReLU network: weights, initialisation, inputs on the sphere, hand gradients."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import safe_divide
from .._random import SeedLike, as_generator, keyword_seed
from .._validation import (
    as_array,
    as_matrix,
    check_positive_int,
    check_same_dim,
    output_like,
)
from ._kernel import _sphere_inputs

#: evaluation on many inputs runs in blocks of rows of about this many (input, neuron) floats
_BLOCK_FLOATS = 2**22


@keyword_seed
def sample_sphere(
    n: int, d: int, *, seed: SeedLike = 0, batch: tuple[int, ...] | int = ()
) -> np.ndarray:
    """``n`` points drawn uniformly on the unit sphere of ``R^d``, shape ``(*batch, n, d)``.

    Parameters
    ----------
    n : int
        Number of points per draw.
    d : int
        Dimension.
    seed : int, SeedSequence or Generator, default 0
        Random seed.
    batch : int or tuple of int, default ()
        Leading batch shape (independent draws).

    Examples
    --------
    >>> import numpy as np
    >>> x = sample_sphere(4, 3, seed=0, batch=2)
    >>> x.shape, bool(np.allclose(np.linalg.norm(x, axis=-1), 1.0))
    ((2, 4, 3), True)
    """
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d")
    batch = (batch,) if isinstance(batch, int | np.integer) else tuple(batch)
    z = as_generator(seed).standard_normal((*batch, n, d))
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


# --------------------------------------------------------------------- network
@dataclass(frozen=True, eq=False)
class ReluNetwork:
    """A two-layer ReLU network in NTK parameterisation, possibly a batch of them.

    ``f(x) = (1/sqrt(m)) sum_r a_r relu(w_r^T x)``; only ``weights`` is trained.

    Parameters
    ----------
    weights : ndarray, shape (..., m, d)
        First-layer weights, one row per neuron; leading axes index independent networks.
    signs : ndarray, shape (m,)
        Fixed output weights, each ``+1`` or ``-1``, shared by the batch.

    Examples
    --------
    >>> import numpy as np
    >>> net = ReluNetwork(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0]))
    >>> net(np.array([[1.0, 0.0], [0.0, 1.0]]))  # (relu(w_1^T x) - relu(w_2^T x)) / sqrt(2)
    array([ 0.70710678, -0.70710678])
    >>> net.width, net.d, net.batch_shape
    (2, 2, ())
    """

    weights: np.ndarray
    signs: np.ndarray

    def __post_init__(self) -> None:
        w = as_matrix(self.weights, "weights", batch=True)
        a = as_array(self.signs, "signs", min_ndim=1, max_ndim=1)
        if a.size != w.shape[-2]:
            raise ValueError(f"signs has {a.size} entries but weights has {w.shape[-2]} neurons")
        if not np.all(np.abs(a) == 1.0):
            raise ValueError("signs must hold only +1 and -1")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "signs", a)

    @property
    def width(self) -> int:
        """The number of hidden neurons ``m``."""
        return int(self.weights.shape[-2])

    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.weights.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading axes of independent networks."""
        return tuple(self.weights.shape[:-2])

    def _inputs(self, X: Any, name: str) -> np.ndarray:
        x = _sphere_inputs(X, name, False)
        check_same_dim(self.d, x, name, what="the network's input dimension d")
        return x

    def _row_blocks(self, x: np.ndarray) -> list[slice]:
        """Blocks of input rows that keep the ``(..., rows, m)`` temporaries bounded."""
        batch = np.broadcast_shapes(self.batch_shape, x.shape[:-2])
        per_row = max(1, math.prod(batch)) * self.width
        rows = max(1, _BLOCK_FLOATS // per_row)
        n = x.shape[-2]
        return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]

    def __call__(self, X: Any) -> np.ndarray:
        """Outputs ``(..., n)`` on inputs ``X`` of shape ``(n, d)`` or ``(..., n, d)``."""
        x = self._inputs(X, "X")
        wt = np.swapaxes(self.weights, -1, -2)
        parts = []
        for rows in self._row_blocks(x):
            pre = np.matmul(x[..., rows, :], wt)
            np.maximum(pre, 0.0, out=pre)
            parts.append(np.matmul(pre, self.signs))
        return np.concatenate(parts, axis=-1) / math.sqrt(self.width)

    def ntk(self, X1: ArrayLike, X2: ArrayLike | None = None) -> np.ndarray:
        """The empirical NTK of the first layer at these weights, shape ``(..., n1, n2)``.

        ``K(x, x') = x^T x' (1/m) sum_r 1(w_r^T x > 0) 1(w_r^T x' > 0)``; it tends to
        :func:`ntk` as the width grows when the weights are standard Gaussian.

        Parameters
        ----------
        X1 : array_like, shape (..., n1, d)
            Inputs.
        X2 : array_like, shape (..., n2, d), optional
            Second set of inputs; ``X1`` when omitted.
        """
        x1 = self._inputs(X1, "X1")
        x2 = x1 if X2 is None else self._inputs(X2, "X2")
        wt = np.swapaxes(self.weights, -1, -2)
        s2 = (np.matmul(x2, wt) > 0).astype(np.float64)
        parts = []
        for rows in self._row_blocks(x1):
            s1 = (np.matmul(x1[..., rows, :], wt) > 0).astype(np.float64)
            same = np.matmul(s1, np.swapaxes(s2, -1, -2)) / self.width
            parts.append(same * np.matmul(x1[..., rows, :], np.swapaxes(x2, -1, -2)))
        return np.concatenate(parts, axis=-2)

    def relative_distance(self, other: ReluNetwork) -> np.ndarray | float:
        """``||W - W_other||_F / ||W_other||_F`` per network: how far training moved.

        Parameters
        ----------
        other : ReluNetwork
            The network to measure from (the starting weights), of the same shape.
        """
        if other.weights.shape[-2:] != self.weights.shape[-2:]:
            raise ValueError("other must have the same width and input dimension")
        num = np.linalg.norm(self.weights - other.weights, axis=(-2, -1))
        den = np.linalg.norm(other.weights, axis=(-2, -1))
        # from zero weights any move is infinitely far, staying put is no move at all
        far = np.where(num > 0, np.inf, 0.0)
        return output_like(np.where(den > 0, safe_divide(num, den), far))


@keyword_seed
def init_network(
    width: int,
    d: int,
    *,
    seed: SeedLike = 0,
    batch: tuple[int, ...] | int = (),
    symmetric: bool = True,
) -> ReluNetwork:
    """A random network with ``w_r ~ N(0, I_d)``.

    With ``symmetric=True`` (default) neurons come in pairs with equal weights and opposite
    signs (``w_{r + m/2} = w_r``, ``a_r = +1``, ``a_{r + m/2} = -1``), so the initial output is
    exactly 0 and training starts from the zero function; ``width`` must then be even.
    Otherwise every neuron is drawn independently and the signs are random.

    Parameters
    ----------
    width : int
        Number of hidden neurons ``m`` (even when ``symmetric``).
    d : int
        Input dimension.
    seed : int, SeedSequence or Generator, default 0
        Random seed.
    batch : int or tuple of int, default ()
        Leading batch shape (independent draws).
    symmetric : bool, default True
        Neurons in pairs of opposite output signs, so the initial output is exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> net = init_network(6, 3, seed=0, batch=2)
    >>> net.weights.shape, float(np.abs(net(np.eye(3))).max())  # the symmetric start outputs 0
    ((2, 6, 3), 0.0)
    """
    width = check_positive_int(width, "width", minimum=2)
    d = check_positive_int(d, "d")
    batch = (batch,) if isinstance(batch, int | np.integer) else tuple(batch)
    rng = as_generator(seed)
    if symmetric:
        if width % 2:
            raise ValueError(f"width must be even for a symmetric initialisation, got {width}")
        half = rng.standard_normal((*batch, width // 2, d))
        weights = np.concatenate([half, half], axis=-2)
        signs = np.concatenate([np.ones(width // 2), -np.ones(width // 2)])
    else:
        weights = rng.standard_normal((*batch, width, d))
        signs = rng.choice(np.array([-1.0, 1.0]), size=width)
    return ReluNetwork(weights, signs)


def _labels(y: Any, x: np.ndarray) -> np.ndarray:
    lab = as_array(y, "y", min_ndim=1)
    check_same_dim(x.shape[-2], lab, "y", what="the number of rows of X, n")
    return lab


class _Workspace:
    """Forward and backward pass with one reused ``(..., n, m)`` buffer."""

    def __init__(self, net: ReluNetwork, x: np.ndarray, y: np.ndarray) -> None:
        batch = np.broadcast_shapes(net.batch_shape, x.shape[:-2], y.shape[:-1])
        self.x = np.broadcast_to(x, (*batch, *x.shape[-2:]))
        self.y = np.broadcast_to(y, (*batch, y.shape[-1]))
        self.n = x.shape[-2]
        self.signs = net.signs / math.sqrt(net.width)
        self.buf = np.empty((*batch, self.n, net.width))
        self.batch = batch

    def residual(self, weights: np.ndarray) -> np.ndarray:
        """``f(X) - y``, leaving the activation pattern (as 0/1 floats) in the buffer."""
        np.matmul(self.x, np.swapaxes(weights, -1, -2), out=self.buf)
        np.maximum(self.buf, 0.0, out=self.buf)
        e = np.matmul(self.buf, self.signs) - self.y
        np.greater(self.buf, 0.0, out=self.buf)
        return e

    def gradient(self, e: np.ndarray) -> np.ndarray:
        """Gradient of ``(1/2n) ||f(X) - y||^2`` given the residual just computed."""
        g = np.matmul(np.swapaxes(self.buf, -1, -2), e[..., None] * self.x)
        g *= self.signs[:, None] / self.n
        return g


def loss_and_gradient(
    network: ReluNetwork, X: ArrayLike, y: ArrayLike
) -> tuple[np.ndarray | float, np.ndarray]:
    """The loss ``(1/2n) ||f(X) - y||^2`` and its gradient with respect to the weights.

    The gradient is written by hand: ``(1/n) (a_r / sqrt(m)) sum_i e_i 1(w_r^T x_i > 0) x_i``
    with ``e = f(X) - y`` (ReLU's derivative at 0 taken as 0).

    Parameters
    ----------
    network : ReluNetwork
        The network (possibly a batch of networks).
    X : array_like, shape (..., n, d)
        Inputs.
    y : array_like, shape (..., n)
        Labels.

    Returns
    -------
    loss : float or ndarray, shape (...)
    grad : ndarray, shape (..., m, d)

    Examples
    --------
    >>> import numpy as np
    >>> net = ReluNetwork(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0]))
    >>> loss, grad = loss_and_gradient(net, np.array([[1.0, 0.0]]), np.array([0.0]))
    >>> round(loss, 12), grad[0]  # e = 1/sqrt(2): loss e^2 / 2, gradient e x / sqrt(2) on w_1
    (0.25, array([0.5, 0. ]))
    >>> bool(np.all(grad[1] == 0))  # the second neuron is inactive on x
    True
    """
    x = network._inputs(X, "X")
    lab = _labels(y, x)
    ws = _Workspace(network, x, lab)
    e = ws.residual(network.weights)
    loss = 0.5 * np.mean(e * e, axis=-1)
    grad = ws.gradient(e)
    return output_like(loss), grad
