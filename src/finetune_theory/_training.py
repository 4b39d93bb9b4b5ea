"""What ``train`` means in every architecture: one result type and one stopping rule.

:func:`finetune_theory.linear.train`, :func:`finetune_theory.deep_linear.train` and
:func:`finetune_theory.relu.train` all run full-batch gradient descent on the training loss

    L = (1/2n) ||f(X) - y||^2

with the same signature ``train(X, y, start, *, lr=None, max_steps=DEFAULT_MAX_STEPS,
tol=DEFAULT_TOL, strict=True)`` (``start`` is the architecture's own parameters: a weight
vector, a list of layers, a network) and the same three settings, which mean the same thing in
each:

``lr``
    The step size (a float, or one value per problem of the batch). ``None`` picks a stable
    step from the curvature of the loss at the start: each module's ``default_lr(X, y, start,
    *, fraction)`` returns ``fraction / C``, ``C`` its estimate of that curvature (gradient
    descent is stable for ``fraction < 2``; the default ``fraction`` of each module says how
    tight its estimate is). ``default_lr`` takes what ``train`` takes and uses what its
    architecture needs.
``max_steps``
    The step budget. A problem still running after it raises
    :class:`~finetune_theory.exceptions.ConvergenceError` (or, with ``strict=False``, is
    returned with ``converged`` False).
``tol``
    A problem stops when its loss is at most ``tol`` times the loss of the zero predictor,
    ``(1/2n) ||y||^2`` (it interpolates: ``interpolated`` True), or when one step changed its
    loss by at most ``max(tol, 8 eps)`` times the loss, ``eps`` the float64 machine epsilon (a
    stationary point that does not interpolate, such as least squares with more samples than
    dimensions; ``interpolated`` False). Relative changes below ``8 eps`` are rounding.

A loss that becomes non-finite or grows beyond ``1e10`` times the larger of its start and the
zero predictor's loss raises :class:`~finetune_theory.exceptions.DivergenceError`. Every problem
of a batch stops on its own and then takes steps of size zero, so its result does not depend on
the others. The outcome is a :class:`TrainResult`, the same fields for the three architectures;
``pretrain`` returns a :class:`PretrainResult` in every architecture that has it.

Batches follow one convention everywhere: leading axes, ``X (..., n, d)``, ``y (..., n)``,
parameters with the same leading axes, broadcast against each other.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ._numerics import ROUNDING, TINY, safe_divide
from ._validation import check_positive, check_positive_int, output_like
from .exceptions import ConvergenceError, DivergenceError

__all__ = [
    "TrainResult",
    "PretrainResult",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_TOL",
    "Monitor",
    "check_train_options",
    "relative_movement",
    "renamed_start",
    "BLOWUP",
    "ROUNDING",
]

#: a loss this many times above its reference counts as diverged
BLOWUP = 1e10
#: the step budget of every ``train`` unless ``max_steps`` is given
DEFAULT_MAX_STEPS = 200_000
#: the stopping tolerance of every ``train`` unless ``tol`` is given
DEFAULT_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of ``train`` in :mod:`~finetune_theory.linear`, :mod:`~finetune_theory.deep_linear`
    and :mod:`~finetune_theory.relu`.

    Array fields have the batch shape of the problems trained together (shape ``()`` or a
    Python scalar for a single problem, as each module documents).

    Parameters
    ----------
    weights : ndarray, list of ndarray or ReluNetwork
        The trained parameters in the architecture's own form: the weight vector ``(..., d)``
        (linear), the list of layer matrices (deep linear), the network (ReLU).
    theta : ndarray or None
        The end-to-end vector ``(..., d)`` of the trained predictor ``x -> theta^T x``
        (the weights themselves for linear regression); None for ReLU networks.
    start : same type as ``weights``
        The parameters training started from.
    loss : ndarray
        Final training loss ``(1/2n) ||f(X) - y||^2``.
    steps : ndarray of int
        Steps each problem took until it stopped.
    lr : ndarray
        Step size of each problem.
    converged : ndarray of bool
        True where a stopping test of ``tol`` was met within ``max_steps``.
    interpolated : ndarray of bool
        True where the problem stopped because its loss fell to ``tol`` times the zero
        predictor's loss; False where it stopped at a stationary point (or did not stop).
    movement : ndarray
        ``||w - w_start|| / ||w_start||`` over all trained parameters (``inf`` from a zero
        start that moved): small in the lazy regime.
    history_steps : ndarray of int, shape (k,)
        The log-spaced steps at which the loss was recorded (first 0, last the final step).
    loss_history : ndarray, shape (k, ...)
        The training loss of every problem at those steps.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import linear
    >>> out = linear.train(np.eye(2), np.array([1.0, 2.0]), np.zeros(2))
    >>> out.theta.round(6), bool(out.converged), out.history_steps[0], out.initial_loss
    (array([1., 2.]), True, np.int64(0), 1.25)
    """

    weights: Any
    theta: np.ndarray | None
    start: Any
    loss: Any
    steps: Any
    lr: Any
    converged: Any
    interpolated: Any
    movement: Any
    history_steps: np.ndarray
    loss_history: np.ndarray

    @property
    def initial_loss(self) -> Any:
        """The training loss at the start (``loss_history[0]``)."""
        first = self.loss_history[0]
        return output_like(first)

    @property
    def history(self) -> list[tuple[int, float]]:
        """``(step, mean training loss over the batch)`` pairs."""
        k = len(self.history_steps)
        mean = self.loss_history.reshape(k, -1).mean(axis=1)
        return [(int(t), float(v)) for t, v in zip(self.history_steps, mean, strict=True)]


