"""Prediction of a network's fine-tuning learning curve from its linearisation.

Fine-tuning the linearised network is linear regression on the features ``phi(x)`` (the
Jacobian rows for full fine-tuning, the penultimate features with a constant for the head
alone) from the source. With ``Sigma = E[phi phi^T]`` and its eigenpairs ``(mu_k, v_k)``, the
residual function of the source is ``r(x) = y - f_S(x) = phi(x)^T beta + e`` and the expected
test error of fine-tuning on ``n`` rows is the deterministic equivalent of the linear theory
with ``Delta = -beta`` (:func:`finetune_theory.linear.expected_risk`), plus the variance of
``e``. Three pieces come from the user's data:

* the spectrum ``mu_k`` from unlabelled target inputs (the eigenvalues of ``K / N`` on ``N``
  inputs; Nystrom from ``m`` landmark inputs when ``N`` is large);
* the coordinates ``<phi(x), v_k>`` of labelled rows, through the kernel against the
  landmarks (the Nystrom extension of the eigenvectors);
* the energy profile ``E <beta, v_k>^2`` and the variance of ``e``, fitted to the labelled
  residuals by the advisor's empirical Bayes (a profile ``s k^t`` refined by the data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import EIG_RTOL, TINY
from .._random import as_generator
from .._validation import as_array, check_nonnegative, check_positive_int, sample_sizes
from ._core import as_tensor, functional, to_numpy, torch_module
from ._linearised import penultimate_features
from ._ntk import empirical_ntk

__all__ = [
    "Spectrum",
    "feature_spectrum",
    "kernel_spectrum",
    "CurvePrediction",
    "predict_from_spectrum",
    "predict_from_profile",
    "fit_residual_profile",
    "ResidualProfile",
    "predict_curve",
    "residual_profile",
    "ROUTES",
]

#: the two fine-tuning routes: the head alone, or every chosen parameter (linearised)
ROUTES = ("last", "full")


@dataclass(frozen=True)
class Spectrum:
    """The estimated spectrum of ``Sigma = E[phi phi^T]`` and the map to its eigen-coordinates.

    Parameters
    ----------
    eigvals : ndarray, shape (k,)
        ``mu_k``, descending, positive.
    projection : ndarray, shape (m, k)
        ``coords(M) = M @ projection`` gives ``<phi(x), v_k>`` from the rows ``M`` of either
        the features (explicit route) or the kernel against the ``m`` anchor inputs.
    n_inputs : int
        Unlabelled inputs the estimate used.

    Examples
    --------
    >>> spec = feature_spectrum(np.diag([2.0, 1.0]))
    >>> spec.eigvals.tolist(), spec.n_inputs
    ([2.0, 0.5], 2)
    """

    eigvals: np.ndarray
    projection: np.ndarray
    n_inputs: int

    def coords(self, rows: ArrayLike) -> np.ndarray:
        """Eigen-coordinates ``(rows, k)`` of feature rows or kernel rows against the anchors.

        Parameters
        ----------
        rows : array-like, shape (r, m)
            Feature rows (explicit route) or kernel rows against the ``m`` anchor inputs.

        Returns
        -------
        ndarray, shape (r, k)
            ``rows @ projection``.

        Examples
        --------
        >>> spec = feature_spectrum(np.diag([2.0, 1.0]))
        >>> np.abs(spec.coords([[1.0, 1.0]])).tolist()
        [[1.0, 1.0]]
        """
        m = as_array(rows, "rows", min_ndim=2, max_ndim=2)
        if m.shape[1] != self.projection.shape[0]:
            raise ValueError(f"rows must have {self.projection.shape[0]} columns, got {m.shape}")
        return m @ self.projection


def _positive(s: np.ndarray) -> np.ndarray:
    return s > EIG_RTOL * max(float(s.max(initial=0.0)), TINY)


def feature_spectrum(features: ArrayLike) -> Spectrum:
    """The spectrum of ``Phi^T Phi / N`` from explicit feature rows ``Phi`` (uncentred).

    Parameters
    ----------
    features : array-like, shape (N, h)
        Feature rows ``phi(x)`` of ``N`` unlabelled inputs.

    Returns
    -------
    Spectrum
        The positive eigenvalues (descending) and the projection on their eigenvectors.

    Examples
    --------
    >>> phi = np.diag([2.0, 1.0])
    >>> feature_spectrum(phi).eigvals.tolist()  # (4, 1) / 2
    [2.0, 0.5]
    """
    phi = as_array(features, "features", min_ndim=2, max_ndim=2)
    _, sv, vt = np.linalg.svd(phi, full_matrices=False)
    keep = _positive(sv**2)
    return Spectrum(eigvals=sv[keep] ** 2 / phi.shape[0], projection=vt[keep].T,
                    n_inputs=phi.shape[0])


def kernel_spectrum(K: ArrayLike, K_anchors: ArrayLike | None = None) -> Spectrum:
    """The spectrum of the kernel operator from ``N`` unlabelled inputs.

    Parameters
    ----------
    K : array, shape (N, N) or (N, m)
        The kernel Gram matrix of the ``N`` inputs (exact route), or the kernel between them
        and ``m`` landmark inputs (Nystrom route, with ``K_anchors``).
    K_anchors : array, shape (m, m), optional
        The kernel among the landmarks. Nystrom: ``K ~ K_NL K_LL^+ K_LN``.

    Returns
    -------
    Spectrum
        Eigenvalues of ``K / N`` (of its Nystrom approximation); ``coords`` takes kernel rows
        against the ``N`` inputs (exact route) or against the landmarks (Nystrom route).

    Examples
    --------
    >>> phi = np.random.default_rng(0).standard_normal((50, 3)) * [3.0, 2.0, 1.0]
    >>> exact = kernel_spectrum(phi @ phi.T)
    >>> nys = kernel_spectrum(phi @ phi[:10].T, phi[:10] @ phi[:10].T)  # rank 3: exact too
    >>> bool(np.allclose(exact.eigvals, nys.eigvals))
    True
    >>> bool(np.allclose(exact.eigvals, feature_spectrum(phi).eigvals))
    True
    """
    k = as_array(K, "K", min_ndim=2, max_ndim=2)
    n = k.shape[0]
    if K_anchors is None:
        if k.shape[1] != n:
            raise ValueError(f"K must be square without K_anchors, got shape {k.shape}")
        s, u = np.linalg.eigh(0.5 * (k + k.T))
        order = np.argsort(s)[::-1]
        s, u = s[order], u[:, order]
        keep = _positive(s)
        return Spectrum(eigvals=s[keep] / n, projection=u[:, keep] / np.sqrt(s[keep]),
                        n_inputs=n)
    kl = as_array(K_anchors, "K_anchors", min_ndim=2, max_ndim=2)
    m = k.shape[1]
    if kl.shape != (m, m):
        raise ValueError(f"K_anchors must have shape {(m, m)}, got {kl.shape}")
    a, q = np.linalg.eigh(0.5 * (kl + kl.T))
    keep = _positive(a)
    whiten = q[:, keep] / np.sqrt(a[keep])
    _, sv, zt = np.linalg.svd(k @ whiten, full_matrices=False)
    keep2 = _positive(sv**2)
    return Spectrum(eigvals=sv[keep2] ** 2 / n, projection=whiten @ zt[keep2].T, n_inputs=n)


@dataclass(frozen=True)
class CurvePrediction:
    """A predicted fine-tuning learning curve.

    Parameters
    ----------
    n : ndarray, shape (s,)
        Target sample sizes.
    mse : ndarray, shape (s,)
        Predicted test MSE of the fine-tuned network: ``excess + noise_var``.
    excess : ndarray, shape (s,)
        The part learning adds (the deterministic equivalent of the linear theory).
    noise_var : float
        Fitted variance of the residual outside the feature span plus label noise.
    source_mse : float
        Predicted test MSE of the source unchanged (``sum_k mu_k energy_k + noise_var``).
    eigvals : ndarray, shape (k,)
        The spectrum ``mu_k``.
    energy : ndarray, shape (k,)
        The fitted ``E <beta, v_k>^2`` of the source's residual ``beta``.
    route : str
        ``"full"`` (linearised network) or ``"last"`` (head alone), or ``"features"``.
    ridge : float
        Ridge towards the source the curve is for (0: to zero training loss).
    time : float or None
        Gradient-flow time of early stopping the curve is for (None: to convergence).

    Examples
    --------
    >>> prof = ResidualProfile(np.ones(100), np.full(100, 0.01), 0.5, "features")
    >>> curve = predict_from_profile(prof, [10, 50])
    >>> bool(np.allclose(curve.mse, curve.excess + curve.noise_var)), curve.source_mse
    (True, 1.5)
    """

    n: np.ndarray
    mse: np.ndarray
    excess: np.ndarray
    noise_var: float
    source_mse: float
    eigvals: np.ndarray
    energy: np.ndarray
    route: str
    ridge: float
    time: float | None


@dataclass(frozen=True)
class ResidualProfile:
    """The source's residual in the eigenbasis of a spectrum, fitted to labelled rows.

    Parameters
    ----------
    eigvals : ndarray, shape (k,)
        ``mu_k``.
    energy : ndarray, shape (k,)
        Posterior ``E <beta, v_k>^2`` (the advisor's empirical-Bayes fit: a prior ``s k^t``
        refined by the data).
    noise_var : float
        Variance of the residual outside the span plus label noise.
    route : str
        A label carried to the prediction: ``"full"``, ``"last"`` or ``"features"``.

    Examples
    --------
    >>> prof = ResidualProfile(np.array([2.0, 1.0]), np.array([0.5, 0.25]), 0.1, "features")
    >>> prof.source_mse  # 2 * 0.5 + 1 * 0.25 + 0.1
    1.35
    """

    eigvals: np.ndarray
    energy: np.ndarray
    noise_var: float
    route: str

    @property
    def source_mse(self) -> float:
        """The predicted test MSE of the source unchanged."""
        return float(self.eigvals @ self.energy) + self.noise_var


def fit_residual_profile(
    spectrum: Spectrum,
    coords: ArrayLike,
    residual: ArrayLike,
    *,
    noise_var: float | None = None,
    route: str = "features",
) -> ResidualProfile:
    """Fit the energy of the residual ``y - f_S(x)`` along each eigen-direction.

    Parameters
    ----------
    spectrum : Spectrum
    coords : array, shape (l, k)
        Eigen-coordinates of the ``l`` labelled rows (:meth:`Spectrum.coords`).
    residual : array, shape (l,)
        Their residuals ``y - f_S(x)``.
    noise_var : float, optional
        Hold the noise variance at this value instead of fitting it.
    route : str
        A label carried to the prediction.

    Returns
    -------
    ResidualProfile

    Examples
    --------
    >>> spec = feature_spectrum(np.eye(3) * 3.0)
    >>> prof = fit_residual_profile(spec, spec.coords(np.eye(3) * 3.0), [0.0, 0.0, 0.0])
    >>> prof.source_mse  # a source that is exactly right
    0.0
    """
    from ..advisor import fit_profiles

    p = as_array(coords, "coords", min_ndim=2, max_ndim=2)
    r = as_array(residual, "residual", min_ndim=1, max_ndim=1)
    if p.shape != (r.size, spectrum.eigvals.size):
        raise ValueError(f"coords must have shape {(r.size, spectrum.eigvals.size)}, got "
                         f"{p.shape}")
    if r.size < 2:
        raise ValueError("at least 2 labelled rows are needed to fit the residual profile")
    fixed = None if noise_var is None else check_nonnegative(noise_var, "noise_var")
    fit = fit_profiles(p, r[None, :], fixed)
    return ResidualProfile(eigvals=spectrum.eigvals, energy=fit.energy[0],
                           noise_var=float(fit.noise_var[0]), route=route)


def predict_from_profile(
    profile: ResidualProfile, n: ArrayLike, *, ridge: float = 0.0, time: float | None = None
) -> CurvePrediction:
    """The learning curve of linear fine-tuning on features with a fitted residual profile.

    The deterministic equivalent of :func:`finetune_theory.linear.expected_risk` on the
    covariance ``diag(mu_k)`` with ``theta_S - theta_T`` of energy ``energy_k`` and the
    fitted noise, plus that noise (the test rows carry it too).

    Parameters
    ----------
    profile : ResidualProfile
    n : int or array of int
    ridge : float
        Ridge towards the source (convention of :func:`finetune_theory.linear.finetune`).
    time : float, optional
        Gradient-flow time of early stopping (:func:`finetune_theory.linear.
        expected_risk_early_stopping`, the ridge ``1 / time`` approximation); ``None``: to
        convergence. Not together with ``ridge``.

    Returns
    -------
    CurvePrediction

    Examples
    --------
    >>> prof = ResidualProfile(np.ones(100), np.full(100, 0.01), 0.0, "features")
    >>> predict_from_profile(prof, 40).mse.round(6).tolist()  # (1 - n/d) ||Delta||^2
    [0.6]
    """
    from .. import linear
    from ..covariance import Covariance

    lam = check_nonnegative(ridge, "ridge")
    if time is not None and lam > 0:
        raise ValueError("give ridge or time, not both")
    ns, _ = sample_sizes(n)
    cov = Covariance(profile.eigvals)
    zero, target = np.zeros(profile.energy.size), np.sqrt(profile.energy)
    sigma = float(np.sqrt(profile.noise_var))
    if time is not None:
        excess = linear.expected_risk_early_stopping(cov, zero, target, ns, time, noise=sigma)
    else:
        excess = linear.expected_risk(cov, zero, target, ns, noise=sigma, ridge=lam)
    excess = np.atleast_1d(np.asarray(excess, dtype=np.float64))
    return CurvePrediction(
        n=ns,
        mse=excess + profile.noise_var,
        excess=excess,
        noise_var=profile.noise_var,
        source_mse=profile.source_mse,
        eigvals=profile.eigvals,
        energy=profile.energy,
        route=profile.route,
        ridge=lam,
        time=time,
    )


def predict_from_spectrum(
    spectrum: Spectrum,
    coords: ArrayLike,
    residual: ArrayLike,
    n: ArrayLike,
    *,
    ridge: float = 0.0,
    time: float | None = None,
    noise_var: float | None = None,
    route: str = "features",
) -> CurvePrediction:
    """:func:`fit_residual_profile` then :func:`predict_from_profile`.

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum of the features (:func:`feature_spectrum`) or of the kernel.
    coords : array-like, shape (l, k)
        Eigen-coordinates of the ``l`` labelled rows (:meth:`Spectrum.coords`).
    residual : array-like, shape (l,)
        Their residuals ``y - f_S(x)``.
    n : int or array-like of int
        Sample sizes of the curve.
    ridge : float, default 0.0
        Ridge towards the source (convention of :func:`finetune_theory.linear.finetune`).
    time : float, optional
        Gradient-flow time of early stopping; ``None``: to convergence. Not together with
        ``ridge``.
    noise_var : float, optional
        Hold the noise variance at this value instead of fitting it.
    route : str, default "features"
        A label carried to the prediction.

    Returns
    -------
    CurvePrediction

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> phi = rng.standard_normal((2000, 40)) * np.arange(1, 41) ** -0.5
    >>> beta = rng.standard_normal(40) * 0.3
    >>> spec = feature_spectrum(phi)
    >>> lab = phi[:300]
    >>> curve = predict_from_spectrum(spec, spec.coords(lab), lab @ beta, [10, 20])
    >>> bool(curve.mse[0] > curve.mse[1] > 0)
    True
    """
    profile = fit_residual_profile(spectrum, coords, residual, noise_var=noise_var, route=route)
    return predict_from_profile(profile, n, ridge=ridge, time=time)


def residual_profile(
    model: Any,
    X_unlabelled: ArrayLike,
    X_labelled: ArrayLike,
    y_labelled: ArrayLike,
    *,
    route: str = "full",
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    layer: str | None = None,
    noise_var: float | None = None,
    landmarks: int = 1000,
    seed: Any = 0,
    method: str = "auto",
    device: Any = "cpu",
) -> ResidualProfile:
    """The spectrum of a network's fine-tuning features and its residual's energy along it.

    The first half of :func:`predict_curve` (which takes the same arguments): the spectrum
    from ``X_unlabelled``, the profile fitted to the residuals ``y - f_S(x)`` of the labelled
    rows. :func:`predict_from_profile` turns it into a curve at any ridge or time.

    Parameters
    ----------
    model : torch.nn.Module
        The pretrained network (its weights are the source).
    X_unlabelled : array-like, shape (N, ...)
        Target inputs without labels: the spectrum.
    X_labelled : array-like, shape (l, ...)
        Labelled target inputs.
    y_labelled : array-like, shape (l,)
        Their labels: the residual's energy profile and noise.
    route : {"full", "last"}, default "full"
        ``"full"``: the chosen ``parameters``, linearised (empirical NTK); ``"last"``: the
        head alone on the penultimate features plus a constant.
    parameters : "all", "last" or list of str, default "all"
        Parameters of the ``"full"`` route.
    output : int, optional
        The output column, for networks with several outputs.
    layer : str, optional
        The head of the ``"last"`` route (an ``nn.Linear``); default: the network's last
        ``nn.Linear``.
    noise_var : float, optional
        Hold the noise variance at this value instead of fitting it.
    landmarks : int, default 1000
        Above this many unlabelled inputs the ``"full"`` route uses Nystrom with this many
        landmark inputs drawn from them (``seed``).
    seed : int, SeedSequence or Generator, default 0
        Seed of the choice of landmark inputs.
    method : {"auto", "jacobian", "jvp"}, default "auto"
        How the empirical NTK is computed (see
        :func:`~finetune_theory.networks.empirical_ntk`).
    device : str or torch.device, default "cpu"
        Where to compute (GPU accepted but untested).

    Returns
    -------
    ResidualProfile

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> rng = np.random.default_rng(0)
    >>> U, X = rng.standard_normal((60, 3)), rng.standard_normal((20, 3))
    >>> prof = residual_profile(net, U, X, np.cos(X[:, 0]), route="last")
    >>> prof.route, prof.eigvals.size  # 16 features and the bias
    ('last', 17)
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    lab = as_array(y_labelled, "y_labelled", min_ndim=1, max_ndim=1)
    if route == "last":
        pen_u = penultimate_features(model, X_unlabelled, layer=layer, output=output,
                                     device=device)
        pen_l = penultimate_features(model, X_labelled, layer=layer, output=output, device=device)
        if pen_l.features.shape[0] != lab.size:
            raise ValueError(f"y_labelled has {lab.size} values for "
                             f"{pen_l.features.shape[0]} labelled rows")
        spec = feature_spectrum(pen_u.design())
        coords = spec.coords(pen_l.design())
        residual = lab - pen_l.outputs()
    else:
        torch = torch_module()
        fn = functional(model, parameters, output=output, device=device)
        u = as_tensor(X_unlabelled, "X_unlabelled", dtype=fn.dtype, device=device)
        xl = as_tensor(X_labelled, "X_labelled", dtype=fn.dtype, device=device)
        if xl.shape[0] != lab.size:
            raise ValueError(f"y_labelled has {lab.size} values for {xl.shape[0]} labelled rows")
        m = check_positive_int(landmarks, "landmarks", minimum=2)
        opts = {"parameters": parameters, "output": output, "method": method, "device": device}
        if u.shape[0] <= m:
            anchors = u
            spec = kernel_spectrum(empirical_ntk(model, u, **opts))
        else:
            idx = np.sort(as_generator(seed).choice(u.shape[0], m, replace=False))
            anchors = u[torch.as_tensor(idx)]
            k_ul = empirical_ntk(model, u, anchors, **opts)
            spec = kernel_spectrum(k_ul, k_ul[idx])
        coords = spec.coords(empirical_ntk(model, xl, anchors, **opts))
        with torch.no_grad():
            residual = lab - to_numpy(fn(fn.params, xl))
    return fit_residual_profile(spec, coords, residual, noise_var=noise_var, route=route)


