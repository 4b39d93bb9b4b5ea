"""Penultimate features, the linearised fine-tuning predictor and real gradient descent.

Near the pretrained weights ``w_S`` a network is its linearisation
``f(x; w) ~ f_S(x) + grad_w f_S(x)^T (w - w_S)``. Gradient descent on ``(1/2n) ||f(X) - y||^2``
from ``w_S`` moves the linearised network along the row space of the Jacobian, so it is the
kernel regression of the residual ``r = y - f_S(X)`` with the empirical NTK ``K = J J^T``:
``f(x) = f_S(x) + K(x, X) alpha``. Training only the head (the last ``nn.Linear``) is exactly
linear regression on the penultimate features started from the source head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import EIG_RTOL, TINY
from .._validation import as_array, check_nonnegative, check_positive_int
from ..exceptions import DivergenceError
from ._core import as_tensor, functional, last_linear, select_output, to_numpy, torch_module
from ._ntk import empirical_ntk

__all__ = [
    "Penultimate",
    "penultimate_features",
    "advisor_inputs",
    "LinearisedFit",
    "kernel_finetune",
    "linearised_predictor",
    "NetworkTrainResult",
    "train",
]


# ----------------------------------------------------------------- penultimate features
@dataclass(frozen=True)
class Penultimate:
    """The input of a network's head and the head itself.

    Parameters
    ----------
    features : ndarray, shape (rows, h)
        The input of the last ``nn.Linear`` on each row.
    coef : ndarray, shape (h,)
        The head's weights for the chosen output.
    intercept : float
        The head's bias for the chosen output (0 without a bias).
    layer : str
        The name of the head module.

    Examples
    --------
    >>> pen = Penultimate(np.ones((2, 3)), np.array([1.0, 2.0, 3.0]), 0.5, "head")
    >>> pen.outputs().tolist(), pen.design().shape
    ([6.5, 6.5], (2, 4))
    """

    features: np.ndarray
    coef: np.ndarray
    intercept: float
    layer: str

    def design(self) -> np.ndarray:
        """Features with a column of ones appended (the head's bias as a last coefficient)."""
        return np.hstack([self.features, np.ones((self.features.shape[0], 1))])

    @property
    def theta(self) -> np.ndarray:
        """The head as one vector ``(coef, intercept)``, matching :meth:`design`."""
        return np.append(self.coef, self.intercept)

    def outputs(self) -> np.ndarray:
        """The network's outputs, ``features @ coef + intercept``."""
        return self.features @ self.coef + self.intercept


def penultimate_features(
    model: Any,
    X: ArrayLike,
    *,
    layer: str | None = None,
    output: int | None = None,
    device: Any = "cpu",
) -> Penultimate:
    """The features a network's head sees, by a forward hook on the head.

    Parameters
    ----------
    model : torch.nn.Module
    X : array-like or tensor, shape (rows, ...)
    layer : str, optional
        The name of the head (an ``nn.Linear``); default: the last ``nn.Linear`` of the network.
        The network's output must be that layer's output.
    output : int, optional
        The output column, for heads with several outputs.
    device : str or torch.device
        Where to compute (CPU by default; GPU accepted but untested).

    Returns
    -------
    Penultimate

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> pen = penultimate_features(net, np.ones((4, 2)))
    >>> pen.features.shape, pen.layer
    ((4, 3), '2')
    >>> out = net(torch.ones(4, 2, dtype=torch.float64).float()).detach().numpy()[:, 0]
    >>> bool(np.allclose(pen.outputs(), out, atol=1e-6))
    True
    """
    torch = torch_module()
    from torch.func import functional_call

    name, head = last_linear(model, layer)
    fn = functional(model, "all", output=output, device=device)
    x = as_tensor(X, "X", dtype=fn.dtype, device=device)
    seen: list[Any] = []
    hook = head.register_forward_hook(lambda mod, args, out: seen.append((args[0], out)))
    try:
        with torch.no_grad():
            out = functional_call(model, {**fn.frozen, **fn.params}, (x,))
    finally:
        hook.remove()
    if not seen:
        raise ValueError(f"layer {name!r} was not called in the forward pass")
    feats, head_out = seen[-1]
    if head_out.shape != out.shape or not bool(torch.equal(head_out, out)):
        raise ValueError(f"the network's output is not the output of layer {name!r}; pass the "
                         "head's name as layer=")
    col = 0 if output is None else output
    select_output(out, output)  # checks the output choice
    prefix = f"{name}." if name else ""
    weight = fn.params[prefix + "weight"]
    bias = fn.params.get(prefix + "bias")
    return Penultimate(
        features=to_numpy(feats.reshape(feats.shape[0], -1)),
        coef=to_numpy(weight[col]),
        intercept=0.0 if bias is None else float(bias[col]),
        layer=name,
    )


def advisor_inputs(
    model: Any, X: ArrayLike, *, layer: str | None = None, output: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """A network as inputs of :func:`finetune_theory.advisor.advise`: features and a source.

    The advisor predicts linear fine-tuning; on the penultimate features with the head as the
    source that is fine-tuning the network's last layer.

    Parameters
    ----------
    model : torch.nn.Module
        The pretrained network.
    X : array-like or tensor, shape (rows, ...)
        Inputs as the network takes them.
    layer : str, optional
        The name of the head (an ``nn.Linear``); default: the last ``nn.Linear`` of the network.
    output : int, optional
        The output column, for heads with several outputs.

    Returns
    -------
    features : ndarray, shape (rows, h)
        The penultimate features of ``X`` (pass them as the advisor's ``X``).
    source : dict
        ``{"coef": head weights, "intercept": head bias}``, a source the advisor reads.

    Examples
    --------
    >>> import torch
    >>> from finetune_theory.advisor import advise
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> X = np.random.default_rng(0).standard_normal((40, 5))
    >>> feats, source = advisor_inputs(net, X)
    >>> y = feats @ source["coef"] + source["intercept"] + 0.01  # the head almost right
    >>> advice = advise(feats, y, {"net": source})
    >>> feats.shape, advice.ranking
    ((40, 16), ['net'])
    """
    pen = penultimate_features(model, X, layer=layer, output=output)
    return pen.features, {"coef": pen.coef, "intercept": pen.intercept}


# ------------------------------------------------------------ linearised predictor
@dataclass(frozen=True)
class LinearisedFit:
    """Predictions of the linearised network after fine-tuning.

    Parameters
    ----------
    predictions : ndarray, shape (t,)
        ``f_S(x) + K(x, X) alpha`` on the test rows.
    fitted : ndarray, shape (n,)
        The same on the training rows.
    coef : ndarray, shape (n,)
        ``alpha``: the dual coefficients of the residual.
    source_predictions : ndarray, shape (t,)
        ``f_S`` on the test rows (the pretrained network, not fine-tuned).

    Examples
    --------
    >>> fit = kernel_finetune(np.eye(2), np.eye(2), [1.0, 2.0], np.zeros(2), np.zeros(2))
    >>> fit.predictions.tolist(), fit.coef.tolist()
    ([1.0, 2.0], [1.0, 2.0])
    """

    predictions: np.ndarray
    fitted: np.ndarray
    coef: np.ndarray
    source_predictions: np.ndarray


def kernel_finetune(
    K: ArrayLike,
    K_test: ArrayLike,
    y: ArrayLike,
    source_train: ArrayLike,
    source_test: ArrayLike,
    *,
    ridge: float = 0.0,
    time: float | None = None,
) -> LinearisedFit:
    """Fine-tuning of a linear model in kernel form, from the source's outputs.

    Gradient flow on ``(1/2n) ||f(X) - y||^2 + (ridge/2) ||w - w_S||^2`` for the model
    ``f(x) = f_S(x) + phi(x)^T (w - w_S)`` with ``K = Phi Phi^T``. With ``K = U diag(s) U^T``
    and the residual ``r = y - f_S(X)``, the dual coefficients are
    ``alpha = U diag((1 - exp(-time (s/n + ridge))) / (s + n ridge)) U^T r``:
    ``time = None`` (run to the end) and ``ridge = 0`` give the minimum-norm interpolation
    ``K^+ r`` (eigenvalues below ``1e-12`` of the largest count as zero).

    Parameters
    ----------
    K : array, shape (n, n)
        Kernel on the training rows.
    K_test : array, shape (t, n)
        Kernel between test and training rows.
    y : array, shape (n,)
        Training labels.
    source_train, source_test : array, shapes (n,) and (t,)
        The pretrained network's outputs.
    ridge : float
        Ridge towards the source, in the convention of :func:`finetune_theory.linear.finetune`
        (``(Phi^T Phi / n + ridge I)^-1``).
    time : float, optional
        Gradient-flow time (learning rate times steps); ``None``: to convergence.

    Returns
    -------
    LinearisedFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> phi, w = rng.standard_normal((5, 8)), rng.standard_normal(8)
    >>> K = phi @ phi.T
    >>> fit = kernel_finetune(K, K, phi @ w, np.zeros(5), np.zeros(5))
    >>> bool(np.allclose(fit.fitted, phi @ w))  # interpolates
    True
    """
    k = as_array(K, "K", min_ndim=2, max_ndim=2)
    n = k.shape[0]
    if k.shape != (n, n):
        raise ValueError(f"K must be square, got shape {k.shape}")
    kt = as_array(K_test, "K_test", min_ndim=2, max_ndim=2)
    if kt.shape[1] != n:
        raise ValueError(f"K_test must have {n} columns (one per training row), got {kt.shape}")
    lab = as_array(y, "y", min_ndim=1, max_ndim=1)
    fs = as_array(source_train, "source_train", min_ndim=1, max_ndim=1)
    ft = as_array(source_test, "source_test", min_ndim=1, max_ndim=1)
    if lab.size != n or fs.size != n or ft.size != kt.shape[0]:
        raise ValueError("y and source_train need one value per training row, source_test one "
                         "per test row")
    lam = check_nonnegative(ridge, "ridge")
    if time is not None and not (time > 0):
        raise ValueError(f"time must be positive (or None for convergence), got {time!r}")
    s, u = np.linalg.eigh(0.5 * (k + k.T))
    s = np.clip(s, 0.0, None)
    top = max(float(s.max(initial=0.0)), 0.0)
    keep = s > EIG_RTOL * top
    den = s + n * lam
    with np.errstate(divide="ignore", invalid="ignore"):
        if time is None or math.isinf(time):
            filt = np.where(keep | (lam > 0), 1.0 / np.where(den > 0, den, 1.0), 0.0)
        else:
            rate = s / n + lam
            small = rate * time < 1e-8
            filt = np.where(small, time / n * (1.0 - 0.5 * rate * time),
                            -np.expm1(-rate * time) / np.where(den > 0, den, 1.0))
            filt = np.where(keep | (lam > 0), filt, 0.0)
    r = lab - fs
    alpha = u @ (filt * (u.T @ r))
    return LinearisedFit(predictions=ft + kt @ alpha, fitted=fs + k @ alpha, coef=alpha,
                         source_predictions=ft)


def linearised_predictor(
    model: Any,
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_test: ArrayLike,
    *,
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    ridge: float = 0.0,
    time: float | None = None,
    method: str = "auto",
    device: Any = "cpu",
) -> LinearisedFit:
    """Predictions of the network linearised at its weights and fine-tuned on ``(X_train, y)``.

    ``f(x) = f_S(x) + K(x, X) alpha`` with the empirical NTK ``K`` of the chosen parameters at
    the network's weights and ``alpha`` from :func:`kernel_finetune` (``ridge = 0``, ``time =
    None``: gradient descent to zero training loss; exact for a network linear in the chosen
    parameters).

    Parameters
    ----------
    model : torch.nn.Module
        The pretrained network (its weights are the source).
    X_train : array-like or tensor, shape (n, ...)
        Training inputs.
    y_train : array-like, shape (n,)
        Training labels.
    X_test : array-like or tensor, shape (t, ...)
        Inputs to predict on.
    parameters : "all", "last" or list of str, default "all"
        The parameters fine-tuned (see :func:`~finetune_theory.networks.jacobian`).
    output : int, optional
        The output column, for networks with several outputs.
    ridge : float, default 0.0
        Ridge towards the source, in the convention of
        :func:`finetune_theory.linear.finetune`.
    time : float, optional
        Gradient-flow time (learning rate times steps); ``None``: to convergence.
    method : {"auto", "jacobian", "jvp"}, default "auto"
        How the empirical NTK is computed (see
        :func:`~finetune_theory.networks.empirical_ntk`).
    device : str or torch.device, default "cpu"
        Where to compute (GPU accepted but untested).

    Returns
    -------
    LinearisedFit

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(3, 1)  # linear in its parameters: the predictor is exact
    >>> rng = np.random.default_rng(1)
    >>> X, Xt = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    >>> fit = linearised_predictor(net, X, [1.0, -1.0], Xt)
    >>> fit.fitted.round(8).tolist()
    [1.0, -1.0]
    """
    fn = functional(model, parameters, output=output, device=device)
    torch = torch_module()
    xtr = as_tensor(X_train, "X_train", dtype=fn.dtype, device=device)
    xte = as_tensor(X_test, "X_test", dtype=fn.dtype, device=device)
    with torch.no_grad():
        fs, ft = to_numpy(fn(fn.params, xtr)), to_numpy(fn(fn.params, xte))
    opts = {"parameters": parameters, "output": output, "method": method, "device": device}
    K = empirical_ntk(model, xtr, **opts)
    K_test = empirical_ntk(model, xte, xtr, **opts)
    return kernel_finetune(K, K_test, y_train, fs, ft, ridge=ridge, time=time)


# ----------------------------------------------------------------- gradient descent
@dataclass(frozen=True, eq=False)
class NetworkTrainResult:
    """Outcome of :func:`train` on a batch of ``R`` fine-tuning problems.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        The trained parameters, each with a leading axis of length ``R``.
    loss : ndarray, shape (R,)
        Final training loss ``(1/2n) ||f(X) - y||^2``.
    start_loss : ndarray, shape (R,)
        The loss at the pretrained weights.
    lr : ndarray, shape (R,)
        Step size of each problem.
    steps : int
        Steps taken.
    time : ndarray, shape (R,)
        ``lr * steps``: the gradient-flow time of each problem.
    movement : ndarray, shape (R,)
        ``||w - w_S|| / ||w_S||`` over the trained parameters.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> res = train(net, [[1.0, 0.0], [0.0, 1.0]], [2.0, -1.0], lr=0.5, max_steps=10)
    >>> res.steps, res.loss.shape
    (10, (1,))
    """

    params: dict[str, Any]
    loss: np.ndarray
    start_loss: np.ndarray
    lr: np.ndarray
    steps: int
    time: np.ndarray
    movement: np.ndarray

    def replica(self, i: int) -> dict[str, Any]:
        """The parameters of problem ``i`` (for ``params=`` of the kernel functions).

        Parameters
        ----------
        i : int
            Index of the problem, in ``range(R)``.

        Returns
        -------
        dict of str to torch.Tensor
            Each trained parameter without the leading axis.

        Examples
        --------
        >>> import torch
        >>> net = torch.nn.Linear(2, 1)
        >>> res = train(net, [[1.0, 0.0], [0.0, 1.0]], [2.0, -1.0], lr=0.5, max_steps=10)
        >>> sorted(res.replica(0)), tuple(res.replica(0)["weight"].shape)
        (['bias', 'weight'], (1, 2))
        """
        return {k: v[i] for k, v in self.params.items()}

    def outputs(self, model: Any, X: ArrayLike, *, output: int | None = None) -> np.ndarray:
        """Outputs ``(R, rows)`` of every trained problem on the same inputs ``X``.

        Parameters
        ----------
        model : torch.nn.Module
            The network that was trained (its parameters not in :attr:`params` are used as
            they are).
        X : array-like or tensor, shape (rows, ...)
            Inputs.
        output : int, optional
            The output column, for networks with several outputs.

        Returns
        -------
        ndarray, shape (R, rows)

        Examples
        --------
        >>> import torch
        >>> net = torch.nn.Linear(2, 1)
        >>> res = train(net, [[1.0, 0.0], [0.0, 1.0]], [2.0, -1.0], lr=0.5, max_steps=10)
        >>> res.outputs(net, np.ones((3, 2))).shape
        (1, 3)
        """
        torch = torch_module()
        from torch.func import vmap

        names = list(self.params)
        fn = functional(model, names, output=output,
                        device=next(iter(self.params.values())).device)
        x = as_tensor(X, "X", dtype=fn.dtype, device=fn.device)
        with torch.no_grad():
            return to_numpy(vmap(lambda p: fn(p, x))(self.params))


def train(
    model: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    lr: ArrayLike,
    max_steps: int,
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    rows: ArrayLike | None = None,
    start: dict[str, Any] | None = None,
    device: Any = "cpu",
) -> NetworkTrainResult:
    """Full-batch gradient descent from the network's weights, on a batch of problems at once.

    Each problem takes ``max_steps`` steps of its own size ``lr`` on its own loss
    ``(1/2n) ||f(X_r) - y_r||^2`` over the chosen parameters (the others frozen); the problems
    run together through ``torch.func.vmap``. The network itself is not modified.

    Parameters
    ----------
    model : torch.nn.Module
    X : array-like or tensor, shape (R, n, ...) or (n, ...)
        Training inputs of ``R`` problems (or of one).
    y : array-like, shape (R, n) or (n,)
    lr : float or array of shape (R,)
        Step size, one for all problems or one per problem.
    max_steps : int
        Steps taken (problem ``r`` runs for the gradient-flow time ``lr_r * max_steps``).
    parameters : "all", "last" or list of str
        The parameters trained.
    output : int, optional
        The output column, for networks with several outputs.
    rows : array of int, shape (R,), optional
        Problem ``r`` uses its first ``rows[r]`` rows (the rest is padding), so that problems
        of different sizes share one batch. Default: all ``n``.
    start : dict, optional
        Per-problem starting values of the chosen parameters, each with a leading axis ``R``
        (several pretrained networks of the same architecture in one batch). Default: the
        network's own weights for every problem.
    device : str or torch.device
        CPU by default; GPU accepted but untested.

    Returns
    -------
    NetworkTrainResult

    Raises
    ------
    DivergenceError
        The loss of a problem became non-finite or grew beyond ``1e10`` times its start.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.zero_()
    >>> res = train(net, [[1.0, 0.0], [0.0, 1.0]], [2.0, -1.0], lr=1.0, max_steps=200)
    >>> res.replica(0)["weight"].numpy().round(6).tolist()
    [[2.0, -1.0]]
    >>> res.outputs(net, [[1.0, 1.0]]).round(6).tolist()
    [[1.0]]
    """
    torch = torch_module()
    from torch.func import vmap

    fn = functional(model, parameters, output=output, device=device)
    x = as_tensor(X, "X", dtype=fn.dtype, device=device)
    lab = as_tensor(y, "y", dtype=fn.dtype, device=device)
    if lab.ndim == 1:
        x, lab = x.unsqueeze(0), lab.unsqueeze(0)
    if lab.ndim != 2 or x.shape[:2] != lab.shape:
        raise ValueError(f"X must be (R, n, ...) and y (R, n) with the same R and n; got X "
                         f"{tuple(x.shape)} and y {tuple(lab.shape)}")
    reps, n = lab.shape
    steps = check_positive_int(max_steps, "max_steps")
    step = np.broadcast_to(np.asarray(lr, dtype=np.float64), (reps,)).copy()
    if not np.all(np.isfinite(step) & (step > 0)):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if rows is None:
        counts = np.full(reps, n)
    else:
        counts = np.broadcast_to(np.asarray(rows), (reps,)).astype(np.int64)
        if np.any(counts < 1) or np.any(counts > n):
            raise ValueError(f"rows must be integers in [1, {n}], got {np.asarray(rows)}")
    mask = torch.as_tensor(np.arange(n)[None, :] < counts[:, None], dtype=fn.dtype,
                           device=device)
    inv_n = torch.as_tensor(1.0 / counts, dtype=fn.dtype, device=device)
    lr_t = torch.as_tensor(step, dtype=fn.dtype, device=device)

    def loss(params: dict[str, Any], xr: Any, yr: Any, mr: Any, ir: Any) -> Any:
        return 0.5 * torch.sum(mr * (fn(params, xr) - yr) ** 2) * ir

    batched_loss = vmap(loss)

    def batched_grad(params: dict[str, Any], *rest: Any) -> dict[str, Any]:
        # the problems' losses are separable: one reverse pass of their sum gives each
        # problem's gradient (plain autograd; torch.func.grad would import the compiler stack)
        with torch.enable_grad():
            leaves = {k: params[k].detach().requires_grad_(True) for k in fn.names}
            total = batched_loss(leaves, *rest).sum()
            grads = torch.autograd.grad(total, [leaves[k] for k in fn.names])
        return dict(zip(fn.names, grads, strict=True))
    if start is None:
        params = {k: v.unsqueeze(0).expand(reps, *v.shape).clone() for k, v in fn.params.items()}
    else:
        if set(start) != set(fn.names):
            raise ValueError(f"start must hold exactly the trained parameters {list(fn.names)}")
        params = {k: as_tensor(start[k], "start", dtype=fn.dtype, device=device)
                  for k in fn.names}
        if any(v.shape != (reps, *fn.params[k].shape) for k, v in params.items()):
            raise ValueError(f"start values need a leading axis of length {reps}")
    origin = torch.cat([params[k].reshape(reps, -1) for k in fn.names], dim=1)
    with torch.no_grad():
        first = batched_loss(params, x, lab, mask, inv_n)
    limit = 1e10 * torch.clamp(first, min=TINY)
    cur = first
    for i in range(steps):
        g = batched_grad(params, x, lab, mask, inv_n)
        params = {
            k: params[k] - lr_t.reshape(-1, *([1] * (params[k].ndim - 1))) * g[k]
            for k in fn.names
        }
        if i % 50 == 49 or i == steps - 1:
            with torch.no_grad():
                cur = batched_loss(params, x, lab, mask, inv_n)
            if not bool(torch.isfinite(cur).all()) or bool((cur > limit).any()):
                raise DivergenceError(f"the loss blew up at step {i + 1}; lower lr")
    flat = torch.cat([params[k].reshape(reps, -1) for k in fn.names], dim=1)
    base = torch.clamp(torch.linalg.norm(origin, dim=1), min=TINY)
    move = torch.linalg.norm(flat - origin, dim=1) / base
    return NetworkTrainResult(
        params={k: v.detach() for k, v in params.items()},
        loss=to_numpy(cur),
        start_loss=to_numpy(first),
        lr=step,
        steps=steps,
        time=step * steps,
        movement=to_numpy(move),
    )
