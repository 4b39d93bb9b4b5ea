"""The advisor's engine: what the user's rows say, kept by source name.

Private to :mod:`finetune_theory.advisor`. :func:`build_engine` reads the labelled rows, the
unlabelled inputs and the sources once and keeps, for every *start* (each source by its name,
and ``None``: zero, training from scratch), everything a strategy needs
(:class:`Start`): its residuals' observed moments and their sampling laws, the energy of its
difference to the target on each eigen-direction (empirical Bayes, :mod:`._fit`), the
leave-one-out error of the user's ridge from it on the labelled rows, and the misspecification
allowance estimated from that error. :class:`Engine` then offers the two theoretical curves the
learned strategies are built from, both in the covariance eigenbasis and shared by every
strategy and size:

* :meth:`Engine.interp_excess`: the deterministic equivalent of interpolation from the start;
* :meth:`Engine.ridge_excess`: the user's leave-one-out ridge by parametric bootstrap
  (:func:`._bootstrap.loo_ridge_bootstrap`), one nested design for every size and start.

Every learned strategy has test MSE ``(f E L(n) + sigma^2) (1 + 1/n)``, ``E L`` the theory's
expected excess risk and ``f`` the start's allowance (1 with ``misspecification=False``).

The allowance. The Gaussian-linear model predicts the test MSE ``M`` of the user's ridge from
``n`` rows; the rows themselves measure it, by the leave-one-out error of that ridge
(optimistic by the choice of alpha among many: the bootstrap measures that optimism inside the
model, ``E[test] / E[leave-one-out]`` at the chosen alpha), giving ``P``. The two are averaged
on the log scale with their precisions (the theory's spread on real rows
:data:`MISFIT_SE`, the measurement's sampling error from the gamma law of its leave-one-out
residuals): from a few rows the theory dominates, from many the measurement. ``f`` is the
excess risk of that average over the excess risk the model predicts, ``(Q / (1 + 1/n) -
sigma^2) / E L(n)`` (at least 0): 1 when the model is right, above 1 when real rows (heavy
tails, non-linear labels, non-Gaussian inputs) make learning cost more than the Gaussian
theory says. It replaces a constant factor set on other data by one measured on the user's
own rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from threadpoolctl import threadpool_limits

from .._numerics import TINY
from ..asymptotics import deterministic_equivalent
from ..covariance import Covariance
from ._bootstrap import BootResult, loo_curves, loo_ridge_bootstrap
from ._constants import BOOT_BUDGET, BOOT_DRAWS, MISFIT_SE, NOISE_FLOOR, USER_ALPHAS
from ._fit import fit_profiles, helmert
from ._spectrum import Spectrum, ledoit_wolf_spectrum
from ._stats import gamma_log_se, median_factor, tail_shape

__all__ = ["Start", "Engine", "build_engine", "pooled_residual_variance"]


@dataclass
class Start:
    """What the labelled rows say about one start (a source, or zero for ``name=None``).

    Attributes
    ----------
    name : str or None
    coef : ndarray, shape (d,)
    intercept : float
        The source's own intercept (0 for zero).
    energy : ndarray, shape (d,)
        ``E <Delta, v_k>^2`` on each eigen-direction, summing (weighted by the eigenvalues) to
        ``total_var - noise_var``.
    resid_var : float
        Median-unbiased ``Var(y - X theta)`` on the labelled rows (``Var(y)`` for zero).
    resid_shape : float
        Gamma shape of its sampling law.
    total_var : float
        The residual variance the energies are scaled to (``resid_var``, or for zero with two
        or more sources the value pooled with their spread).
    as_is_mse : float
        Median-unbiased mean squared residual with the source's own intercept.
    loo : float
        Smallest leave-one-out error of the user's ridge from this start on the labelled rows.
    loo_shape : float
        Gamma shape of its sampling law (from the leave-one-out residuals).
    resid : ndarray, shape (n,)
        Its residuals ``y - X theta`` on the labelled rows (the labels for zero).
    loo_resid : ndarray, shape (n,)
        The leave-one-out residuals of the user's ridge from it, at the alpha it chooses.
    allowance : float
        The misspecification allowance ``f`` (see the module notes).
    """

    name: str | None
    coef: np.ndarray
    intercept: float
    energy: np.ndarray
    resid_var: float
    resid_shape: float
    total_var: float
    as_is_mse: float
    loo: float
    loo_shape: float
    resid: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    loo_resid: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    allowance: float = 1.0


@dataclass
class Engine:
    """The fitted model every strategy predicts from (see the module notes).

    Attributes
    ----------
    spectrum : Spectrum
    noise_var : float
    noise_floor : float
    noise_estimated : bool
    n_labelled : int
    starts : dict
        ``name -> Start``; ``None`` is zero (training from scratch).
    misspecification : bool
        Whether the allowance is estimated (False: the Gaussian-linear theory as is, ``f = 1``).
    """

    spectrum: Spectrum
    noise_var: float
    noise_floor: float
    noise_estimated: bool
    n_labelled: int
    starts: dict[str | None, Start]
    misspecification: bool = True
    #: the allowance of every start when set (deprecated ``advise(excess_factor=)``)
    fixed_allowance: float | None = None
    _order: list[str | None] = field(default_factory=list, repr=False)

    @property
    def eigvals(self) -> np.ndarray:
        return self.spectrum.eigvals

    @property
    def source_names(self) -> list[str]:
        return [k for k in self.starts if k is not None]

    def start(self, name: str | None) -> Start:
        return self.starts[name]

    # -------------------------------------------------------------- ridge by bootstrap
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        """Sizes at which the bootstrap runs and the draws at each, within the budget."""
        n, d = self.n_labelled, self.spectrum.d
        most, least = BOOT_DRAWS
        j = len(self.starts)
        alphas = USER_ALPHAS.size

        def cost(k: int) -> float:
            r = min(k, d)
            # forming the Gram matrix and the leave-one-out fits, then its eigendecomposition
            # (about ten multiply-adds per r^3 in LAPACK's batched symmetric solver)
            return float(k) * r * (d + alphas * j) + 10.0 * float(r) ** 3

        # the labelled n (the recommendation) on its own budget, then the sizes around it
        chosen: dict[int, int] = {max(n, 3): int(min(most, max(least, BOOT_BUDGET // cost(n))))}
        budget = BOOT_BUDGET
        for k in (n // 2, 2 * n, n // 4, 4 * n, 3):
            k = max(int(k), 3)
            draws = int(min(most // 2, budget // max(cost(k), 1.0)))
            if k in chosen or draws < least:
                continue
            chosen[k] = draws
            budget -= draws * cost(k)
        knots = np.array(sorted(chosen), dtype=np.int64)
        return knots, np.array([chosen[int(k)] for k in knots], dtype=np.int64)

    @cached_property
    def _boot(self) -> tuple[np.ndarray, BootResult]:
        knots, draws = self._knots()
        energy = np.stack([self.starts[k].energy for k in self._order])
        scale = max(float(np.mean(self.eigvals)), TINY)
        # many small factorisations: one BLAS thread each (more only oversubscribe the cores)
        with threadpool_limits(limits=1, user_api="blas"):
            res = loo_ridge_bootstrap(
                self.eigvals, energy, self.noise_var, knots, scale * USER_ALPHAS, draws
            )
        return knots, res

    def _row(self, name: str | None) -> int:
        return self._order.index(name)

    def plain_ridge_excess(self, name: str | None, ns: np.ndarray) -> np.ndarray:
        """``E L`` of the user's ridge from ``n`` rows in the Gaussian-linear model (``f = 1``).

        The bootstrap at its sizes, linear in ``log n`` between them, held below the smallest
        and decaying as ``1 / n`` beyond the largest.
        """
        knots, res = self._boot
        row = res.excess[self._row(name)]
        nf = np.maximum(np.asarray(ns, dtype=np.float64), 2.0)
        lk = np.log(knots.astype(np.float64))
        out = np.interp(np.log(nf), lk, row)
        top = float(knots[-1])
        return np.where(nf > top, row[-1] * top / nf, out)

    def ridge_excess(self, name: str | None, ns: np.ndarray) -> np.ndarray:
        """``f E L`` of the user's ridge from ``n`` rows (the allowance applied)."""
        return self.allowance(name) * self.plain_ridge_excess(name, ns)

    def interp_log_sd(self, name: str | None, ns: np.ndarray) -> np.ndarray:
        """Spread (standard deviation of ``log``) of the interpolant's test MSE from design to
        design after ``n`` rows, in the Gaussian-linear model: the bootstrap at its sizes,
        linear in ``log n`` between them and held beyond them."""
        return self._interp_knots(name, ns, "interp_log_sd")

    def interp_median_excess(self, name: str | None, ns: np.ndarray) -> np.ndarray:
        """``f`` times the median excess risk of the interpolant from one design of ``n``
        rows, in the Gaussian-linear model (the bootstrap, as :meth:`interp_log_sd`)."""
        med = np.exp(self._interp_knots(name, ns, "interp_log_mean")) - self.noise_var
        return self.allowance(name) * np.maximum(med, 0.0)

    def _interp_knots(self, name: str | None, ns: np.ndarray, what: str) -> np.ndarray:
        knots, res = self._boot
        nf = np.maximum(np.asarray(ns, dtype=np.float64), 2.0)
        lk = np.log(knots.astype(np.float64))
        return np.interp(np.log(nf), lk, getattr(res, what)[self._row(name)])

    def interp_excess(self, name: str | None, ns: np.ndarray) -> np.ndarray:
        """``f E L`` of interpolation from the start after ``n - 1`` centred rows."""
        m = np.maximum(np.asarray(ns, dtype=np.int64) - 1, 1)
        eq = deterministic_equivalent(Covariance(self.eigvals), m)
        bias = eq.bias_weights @ self.starts[name].energy
        with np.errstate(invalid="ignore"):
            noise = self.noise_var * eq.noise_factor if self.noise_var > 0 else 0.0 * m
            total = bias + noise
            # diverging next to the rank whatever the allowance
            return np.where(np.isfinite(total), self.allowance(name) * total, np.inf)

    def learned_mse(self, excess: np.ndarray, ns: np.ndarray) -> np.ndarray:
        """``(E L + sigma^2) (1 + 1/n)``: the test MSE of a fit with a refitted intercept."""
        nf = np.asarray(ns, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            out = (excess + self.noise_var) * (1.0 + 1.0 / np.maximum(nf, 1.0))
        return np.where(nf >= 2, out, np.inf)

    # ------------------------------------------------------------------ allowance
    def allowance(self, name: str | None) -> float:
        """The start's misspecification allowance ``f`` (1 without ``misspecification``)."""
        if not self.misspecification:
            return 1.0 if self.fixed_allowance is None else self.fixed_allowance
        return self._allowances[name][0]

    @cached_property
    def _allowances(self) -> dict[str | None, tuple[float, float, float]]:
        """``name -> (f, se, shown)``: the allowance, the log-scale error of the prediction at
        the labelled n it implies, and the rows' own measurement ``P`` (see the module
        notes)."""
        knots, res = self._boot
        n = self.n_labelled
        i = int(np.flatnonzero(knots == max(n, 3))[0])
        grow = 1.0 + 1.0 / n
        model = res.test[:, i]  # the theory's test MSE of the user's ridge at n, per start
        shown = np.empty(len(self._order))
        se_shown = np.empty(len(self._order))
        for name in self._order:
            j = self._row(name)
            st = self.starts[name]
            # the rows' measurement: leave-one-out at the chosen alpha, corrected for the
            # choice's optimism as the model sees it
            shown[j] = st.loo * model[j] / max(res.loo[j, i], TINY)
            # its error: the sampling law of the rows' leave-one-out residuals (their tails),
            # or the spread of log(test / leave-one-out) over the bootstrap's sets (the
            # choice of alpha included), whichever is larger
            se_shown[j] = max(float(gamma_log_se(st.loo_shape)), float(res.log_gap_sd[j, i]))
        gap = np.log(np.maximum(shown, TINY)) - np.log(np.maximum(model, TINY))
        tau2 = MISFIT_SE**2
        out: dict[str | None, tuple[float, float, float]] = {}
        for name in self._order:
            j = self._row(name)
            # the two, weighed on the log scale by their precisions: the theory's spread on
            # real rows MISFIT_SE, the measurement's its sampling error
            w = tau2 / (tau2 + se_shown[j] ** 2)
            both = math.exp(math.log(max(float(model[j]), TINY)) + w * float(gap[j]))
            se = math.sqrt(w) * float(se_shown[j])  # = 1 / sqrt(1 / tau^2 + 1 / se_shown^2)
            excess = float(res.excess[j, i])
            f = max(both / grow - self.noise_var, 0.0) / excess if excess > TINY else 1.0
            out[name] = (f, se, float(shown[j]))
        return out

    def measured(self, name: str | None) -> float:
        """``P``: the test MSE of the user's ridge from ``name`` at the labelled n, as the rows'
        leave-one-out error shows it (corrected for the choice's optimism)."""
        return self._allowances[name][2]

    def observed_log_se(self, name: str | None) -> float:
        """Error (log scale) of what the learned strategies from ``name`` are scaled to: of
        the prediction at the labelled n with the allowance, of the residual variance
        without."""
        if self.misspecification:
            return self._allowances[name][1]
        return float(gamma_log_se(self.starts[name].resid_shape))


# ------------------------------------------------------------------------- building
def build_engine(
    x: np.ndarray,
    y: np.ndarray,
    x_unl: np.ndarray | None,
    sources: list,
    *,
    pool_sources: bool = True,
    misspecification: bool = True,
) -> Engine:
    """Read the rows once and fit everything the strategies need (see the module notes).

    Parameters
    ----------
    x : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    x_unl : ndarray, shape (m, d) or None
    sources : list of Source
    pool_sources : bool
        See :func:`pooled_residual_variance`.
    misspecification : bool
        Estimate the allowance (False: ``f = 1``).

    Returns
    -------
    Engine

    Examples
    --------
    >>> from finetune_theory.advisor._io import Source
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((20, 5)); y = x @ np.ones(5) + 0.1 * rng.standard_normal(20)
    >>> eng = build_engine(x, y, None, [Source("s", np.ones(5), 0.0)])
    >>> eng.source_names, eng.start("s").resid_var < eng.start(None).resid_var
    (['s'], True)
    """
    n, d = x.shape
    x_all = x if x_unl is None else np.vstack([x, x_unl])
    spec = ledoit_wolf_spectrum(x_all)
    names: list[str | None] = [s.name for s in sources] + [None]
    coefs = np.vstack([np.array([s.coef for s in sources]).reshape(len(sources), d), np.zeros(d)])
    icpts = np.array([s.intercept for s in sources] + [0.0], dtype=np.float64)
    resid = y[None, :] - coefs @ x.T  # (J, n)
    centred = resid - resid.mean(axis=1, keepdims=True)
    shapes = np.array([tail_shape(r, n - 1) for r in centred])
    resid_var = resid.var(axis=1, ddof=1) * median_factor(shapes)
    as_is = np.mean((resid - icpts[:, None]) ** 2, axis=1) * median_factor(shapes)

    xh = helmert(x)
    p = spec.coords(xh)
    yh = helmert(y)
    res_h = yh[None, :] - coefs @ xh.T
    cache: dict = {}
    with threadpool_limits(limits=1, user_api="blas"):
        noise, floor, estimated, energy = _noise_and_energy(xh, yh, p, res_h, resid_var, cache)
    total = resid_var.copy()
    if pool_sources:
        total = pooled_residual_variance(total, gamma_log_se(shapes), coefs[:-1], spec, noise, d)
    target = np.maximum(total - noise, 0.0)
    have = energy @ spec.eigvals
    flat = target / max(float(spec.eigvals.sum()), TINY)
    energy = np.where(
        (have > 0)[:, None],
        energy * (target / np.where(have > 0, have, 1.0))[:, None],
        flat[:, None],
    )
    scale = max(float(np.mean(spec.eigvals)), TINY)
    loo, loo_res = loo_curves(x, resid, scale * USER_ALPHAS)
    starts = {}
    for j, name in enumerate(names):
        starts[name] = Start(
            name=name,
            coef=coefs[j],
            intercept=float(icpts[j]),
            energy=energy[j],
            resid_var=float(resid_var[j]),
            resid_shape=float(shapes[j]),
            total_var=float(total[j]),
            as_is_mse=float(as_is[j]),
            loo=float(np.min(loo[j])) * float(median_factor(tail_shape(loo_res[j], n))),
            loo_shape=float(tail_shape(loo_res[j], n)),
            resid=resid[j],
            loo_resid=loo_res[j],
        )
    return Engine(
        spectrum=spec,
        noise_var=float(noise),
        noise_floor=float(floor),
        noise_estimated=estimated,
        n_labelled=n,
        starts=starts,
        misspecification=misspecification,
        _order=names,
    )


def _noise_and_energy(
    xh: np.ndarray,
    yh: np.ndarray,
    p: np.ndarray,
    res_h: np.ndarray,
    resid_var: np.ndarray,
    cache: dict,
) -> tuple[float, float, bool, np.ndarray]:
    """The noise variance (with its floor, and whether least squares estimated it) and the
    starts' energies by empirical Bayes at that noise."""
    m, d = xh.shape
    smallest = float(np.min(resid_var))
    if m > d:
        beta, *_ = np.linalg.lstsq(xh, yh, rcond=None)
        fitted = yh - xh @ beta
        k = tail_shape(fitted * math.sqrt(m / (m - d)), m - d)
        noise = min(float(np.sum(fitted**2)) / (m - d) * float(median_factor(k)), smallest)
        floor, estimated = 0.0, True
    else:
        fit0 = fit_profiles(p, res_h, cache=cache)
        ref = int(np.argmax(fit0.loglik))
        floor = NOISE_FLOOR * smallest
        noise = float(np.clip(fit0.noise_var[ref], floor, smallest))
        estimated = False
    fit = fit_profiles(p, res_h, noise_var=max(noise, TINY), cache=cache)
    return noise, floor, estimated, np.array(fit.energy, dtype=np.float64)


def pooled_residual_variance(
    observed: np.ndarray,
    log_se: np.ndarray,
    coefs: np.ndarray,
    spectrum: Spectrum,
    noise_var: float,
    d: int,
) -> np.ndarray:
    """Residual variance of each start; that of zero pooled with the sources' spread.

    With two or more sources, the sources and the target coefficient are treated as
    exchangeable draws around a common mean: given the ``S`` sources, the target's coefficient
    is centred at their mean ``theta_bar`` with their spread
    ``tau^2 = sum_i ||theta_i - theta_bar||_Sigma^2 / (S - 1)`` (times ``1 + 1/S`` for the
    estimated centre), so that a start ``theta_j`` has the expected residual variance
    ``p_j = ||theta_j - theta_bar||_Sigma^2 + (1 + 1/S) tau^2 + sigma^2``. The sources keep
    their observed values; for zero, the prior ``p_0 * exp(mean_i log(observed_i / p_i))`` and
    the observed ``Var(y)`` are averaged on the log scale, each with its precision: the
    observed one's ``1 / log_se^2``, the prior's ``1 / (2 / (S - 1) + 2 / d + mean_i
    log_se_i^2 / S)``. With fewer than two sources nothing changes.

    Parameters
    ----------
    observed : ndarray, shape (S + 1,)
        Residual variances of the sources, then of zero (``Var(y)``).
    log_se : ndarray, shape (S + 1,)
        Standard errors of their logs.
    coefs : ndarray, shape (S, d)
    spectrum : Spectrum
        Target input covariance.
    noise_var : float
    d : int

    Returns
    -------
    ndarray, shape (S + 1,)

    Examples
    --------
    >>> spec = Spectrum(np.ones(2), np.eye(2), 0.0)
    >>> coefs = np.array([[1.0, 0.0], [1.2, 0.0]])
    >>> obs = np.array([3.0, 3.0, 0.5])  # from few rows: zero looks better than the sources
    >>> out = pooled_residual_variance(obs, np.full(3, 3.0), coefs, spec, 0.1, 2)
    >>> bool(out[2] > out[0] == 3.0)  # the sources' spread says that zero is far from them
    True
    >>> bool(pooled_residual_variance(obs, np.full(3, 1e-3), coefs, spec, 0.1, 2)[2] < 0.51)
    True
    """
    obs = np.asarray(observed, dtype=np.float64)
    s = coefs.shape[0]
    if s < 2:
        return obs
    centre = coefs.mean(axis=0)
    dev = coefs - centre
    tau2 = float(spectrum.quad(dev).sum()) / (s - 1)
    starts = np.vstack([coefs, np.zeros(coefs.shape[1])]) - centre
    prior = spectrum.quad(starts) + (1.0 + 1.0 / s) * tau2 + noise_var
    se2 = np.asarray(log_se, dtype=np.float64) ** 2
    if not (np.all(prior > 0) and np.all(obs > 0) and np.all(np.isfinite(se2))):
        return obs
    log_obs, log_prior = np.log(obs), np.log(prior)
    anchor = float(np.mean(log_obs[:s] - log_prior[:s]))
    prior_var = 2.0 / (s - 1) + 2.0 / max(d, 1) + float(np.mean(se2[:s])) / s
    w = prior_var / (prior_var + se2[s])
    out = obs.copy()
    out[s] = math.exp(w * log_obs[s] + (1.0 - w) * (log_prior[s] + anchor))
    return out
