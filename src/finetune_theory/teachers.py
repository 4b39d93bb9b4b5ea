"""Source/target teacher pairs with a controlled relation.

A pair is two weight vectors ``theta_source`` (what the pretrained model realises) and
``theta_target`` (the target task's linear teacher); ``delta = theta_source - theta_target``.
Generators:

* :func:`scaled_pair`: ``theta_T = alpha theta_S + eps xi`` (the depth experiments);
* :func:`placed_pair`: a difference of chosen norm placed in the top or the tail
  eigen-directions of a covariance (same Euclidean distance, very different risks);
* :func:`profiled_pair`: a difference whose energy over the eigen-index follows a power
  ``i^tilt`` (``tilt < 0`` head-heavy, ``tilt > 0`` tail-heavy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._random import SeedLike, as_generator, keyword_seed
from ._validation import (
    as_array,
    as_vector,
    check_finite_scalar,
    check_nonnegative,
    check_positive_int,
)
from .covariance import Covariance, CovarianceLike, as_covariance

__all__ = [
    "TeacherPair",
    "random_unit",
    "random_units",
    "scaled_pairs",
    "scaled_pair",
    "placed_pair",
    "profiled_pair",
    "profiled_deltas",
]


@dataclass(frozen=True, eq=False)
class TeacherPair:
    """A source and a target teacher of the same dimension.

    Parameters
    ----------
    theta_source : ndarray, shape (d,)
        The source teacher.
    theta_target : ndarray, shape (d,)
        The target teacher.

    Examples
    --------
    >>> import numpy as np
    >>> pair = TeacherPair(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    >>> pair.d, pair.delta
    (2, array([ 0.5, -0.5]))
    """

    theta_source: np.ndarray
    theta_target: np.ndarray

    def __post_init__(self) -> None:
        ts = as_vector(self.theta_source, "theta_source")
        tt = as_vector(self.theta_target, "theta_target")
        if ts.shape != tt.shape:
            raise ValueError(
                f"theta_source has dimension {ts.size} but theta_target has dimension {tt.size}"
            )
        object.__setattr__(self, "theta_source", ts)
        object.__setattr__(self, "theta_target", tt)

    @property
    def d(self) -> int:
        """The dimension of the teachers."""
        return int(self.theta_source.size)

    @property
    def delta(self) -> np.ndarray:
        """``theta_source - theta_target``."""
        return self.theta_source - self.theta_target


@keyword_seed
def random_units(count: int, d: int, *, seed: SeedLike = 0) -> np.ndarray:
    """``count`` independent uniformly random unit vectors in ``R^d``, shape ``(count, d)``.

    Parameters
    ----------
    count : int
        Number of vectors.
    d : int
        Dimension.
    seed : int, SeedSequence or Generator, default 0
        Random seed.

    Examples
    --------
    >>> import numpy as np
    >>> u = random_units(4, 3, seed=0)
    >>> u.shape, bool(np.allclose(np.linalg.norm(u, axis=1), 1.0))
    ((4, 3), True)
    """
    count = check_positive_int(count, "count")
    d = check_positive_int(d, "d")
    v = as_generator(seed).standard_normal((count, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@keyword_seed
def random_unit(d: int, *, seed: SeedLike = 0) -> np.ndarray:
    """A uniformly random unit vector in ``R^d`` (the first row of :func:`random_units`).

    Parameters
    ----------
    d : int
        Dimension.
    seed : int, SeedSequence or Generator, default 0
        Random seed.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.array_equal(random_unit(3, seed=5), random_units(1, 3, seed=5)[0]))
    True
    """
    return random_units(1, d, seed=seed)[0]


@keyword_seed
def scaled_pairs(
    d: int, alpha: float, eps: float, repeats: int, *, seed: SeedLike = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``repeats`` pairs ``theta_T = alpha theta_S + eps xi`` at once (law of :func:`scaled_pair`).

    Parameters
    ----------
    d : int
        Dimension.
    alpha : float
        Scale of the source in the target.
    eps : float
        Size of the random perturbation ``xi`` (>= 0).
    repeats : int
        Number of pairs.
    seed : int, SeedSequence or Generator, default 0
        Random seed.

    Returns
    -------
    (theta_source, theta_target) : ndarrays of shape (repeats, d)
        Unit sources; ``xi`` uniform on the unit sphere. With ``repeats = 1`` and the same seed
        the bits equal those of :func:`scaled_pair`.

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = scaled_pairs(3, alpha=0.5, eps=0.0, repeats=2, seed=0)
    >>> ts.shape, bool(np.allclose(tt, 0.5 * ts))
    ((2, 3), True)
    >>> bool(np.array_equal(scaled_pairs(3, 1.0, 0.1, 1, seed=4)[1][0],
    ...                     scaled_pair(3, alpha=1.0, eps=0.1, seed=4).theta_target))
    True
    """
    alpha = check_finite_scalar(alpha, "alpha")
    eps = check_nonnegative(eps, "eps")
    rng = as_generator(seed)
    source = random_units(repeats, d, seed=rng)
    xi = random_units(repeats, d, seed=rng)
    return source, alpha * source + eps * xi


