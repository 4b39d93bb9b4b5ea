"""The covariance-aware similarity measure and the alternatives it is compared with."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._validation import as_vector, check_positive_int, output_like, sample_sizes
from ..asymptotics import deterministic_equivalent
from ..covariance import CovarianceLike, as_covariance

#: the measures returned by :func:`similarity`, in display order, with a one-line meaning
MEASURES: dict[str, str] = {
    "covariance_aware": "sum_i w_i(n, Sigma) <Delta, v_i>^2: the expected fine-tuning risk",
    "spectral": "||Delta_>k||^2_Sigma>k + ||Delta_<=k||^2_(Sigma<=k)^-1 (sum_i>k lambda_i / n)^2",
    "euclidean_cov_error": "||Delta||^2 * E||Sigma - Sigma_hat||, the Euclidean bias-bound shape",
    "source_risk": "||Delta||^2_Sigma: the risk of the source model without fine-tuning",
    "euclidean": "||Delta||^2",
}


def similarity(
    cov: CovarianceLike,
    theta_source: ArrayLike,
    theta_target: ArrayLike,
    n: ArrayLike,
    *,
    k: int | None = None,
) -> dict[str, np.ndarray | float]:
    """The covariance-aware similarity measure and its alternatives, by name.

    Parameters
    ----------
    cov : Covariance or (d, d) array
    theta_source, theta_target : array, shape (d,) or (..., d)
        One pair, or many pairs along leading axes (then every value is an array).
    n : int or array of int
        Number of target samples; an array adds a last axis, one entry per ``n``.
    k : int, optional
        Split index of the spectral bound (the ``k`` leading directions get the inverse
        weighting). Default ``max(1, n // 2)`` for each ``n``, clipped to ``d - 1``.

    Returns
    -------
    dict
        Keys of :data:`MEASURES`; values of shape ``(...)`` for a single ``n`` (floats for a
        single pair), ``(..., len(n))`` for an array. ``covariance_aware`` equals the
        noiseless :func:`expected_risk`. ``euclidean_cov_error`` uses the typical
        operator-norm error of a sample covariance, ``lambda_1 max(sqrt(r_0 / n), r_0 / n)``
        with effective rank ``r_0 = tr(Sigma) / lambda_1`` (constants set to one).

    Examples
    --------
    >>> import numpy as np
    >>> ts, tt = np.zeros(100), np.full(100, 0.1)
    >>> round(similarity(np.eye(100), ts, tt, 40)["covariance_aware"], 6)
    0.6
    >>> similarity(np.eye(100), ts, tt, [20, 40])["covariance_aware"].round(6)
    array([0.8, 0.6])
    """
    ts = as_vector(theta_source, "theta_source", batch=True)
    tt = as_vector(theta_target, "theta_target", batch=True)
    if ts.shape[-1] != tt.shape[-1]:
        raise ValueError(
            f"theta_source has dimension {ts.shape[-1]} but theta_target has dimension "
            f"{tt.shape[-1]}"
        )
    c = as_covariance(cov, "cov", d=ts.shape[-1])
    ns, scalar = sample_sizes(n)
    if k is not None:
        k = check_positive_int(k, "k", minimum=0)
    d = c.d
    lam = c.eigvals
    coords = c.coords(ts - tt)
    sq = coords * coords
    r0 = lam.sum() / lam[0] if lam[0] > 0 else 0.0
    weights = deterministic_equivalent(c, ns).bias_weights  # (len(n), d)
    spectral = []
    for nj in ns:
        kj = min(max(1, int(nj) // 2) if k is None else k, d - 1)
        head_lam = lam[:kj]
        safe = np.where(head_lam > 0, head_lam, 1.0)
        head = np.sum(
            np.where(head_lam > 0, sq[..., :kj] / safe, np.where(sq[..., :kj] > 0, np.inf, 0.0)),
            axis=-1,
        )
        # a zero eigenvalue among the k leading ones means every later one is zero too: the
        # head term's factor (sum_{i>k} lambda_i / n)^2 vanishes and the term is zero (not
        # inf * 0)
        scale = (lam[kj:].sum() / nj) ** 2
        head_term = head * scale if scale > 0 else np.zeros_like(head)
        spectral.append(sq[..., kj:] @ lam[kj:] + head_term)
    ratio = r0 / ns.astype(np.float64)
    cov_err = lam[0] * np.maximum(np.sqrt(ratio), ratio)
    euclid = sq.sum(axis=-1)[..., None]
    shape = (*sq.shape[:-1], ns.size)
    out = {
        "covariance_aware": sq @ weights.T,
        "spectral": np.stack(spectral, axis=-1),
        "euclidean_cov_error": euclid * cov_err,
        "source_risk": np.broadcast_to((sq @ lam)[..., None], shape),
        "euclidean": np.broadcast_to(euclid, shape),
    }
    return {key: output_like(np.array(value), scalar) for key, value in out.items()}
