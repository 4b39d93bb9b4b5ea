"""The deterministic equivalent of minimum-distance interpolation (``n`` below the rank)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import EIG_RTOL, TINY
from .._validation import check_positive_int_array
from ..covariance import Covariance, as_covariance
from ._finite_size import _finite_size_forms
from ._kappa import _first_order_weights, _fractions, numerical_rank, solve_kappa


@dataclass(frozen=True)
class DeterministicEquivalent:
    """Per-direction weights of the asymptotic risk at each sample size.

    Parameters
    ----------
    n : ndarray, shape (k,)
        The sample sizes.
    kappa : ndarray, shape (k,)
        The root of ``n = sum_i lambda_i / (lambda_i + kappa)`` (:func:`solve_kappa`; 0 from
        the rank on).
    rho : ndarray, shape (k,)
        ``(1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2`` below the rank, 1 from it on.
    bias_weights : ndarray, shape (k, d)
        ``w_i``: the expected ``||P_perp theta||^2_Sigma`` is ``sum_i w_i <theta, v_i>^2``.
    perp_weights : ndarray, shape (k, d)
        The expected ``||P_perp theta||^2`` is ``sum_i perp_weights_i <theta, v_i>^2``.
    noise_factor : ndarray, shape (k,)
        Multiply by the noise variance for the noise part of the risk (may be ``inf``).
    pinv_trace : ndarray, shape (k,)
        ``E ||X^+||_F^2``, so that ``E ||X^+ xi||^2 = sigma^2 pinv_trace``: below the rank
        ``1 / kappa`` with the central-limit mean factor (the exact isotropic value ``n /
        (lambda (r - n - 1))`` when the covariance is isotropic), ``inf`` from ``n = r - 1``
        to ``r + 1``, and the exact Wishart
        value ``tr(Sigma_r^-1) / (n - r - 1)`` above it (``inf`` where it diverges).
    rank : int
        Numerical rank of the covariance.
    exact : bool
        True when the covariance is isotropic (on its range): the bias parts are then exact
        expectations and ``noise_factor`` is the exact Wishart value.

    Examples
    --------
    >>> import numpy as np
    >>> eq = deterministic_equivalent(np.eye(100), 20)
    >>> eq.rank, eq.exact, round(float(eq.kappa[0]), 12)
    (100, True, 4.0)
    >>> round(float(eq.noise_factor[0]), 6)  # the exact n / (d - n - 1)
    0.253165
    """

    n: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray
    bias_weights: np.ndarray
    perp_weights: np.ndarray
    noise_factor: np.ndarray
    pinv_trace: np.ndarray
    rank: int
    exact: bool


#: the store of :func:`reuse_equivalents` while one is open (None: every call computes)
_REUSED: contextvars.ContextVar[dict[tuple[bytes, bytes], DeterministicEquivalent] | None] = (
    contextvars.ContextVar("reused_equivalents", default=None)
)


@contextlib.contextmanager
def reuse_equivalents() -> Iterator[None]:
    """Within the block, compute each deterministic equivalent once per spectrum and sizes.

    :func:`deterministic_equivalent` depends on the covariance only through its eigenvalues,
    so a repeated call with the same eigenvalues and the same sizes returns the stored result
    (the same bits; its arrays are read-only). Used where many predictions share one
    covariance and one grid of sizes, as the learning curves of several depths and targets;
    the store is dropped when the block ends.

    Examples
    --------
    >>> import numpy as np
    >>> with reuse_equivalents():
    ...     a = deterministic_equivalent(np.eye(50), [5, 10])
    ...     b = deterministic_equivalent(np.eye(50), [5, 10])
    >>> a is b, a is deterministic_equivalent(np.eye(50), [5, 10])
    (True, False)
    """
    token = _REUSED.set({})
    try:
        yield
    finally:
        _REUSED.reset(token)


def deterministic_equivalent(
    cov: Covariance | np.ndarray, n: ArrayLike
) -> DeterministicEquivalent:
    """The deterministic equivalent of minimum-distance interpolation at each ``n``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
        Covariance of the Gaussian inputs.
    n : int or array of int
        Sample sizes (``>= 1``).

    Returns
    -------
    DeterministicEquivalent

    Examples
    --------
    For an isotropic covariance the expected ``||P_perp theta||^2_Sigma`` of a unit vector is
    ``1 - n / d`` and the bias weights total ``d - n``:

    >>> import numpy as np
    >>> eq = deterministic_equivalent(np.eye(100), [20, 50])
    >>> np.round(eq.bias_weights.sum(axis=1), 9).tolist()
    [80.0, 50.0]

    A power-law spectrum takes the finite-size forms (``exact`` is False):

    >>> from finetune_theory import covariance
    >>> eq = deterministic_equivalent(covariance.power_law(200, 1.0), [10, 100])
    >>> eq.exact, bool(np.all(np.diff(eq.bias_weights.sum(axis=1)) < 0))
    (False, True)
    """
    cov = as_covariance(cov)
    lam = cov.eigvals
    ns, _ = check_positive_int_array(n, "n")
    store = _REUSED.get()
    if store is None:
        return _equivalent(lam, ns)
    key = (lam.astype(np.float64).tobytes(), repr(ns.shape).encode() + ns.tobytes())
    if key not in store:
        eq = _equivalent(lam, ns)
        for field in ("n", "kappa", "rho", "bias_weights", "perp_weights", "noise_factor"):
            getattr(eq, field).flags.writeable = False
        eq.pinv_trace.flags.writeable = False
        store[key] = eq
    return store[key]


def _equivalent(lam: np.ndarray, ns: np.ndarray) -> DeterministicEquivalent:
    """:func:`deterministic_equivalent` of the eigenvalues ``lam`` at the checked sizes ``ns``."""
    r = numerical_rank(lam)
    exact = r > 0 and bool(lam[0] - lam[r - 1] <= 1e-12 * lam[0])
    kappa = solve_kappa(lam, ns)
    nf = ns.astype(np.float64)
    interp = ns < r
    frac = _fractions(lam, kappa)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(interp, (frac**2).sum(axis=1) / nf, 1.0)
        perp = np.where(interp[:, None], 1.0 - frac, 0.0)
        perp = np.where(lam[None, :] > EIG_RTOL * max(lam[0], TINY), perp, 1.0)
        if exact:
            bias = np.where(interp[:, None], _first_order_weights(lam, frac, rho), 0.0)
            # exact Wishart moments: n / (r - n - 1) below the rank, r / (n - r - 1) above it
            below = np.where(r - nf - 1 > 0, nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0), np.inf)
        else:
            # finite-size forms (docs/linear.md, section 3): the noise factor rho / (1 - rho -
            # eps), exact for isotropic covariances and infinite from n = r - 1 on, and bias
            # weights with the leave-one-direction-out fluctuation of each learned direction
            _, bias, below = _finite_size_forms(lam, kappa, frac, nf)
            bias = bias * (_isotropic_calibration(r, ns) ** _isotropy(lam))[:, None]
            below = np.where(nf >= r - 1, np.inf, below)
            bias = np.where(interp[:, None], bias, 0.0)
        above = np.where(nf - r - 1 > 0, r / np.where(nf - r - 1 > 0, nf - r - 1, 1.0), np.inf)
        noise = np.where(interp, below, above)
        lam_pos = lam[:r] if r > 0 else np.ones(1)
        if exact:
            pinv_below = below / lam_pos[0]
        else:
            # E tr K^-1: 1 / kappa times the central-limit mean factor 1 + sum q^2 (1 - q) /
            # D^2 (section 3.2), summed as 1 / (1 - x) like the noise factor (exact for an
            # isotropic covariance) and capped where x passes 1/2; infinite from n = r - 1
            spread = (frac * (1.0 - frac)).sum(axis=1)
            x = (frac * frac * (1.0 - frac)).sum(axis=1) / np.where(spread > 0, spread, 1.0) ** 2
            pinv_below = 1.0 / np.where(kappa > 0, kappa, 1.0) / np.maximum(1.0 - x, 0.5)
            pinv_below = np.where(nf >= r - 1, np.inf, pinv_below)
        room = np.where(nf - r - 1 > 0, nf - r - 1, 1.0)
        pinv_above = np.where(nf - r - 1 > 0, np.sum(1.0 / lam_pos) / room, np.inf)
        pinv_trace = np.where(interp, pinv_below, pinv_above)
    if r == 0:
        # no direction has variance: X = 0, so X^+ = 0 and the label noise costs nothing
        noise = np.zeros(ns.shape)
        pinv_trace = np.zeros(ns.shape)
    return DeterministicEquivalent(
        n=ns,
        kappa=kappa,
        rho=np.where(interp, rho, 1.0),
        bias_weights=bias,
        perp_weights=perp,
        noise_factor=noise,
        pinv_trace=pinv_trace,
        rank=r,
        exact=exact,
    )


def _isotropy(lam: np.ndarray) -> float:
    """``(sum lambda)^2 / (r sum lambda^2)``: 1 for an isotropic spectrum, ``~ 1 / r`` for one
    direction; the share of :func:`_isotropic_calibration` a spectrum takes."""
    pos = lam[lam > EIG_RTOL * max(float(lam.max()) if lam.size else 0.0, TINY)]
    if pos.size == 0:
        return 1.0
    return float(pos.sum() ** 2 / (pos.size * (pos * pos).sum()))


def _isotropic_calibration(r: int, ns: np.ndarray) -> np.ndarray:
    """``(r - n) / sum_i w_i`` of the finite-size weights of the unit spectrum of rank ``r``.

    The exact bias of an isotropic covariance of rank ``r`` totals ``r - n`` (docs/linear.md,
    section 2); the finite-size route computes it within a few percent near the rank and at
    small ``r``. A spectrum's weights are multiplied by this factor to the power
    :func:`_isotropy`: all of it for an isotropic covariance, whose route is then exact, so
    that the equivalent is continuous across the exact branch, and little of it for steep
    spectra, whose route errors near the rank are not the isotropic ones (docs/linear.md,
    section 3.2).
    """
    ns = np.asarray(ns, dtype=np.int64)
    sizes, where = np.unique(ns, return_inverse=True)
    factor = np.array([_isotropic_factor(r, int(m)) for m in sizes])
    return factor[where.ravel()].reshape(ns.shape) if sizes.size else np.ones(ns.shape)


@functools.lru_cache(maxsize=4096)
def _isotropic_factor(r: int, n: int) -> float:
    """One value of :func:`_isotropic_calibration` (kept: searches over ``n`` ask again)."""
    if n >= r:
        return 1.0
    unit = np.ones(r)
    kappa = np.array([r / n - 1.0])  # the root of n = r / (1 + kappa)
    nf = np.array([float(n)])
    _, bias, _ = _finite_size_forms(unit, kappa, _fractions(unit, kappa), nf)
    return float((r - n) / bias.sum())
