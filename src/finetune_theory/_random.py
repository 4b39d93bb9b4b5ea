"""Random streams. Every stream of the package comes from a ``numpy.random.SeedSequence``.

The same seed gives the same bits: a seed is an int, a ``SeedSequence`` or a ``Generator``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

__all__ = ["SeedLike", "as_generator", "spawn_generators", "seed_sequence"]


def seed_sequence(seed: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int (or an existing sequence)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be a non-negative integer or a SeedSequence, got {seed!r}")
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
