"""Argument validation shared by every module.

Every public function of the package validates its inputs here, so that bad input surfaces as
one ``ValueError`` that names the argument and says what is wrong, instead of a numpy warning,
a silent NaN or a traceback from deep inside linear algebra. An argument of the wrong type is
an :class:`~finetune_theory.exceptions.InputTypeError` (a ``TypeError``, also a ``ValueError``).
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any

import numpy as np

from .exceptions import InputTypeError

__all__ = [
    "as_array",
    "as_vector",
    "as_matrix",
    "check_same_dim",
    "check_positive_int",
    "check_positive_int_array",
    "check_nonnegative",
    "check_positive",
    "check_finite_scalar",
    "check_depth",
    "check_open_unit",
    "check_lr",
    "sample_sizes",
    "output_like",
    "regression_problem",
    "teacher_vectors",
]


def as_array(
    value: Any, name: str, *, min_ndim: int = 0, max_ndim: int | None = None
) -> np.ndarray:
    """Convert ``value`` to a finite float64 array, or raise ``ValueError`` naming ``name``.

    Text, ``None`` and other objects that are not numbers raise
    :class:`~finetune_theory.exceptions.InputTypeError`.

    Examples
    --------
    >>> as_array([1, 2], "x")
    array([1., 2.])
    >>> as_array("abc", "x")
    Traceback (most recent call last):
    ...
    finetune_theory.exceptions.InputTypeError: x must be numeric, got str
    """
    if value is None or isinstance(value, str | bytes):
        raise InputTypeError(f"{name} must be numeric, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except TypeError as exc:
        raise InputTypeError(
            f"{name} must be numeric; could not convert it to float64 ({exc})"
        ) from None
    except ValueError as exc:
        raise ValueError(
            f"{name} must be numeric; could not convert it to float64 ({exc})"
        ) from None
    if arr.ndim < min_ndim or (max_ndim is not None and arr.ndim > max_ndim):
        if max_ndim is None:
            want = f"at least {min_ndim}"
        elif max_ndim == min_ndim:
            want = f"{min_ndim}"
        else:
            want = f"{min_ndim} to {max_ndim}"
        raise ValueError(f"{name} must have {want} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def as_vector(value: Any, name: str, *, batch: bool = False) -> np.ndarray:
    """A finite float64 vector ``(d,)``; with ``batch=True`` also ``(..., d)``."""
    return as_array(value, name, min_ndim=1, max_ndim=None if batch else 1)


def as_matrix(value: Any, name: str, *, batch: bool = False) -> np.ndarray:
    """A finite float64 matrix ``(n, d)``; with ``batch=True`` also ``(..., n, d)``."""
    return as_array(value, name, min_ndim=2, max_ndim=None if batch else 2)


def check_same_dim(d: int, arr: np.ndarray, name: str, *, axis: int = -1, what: str = "d") -> None:
    """Raise unless ``arr.shape[axis] == d``."""
    if arr.shape[axis] != d:
        raise ValueError(
            f"{name} has {arr.shape[axis]} entries along its last axis but {what} = {d} "
            f"(shape {arr.shape})"
        )


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer ``>= minimum``."""
    if not _is_integer(value):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise InputTypeError(f"{name} must be an integer, got {reprlib.repr(value)}")
        raise ValueError(f"{name} must be an integer, got {reprlib.repr(value)}")
    ivalue = int(value)
    if ivalue < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {ivalue}")
    return ivalue