def scaled_pair(
    d: int | None = None,
    *,
    alpha: float = 1.0,
    eps: float = 0.0,
    theta_source: ArrayLike | None = None,
    seed: SeedLike = 0,
) -> TeacherPair:
    """``theta_T = alpha theta_S + eps xi`` with ``xi`` uniform on the unit sphere.

    Parameters
    ----------
    d : int, optional
        Dimension (needed when ``theta_source`` is not given).
    alpha : float
        Scale of the source inside the target.
    eps : float
        Norm of the random perturbation, ``>= 0``.
    theta_source : array, optional
        The source; default a random unit vector.
    seed : int, SeedSequence or Generator

    Examples
    --------
    >>> import numpy as np
    >>> pair = scaled_pair(theta_source=np.array([1.0, 0.0]), alpha=2.0, eps=0.0)
    >>> pair.theta_target
    array([2., 0.])
    """
    alpha = check_finite_scalar(alpha, "alpha")
    eps = check_nonnegative(eps, "eps")
    rng = as_generator(seed)
    if theta_source is None:
        if d is None:
            raise ValueError("give d or theta_source")
        ts = random_unit(d, seed=rng)
    else:
        ts = as_vector(theta_source, "theta_source")
        if d is not None and ts.size != d:
            raise ValueError(f"theta_source has dimension {ts.size} but d = {d}")
    xi = random_unit(ts.size, seed=rng)
    return TeacherPair(ts, alpha * ts + eps * xi)


def _source(cov: Covariance, theta_source: Any, rng: np.random.Generator) -> np.ndarray:
    if theta_source is None:
        return random_unit(cov.d, seed=rng)
    ts = as_vector(theta_source, "theta_source")
    if ts.size != cov.d:
        raise ValueError(f"theta_source has dimension {ts.size} but cov has dimension {cov.d}")
    return ts


def placed_pair(
    cov: CovarianceLike,
    *,
    distance: float = 1.0,
    where: str = "top",
    k: int = 10,
    theta_source: ArrayLike | None = None,
    seed: SeedLike = 0,
) -> TeacherPair:
    """A pair whose difference has norm ``distance`` and lies in chosen eigen-directions.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    distance : float
        ``||theta_S - theta_T||``.
    where : {"top", "tail", "random"}
        The ``k`` leading eigenvectors, the ``k`` trailing ones, or a uniformly random direction.
    k : int
        Number of eigen-directions spanned by the difference.
    theta_source : array, optional
        Default: a random unit vector.
    seed : int, SeedSequence or Generator

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> pair = placed_pair(covariance.power_law(5), distance=2.0, where="tail", k=2, seed=0)
    >>> round(float(np.linalg.norm(pair.delta)), 12), bool(np.all(pair.delta[:3] == 0))
    (2.0, True)
    """
    c = as_covariance(cov)
    distance = check_nonnegative(distance, "distance")
    k = check_positive_int(k, "k")
    if where not in ("top", "tail", "random"):
        raise ValueError(f"where must be 'top', 'tail' or 'random', got {where!r}")
    if k > c.d and where != "random":  # k plays no part in a random direction
        raise ValueError(f"k = {k} exceeds the dimension d = {c.d}")
    rng = as_generator(seed)
    ts = _source(c, theta_source, rng)
    coords = np.zeros(c.d)
    g = rng.standard_normal(k if where != "random" else c.d)
    if where == "top":
        coords[:k] = g
    elif where == "tail":
        coords[c.d - k :] = g
    else:
        coords = g
    delta = c.from_coords(coords / np.linalg.norm(coords) * distance)
    return TeacherPair(ts, ts - delta)


