"""The deterministic equivalent of ridge regression towards the source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..covariance import Covariance, as_covariance
from ._equivalent import _isotropic_calibration, _isotropy
from ._finite_size import _finite_size_forms
from ._kappa import _fractions, numerical_rank, solve_ridge_kappa


@dataclass(frozen=True)
class RidgeEquivalent:
    """Per-direction weights of the asymptotic risk of ridge towards the source.

    Parameters
    ----------
    n : ndarray, shape (k,)
        The sample sizes.
    ridge : ndarray, shape (k,)
        The ridge ``lambda`` (in the convention ``(X^T X / n + lambda I)^{-1}``).
    kappa : ndarray, shape (k,)
        The root of ``lambda = kappa (1 - (1/n) sum_i lambda_i / (lambda_i + kappa))``
        (:func:`solve_ridge_kappa`).
    rho : ndarray, shape (k,)
        ``(1/n) sum_i lambda_i^2 / (lambda_i + kappa)^2``.
    bias_weights : ndarray, shape (k, d)
        ``w_i``, the expected bias part of the excess risk being ``sum_i w_i <theta_S -
        theta_T, v_i>^2``: to first order ``kappa^2 lambda_i / (lambda_i + kappa)^2 / (1 -
        rho)``; the finite-size weights of :func:`_finite_size_bias` (``docs/linear.md``, 3.2).
    noise_factor : ndarray, shape (k,)
        Multiply by the noise variance for the noise part: ``rho / (1 - rho)`` to first
        order, with the finite-size correction of the interpolation path.

    Examples
    --------
    >>> import numpy as np
    >>> eq = ridge_equivalent(np.eye(50), 20, 0.1)
    >>> eq.n.tolist(), eq.ridge.tolist(), eq.bias_weights.shape
    ([20], [0.1], (1, 50))
    >>> bool(0 < eq.noise_factor[0] < 20 / (50 - 20 - 1))  # below the interpolation value
    True
    """

    n: np.ndarray
    ridge: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray
    bias_weights: np.ndarray
    noise_factor: np.ndarray


def ridge_equivalent(
    cov: Covariance | np.ndarray, n: ArrayLike, ridge: ArrayLike
) -> RidgeEquivalent:
    """Deterministic equivalent of ridge regression towards the source at each ``(n, ridge)``.

    The estimator is ``theta_S + (X^T X / n + ridge I)^{-1} X^T (y - X theta_S) / n``; its
    error is ``ridge (Sigma_hat + ridge I)^{-1} (theta_S - theta_T)`` plus a noise part. With
    ``kappa`` from :func:`solve_ridge_kappa` and ``rho`` as in :class:`RidgeEquivalent`,

        E L ~ sum_i kappa^2 lambda_i <Delta, v_i>^2 / (lambda_i + kappa)^2 / (1 - rho)
              + sigma^2 rho / (1 - rho)

    to first order; the bias weights returned are the finite-size ones of the interpolation
    path (the same Laplace route at ``mu0 = n ridge``), the noise factor with the same
    central-limit correction at ``mu0``.

    As ``ridge -> 0`` this tends to the interpolation formula of
    :func:`deterministic_equivalent` (below the rank) or to the least-squares limit; as
    ``ridge -> inf``, ``kappa -> inf`` and the risk tends to the source's own risk
    ``||Delta||^2_Sigma``. No exact finite-``n`` closed form exists for ``ridge > 0``, even for
    an isotropic covariance; the accuracy against Monte Carlo is measured in
    ``tests/test_linear_ridge.py`` and reported in ``docs/advisor.md``.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    n : int or array of int
    ridge : float or array of float
        Positive; broadcast against ``n``.

    Returns
    -------
    RidgeEquivalent

    Examples
    --------
    >>> import numpy as np
    >>> eq = ridge_equivalent(np.eye(50), [10, 100], 1e6)  # a huge ridge keeps the source
    >>> np.round(eq.bias_weights[:, 0], 4).tolist()
    [1.0, 1.0]
    """
    cov = as_covariance(cov)
    lam = cov.eigvals
    kappa = solve_ridge_kappa(lam, n, ridge)
    ns, lr = np.broadcast_arrays(
        np.atleast_1d(np.asarray(n)).astype(np.float64), np.atleast_1d(ridge).astype(np.float64)
    )
    k = kappa.ravel()
    nf = ns.ravel()
    q = _fractions(lam, k)
    rho, bias, noise = _finite_size_forms(lam, k, q, nf, lr.ravel())
    # the isotropic calibration of the interpolation weights, to the power n_eff / n =
    # sum q / n: all of it as the ridge vanishes (the interpolation limit), none for a huge
    # ridge (where the weights are exact: the source is kept)
    share = q.sum(axis=1) / nf
    factor = _isotropic_calibration(numerical_rank(lam), ns.ravel())
    bias = bias * (factor ** (share * _isotropy(lam)))[:, None]
    return RidgeEquivalent(
        n=ns.ravel().astype(np.int64),
        ridge=lr.ravel(),
        kappa=k,
        rho=rho,
        bias_weights=bias,
        noise_factor=noise,
    )