def check_positive_int_array(value: Any, name: str) -> tuple[np.ndarray, bool]:
    """Integers ``>= 1`` as an int64 array; also says whether the input was a scalar."""
    arr = np.asarray(value)
    scalar = arr.ndim == 0
    flat = np.atleast_1d(arr)
    if flat.size == 0:
        raise ValueError(f"{name} must not be empty")
    if flat.dtype.kind not in "iuf" or flat.dtype == np.bool_:
        raise ValueError(f"{name} must hold integers, got dtype {flat.dtype}")
    if flat.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
        raise ValueError(f"{name} must hold whole numbers, got {flat.tolist()[:5]}")
    if flat.dtype.kind in "uf" and np.any(flat > np.iinfo(np.int64).max // 2):
        raise ValueError(f"{name} is too large, got {flat.max()}")
    ints = flat.astype(np.int64)
    if np.any(ints < 1):
        raise ValueError(f"{name} must be >= 1, got {int(ints.min())}")
    return ints, scalar


def check_finite_scalar(value: Any, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool | str | bytes):
        raise InputTypeError(f"{name} must be a real number, got {reprlib.repr(value)}")
    try:
        fvalue = float(value)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a real number, got {reprlib.repr(value)}") from None
    if not math.isfinite(fvalue):
        raise ValueError(f"{name} must be finite, got {fvalue}")
    return fvalue


def check_nonnegative(value: Any, name: str) -> float:
    """A finite real number ``>= 0``."""
    fvalue = check_finite_scalar(value, name)
    if fvalue < 0:
        raise ValueError(f"{name} must be >= 0, got {fvalue}")
    return fvalue


def check_positive(value: Any, name: str) -> float:
    """A finite real number ``> 0``."""
    fvalue = check_finite_scalar(value, name)
    if fvalue <= 0:
        raise ValueError(f"{name} must be > 0, got {fvalue}")
    return fvalue


def check_open_unit(value: Any, name: str) -> float:
    """A real number strictly between 0 and 1 (a probability, a fraction, a confidence)."""
    fvalue = check_finite_scalar(value, name)
    if not 0 < fvalue < 1:
        raise ValueError(f"{name} must lie in (0, 1), got {fvalue}")
    return fvalue


def check_lr(lr: Any, batch: tuple[int, ...]) -> np.ndarray:
    """A step size of ``train``: finite and ``> 0``, one value or one per problem of ``batch``.

    Returns a float64 array of shape ``batch``.

    Examples
    --------
    >>> check_lr(0.5, (2,))
    array([0.5, 0.5])
    >>> check_lr([0.1, -1.0], (2,))
    Traceback (most recent call last):
    ...
    ValueError: lr must be > 0, got -1.0
    """
    step = as_array(lr, "lr")
    if np.any(step <= 0):
        raise ValueError(f"lr must be > 0, got {float(step.min())}")
    try:
        return np.array(np.broadcast_to(step, batch), dtype=np.float64)
    except ValueError:
        raise ValueError(
            f"lr has shape {step.shape}, not broadcastable to the batch shape {batch}"
        ) from None


def sample_sizes(n: Any, name: str = "n") -> tuple[np.ndarray, bool]:
    """Sample sizes as a 1-D int64 array, and whether ``n`` was a scalar.

    The companion of :func:`output_like`: a function taking ``n`` computes on the array and
    hands its result, with the sample-size axis last, to ``output_like(result, scalar)``.
    """
    ints, scalar = check_positive_int_array(n, name)
    if np.ndim(n) > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {np.shape(n)}")
    return ints, scalar


def output_like(value: Any, scalar: bool | None = None, kind: type = float) -> Any:
    """Scalar in, scalar out; array in, array out: the one place results get their type.

    Parameters
    ----------
    value : array-like
        A result.
    scalar : bool, optional
        ``True``: the sample size ``n`` (or another swept input) was a scalar, and ``value``
        carries its axis last with length 1: that axis is dropped. ``False``: ``value`` is
        returned as an array. ``None``: decided by ``value`` itself (0-d or not).
    kind : type
        ``float`` or ``int``: the Python type of a scalar result.

    Returns
    -------
    float, int or ndarray
        A Python scalar when the result has no axes left, otherwise an ndarray.

    Examples
    --------
    >>> output_like(np.array([0.5]), scalar=True)
    0.5
    >>> output_like(np.array([[1.0], [2.0]]), scalar=True)
    array([1., 2.])
    >>> output_like(np.array(3), kind=int)
    3
    """
    arr = np.asarray(value)
    if scalar:
        arr = arr[..., 0]
    elif scalar is False:
        return arr
    return kind(arr) if arr.ndim == 0 else arr


def check_depth(depth: Any, name: str = "depth") -> float:
    """A network depth: an integer ``>= 1`` or ``math.inf``. Returned as int or ``math.inf``."""
    if isinstance(depth, float) and math.isinf(depth) and depth > 0:
        return math.inf
    return check_positive_int(depth, name)


def regression_problem(
    X: Any, y: Any, theta_source: Any, *, name: str = "theta_source"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a regression problem, possibly batched along leading axes.

    Shapes ``X (..., n, d)``, ``y (..., n)``, ``theta_source (..., d)``; returns the three
    arrays broadcast to a common batch shape. ``name`` is how errors call the third argument.
    """
    x = as_matrix(X, "X", batch=True)
    yy = as_vector(y, "y", batch=True)
    ts = as_vector(theta_source, name, batch=True)
    n, d = x.shape[-2:]
    if yy.shape[-1] != n:
        raise ValueError(f"y has {yy.shape[-1]} entries but X has {n} rows")
    if ts.shape[-1] != d:
        raise ValueError(f"{name} has dimension {ts.shape[-1]} but X has {d} columns")
    batch = x.shape[:-2]
    try:
        batch = np.broadcast_shapes(batch, yy.shape[:-1], ts.shape[:-1])
    except ValueError:
        raise ValueError(
            f"batch shapes do not match: X {x.shape}, y {yy.shape}, {name} {ts.shape}"
        ) from None
    return (
        np.broadcast_to(x, (*batch, n, d)),
        np.broadcast_to(yy, (*batch, n)),
        np.broadcast_to(ts, (*batch, d)),
    )


def teacher_vectors(theta_source: Any, theta_target: Any) -> tuple[np.ndarray, np.ndarray]:
    """A source and a target teacher: finite float64 vectors of the same dimension."""
    ts = as_vector(theta_source, "theta_source")
    tt = as_vector(theta_target, "theta_target")
    if ts.shape != tt.shape:
        raise ValueError(
            f"theta_source has dimension {ts.size} but theta_target has dimension {tt.size}"
        )
    return ts, tt
