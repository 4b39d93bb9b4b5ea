"""Deterministic equivalents of interpolation from a Gaussian design.

For ``n`` samples ``x ~ N(0, Sigma)`` with ``n`` below the rank ``r`` of ``Sigma``, the random
projection ``P_perp = I - P_X`` onto the directions the data does not see behaves, for large
``d`` and ``n``, like a deterministic operator diagonal in the eigenbasis of ``Sigma``. Its scale
is ``kappa > 0``, the root of

    n = sum_i lambda_i / (lambda_i + kappa).

With ``rho = (1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2`` and ``q_i = lambda_i / (lambda_i +
kappa)``, to first order:

* ``E ||P_perp theta||^2 ~ sum_i kappa / (lambda_i + kappa) <theta, v_i>^2`` (``perp_weights``);
* ``E ||P_perp theta||^2_Sigma ~ sum_i w_i <theta, v_i>^2`` with
  ``w_i = kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 - rho)``;
* the label-noise part of the risk is ``sigma^2 rho / (1 - rho)``.

At the sizes people use (``n`` from ten to a few hundred) the first-order bias weights of
well-seen directions are low (about -10 % for strong spikes at ``n = 20``, -20 % for the top
directions of ``lambda_i = i^-3``) and so is the noise factor of steep spectra. The package
returns finite-size forms (``docs/linear.md``, section 3):

* ``noise_factor = rho / (1 - rho - eps)``, ``eps = sum q^2 (1 - q) / (n sum q (1 - q))``:
  the exact isotropic ``n / (d - n - 1)`` when ``q_i = n / d``, and ``inf`` from ``n = r - 1``
  on, where the expectation diverges;
* ``bias_weights`` from the exact identity ``(P_perp Sigma P_perp)_ii = lambda_i (1 + z^T R z)
  / (1 + lambda_i z^T A z)^2`` (``z`` independent of the Gram matrix without direction ``i``),
  averaged over ``z`` exactly by Laplace transforms of the deterministic equivalent of the
  resolvent trace, with the central-limit mean and variance of ``tr A`` across designs
  (:func:`_finite_size_bias`). A strong spike then gets the inverse-Wishart factor that the
  first order misses. Within a few samples of the rank the unseen space is small and a dual
  route takes over (:func:`_dual_bias_weights`: the unseen space is the row space of a
  ``k``-sample design with covariance ``Sigma^{-1}``, ``k = r - n``, averaged exactly over the
  direction's own column); between the two, an empirical factor tames the expansions.

Ridge towards the source (:func:`ridge_equivalent`) uses the same bias weights at its own
``kappa`` and the first-order noise factor.

For an isotropic ``Sigma`` the first-order bias parts are exact at every size (``kappa = s (d/n -
1)``); the package keeps them there, with the exact noise factor ``n / (d - n - 1)``. When
``n >= r`` the data sees every direction of positive variance: the bias vanishes and the noise
factor is the least-squares one, ``r / (n - r - 1)`` (infinite for ``n`` in ``{r, r + 1}``,
where its expectation diverges).

This module is shared by the linear and deep-linear predictions; every formula above lives here.
"""

from __future__ import annotations

from ._equivalent import DeterministicEquivalent, deterministic_equivalent
from ._kappa import numerical_rank, solve_kappa, solve_ridge_kappa
from ._ridge import RidgeEquivalent, ridge_equivalent

__all__ = [
    "DeterministicEquivalent",
    "deterministic_equivalent",
    "solve_kappa",
    "numerical_rank",
    "RidgeEquivalent",
    "ridge_equivalent",
    "solve_ridge_kappa",
]
