"""Deterministic equivalents of interpolation from a Gaussian design.

For ``n`` samples ``x ~ N(0, Sigma)`` with ``n`` below the rank ``r`` of ``Sigma``, the random
projection ``P_perp = I - P_X`` onto the directions the data does not see behaves, for large
``d`` and ``n``, like a deterministic operator diagonal in the eigenbasis of ``Sigma``. Its scale
is ``kappa > 0``, the root of ``n = sum_i lambda_i / (lambda_i + kappa)``. With ``q_i = lambda_i /
(lambda_i + kappa)`` and ``rho = (1/n) sum_i q_i^2``, to first order ``E ||P_perp theta||^2 ~
sum_i (1 - q_i) <theta, v_i>^2`` (``perp_weights``), ``E ||P_perp theta||^2_Sigma ~ sum_i w_i
<theta, v_i>^2`` with ``w_i = lambda_i (1 - q_i)^2 / (1 - rho)`` (``bias_weights``) and the
label-noise part of the risk is ``sigma^2 rho / (1 - rho)`` (``noise_factor``).

One expansion gives the finite-size forms the package returns (docs/linear.md, section 3): the
central-limit theorem for linear spectral statistics of the Gram matrix, whose mean term
corrects ``E log det`` and so ``E tr (K + mu)^-1`` (the pseudo-inverse trace), the noise factor
(its ``mu``- and ``t``-derivatives, summed so that an isotropic covariance is exact) and, through
the exact leave-one-direction-out identity ``(P_perp Sigma P_perp)_ii = lambda_i (1 + z^T R z) /
(1 + lambda_i z^T A z)^2`` averaged over ``z`` by Laplace transforms, the bias weights. Within a
few samples of the rank the unseen space is the row space of a ``k``-sample dual design (``k = r
- n``) and the same average is taken over it (the dual route); the fitted constants that join
the two are in ``_constants`` with their measured effect. Isotropic covariances keep their exact
Wishart formulas, and other spectra take the share of the isotropic calibration that makes the
equivalent continuous across that branch. From ``n >= r`` on the bias vanishes and the noise
factor is the least-squares ``r / (n - r - 1)`` (infinite for ``n`` in ``{r - 1, r, r + 1}``).
Ridge towards the source (:func:`ridge_equivalent`) uses the same forms at its own ``kappa``.

This module is shared by the linear and deep-linear predictions; every formula above lives here.
"""

from __future__ import annotations

from ._equivalent import DeterministicEquivalent, deterministic_equivalent, reuse_equivalents
from ._kappa import numerical_rank, solve_kappa, solve_ridge_kappa
from ._ridge import RidgeEquivalent, ridge_equivalent

__all__ = [
    "DeterministicEquivalent",
    "deterministic_equivalent",
    "reuse_equivalents",
    "solve_kappa",
    "numerical_rank",
    "RidgeEquivalent",
    "ridge_equivalent",
    "solve_ridge_kappa",
]
