"""Full-batch gradient descent for the ReLU network: its default step, `train`, `pretrain`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import safe_divide
from .._random import SeedLike, spawn_generators
from .._training import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TOL,
    Monitor,
    PretrainResult,
    TrainResult,
    check_train_options,
    renamed_start,
)
from .._validation import as_array, check_lr, check_positive, check_positive_int, output_like
from ..exceptions import InputTypeError
from ._network import ReluNetwork, _labels, _Workspace, init_network, sample_sphere

#: the default ``fraction`` of :func:`default_lr`: the inverse of the output-space curvature
DEFAULT_LR_FRACTION = 1.0


def _network(start: Any) -> ReluNetwork:
    """``start`` when it is a :class:`ReluNetwork`, else a ``TypeError``."""
    if not isinstance(start, ReluNetwork):
        raise InputTypeError(f"start must be a ReluNetwork, got {type(start).__name__}")
    return start


def _default_lr(net: ReluNetwork, x: np.ndarray, fraction: float) -> np.ndarray:
    K = net.ntk(x)
    lam = np.linalg.eigvalsh(K)[..., -1]
    if np.any(lam <= 0):
        raise ValueError(
            "start: the network's empirical NTK on X is zero (no neuron is active on any input), "
            "so gradient descent cannot move it and there is no default step; start from other "
            "weights"
        )
    return fraction * x.shape[-2] / lam


@renamed_start("network")
def default_lr(
    X: ArrayLike,
    y: ArrayLike | None = None,
    start: ReluNetwork | None = None,
    *,
    fraction: float = DEFAULT_LR_FRACTION,
) -> np.ndarray | float:
    """The default step of :func:`train`: ``fraction * n / lambda_max(K)``.

    Takes what :func:`train` takes; the step depends on ``X`` and the network ``start``, so
    ``y`` may be left out (``default_lr(X, start=net)``). ``K`` is the empirical NTK Gram matrix
    of ``start`` on ``X``. Gradient descent on ``(1/2n) ||f - y||^2`` moves the outputs by
    ``-(lr/n) K (f - y)``, stable for ``lr < 2 n / lambda_max(K)`` (``fraction < 2``); the ReLU
    loss has no curvature beyond this Gauss-Newton part between changes of activation pattern.

    Parameters
    ----------
    X : array-like, shape (n, d) or (..., n, d)
        Training inputs on the unit sphere (broadcast against the network batch).
    y : array-like, optional
        Training labels (not used for the step; checked against ``X`` when given).
    start : ReluNetwork
        The network training starts from, shape ``(..., m, d)``; required (keyword or third
        argument).
    fraction : float, default 1.0
        The step as a fraction of ``n / lambda_max(K)``, in ``(0, 2)``.

    Returns
    -------
    float, or ndarray of the network batch shape

    Examples
    --------
    >>> import numpy as np
    >>> net = ReluNetwork(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([1.0, -1.0]))
    >>> X = np.array([[1.0, 0.0]])
    >>> default_lr(X, start=net)  # K = x^T x (two active neurons of two) = 1, n = 1
    1.0
    """
    if isinstance(y, ReluNetwork) and start is None:
        warnings.warn(
            "default_lr(X, network) is deprecated: the arguments are those of train, "
            "default_lr(X, y, start) or default_lr(X, start=network)",
            DeprecationWarning,
            stacklevel=2,
        )
        y, start = None, y
    if start is None:
        raise InputTypeError("relu.default_lr needs start, the network training starts from")
    net = _network(start)
    x = net._inputs(X, "X")
    if y is not None:
        _labels(y, x)
    fraction = check_positive(fraction, "fraction")
    if fraction >= 2:
        raise ValueError(f"fraction must be < 2 (stability), got {fraction}")
    return output_like(_default_lr(net, x, fraction))


@renamed_start("network")
def train(
    X: ArrayLike,
    y: ArrayLike,
    start: ReluNetwork,
    *,
    lr: ArrayLike | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    tol: float = DEFAULT_TOL,
    strict: bool = True,
) -> TrainResult:
    """Full-batch gradient descent on ``(1/2n) ||f(X) - y||^2`` from the network ``start``.

    Fine-tuning is ``train`` from pretrained weights (:func:`pretrain`), training from scratch
    ``train`` from :func:`init_network`; its lazy-training limit is :func:`finetune`.
    The settings and the result are those of every ``train`` of the package
    (:mod:`finetune_theory._training`). Every network of the batch trains independently (one
    vectorised update for all of them); a network that has stopped takes no further steps.

    Parameters
    ----------
    X : array, shape (n, d) or (..., n, d)
        Training inputs on the unit sphere (broadcast against the network batch).
    y : array, shape (n,) or (..., n)
        Training labels.
    start : ReluNetwork
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

    Examples
    --------
    >>> import numpy as np
    >>> X = sample_sphere(5, 3, seed=0)
    >>> out = train(X, X[:, 0], init_network(400, 3, seed=1))
    >>> bool(out.interpolated), bool(out.loss <= 1e-12 * 0.5 * np.mean(X[:, 0] ** 2))
    (True, True)
    """
    net = _network(start)
    x = net._inputs(X, "X")
    lab = _labels(y, x)
    max_steps, tol = check_train_options(max_steps, tol)
    ws = _Workspace(net, x, lab)
    if lr is None:
        eta = np.array(np.broadcast_to(_default_lr(net, x, DEFAULT_LR_FRACTION), ws.batch))
    else:
        eta = check_lr(lr, ws.batch)
    weights = np.array(np.broadcast_to(net.weights, (*ws.batch, *net.weights.shape[-2:])))
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
    begin = ReluNetwork(np.broadcast_to(net.weights, weights.shape), net.signs)
    trained = ReluNetwork(weights, net.signs)
    return TrainResult(
        weights=trained,
        theta=None,
        start=begin,
        loss=monitor.loss,
        steps=monitor.steps,
        lr=eta,
        converged=monitor.converged,
        interpolated=monitor.interpolated,
        movement=np.asarray(trained.relative_distance(begin)),
        history_steps=monitor.history_steps,
        loss_history=monitor.loss_history,
    )


def pretrain(
    theta_source: ArrayLike,
    *,
    width: int,
    n_source: int,
    label_scale: float = 1.0,
    lr_fraction: float = DEFAULT_LR_FRACTION,
    lr: ArrayLike | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    tol: float = DEFAULT_TOL,
    strict: bool = True,
    seed: SeedLike = 0,
) -> PretrainResult:
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
        The step is ``default_lr(x, y, init, fraction=lr_fraction)`` of the random start (the
        start is drawn here, so its step cannot be passed in); ignored when ``lr`` is given.
    lr, max_steps, tol, strict
        As for :func:`train`.
    seed : int, SeedSequence or Generator

    Returns
    -------
    PretrainResult
        ``weights`` is the pretrained :class:`ReluNetwork` (the ``start`` of fine-tuning),
        ``source_error`` its relative RMS error on the source sample, ``training`` the run.

    Examples
    --------
    >>> import numpy as np
    >>> pre = pretrain(np.array([1.0, 0.0, 0.0]), width=40, n_source=5, seed=0)
    >>> pre.weights.width, bool(pre.source_error < 1e-5)
    (40, True)
    """
    theta = as_array(theta_source, "theta_source", min_ndim=1)
    s = check_positive(label_scale, "label_scale")
    n_source = check_positive_int(n_source, "n_source")
    batch = theta.shape[:-1]
    g_init, g_data = spawn_generators(seed, 2)
    net = init_network(width, theta.shape[-1], seed=g_init, batch=batch)
    x = sample_sphere(n_source, theta.shape[-1], seed=g_data, batch=batch)
    y = s * np.einsum("...nd,...d->...n", x, theta)
    if lr is None:
        lr = default_lr(x, y, net, fraction=lr_fraction)
    run = train(x, y, net, lr=lr, max_steps=max_steps, tol=tol, strict=strict)
    zero = 0.5 * np.mean(y * y, axis=-1)
    error = np.sqrt(safe_divide(run.loss, zero))
    return PretrainResult(
        weights=run.weights, theta=None, source_error=output_like(error), training=run
    )
