"""The functional view of a ``torch.nn.Module``: parameters as a flat dict, outputs as a function.

Private to :mod:`finetune_theory.networks`. torch is imported inside the functions only, so the
package imports without it; :func:`torch_module` raises the ImportError that names the extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["torch_module", "Functional", "functional", "last_linear", "as_tensor", "to_numpy"]


def torch_module() -> Any:
    """``torch``, or the :class:`~finetune_theory.data.MissingExtraError` (an
    ``ImportError``) that says ``pip install 'finetune-theory[torch]'``."""
    from ..data import require

    return require("torch", extra="torch", purpose="finetune_theory.networks")


def as_tensor(X: ArrayLike, name: str, *, dtype: Any, device: Any) -> Any:
    """A finite tensor of ``dtype`` on ``device`` from an array or tensor (``ValueError`` if not
    finite or empty)."""
    torch = torch_module()
    if isinstance(X, torch.Tensor):
        t = X.detach().to(dtype=dtype, device=device)
    else:
        try:
            t = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=dtype, device=device)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric ({exc})") from None
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def to_numpy(t: Any) -> np.ndarray:
    """A float64 NumPy copy of a tensor."""
    return t.detach().to("cpu").double().numpy().copy()


def last_linear(model: Any, layer: str | None = None) -> tuple[str, Any]:
    """The name and module of the head: the last ``nn.Linear`` in ``model.named_modules()``
    order, or the module called ``layer``."""
    torch = torch_module()
    named = dict(model.named_modules())
    if layer is not None:
        if layer not in named:
            raise ValueError(f"layer {layer!r} is not a module of the network; modules: "
                             f"{', '.join(k for k in named if k)}")
        mod = named[layer]
        if not isinstance(mod, torch.nn.Linear):
            raise ValueError(f"layer {layer!r} must be a torch.nn.Linear, got {type(mod).__name__}")
        return layer, mod
    linears = [(k, m) for k, m in named.items() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("the network has no torch.nn.Linear layer to use as its head")
    return linears[-1]


@dataclass(frozen=True, eq=False)
class Functional:
    """A network as a function of a chosen set of its parameters.

    Attributes
    ----------
    names : tuple of str
        The chosen (trainable) parameters, in ``named_parameters`` order.
    params : dict
        Their values (detached copies in the working dtype and device).
    frozen : dict
        Every other parameter and buffer, held fixed.
    output : int or None
        The output index taken (``None``: the output must be scalar per row).
    """

    model: Any
    names: tuple[str, ...]
    params: dict[str, Any]
    frozen: dict[str, Any]
    output: int | None
    dtype: Any
    device: Any

    @property
    def n_params(self) -> int:
        """The number of chosen scalar parameters."""
        return int(sum(p.numel() for p in self.params.values()))

    def __call__(self, params: dict[str, Any], x: Any) -> Any:
        """Outputs ``(rows,)`` of the network with ``params`` on inputs ``x`` (a batch)."""
        from torch.func import functional_call

        out = functional_call(self.model, {**self.frozen, **params}, (x,))
        return select_output(out, self.output)

    def single(self) -> Callable[[dict[str, Any], Any], Any]:
        """The scalar output on one input row (for ``vmap`` over rows)."""

        def f(params: dict[str, Any], x1: Any) -> Any:
            return self(params, x1.unsqueeze(0))[0]

        return f

    def flat(self, params: dict[str, Any] | None = None) -> Any:
        """The chosen parameters as one vector."""
        torch = torch_module()
        p = self.params if params is None else params
        return torch.cat([p[k].reshape(-1) for k in self.names])


def select_output(out: Any, output: int | None) -> Any:
    """``(rows,)`` from a network output ``(rows,)``, ``(rows, 1)`` or ``(rows, k)``."""
    if output is None:
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0]
        if out.ndim == 1:
            return out
        raise ValueError(
            f"the network's output has shape {tuple(out.shape)}; pass output=<index> to choose "
            "one output per row"
        )
    if out.ndim != 2 or not -out.shape[1] <= output < out.shape[1]:
        raise ValueError(f"output={output} is not a column of the output of shape "
                         f"{tuple(out.shape)}")
    return out[:, output]


def _chosen(model: Any, parameters: str | Sequence[str], layer: str | None) -> list[str]:
    names = [k for k, _ in model.named_parameters()]
    if isinstance(parameters, str):
        if parameters == "all":
            return names
        if parameters == "last":
            head, _ = last_linear(model, layer)
            prefix = f"{head}." if head else ""
            return [k for k in names if k.startswith(prefix) and k[len(prefix):] in
                    ("weight", "bias")]
        raise ValueError(
            f"parameters must be 'all', 'last' or a list of parameter names, got {parameters!r}"
        )
    chosen = list(parameters)
    unknown = [k for k in chosen if k not in names]
    if unknown or not chosen:
        raise ValueError(
            f"unknown parameter name(s) {unknown or '(none given)'}; the network has: "
            f"{', '.join(names)}"
        )
    return [k for k in names if k in set(chosen)]


def functional(
    model: Any,
    parameters: str | Sequence[str] = "all",
    *,
    output: int | None = None,
    layer: str | None = None,
    params: dict[str, Any] | None = None,
    dtype: Any = None,
    device: Any = "cpu",
) -> Functional:
    """The :class:`Functional` of ``model`` for the chosen ``parameters``.

    ``params`` overrides the values of chosen parameters (other weights of the same network,
    for instance after fine-tuning). ``dtype`` defaults to ``torch.float64``.
    """
    torch = torch_module()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    dtype = torch.float64 if dtype is None else dtype
    chosen = _chosen(model, parameters, layer)
    state = {k: v.detach() for k, v in model.named_parameters()}
    state |= {k: v.detach() for k, v in model.named_buffers()}
    if params is not None:
        extra = sorted(set(params) - set(chosen))
        if extra:
            raise ValueError(f"params holds parameters that are not chosen: {extra}")
        state |= {k: v.detach() for k, v in params.items()}

    def cast(v: Any) -> Any:
        return v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)

    chosen_set = set(chosen)
    return Functional(
        model=model,
        names=tuple(chosen),
        params={k: cast(state[k]) for k in chosen},
        frozen={k: cast(v) for k, v in state.items() if k not in chosen_set},
        output=output,
        dtype=dtype,
        device=device,
    )
