"""Two-layer ReLU networks in the NTK (lazy) regime: network, kernel, predictor and bound.

The model is ``f(x) = (1/sqrt(m)) sum_r a_r relu(w_r^T x)`` with fixed output signs
``a_r = +-1`` and a trained first layer ``W = (w_1 .. w_m)``. Inputs live on the unit sphere.
With ``w_r ~ N(0, I)`` the neural tangent kernel of the first layer is

    K(x, x') = E_w[ x^T x' 1(w^T x > 0) 1(w^T x' > 0) ] = u (pi - arccos u) / (2 pi),
    u = x^T x',

whose odd part is exactly ``u / 4``: a linear teacher ``beta^T x`` has squared RKHS norm
``4 ||beta||^2`` (see ``docs/relu.md``).

What lives here:

- the analytic kernel :func:`ntk`, its smallest eigenvalue :func:`ntk_lambda_min`, the
  residual norm ``r^T H^-1 r`` (:func:`rkhs_norm_sq`, by Cholesky) and the data-dependent
  bound :func:`residual_bound` ``sqrt(2 r^T H^-1 r / n)``;
- the full bound :func:`generalization_bound`, its prediction from the teacher distance alone
  :func:`predicted_bound`, and the predicted sample complexity :func:`sample_complexity_bound`
  (constants and the confidence ``delta`` documented there: a reconstruction);
- :class:`ReluNetwork` (weights with a leading batch axis of repeats), the symmetric
  initialisation :func:`init_network`, hand gradients :func:`loss_and_gradient` and
  full-batch gradient descent :func:`train` (step :func:`default_lr`), with the settings and
  result shared by the three architectures. Fine-tuning is ``train(X, y, pretrained)`` from
  the weights of :func:`pretrain` (source teacher, random initialisation); training from
  scratch is ``train(X, y, init_network(...))``;
- the empirical NTK of a finite network (:meth:`ReluNetwork.ntk`) and the kernel predictor of
  training from given weights, :func:`kernel_predictor`: the closed-form (lazy, infinite
  width) limit of :func:`train`. It keeps its name rather than ``finetune``: it is a
  prediction of the trained network, exact only in the limit, not the limit of the finite
  network's own gradient descent.

Training that diverges or does not converge raises :class:`DivergenceError` or
:class:`ConvergenceError` (both :class:`TrainingError`); it never returns numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._random import SeedLike, as_generator, spawn_generators
from ._training import Monitor, TrainResult, check_train_options
from ._validation import (
    as_array,
    as_matrix,
    check_open_unit,
    check_positive,
    check_positive_int,
    check_same_dim,
    output_like,
)
from .exceptions import ConvergenceError, DivergenceError, TrainingError

__all__ = [
    "DEFAULT_DELTA",
    "SPHERE_TOL",
    "ntk",
    "ntk_lambda_min",
    "rkhs_norm_sq",
    "residual_bound",
    "confidence_term",
    "generalization_bound",
    "predicted_bound",
    "sample_complexity_bound",
    "sample_sphere",
    "ReluNetwork",
    "init_network",
    "loss_and_gradient",
    "TrainResult",
    "TrainingError",
    "DivergenceError",
    "ConvergenceError",
    "default_lr",
    "train",
    "pretrain",
    "kernel_predictor",
]

#: confidence level of the bound: it holds with probability at least ``1 - DEFAULT_DELTA``
DEFAULT_DELTA = 0.05
#: how far ``||x||`` may stray from 1 before an input counts as off the sphere
SPHERE_TOL = 1e-6
#: relative pivot under which the Cholesky factor of ``H`` is declared singular
_PIVOT_RTOL = 1e-12
#: evaluation on many inputs runs in blocks of rows of about this many (input, neuron) floats
_BLOCK_FLOATS = 2**22


# ------------------------------------------------------------------ the kernel
def _sphere_inputs(X: Any, name: str, normalize: bool, *, batch: bool = True) -> np.ndarray:
    """Validate inputs ``(..., n, d)``; project them on the sphere or reject them off it."""
    x = as_matrix(X, name, batch=batch)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if normalize:
        if np.any(norms == 0):
            raise ValueError(f"{name} has a zero row, which cannot be normalised to the sphere")
        return x / norms
    worst = float(np.max(np.abs(norms - 1.0)))
    if worst > SPHERE_TOL:
        raise ValueError(
            f"{name} must have unit-norm rows (inputs on the sphere); the largest | ||x|| - 1 | is "
            f"{worst:.3g}. Pass normalize=True to project the rows onto the sphere."
        )
    return x


def _kernel_of_cosine(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, -1.0, 1.0)
    return u * (np.pi - np.arccos(u)) / (2.0 * np.pi)


def ntk(X1: Any, X2: Any = None, *, normalize: bool = False) -> np.ndarray:
    """The analytic NTK Gram matrix of the first layer, ``u (pi - arccos u) / (2 pi)``.

    Parameters
    ----------
    X1 : array, shape (..., n1, d)
        Inputs on the unit sphere (leading axes are a batch).
    X2 : array, shape (..., n2, d), optional
        Second set of inputs; ``X1`` when omitted.
    normalize : bool
        ``False`` (default): rows off the unit sphere raise ``ValueError``. ``True``: rows are
        divided by their norm first.

    Returns
    -------
    ndarray, shape (..., n1, n2)
        ``K[i, j] = u (pi - arccos u) / (2 pi)`` with ``u = x1_i^T x2_j``.

    Examples
    --------
    >>> import numpy as np
    >>> float(ntk(np.array([[1.0, 0.0]]))[0, 0])  # k(1) = 1/2
    0.5
    """
    x1 = _sphere_inputs(X1, "X1", normalize)
    x2 = x1 if X2 is None else _sphere_inputs(X2, "X2", normalize)
    check_same_dim(x1.shape[-1], x2, "X2", what="the input dimension of X1")
    return _kernel_of_cosine(np.matmul(x1, np.swapaxes(x2, -1, -2)))


def ntk_lambda_min(X: Any, *, normalize: bool = False) -> np.ndarray | float:
    """``lambda_0``: the smallest eigenvalue of the NTK Gram matrix of ``X`` (batched)."""
    out = np.linalg.eigvalsh(ntk(_sphere_inputs(X, "X", normalize)))[..., 0]
    return output_like(out)


def _cholesky(H: np.ndarray, name: str) -> np.ndarray:
    """Batched Cholesky factor; a ``ValueError`` naming ``name`` when ``H`` is singular."""
    hint = "(duplicate inputs make the NTK Gram matrix singular)"
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}: the kernel Gram matrix is singular {hint}") from None
    piv = np.diagonal(L, axis1=-2, axis2=-1) ** 2
    scale = np.max(np.diagonal(H, axis1=-2, axis2=-1), axis=-1)
    ratio = piv.min(axis=-1) / scale
    if np.any(ratio < _PIVOT_RTOL):
        raise ValueError(
            f"{name}: the kernel Gram matrix is singular to working precision (relative "
            f"pivot {float(ratio.min()):.2g}) {hint}"
        )
    return L


def _solve_spd(H: np.ndarray, rhs: np.ndarray, name: str) -> np.ndarray:
    """``H^-1 rhs`` through the Cholesky factor (``rhs`` has shape ``(..., n)``)."""
    L = _cholesky(H, name)
    z = np.linalg.solve(L, rhs[..., None])
    return np.linalg.solve(np.swapaxes(L, -1, -2), z)[..., 0]


def _residual(residual: Any, n: int) -> np.ndarray:
    r = as_array(residual, "residual", min_ndim=1)
    check_same_dim(n, r, "residual", what="the number of rows of X, n")
    return r


def rkhs_norm_sq(X: Any, residual: Any, *, normalize: bool = False) -> np.ndarray | float:
    """``r^T H^-1 r``: the squared RKHS norm of the smallest kernel interpolant of ``r``.

    Computed through a Cholesky factor of ``H = ntk(X)``; a singular ``H`` (for example two
    equal inputs) raises ``ValueError``. For an exactly linear residual ``r = X beta`` it never
    exceeds ``4 ||beta||^2`` and approaches it as ``n`` grows.

    Parameters
    ----------
    X : array, shape (..., n, d)
    residual : array, shape (..., n)
    normalize : bool
        As in :func:`ntk`.
    """
    x = _sphere_inputs(X, "X", normalize)
    return output_like(_rkhs_norm_sq(x, _residual(residual, x.shape[-2])))


def _rkhs_norm_sq(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """:func:`rkhs_norm_sq` of validated inputs on the sphere."""
    H = _kernel_of_cosine(np.matmul(x, np.swapaxes(x, -1, -2)))
    r_b, H_b = np.broadcast_arrays(r[..., None], H)
    L = _cholesky(H_b, "X")
    z = np.linalg.solve(L, r_b[..., :1])[..., 0]
    return np.sum(z * z, axis=-1)


def residual_bound(X: Any, residual: Any, *, normalize: bool = False) -> np.ndarray | float:
    """The data-dependent part of the bound, ``sqrt(2 r^T H^-1 r / n)``.

    ``r`` is what training has to fit: the labels from scratch, ``y - f_S(X)`` when fine-tuning
    from a source network ``f_S``. See :func:`rkhs_norm_sq` for the arguments.
    """
    x = _sphere_inputs(X, "X", normalize)
    q = _rkhs_norm_sq(x, _residual(residual, x.shape[-2]))
    return output_like(np.sqrt(2.0 * q / x.shape[-2]))


def confidence_term(n: Any, delta: float = DEFAULT_DELTA) -> np.ndarray | float:
    """The sample-size term of the bound, ``3 sqrt(log(2 (1 + sqrt(n/2)) / delta) / (2 n))``.

    ``3 sqrt(log(2/delta') / (2 n))`` is the usual concentration term of a Rademacher bound
    for a loss with values in ``[0, 1]``; the data-dependent radius is covered by a union over
    ``1 + sqrt(n/2)`` grid values (``delta' = delta / (1 + sqrt(n/2))``), which is why the
    smallest eigenvalue ``lambda_0`` of ``H`` does not appear (see ``docs/relu.md``).
    Decreasing in ``n`` for every ``delta < 1``.
    """
    return output_like(_confidence(_check_n(n), check_open_unit(delta, "delta")))


def _check_n(n: Any) -> np.ndarray:
    n_arr = np.asarray(n, dtype=np.float64)
    if n_arr.size == 0 or not np.all(np.isfinite(n_arr)) or np.any(n_arr < 1):
        raise ValueError(f"n must hold finite sample sizes >= 1, got {np.ravel(n_arr)[:5]}")
    return n_arr


def _confidence(n_arr: np.ndarray, delta: float) -> np.ndarray:
    """:func:`confidence_term` of validated inputs."""
    return 3.0 * np.sqrt(np.log(2.0 * (1.0 + np.sqrt(n_arr / 2.0)) / delta) / (2.0 * n_arr))


def generalization_bound(
    X: Any,
    residual: Any,
    *,
    train_loss: Any = 0.0,
    delta: float = DEFAULT_DELTA,
    normalize: bool = False,
) -> np.ndarray | float:
    """The full bound on the test risk of the trained network (a reconstruction).

    ``train_loss + sqrt(2 r^T H^-1 r / n) + confidence_term(n, delta)``: it bounds, with
    probability ``1 - delta``, the population risk under the ramp loss
    ``min(|f(x) - y|, 1)`` (1-Lipschitz with values in ``[0, 1]``) of a network of infinite
    width trained from the weights that produced the residual ``r``. Finite-width corrections
    (vanishing as the width grows) are left out.

    Parameters
    ----------
    X : array, shape (..., n, d)
    residual : array, shape (..., n)
    train_loss : float or array
        The ramp loss on the training set at the end of training (0 at interpolation).
    delta : float
        Failure probability, in ``(0, 1)``.
    """
    x = _sphere_inputs(X, "X", normalize)
    r = _residual(residual, x.shape[-2])
    tl = as_array(train_loss, "train_loss")
    if np.any(tl < 0):
        raise ValueError("train_loss must be >= 0")
    delta = check_open_unit(delta, "delta")
    n = x.shape[-2]
    out = tl + np.sqrt(2.0 * _rkhs_norm_sq(x, r) / n) + _confidence(np.float64(n), delta)
    return output_like(out)


def _check_distance(distance: Any) -> np.ndarray:
    dist = as_array(distance, "distance")
    if np.any(dist < 0):
        raise ValueError("distance must be >= 0")
    return dist


def predicted_bound(
    distance: Any, n: Any, *, label_scale: float = 1.0, delta: float = DEFAULT_DELTA
) -> np.ndarray | float:
    """The bound predicted from the teacher distance: ``sqrt(8 s^2 D^2 / n) + confidence``.

    Uses ``r^T H^-1 r <= 4 s^2 D^2`` for a linear residual ``r = s (theta_T - theta_S)^T x``
    (``D = ||theta_T - theta_S||``, labels ``s theta^T x``); for training from scratch pass
    ``D = ||theta_T||``. Broadcasts over ``distance`` and ``n``.

    Warnings
    --------
    The inequality holds for an *exactly linear* residual. A pretrained source network is not
    exactly ``s theta_S^T x``: its approximation error enters the residual, and at a small
    teacher distance it can dominate, so that the measured ``r^T H^-1 r`` exceeds
    ``4 s^2 D^2`` (0.747 against 0.400 in one audit at a small ``D``) and this prediction is
    *optimistic*. For a pretrained source, add the source's own error: pass
    ``D + e / s`` with ``e`` an upper bound on the RMS distance between the source network
    and ``s theta_S^T x`` (by the triangle inequality in the RKHS norm when the source error is
    itself a linear function), or use :func:`generalization_bound` with the measured
    residual.
    """
    dist = _check_distance(distance)
    s = check_positive(label_scale, "label_scale")
    n_arr = _check_n(n)
    return output_like(_predicted(dist, n_arr, s, check_open_unit(delta, "delta")))


def _predicted(dist: np.ndarray, n: np.ndarray, s: float, delta: float) -> np.ndarray:
    """:func:`predicted_bound` of validated inputs."""
    return np.sqrt(8.0 * s * s * dist * dist / n) + np.asarray(confidence_term(n, delta))


def sample_complexity_bound(
    distance: Any,
    eps: Any,
    *,
    label_scale: float = 1.0,
    delta: float = DEFAULT_DELTA,
) -> np.ndarray | int:
    """Predicted ``n(eps)``: the smallest ``n`` with ``predicted_bound(distance, n) <= eps``.

    Fine-tuning: ``distance = ||theta_T - theta_S||``; from scratch: ``distance = ||theta_T||``.
    For small ``eps`` it behaves as ``8 s^2 D^2 / eps^2`` plus the confidence term's share.
    Broadcasts over ``distance`` and ``eps`` (an integer bisection run on all entries at once).
    """
    dist = _check_distance(distance)
    e = as_array(eps, "eps")
    if np.any(e <= 0):
        raise ValueError("eps must be > 0")
    if np.any(e >= 1):
        raise ValueError("eps must be < 1 (the bound is about a loss with values in [0, 1])")
    s = check_positive(label_scale, "label_scale")
    delta = check_open_unit(delta, "delta")
    dist, e = np.broadcast_arrays(dist, e)
    top = 2**52

    def ok(n: np.ndarray) -> np.ndarray:
        return _predicted(dist, n, s, delta) <= e

    if not np.all(ok(np.full(dist.shape, float(top)))):
        raise ValueError(f"eps is too small: the predicted bound stays above it for n <= {top}")
    lo = np.zeros(dist.shape, dtype=np.int64)  # bound(lo) > eps (lo = 0 stands for "none")
    hi = np.full(dist.shape, top, dtype=np.int64)  # bound(hi) <= eps
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        good = ok(np.maximum(mid, 1).astype(np.float64))
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
    return output_like(hi, kind=int)


# ------------------------------------------------------------------------ data
def sample_sphere(
    n: int, d: int, seed: SeedLike = 0, *, batch: tuple[int, ...] | int = ()
) -> np.ndarray:
    """``n`` points drawn uniformly on the unit sphere of ``R^d``, shape ``(*batch, n, d)``."""
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

    def ntk(self, X1: Any, X2: Any = None) -> np.ndarray:
        """The empirical NTK of the first layer at these weights, shape ``(..., n1, n2)``.

        ``K(x, x') = x^T x' (1/m) sum_r 1(w_r^T x > 0) 1(w_r^T x' > 0)``; it tends to
        :func:`ntk` as the width grows when the weights are standard Gaussian.
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
        """``||W - W_other||_F / ||W_other||_F`` per network: how far training moved."""
        if other.weights.shape[-2:] != self.weights.shape[-2:]:
            raise ValueError("other must have the same width and input dimension")
        num = np.linalg.norm(self.weights - other.weights, axis=(-2, -1))
        den = np.linalg.norm(other.weights, axis=(-2, -1))
        # from zero weights any move is infinitely far, staying put is no move at all
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
        return output_like(out)


def init_network(
    width: int,
    d: int,
    seed: SeedLike = 0,
    *,
    batch: tuple[int, ...] | int = (),
    symmetric: bool = True,
) -> ReluNetwork:
    """A random network with ``w_r ~ N(0, I_d)``.

    With ``symmetric=True`` (default) neurons come in pairs with equal weights and opposite
    signs (``w_{r + m/2} = w_r``, ``a_r = +1``, ``a_{r + m/2} = -1``), so the initial output is
    exactly 0 and training starts from the zero function; ``width`` must then be even.
    Otherwise every neuron is drawn independently and the signs are random.
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
    network: ReluNetwork, X: Any, y: Any
) -> tuple[np.ndarray | float, np.ndarray]:
    """The loss ``(1/2n) ||f(X) - y||^2`` and its gradient with respect to the weights.

    The gradient is written by hand: ``(1/n) (a_r / sqrt(m)) sum_i e_i 1(w_r^T x_i > 0) x_i``
    with ``e = f(X) - y`` (ReLU's derivative at 0 taken as 0).

    Returns
    -------
    loss : float or ndarray, shape (...)
    grad : ndarray, shape (..., m, d)
    """
    x = network._inputs(X, "X")
    lab = _labels(y, x)
    ws = _Workspace(network, x, lab)
    e = ws.residual(network.weights)
    loss = 0.5 * np.mean(e * e, axis=-1)
    grad = ws.gradient(e)
    return output_like(loss), grad


def _default_lr(net: ReluNetwork, x: np.ndarray, fraction: float) -> np.ndarray:
    K = net.ntk(x)
    lam = np.linalg.eigvalsh(K)[..., -1]
    if np.any(lam <= 0):
        raise ValueError(
            "network: its empirical NTK on X is zero (no neuron is active on any input), so "
            "gradient descent cannot move it and there is no default step; start from other "
            "weights"
        )
    return fraction * x.shape[-2] / lam


def default_lr(X: Any, network: ReluNetwork, *, fraction: float = 1.0) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction * n / lambda_max(K)``.

    ``K`` is the empirical NTK Gram matrix of ``network`` on ``X`` at the start. Gradient
    descent on ``(1/2n) ||f - y||^2`` moves the outputs by ``-(lr/n) K (f - y)``, stable for
    ``lr < 2 n / lambda_max(K)`` (``fraction < 2``); the ReLU loss has no curvature beyond
    this Gauss-Newton part between changes of activation pattern.

    Returns
    -------
    float, or ndarray of the network batch shape
    """
    if not isinstance(network, ReluNetwork):
        raise ValueError(f"network must be a ReluNetwork, got {type(network).__name__}")
    x = network._inputs(X, "X")
    fraction = check_positive(fraction, "fraction")
    if fraction >= 2:
        raise ValueError(f"fraction must be < 2 (stability), got {fraction}")
    return output_like(_default_lr(network, x, fraction))


def train(
    X: Any,
    y: Any,
    network: ReluNetwork,
    *,
    lr: Any = None,
    max_steps: int = 100_000,
    tol: float = 1e-8,
    strict: bool = True,
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||f(X) - y||^2`` from ``network``.

    Fine-tuning is ``train`` from pretrained weights (:func:`pretrain`), training from scratch
    ``train`` from :func:`init_network`; its lazy-training limit is :func:`kernel_predictor`.
    The settings and the result are those of every ``train`` of the package
    (:mod:`finetune_theory._training`). Every network of the batch trains independently (one
    vectorised update for all of them); a network that has stopped takes no further steps.

    Parameters
    ----------
    X : array, shape (n, d) or (..., n, d)
        Training inputs on the unit sphere (broadcast against the network batch).
    y : array, shape (n,) or (..., n)
        Training labels.
    network : ReluNetwork
        Starting weights, shape ``(..., m, d)``.
    lr : float or array, optional
        Step size. Default :func:`default_lr` (``n / lambda_max(K)`` per network).
    max_steps : int
        Step budget.
    tol : float
        A network stops when its loss is at most ``tol`` times the zero predictor's loss
        ``(1/2n) ||y||^2``, or when one step changed its loss by at most ``max(tol, 8 eps)``
        times the loss.
    strict : bool
        Raise :class:`ConvergenceError` for networks still running after ``max_steps``
        (default); with False return them with ``converged`` False.

    Returns
    -------
    TrainResult
        ``weights`` is the trained :class:`ReluNetwork` (``start`` the one training started
        from), ``theta`` is None; the other fields have the batch shape.

    Raises
    ------
    DivergenceError
        A loss became non-finite or grew beyond ``1e10`` times its start.
    ConvergenceError
        Some network had not stopped within ``max_steps`` (with ``strict=True``).
    """
    if not isinstance(network, ReluNetwork):
        raise ValueError(f"network must be a ReluNetwork, got {type(network).__name__}")
    x = network._inputs(X, "X")
    lab = _labels(y, x)
    max_steps, tol = check_train_options(max_steps, tol)
    ws = _Workspace(network, x, lab)
    if lr is None:
        eta = np.broadcast_to(_default_lr(network, x, 1.0), ws.batch)
    else:
        eta = as_array(lr, "lr")
        if np.any(eta <= 0):
            raise ValueError(f"lr must be > 0, got {float(eta.min())}")
        try:
            eta = np.broadcast_to(eta, ws.batch)
        except ValueError:
            raise ValueError(f"lr has shape {eta.shape}, not broadcastable to {ws.batch}") from None
    eta = np.array(eta, dtype=np.float64)
    weights = np.array(np.broadcast_to(network.weights, (*ws.batch, *network.weights.shape[-2:])))
    monitor = Monitor(ws.y, ws.batch, tol, eta, max_steps)
    e = ws.residual(weights)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            if not monitor.update(t, 0.5 * np.mean(e * e, axis=-1)) or t == max_steps:
                break
            grad = ws.gradient(e)
            weights -= (eta * monitor.active)[..., None, None] * grad
            e = ws.residual(weights)
    monitor.finish(bool(strict))
    start = ReluNetwork(np.broadcast_to(network.weights, weights.shape), network.signs)
    trained = ReluNetwork(weights, network.signs)
    return TrainResult(
        weights=trained,
        theta=None,
        start=start,
        loss=monitor.loss,
        steps=monitor.steps,
        lr=eta,
        converged=monitor.converged,
        interpolated=monitor.interpolated,
        movement=np.asarray(trained.relative_distance(start)),
        history_steps=monitor.history_steps,
        loss_history=monitor.loss_history,
    )


def pretrain(
    theta_source: Any,
    *,
    width: int,
    n_source: int,
    label_scale: float = 1.0,
    lr_fraction: float = 1.0,
    seed: SeedLike = 0,
    **train_options: Any,
) -> TrainResult:
    """Pretrain on the source linear teacher from a symmetric random initialisation.

    Draws ``n_source`` inputs uniformly on the sphere, labels them ``s theta_S^T x``
    (``s = label_scale``) and runs :func:`train` from :func:`init_network`.

    Parameters
    ----------
    theta_source : array, shape (d,) or (..., d)
        Source teacher(s); leading axes become the network batch.
    width : int
        Hidden width ``m`` (even).
    n_source : int
        Source sample size.
    label_scale : float
        Labels ``label_scale * theta^T x``; ``sqrt(d)`` makes them of order one.
    lr_fraction : float
        The step is ``default_lr(x, init, fraction=lr_fraction)`` of the random start (the
        start is drawn here, so its step cannot be passed in); ignored when ``lr`` is given.
    seed : int or SeedSequence
    **train_options
        Passed to :func:`train` (``lr``, ``tol``, ``max_steps``, ``strict``).
    """
    theta = as_array(theta_source, "theta_source", min_ndim=1)
    s = check_positive(label_scale, "label_scale")
    n_source = check_positive_int(n_source, "n_source")
    batch = theta.shape[:-1]
    g_init, g_data = spawn_generators(seed, 2)
    net = init_network(width, theta.shape[-1], g_init, batch=batch)
    x = sample_sphere(n_source, theta.shape[-1], g_data, batch=batch)
    y = s * np.einsum("...nd,...d->...n", x, theta)
    if train_options.get("lr") is None:
        train_options["lr"] = default_lr(x, net, fraction=lr_fraction)
    return train(x, y, net, **train_options)


# -------------------------------------------------------------- kernel predictor
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