@keyword_seed
def profiled_deltas(
    cov: CovarianceLike, distance: ArrayLike, tilt: ArrayLike, *, seed: SeedLike = 0
) -> np.ndarray:
    """Differences whose energy spreads over the eigen-index like ``i^tilt``, batched.

    The coordinate of each difference on the ``i``-th eigenvector of ``cov`` is
    ``g_i i^(tilt/2)`` with ``g_i`` standard normal, rescaled to norm ``distance``:
    ``tilt < 0`` puts the difference in the top directions, ``tilt > 0`` in the tail,
    ``tilt = 0`` spreads it evenly.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    distance, tilt : float or array, broadcast together to shape (P,) or ()
    seed : int or SeedSequence

    Returns
    -------
    ndarray, shape (P, d) or (d,)

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> deltas = profiled_deltas(covariance.isotropic(4), [1.0, 3.0], 0.0, seed=0)
    >>> deltas.shape, np.linalg.norm(deltas, axis=1).round(12)
    ((2, 4), array([1., 3.]))
    """
    c = as_covariance(cov)
    dist = as_array(distance, "distance", max_ndim=1)
    if np.any(dist < 0):
        raise ValueError("distance must be >= 0")
    tl = as_array(tilt, "tilt", max_ndim=1)
    try:
        dist, tl = np.broadcast_arrays(dist, tl)
    except ValueError:
        raise ValueError(f"distance {dist.shape} and tilt {tl.shape} do not broadcast") from None
    rng = as_generator(seed)
    index = np.arange(1, c.d + 1, dtype=np.float64)
    coords = rng.standard_normal((*dist.shape, c.d)) * index ** (tl[..., None] / 2)
    coords *= (dist / np.linalg.norm(coords, axis=-1))[..., None]
    return c.from_coords(coords)


def profiled_pair(
    cov: CovarianceLike,
    *,
    distance: float = 1.0,
    tilt: float = 0.0,
    theta_source: ArrayLike | None = None,
    seed: SeedLike = 0,
) -> TeacherPair:
    """A pair whose difference spreads its energy over the eigen-index like ``i^tilt``.

    See :func:`profiled_deltas`; ``theta_source`` defaults to a random unit vector.

    Parameters
    ----------
    cov : Covariance or array_like, shape (d, d)
        The target covariance, whose eigen-index the profile follows.
    distance : float, default 1.0
        ``||theta_T - theta_S||``.
    tilt : float, default 0.0
        Exponent of the energy profile ``i^tilt`` of the difference over the eigen-index.
    theta_source : array_like, shape (d,), optional
        The source; a random unit vector when not given.
    seed : int, SeedSequence or Generator, default 0
        Random seed.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance
    >>> pair = profiled_pair(covariance.power_law(6), distance=0.5, tilt=-2.0, seed=1)
    >>> round(float(np.linalg.norm(pair.delta)), 12)
    0.5
    """
    c = as_covariance(cov)
    distance = check_nonnegative(distance, "distance")
    tilt = check_finite_scalar(tilt, "tilt")
    rng = as_generator(seed)
    ts = _source(c, theta_source, rng)
    return TeacherPair(ts, ts - profiled_deltas(c, distance, tilt, seed=rng))
