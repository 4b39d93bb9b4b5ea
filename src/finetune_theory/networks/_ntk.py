"""The empirical neural tangent kernel ``K(x, x') = <grad_w f(x), grad_w f(x')>`` at given weights.

Two routes give the same matrix. ``"jacobian"``: per-row Jacobians (one reverse pass through
the outputs of ``vmap`` over rows, each row with its own broadcast copy of the weights) on
blocks of rows, ``K = J1 J2^T`` (fast while a block of ``J`` fits in memory). ``"jvp"``: per-row
gradients of a block of the second rows the same way, then one forward-mode product of the
network over all first rows per gradient, ``K[:, j] = J1 g_j`` (``torch.func.jvp``): only a
block of gradient rows is ever held, never ``J1``, so it serves networks with up to about a
million parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._core import Functional, as_tensor, functional, to_numpy, torch_module

__all__ = ["empirical_ntk", "jacobian", "JACOBIAN_FLOATS"]

#: a block of Jacobian rows (rows x parameters) is kept under this many floats
JACOBIAN_FLOATS = 2**23
#: the "auto" route switches to Jacobian-vector products above this many parameters
_JVP_FROM = 200_000


def _blocks(n: int, size: int) -> list[slice]:
    size = max(1, int(size))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def per_row_grads(fn: Functional, x: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gradients ``{name: (rows, *shape)}`` of each row's output in the chosen parameters.

    Every row gets its own copy of the parameters (a broadcast view, no memory), the rows'
    outputs are computed by ``vmap`` over rows and copies, and one reverse pass of their sum
    gives each copy's gradient: the row's Jacobian row. Plain autograd through ``vmap`` (not
    ``torch.func.grad``, whose first call imports the compiler stack, about 2 s of CPU).
    """
    torch = torch_module()
    from torch.func import vmap

    rows = x.shape[0]
    base = fn.params if params is None else params
    with torch.enable_grad():
        leaves = {k: base[k].detach().requires_grad_(True) for k in fn.names}
        copies = {k: v.unsqueeze(0).expand(rows, *v.shape) for k, v in leaves.items()}
        out = vmap(fn.single())(copies, x)
        grads = torch.autograd.grad(out.sum(), [copies[k] for k in fn.names])
    return {k: g.detach() for k, g in zip(fn.names, grads, strict=True)}


def _jac_rows(fn: Functional, x: Any) -> Any:
    """Jacobian rows ``(rows, P)`` of the chosen parameters on the rows of ``x``."""
    torch = torch_module()
    jac = per_row_grads(fn, x)
    return torch.cat([jac[k].reshape(x.shape[0], -1) for k in fn.names], dim=1)


def _jacobian(fn: Functional, x: Any) -> Any:
    torch = torch_module()
    rows = max(1, JACOBIAN_FLOATS // max(fn.n_params, 1))
    return torch.cat([_jac_rows(fn, x[b]) for b in _blocks(x.shape[0], rows)], dim=0)


def _ntk_jvp(fn: Functional, x1: Any, x2: Any) -> Any:
    torch = torch_module()
    from torch.func import jvp, vmap

    rows = max(1, min(64, JACOBIAN_FLOATS // max(fn.n_params, 1)))
    cols = []
    for b in _blocks(x2.shape[0], rows):
        g = per_row_grads(fn, x2[b])

        def column(tangent: dict[str, Any]) -> Any:
            return jvp(lambda p: fn(p, x1), (fn.params,), (tangent,))[1]

        cols.append(vmap(column)(g).T)
    return torch.cat(cols, dim=1)


def _inputs(fn: Functional, X: ArrayLike, name: str) -> Any:
    return as_tensor(X, name, dtype=fn.dtype, device=fn.device)


def jacobian(
    model: Any,
    X: ArrayLike,
    *,
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    params: dict[str, Any] | None = None,
    device: Any = "cpu",
) -> np.ndarray:
    """The Jacobian ``J[i, k] = d f(x_i) / d w_k`` of the chosen parameters, float64.

    Parameters
    ----------
    model : torch.nn.Module
        A network whose output on a batch is ``(rows,)``, ``(rows, 1)`` or ``(rows, k)`` (then
        choose ``output``).
    X : array-like or tensor, shape (rows, ...)
        Inputs as the network takes them.
    parameters : "all", "last" or list of str
        All parameters, those of the last ``nn.Linear`` (weight and bias), or the named ones.
    output : int, optional
        The output column, for networks with several outputs.
    params : dict, optional
        Values of the chosen parameters to use instead of the network's own.
    device : str or torch.device
        Where to compute (``"cpu"`` by default; a GPU device is accepted but untested).

    Returns
    -------
    ndarray, shape (rows, P)
        Columns in ``named_parameters`` order, each parameter flattened.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(3, 1)
    >>> jacobian(net, [[1.0, 2.0, 3.0]]).tolist()  # d(w^T x + b)/d(w, b) = (x, 1)
    [[1.0, 2.0, 3.0, 1.0]]
    """
    fn = functional(model, parameters, output=output, params=params, device=device)
    return to_numpy(_jacobian(fn, _inputs(fn, X, "X")))


def empirical_ntk(
    model: Any,
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    params: dict[str, Any] | None = None,
    method: str = "auto",
    device: Any = "cpu",
) -> np.ndarray:
    """The empirical NTK ``K[i, j] = <grad_w f(x1_i), grad_w f(x2_j)>`` at the given weights.

    Parameters
    ----------
    model : torch.nn.Module
    X1 : array-like or tensor, shape (n1, ...)
    X2 : array-like or tensor, shape (n2, ...), optional
        ``X1`` when omitted (the Gram matrix).
    parameters : "all", "last" or list of str
        The parameters the gradient is taken in (see :func:`jacobian`).
    output : int, optional
        The output column, for networks with several outputs.
    params : dict, optional
        Values of the chosen parameters to use instead of the network's own (the kernel at
        other weights, for instance after training).
    method : {"auto", "jacobian", "jvp"}
        ``"jacobian"``: blocks of Jacobian rows by ``vmap(jacrev)``; ``"jvp"``: gradients of a
        block of ``X2`` rows and forward-mode products over ``X1``, never holding the Jacobian
        of ``X1`` (for large parameter counts); ``"auto"``: ``"jvp"`` above 200,000 parameters.
    device : str or torch.device
        Where to compute (``"cpu"`` by default; GPU accepted but untested).

    Returns
    -------
    ndarray, shape (n1, n2), float64

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> empirical_ntk(net, [[1.0, 0.0], [0.0, 2.0]]).tolist()  # x^T x' + 1
    [[2.0, 1.0], [1.0, 5.0]]
    """
    if method not in ("auto", "jacobian", "jvp"):
        raise ValueError(f"method must be 'auto', 'jacobian' or 'jvp', got {method!r}")
    fn = functional(model, parameters, output=output, params=params, device=device)
    x1 = _inputs(fn, X1, "X1")
    x2 = x1 if X2 is None else _inputs(fn, X2, "X2")
    if x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"X2 rows have shape {tuple(x2.shape[1:])}, X1 rows "
                         f"{tuple(x1.shape[1:])}")
    if method == "auto":
        method = "jvp" if fn.n_params > _JVP_FROM else "jacobian"
    if method == "jvp":
        return to_numpy(_ntk_jvp(fn, x1, x2))
    j1 = _jacobian(fn, x1)
    j2 = j1 if X2 is None else _jacobian(fn, x2)
    return to_numpy(j1 @ j2.T)