@dataclass(frozen=True, eq=False)
class PretrainResult:
    """Outcome of ``pretrain`` in :mod:`~finetune_theory.deep_linear` and
    :mod:`~finetune_theory.relu`: a network trained on source data, ready to fine-tune.

    Parameters
    ----------
    weights : list of ndarray or ReluNetwork
        The pretrained parameters, the ``start`` to pass to ``train``: the list of layers (deep
        linear), the network (ReLU).
    theta : ndarray or None
        The end-to-end vector of the pretrained network (deep linear); None for ReLU networks.
    source_error : float or ndarray
        How far the pretrained network is from the source teacher, relative to the teacher:
        ``||theta - theta_S|| / ||theta_S||`` (deep linear); the root-mean-square error on the
        source sample over the labels' root mean square, ``sqrt(loss / zero loss)`` (ReLU).
    training : TrainResult
        The pretraining run.
    imbalance : float, ndarray or None, default None
        How far the layers are from balanced (deep linear, see
        :func:`~finetune_theory.deep_linear.imbalance`); None for ReLU networks.
    rank_one : float, ndarray or None, default None
        Largest ratio, over layers, of the second to the first singular value (deep linear);
        None for ReLU networks.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import relu
    >>> pre = relu.pretrain(np.eye(3)[0], width=20, n_source=6, seed=1)
    >>> isinstance(pre, PretrainResult), pre.theta is None, bool(pre.training.converged)
    (True, True, True)
    """

    weights: Any
    theta: np.ndarray | None
    source_error: Any
    training: TrainResult
    imbalance: Any = None
    rank_one: Any = None

    def __getattr__(self, name: str) -> Any:
        # the fields of the pretraining run, which ``relu.pretrain`` returned directly
        if name.startswith("_") or name not in TrainResult.__dataclass_fields__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(
            f"PretrainResult.{name} is deprecated: use PretrainResult.training.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(object.__getattribute__(self, "training"), name)


F = TypeVar("F", bound=Callable[..., Any])


def renamed_start(old: str) -> Callable[[F], F]:
    """Accept the former name ``old`` of the ``start`` argument, with a ``DeprecationWarning``.

    The decorated function's signature (what ``inspect.signature`` shows) names ``start``
    only; ``func(..., old=value)`` still works for one release.

    Examples
    --------
    >>> @renamed_start("weights")
    ... def f(X, y, start):
    ...     return start
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f(1, 2, weights=3), caught[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if "start" in kwargs:
                    raise TypeError(f"{func.__qualname__}() got both start and {old}")
                warnings.warn(
                    f"{func.__qualname__}({old}=...) is deprecated: the argument is now start",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs["start"] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def check_train_options(max_steps: Any, tol: Any) -> tuple[int, float]:
    """Validate the shared ``max_steps`` and ``tol``.

    Examples
    --------
    >>> check_train_options(1000.0, 1e-10)
    (1000, 1e-10)
    """
    return check_positive_int(max_steps, "max_steps"), check_positive(tol, "tol")


def relative_movement(diff_sq: np.ndarray, start_sq: np.ndarray) -> np.ndarray:
    """``sqrt(diff_sq / start_sq)``; ``inf`` from a zero start that moved, 0 if it did not."""
    diff_sq, start_sq = np.broadcast_arrays(diff_sq, start_sq)
    far = np.where(diff_sq > 0, np.inf, 0.0)
    return np.where(start_sq > 0, np.sqrt(safe_divide(diff_sq, start_sq)), far)


class Monitor:
    """The shared stopping rule of the module docstring, for one batch of problems.

    Call :meth:`update` with the loss before every step; it raises on divergence, marks the
    problems that stop, records the history and returns whether any problem is still active
    (``active`` is the mask of problems that take the next step). :meth:`finish` raises
    :class:`ConvergenceError` for problems left running (with ``strict``).
    """

    def __init__(
        self, y: np.ndarray, batch: tuple[int, ...], tol: float, lr: np.ndarray, max_steps: int
    ) -> None:
        zero = np.broadcast_to(0.5 * np.mean(y * y, axis=-1), batch)
        self.zero = zero
        self.threshold = tol * np.where(zero > 0, zero, 1.0)
        self.tol = tol
        self.still_tol = max(tol, ROUNDING)
        self.lr = lr
        self.max_steps = max_steps
        self.active = np.ones(batch, dtype=bool)
        self.steps = np.zeros(batch, dtype=np.int64)
        self.interpolated = np.zeros(batch, dtype=bool)
        self.ref: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.loss: np.ndarray | None = None
        self.hist_t: list[int] = []
        self.hist_l: list[np.ndarray] = []
        self._next_log = 0
        self._running = bool(self.active.size)
        #: how many updates stopped some problem (a cheap test of whether ``active`` changed)
        self.stopped = 0
        self._limit: np.ndarray | None = None

    def update(self, t: int, loss: np.ndarray) -> bool:
        """Apply the stopping tests to the loss before step ``t + 1``; True while any runs."""
        if self.ref is None:
            self.ref = np.maximum(loss, self.zero) + TINY
            # one comparison catches NaN, inf and a blow-up (an infinite limit stays finite)
            self._limit = np.minimum(BLOWUP * self.ref, np.finfo(np.float64).max)
        if not (loss <= self._limit).all():
            bad = np.nan_to_num(loss, nan=np.inf)
            raise DivergenceError(
                f"gradient descent diverged at step {t} (training loss {float(np.max(bad)):.3g}, "
                f"started at {float(np.max(self.ref)):.3g}) with lr = "
                f"{float(np.max(self.lr)):.3g}; use a smaller lr or leave lr=None"
            )
        fits = loss <= self.threshold
        if self.prev is None:
            done = fits & self.active
        else:
            done = np.abs(self.prev - loss) <= self.still_tol * loss
            done |= fits
            done &= self.active
        if done.any():
            self.steps[done] = t
            self.interpolated[done] = fits[done]
            self.active &= ~done
            self.stopped += 1
            self._running = bool(self.active.any())
        self.prev = self.loss = loss
        if t >= self._next_log or not self._running or t == self.max_steps:
            self.hist_t.append(t)
            self.hist_l.append(np.array(loss, dtype=np.float64, copy=True))
            self._next_log = max(self._next_log + 1, int(self._next_log * 1.25))
        return self._running

    def finish(self, strict: bool) -> None:
        """Mark problems left running; raise :class:`ConvergenceError` for them if ``strict``."""
        if not self.active.any():
            return
        if strict:
            assert self.loss is not None
            left = int(np.count_nonzero(self.active))
            rel = self.loss / np.where(self.zero > 0, self.zero, 1.0)
            worst = float(np.max(np.where(self.active, rel, 0.0)))
            raise ConvergenceError(
                f"{left} of {self.active.size} problem(s) did not converge in {self.max_steps} "
                f"steps (training loss still {worst:.3g} times the zero predictor's, tol "
                f"{self.tol:.3g}); raise max_steps or lr"
            )
        self.steps[self.active] = self.max_steps

    @property
    def converged(self) -> np.ndarray:
        return ~self.active

    @property
    def loss_history(self) -> np.ndarray:
        return np.array(self.hist_l, dtype=np.float64)

    @property
    def history_steps(self) -> np.ndarray:
        return np.array(self.hist_t, dtype=np.int64)
