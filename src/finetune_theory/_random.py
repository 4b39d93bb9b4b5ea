"""Random streams. Every stream of the package comes from a ``numpy.random.SeedSequence``.

The same seed gives the same bits: a seed is an int, a ``SeedSequence`` or a ``Generator``.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .exceptions import InputTypeError

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

__all__ = ["SeedLike", "as_generator", "spawn_generators", "seed_sequence", "keyword_seed"]

F = TypeVar("F", bound=Callable[..., Any])


def seed_sequence(seed: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int (or an existing sequence).

    A seed of the wrong type is an :class:`~finetune_theory.exceptions.InputTypeError` (a
    ``TypeError``), a negative one a ``ValueError``.

    Examples
    --------
    >>> seed_sequence(3).entropy
    3
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputTypeError(
            "seed must be a non-negative integer, a SeedSequence or a Generator, got "
            f"{type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.SeedSequence(int(seed))


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A ``Generator`` (PCG64) seeded through a ``SeedSequence``; a Generator passes through."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(seed_sequence(seed)))


def spawn_generators(seed: SeedLike, count: int) -> list[np.random.Generator]:
    """``count`` independent generators derived from one seed."""
    if isinstance(seed, np.random.Generator):
        return list(seed.spawn(count))
    return [np.random.Generator(np.random.PCG64(s)) for s in seed_sequence(seed).spawn(count)]


def keyword_seed(func: F) -> F:
    """Make ``seed`` keyword-only while a seed given by position still works for one release.

    ``func`` declares ``seed`` keyword-only (its signature is what ``inspect.signature``
    shows); a call with one positional argument more than ``func`` takes passes it as
    ``seed`` with a ``DeprecationWarning``.
    """
    params = inspect.signature(func).parameters.values()
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) == positional + 1 and "seed" not in kwargs:
            warnings.warn(
                f"{func.__qualname__}: pass the seed by keyword (seed=...); a seed by position "
                "is deprecated",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["seed"] = args[-1]
            args = args[:-1]
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
