"""Full-batch gradient descent for the ReLU network: its default step, `train`, `pretrain`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._random import SeedLike, spawn_generators
from .._training import Monitor, TrainResult, check_train_options
from .._validation import (
    as_array,
    check_positive,
    check_positive_int,
    output_like,
)
from ._network import ReluNetwork, _labels, _Workspace, init_network, sample_sphere


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