def predict_curve(
    model: Any,
    X_unlabelled: ArrayLike,
    X_labelled: ArrayLike,
    y_labelled: ArrayLike,
    n: ArrayLike,
    *,
    route: str = "full",
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    layer: str | None = None,
    ridge: float = 0.0,
    time: float | None = None,
    landmarks: int = 1000,
    seed: Any = 0,
    method: str = "auto",
    device: Any = "cpu",
) -> CurvePrediction:
    """Predict the test MSE of fine-tuning a pretrained network on ``n`` target rows.

    Parameters
    ----------
    model : torch.nn.Module
        The pretrained network (its weights are the source).
    X_unlabelled : array-like, shape (N, ...)
        Target inputs without labels: the spectrum (a few times more rows than the largest
        ``n``; the spectrum has at most ``N`` directions).
    X_labelled, y_labelled : array-like, shapes (l, ...) and (l,)
        A few labelled target rows: the residual's energy profile and noise.
    n : int or array of int
        Sample sizes of the curve.
    route : {"full", "last"}
        ``"full"``: fine-tuning the chosen ``parameters``, linearised (empirical NTK);
        ``"last"``: the head alone (linear regression on the penultimate features plus a
        constant, from the source head).
    parameters : "all", "last" or list of str
        Parameters of the ``"full"`` route.
    output : int, optional
        The output column, for networks with several outputs.
    layer : str, optional
        The head of the ``"last"`` route (an ``nn.Linear``); default: the network's last
        ``nn.Linear``.
    ridge : float
        Ridge towards the source (0: gradient descent to zero training loss).
    time : float, optional
        Early stopping: gradient-flow time ``lr * steps`` (ridge ``1 / time`` approximation).
    landmarks : int
        Above this many unlabelled inputs the ``"full"`` route uses Nystrom with this many
        landmark inputs drawn from them (``seed``).
    seed : int, SeedSequence or Generator, default 0
        Seed of the choice of landmark inputs.
    method : {"auto", "jacobian", "jvp"}, default "auto"
        How the empirical NTK is computed (see
        :func:`~finetune_theory.networks.empirical_ntk`).
    device : str or torch.device, default "cpu"
        Where to compute (GPU accepted but untested).

    Returns
    -------
    CurvePrediction

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    >>> rng = np.random.default_rng(0)
    >>> U, X = rng.standard_normal((200, 4)), rng.standard_normal((40, 4))
    >>> y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(40)
    >>> full = predict_curve(net, U, X, y, [5, 20, 40])
    >>> last = predict_curve(net, U, X, y, [5, 20, 40], route="last")
    >>> bool(np.all(np.diff(full.mse) < 0)), full.route, last.route
    (True, 'full', 'last')
    """
    profile = residual_profile(
        model, X_unlabelled, X_labelled, y_labelled, route=route, parameters=parameters,
        output=output, layer=layer, landmarks=landmarks, seed=seed, method=method, device=device,
    )
    return predict_from_profile(profile, n, ridge=ridge, time=time)
