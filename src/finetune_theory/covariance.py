"""Covariances held by their spectrum: eigenvalues (descending) and eigenvectors.

Every formula of the theory reads the target covariance ``Sigma = sum_i lambda_i v_i v_i^T``
through its eigen-decomposition, so the package stores it that way once. A covariance whose
eigenvectors are the standard basis (``eigvecs is None``) costs no ``d x d`` matrix.

Families: :func:`isotropic`, :func:`power_law` (``lambda_i = i^-a``), :func:`spiked`, any of them
turned by a random rotation (:func:`rotated`), and estimates from data (:func:`from_data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
from numpy.typing import ArrayLike

from ._numerics import EIG_RTOL, TINY
from ._random import SeedLike, as_generator, keyword_seed
from ._validation import (
    as_array,
    as_matrix,
    check_finite_scalar,
    check_positive,
    check_positive_int,
    output_like,
)

__all__ = [
    "Covariance",
    "as_covariance",
    "isotropic",
    "power_law",
    "spiked",
    "FAMILIES",
    "family",
    "from_matrix",
    "from_data",
    "random_rotation",
    "rotated",
]

#: a covariance as the package's functions accept it: a :class:`Covariance` or a (d, d) array
CovarianceLike = Union["Covariance", ArrayLike]

_SYM_RTOL = 1e-8
_PSD_RTOL = 1e-10


@dataclass(frozen=True, eq=False)
class Covariance:
    """A covariance matrix given by its spectrum.

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
        Eigenvalues in descending order, all ``>= 0``.
    eigvecs : ndarray, shape (d, d), or None
        Orthonormal eigenvectors as columns (``eigvecs[:, i]`` goes with ``eigvals[i]``);
        ``None`` means the standard basis.
    name : str
        A short label for tables and figures.

    Examples
    --------
    >>> import numpy as np
    >>> c = Covariance(np.array([4.0, 1.0]), name="diag")
    >>> c.d, c.trace, c.quad(np.array([1.0, 1.0]))
    (2, 5.0, 5.0)
    >>> c.sample(3, seed=0, batch=2).shape
    (2, 3, 2)
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        lam = as_array(self.eigvals, "eigvals", min_ndim=1, max_ndim=1)
        if np.any(lam < 0):
            raise ValueError(f"eigvals must be >= 0, got minimum {lam.min():.3g}")
        if np.any(np.diff(lam) > EIG_RTOL * max(lam[0], 1.0)):
            raise ValueError("eigvals must be sorted in descending order")
        lam = lam.copy()
        lam.setflags(write=False)
        object.__setattr__(self, "eigvals", lam)
        if self.eigvecs is not None:
            vec = as_matrix(self.eigvecs, "eigvecs")
            if vec.shape != (lam.size, lam.size):
                raise ValueError(f"eigvecs must have shape {(lam.size, lam.size)}, got {vec.shape}")
            if not np.allclose(vec.T @ vec, np.eye(lam.size), rtol=0.0, atol=1e-8):
                raise ValueError("eigvecs must have orthonormal columns (V^T V = I)")
            vec = vec.copy()
            vec.setflags(write=False)
            object.__setattr__(self, "eigvecs", vec)

    # ------------------------------------------------------------------ basics
    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.eigvals.size)

    @property
    def matrix(self) -> np.ndarray:
        """The dense ``(d, d)`` matrix."""
        if self.eigvecs is None:
            return np.diag(self.eigvals)
        return (self.eigvecs * self.eigvals) @ self.eigvecs.T

    @property
    def basis(self) -> np.ndarray:
        """Eigenvectors as columns (the identity for a diagonal covariance)."""
        return np.eye(self.d) if self.eigvecs is None else self.eigvecs

    @property
    def trace(self) -> float:
        """The sum of the eigenvalues."""
        return float(self.eigvals.sum())

    @property
    def is_isotropic(self) -> bool:
        """All eigenvalues equal (to ``EIG_RTOL`` relative)."""
        lam = self.eigvals
        return bool(lam[0] - lam[-1] <= EIG_RTOL * max(lam[0], TINY))

    def __repr__(self) -> str:
        lam = self.eigvals
        return (
            f"Covariance(name={self.name!r}, d={self.d}, "
            f"eigvals=[{lam[0]:.3g} .. {lam[-1]:.3g}], rotated={self.eigvecs is not None})"
        )

    # ------------------------------------------------------------ operations
    def coords(self, theta: np.ndarray) -> np.ndarray:
        """Coordinates ``<theta, v_i>`` in the eigenbasis; ``theta`` may be ``(..., d)``.

        Parameters
        ----------
        theta : array_like, shape (..., d)
            Vectors in the input space.
        """
        theta = np.asarray(theta, dtype=np.float64)
        return theta if self.eigvecs is None else theta @ self.eigvecs

    def from_coords(self, coords: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`coords`.

        Parameters
        ----------
        coords : array_like, shape (..., d)
            Coordinates in the eigenbasis.
        """
        coords = np.asarray(coords, dtype=np.float64)
        return coords if self.eigvecs is None else coords @ self.eigvecs.T

    def quad(self, theta: np.ndarray) -> np.ndarray | float:
        """``theta^T Sigma theta`` (batched over leading axes).

        Parameters
        ----------
        theta : array_like, shape (..., d)
            Vectors in the input space.
        """
        c = self.coords(theta)
        out = np.sum(self.eigvals * c * c, axis=-1)
        return output_like(out)

    @keyword_seed
    def sample(
        self, n: int, *, seed: SeedLike = 0, batch: tuple[int, ...] | int = ()
    ) -> np.ndarray:
        """Draw Gaussian inputs ``x ~ N(0, Sigma)`` with shape ``(*batch, n, d)``.

        Parameters
        ----------
        n : int
            Number of inputs per draw.
        seed : int, SeedSequence or Generator, default 0
            Random seed.
        batch : int or tuple of int, default ()
            Leading batch shape (independent draws).
        """
        n = check_positive_int(n, "n")
        batch = (batch,) if isinstance(batch, int | np.integer) else tuple(batch)
        batch = tuple(check_positive_int(b, "batch", minimum=0) for b in batch)
        rng = as_generator(seed)
        z = rng.standard_normal((*batch, n, self.d))
        z *= np.sqrt(self.eigvals)
        return self.from_coords(z)

    def rotate(self, rotation: np.ndarray) -> Covariance:
        """The covariance of ``Q x``: eigenvectors turned by the orthogonal ``rotation``.

        Parameters
        ----------
        rotation : array_like, shape (d, d)
            An orthogonal matrix ``Q``.
        """
        q = as_matrix(rotation, "rotation")
        if q.shape != (self.d, self.d):
            raise ValueError(f"rotation must have shape {(self.d, self.d)}, got {q.shape}")
        if not np.allclose(q.T @ q, np.eye(self.d), atol=1e-8):
            raise ValueError("rotation must be orthogonal (Q^T Q = I)")
        return Covariance(self.eigvals, q @ self.basis, name=self.name)


# ------------------------------------------------------------------ families
def isotropic(d: int, scale: float = 1.0) -> Covariance:
    """``scale * I_d``.

    Parameters
    ----------
    d : int
        Dimension.
    scale : float, default 1.0
        The common eigenvalue (> 0).

    Examples
    --------
    >>> isotropic(3, 2.0).eigvals
    array([2., 2., 2.])
    """
    d = check_positive_int(d, "d")
    scale = check_positive(scale, "scale")
    return Covariance(np.full(d, scale), None, name="isotropic")


def power_law(d: int, a: float = 1.0, scale: float = 1.0) -> Covariance:
    """Diagonal spectrum ``lambda_i = scale * i^-a`` for ``i = 1..d``.

    Parameters
    ----------
    d : int
        Dimension.
    a : float, default 1.0
        Decay exponent (>= 0).
    scale : float, default 1.0
        The leading eigenvalue (> 0).

    Examples
    --------
    >>> power_law(3, a=1.0).eigvals.round(4)
    array([1.    , 0.5   , 0.3333])
    """
    d = check_positive_int(d, "d")
    a = check_finite_scalar(a, "a")
    if a < 0:
        raise ValueError(f"a must be >= 0 (a decaying spectrum), got {a}")
    scale = check_positive(scale, "scale")
    return Covariance(
        scale * np.arange(1, d + 1, dtype=np.float64) ** (-a), None, name=f"power-law a={a:g}"
    )


def spiked(d: int, spikes: ArrayLike = (10.0,), base: float = 1.0) -> Covariance:
    """A flat spectrum ``base`` with the leading eigenvalues replaced by ``spikes``.

    Parameters
    ----------
    d : int
        Dimension.
    spikes : array_like, default (10.0,)
        The leading eigenvalues, each >= ``base`` (at most ``d`` of them).
    base : float, default 1.0
        The other eigenvalues (> 0).

    Examples
    --------
    >>> spiked(4, [3.0, 5.0]).eigvals
    array([5., 3., 1., 1.])
    """
    d = check_positive_int(d, "d")
    base = check_positive(base, "base")
    s = as_array(spikes, "spikes", min_ndim=1, max_ndim=1)
    if s.size > d:
        raise ValueError(f"spikes has {s.size} values but d = {d}")
    if np.any(s < base):
        raise ValueError("spikes must each be >= base")
    lam = np.full(d, base)
    lam[: s.size] = np.sort(s)[::-1]
    return Covariance(lam, None, name=f"spiked k={s.size}")


#: the spectrum families that have a name (``power-law`` is accepted for ``power_law``)
FAMILIES = ("isotropic", "power_law", "spiked")


def family(name: str, d: int, *, a: float = 1.0, spikes: ArrayLike = (10.0,)) -> Covariance:
    """The covariance of a spectrum family given by name: the one place names become spectra.

    Parameters
    ----------
    name : str
        The family: ``"isotropic"``, ``"power_law"`` or ``"spiked"``; a hyphen may stand for the
        underscore (``"power-law"``). ``"power_law:<a>"`` carries the exponent in the name
        (``"power_law:1.5"``) and then takes precedence over ``a``; the other families take no
        parameter.
    d : int
        Dimension.
    a : float, default 1.0
        Exponent of ``power_law`` (``lambda_i = i^-a``) when the name carries none; ignored by
        the other families.
    spikes : sequence of float, default (10.0,)
        Leading eigenvalues of ``spiked`` on a unit spectrum; ignored by the others.

    Examples
    --------
    >>> family("power-law", 4, a=2.0).eigvals.round(4)
    array([1.    , 0.25  , 0.1111, 0.0625])
    >>> family("power_law:2", 4).eigvals.round(4)
    array([1.    , 0.25  , 0.1111, 0.0625])
    >>> family("spiked", 4, spikes=(3.0,)).eigvals
    array([3., 1., 1., 1.])
    >>> family("gaussian", 4)
    Traceback (most recent call last):
    ...
    ValueError: spectrum must be one of isotropic, power_law, spiked, got 'gaussian'
    >>> family("isotropic:2", 4)
    Traceback (most recent call last):
    ...
    ValueError: only power_law takes a parameter in its name ('power_law:<a>'), got 'isotropic:2'
    """
    key, sep, arg = str(name).strip().lower().replace("-", "_").partition(":")
    if sep:
        if key != "power_law":
            raise ValueError(
                f"only power_law takes a parameter in its name ('power_law:<a>'), got {name!r}"
            )
        try:
            a = float(arg)
        except ValueError:
            raise ValueError(
                f"the exponent in {name!r} must be a number ('power_law:1.5')"
            ) from None
    if key == "isotropic":
        return isotropic(d)
    if key == "power_law":
        return power_law(d, a=a)
    if key == "spiked":
        return spiked(d, spikes=spikes)
    raise ValueError(f"spectrum must be one of {', '.join(FAMILIES)}, got {name!r}")


def from_matrix(matrix: ArrayLike, name: str = "cov") -> Covariance:
    """Validate a symmetric positive semi-definite matrix and decompose it.

    Parameters
    ----------
    matrix : array_like, shape (d, d)
        A symmetric positive semi-definite matrix.
    name : str, default "cov"
        Its name in error messages (and the covariance's name).

    Examples
    --------
    >>> c = from_matrix([[2.0, 1.0], [1.0, 2.0]])
    >>> c.eigvals.round(12), c.matrix.round(12)
    (array([3., 1.]), array([[2., 1.],
           [1., 2.]]))
    """
    m = as_matrix(matrix, name)
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be square, got shape {m.shape}")
    scale = max(float(np.max(np.abs(m))), TINY)
    asym = float(np.max(np.abs(m - m.T)))
    if asym > _SYM_RTOL * scale:
        raise ValueError(f"{name} must be symmetric; max |C - C^T| = {asym:.3g}")
    lam, vec = np.linalg.eigh(0.5 * (m + m.T))
    if lam[0] < -_PSD_RTOL * max(abs(lam[-1]), TINY) * m.shape[0]:
        raise ValueError(f"{name} must be positive semi-definite; smallest eigenvalue {lam[0]:.3g}")
    lam = np.clip(lam[::-1], 0.0, None)
    return Covariance(lam, vec[:, ::-1], name="from matrix" if name == "cov" else name)


def as_covariance(cov: CovarianceLike, name: str = "cov", d: int | None = None) -> Covariance:
    """Accept a :class:`Covariance` or a symmetric PSD array; check its dimension against ``d``.

    Parameters
    ----------
    cov : Covariance or array_like, shape (d, d)
        A covariance, or a symmetric positive semi-definite matrix.
    name : str, default "cov"
        Its name in error messages.
    d : int, optional
        The dimension it must have.

    Examples
    --------
    >>> as_covariance([[1.0, 0.0], [0.0, 4.0]]).eigvals
    array([4., 1.])
    >>> as_covariance(isotropic(2), d=3)
    Traceback (most recent call last):
    ...
    ValueError: cov has dimension 2 but the vectors have dimension 3
    """
    c = cov if isinstance(cov, Covariance) else from_matrix(cov, name)
    if d is not None and c.d != d:
        raise ValueError(f"{name} has dimension {c.d} but the vectors have dimension {d}")
    return c


def from_data(
    X: ArrayLike, *, shrinkage: str | float | None = None, center: bool = True
) -> Covariance:
    """Estimate the covariance of the rows of ``X``.

    Parameters
    ----------
    X : array, shape (n, d)
    shrinkage : None, "ledoit-wolf" or float in [0, 1]
        ``None``: the sample covariance; ``"ledoit-wolf"``: scikit-learn's Ledoit-Wolf estimate
        (advisable when ``n`` is not much larger than ``d``); a float: shrink towards the scaled
        identity with that weight.
    center : bool
        Subtract the column means first.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    >>> from_data(X).eigvals.round(12)  # sample covariance diag(2/3, 8/3)
    array([2.66666667, 0.66666667])
    """
    x = as_matrix(X, "X")
    if x.shape[0] < 2:
        raise ValueError(f"X needs at least 2 rows to estimate a covariance, got {x.shape[0]}")
    if shrinkage is None:
        xc = x - x.mean(axis=0) if center else x
        m = xc.T @ xc / (x.shape[0] - (1 if center else 0))
    elif isinstance(shrinkage, str):
        if shrinkage.lower().replace("_", "-") != "ledoit-wolf":
            raise ValueError(f"shrinkage must be None, 'ledoit-wolf' or a float, got {shrinkage!r}")
        from sklearn.covariance import ledoit_wolf

        m, _ = ledoit_wolf(x, assume_centered=not center)
    else:
        w = check_finite_scalar(shrinkage, "shrinkage")
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"shrinkage must lie in [0, 1], got {w}")
        xc = x - x.mean(axis=0) if center else x
        s = xc.T @ xc / (x.shape[0] - (1 if center else 0))
        m = (1 - w) * s + w * np.trace(s) / s.shape[0] * np.eye(s.shape[0])
    return from_matrix(m, name="estimated")


@keyword_seed
def random_rotation(d: int, *, seed: SeedLike = 0) -> np.ndarray:
    """A Haar-distributed orthogonal ``d x d`` matrix (scipy's ``ortho_group``).

    Parameters
    ----------
    d : int
        Dimension.
    seed : int, SeedSequence or Generator, default 0
        Random seed.

    Examples
    --------
    >>> import numpy as np
    >>> q = random_rotation(3, seed=0)
    >>> bool(np.allclose(q.T @ q, np.eye(3)))
    True
    """
    d = check_positive_int(d, "d")
    if d == 1:
        return np.ones((1, 1))
    from scipy.stats import ortho_group

    return ortho_group.rvs(d, random_state=as_generator(seed))


@keyword_seed
def rotated(cov: Covariance, *, seed: SeedLike = 0) -> Covariance:
    """``cov`` turned by a random rotation: same spectrum, generic eigenvectors.

    Parameters
    ----------
    cov : Covariance or array_like, shape (d, d)
        The covariance to turn.
    seed : int, SeedSequence or Generator, default 0
        Random seed of the rotation.

    Examples
    --------
    >>> c = rotated(spiked(3, [4.0]), seed=1)
    >>> c.eigvals, c.eigvecs is not None
    (array([4., 1., 1.]), True)
    """
    cov = as_covariance(cov)
    return cov.rotate(random_rotation(cov.d, seed=seed))
