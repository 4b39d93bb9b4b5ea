"""The advisor's risk engine: predicted test MSE of every strategy at any number of rows.

Private to :mod:`finetune_theory.advisor`. Every learned strategy is a regression of a
*residual* on the inputs: fine-tuning from a source ``(theta_j, b_j)`` regresses
``z = y - X theta_j`` (whose coefficient is ``-Delta_j = theta_T - theta_j``), training from
scratch regresses ``y`` itself (``theta_j = 0``). With the intercept refitted from ``n``
training rows, the centred data hold ``n - 1`` independent rows and the mean costs
``(E L + sigma^2) / n``, so every learned strategy has test MSE

    MSE(n) = (E L(n - 1) + sigma^2) (1 + 1/n),

with ``E L`` the theory's expected excess risk (section 1 of the theory notes): the
interpolation deterministic equivalent for ``"finetune"``; for ``"finetune_ridge"`` and
``"scratch"`` the risk at the ridge a user's leave-one-out picks from ``n`` rows
(:func:`loo_ridge_excess`, a parametric bootstrap inside the fitted Gaussian model; the ridge
deterministic equivalent at the best ridge remains with ``RiskEngine.user_ridge = False``).
The strategies that learn at most an intercept are observed almost directly on the labelled
rows: ``"as_is"`` has test MSE
``E r^2`` (``r`` the source's residual), ``"refit_intercept"`` has ``Var(r) (1 + 1/n)`` and
``"mean"`` has ``Var(y) (1 + 1/n)``, with ``Var(y)`` pooled with the sources' spread when
there are two or more (the mean is scratch at infinite ridge).

The ingredients (:class:`RiskEngine`): the covariance spectrum, the energy
``E <Delta_j, v_k>^2`` of each start on each eigen-direction (empirical Bayes, scaled so that
``sum_k lambda_k E <Delta_j, v_k>^2 = Var(r_j) - sigma^2`` holds exactly: the ridge limit
``lambda -> inf`` then reproduces the observed ``"refit_intercept"`` risk; the user's
leave-one-out ridge can do worse than that; for scratch, with two or more sources, ``Var(y)``
is pooled with the sources' spread first, see
:func:`finetune_theory.advisor._advise.pooled_residual_variance`) and the noise variance
``sigma^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..asymptotics import deterministic_equivalent, ridge_equivalent
from ..covariance import Covariance

__all__ = [
    "STRATEGIES",
    "SOURCE_STRATEGIES",
    "TARGET_STRATEGIES",
    "SIMPLICITY",
    "RiskEngine",
    "loo_ridge_excess",
    "USER_ALPHAS",
]

#: every strategy the advisor compares
STRATEGIES = ("as_is", "refit_intercept", "finetune", "finetune_ridge", "scratch", "mean")
#: strategies that use a source model
SOURCE_STRATEGIES = ("as_is", "refit_intercept", "finetune_ridge", "finetune")
#: strategies that use only the target rows
TARGET_STRATEGIES = ("scratch", "mean")
#: from the simplest (nothing fitted) to the most complex (every coefficient, no penalty); of
#: the two that fit one number, the one that keeps the source's slopes comes first
SIMPLICITY = ("as_is", "refit_intercept", "mean", "finetune_ridge", "scratch", "finetune")

#: ridges tried (in units of the mean eigenvalue) for the near-best ridge of the theory
_RIDGES = np.logspace(-6, 3, 46)
#: the user's ridge choice that ``"finetune_ridge"`` and ``"scratch"`` model: scikit-learn's
#: ``RidgeCV`` (penalty ``alpha ||w||^2`` on the sum of squares, intercept refitted, efficient
#: leave-one-out) over these alphas times the mean eigenvalue of the target covariance
USER_ALPHAS = np.logspace(-3, 4, 36)
#: synthetic labelled sets per sample size in the parametric bootstrap of that choice
BOOT_DRAWS = 48
#: sample sizes (knots) at which the bootstrap runs; between them its ratio to the near-best
#: ridge risk is interpolated in ``log n``, beyond them held
BOOT_KNOTS = 10
#: seed of the bootstrap's SeedSequence (the advice is deterministic)
BOOT_SEED = 20261201


def loo_ridge_excess(
    eigvals: np.ndarray,
    energy: np.ndarray,
    noise_var: float,
    n: int,
    alphas: np.ndarray,
    draws: int = BOOT_DRAWS,
    seed: int | np.random.SeedSequence = BOOT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected excess risk of ridge with its alpha chosen by leave-one-out, by simulation.

    Draws ``draws`` labelled sets of ``n`` rows from the Gaussian model (inputs
    ``N(0, diag(eigvals))`` in the eigenbasis, a coefficient ``Delta ~ N(0, diag(energy_j))``
    for each start ``j``, noise ``N(0, noise_var)``), fits ridge with a refitted intercept for
    every alpha, keeps the alpha of the smallest closed-form leave-one-out error (as
    scikit-learn's ``RidgeCV`` does: the hat matrix includes the unpenalised intercept) and
    averages the exact conditional excess risk ``(w - Delta)^T diag(eigvals) (w - Delta)`` of
    the chosen fit. Every start sees the same designs and noise (common random numbers).

    Parameters
    ----------
    eigvals : ndarray, shape (d,)
    energy : ndarray, shape (J, d)
        ``E <Delta_j, v_k>^2`` of each start.
    noise_var : float
    n : int
        Rows per labelled set (at least 2).
    alphas : ndarray, shape (A,)
        Penalties on the sum of squares, as scikit-learn's ``alphas``.
    draws : int
    seed : int or SeedSequence

    Returns
    -------
    mean, se : ndarray, shape (J,)
        The Monte Carlo mean of the excess risk and its standard error.

    Examples
    --------
    >>> lam = np.ones(5)
    >>> mean, se = loo_ridge_excess(lam, np.full((1, 5), 0.1), 0.5, 400, np.logspace(-2, 3, 20))
    >>> bool(mean[0] < 5 * 0.5 / 400 * 1.5)  # n >> d: close to the least-squares excess d s^2/n
    True
    """
    from .._random import as_generator

    lam = np.asarray(eigvals, dtype=np.float64)
    en = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    d = lam.size
    rng = as_generator(np.random.SeedSequence([int(s) for s in _entropy(seed)] + [int(n)]))
    x = rng.standard_normal((draws, n, d)) * np.sqrt(lam)
    delta = rng.standard_normal((draws, d))[None] * np.sqrt(en)[:, None, :]  # (J, B, d)
    noise = rng.standard_normal((draws, n)) * math.sqrt(max(noise_var, 0.0))
    y = np.einsum("bnd,jbd->jbn", x, delta) + noise[None]
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=2, keepdims=True)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)  # (B, n, r), (B, r), (B, r, d)
    s2 = s**2
    a = np.asarray(alphas, dtype=np.float64)
    shrink = s2[:, None, :] / (s2[:, None, :] + a[None, :, None])  # (B, A, r)
    uy = np.einsum("bnr,jbn->jbr", u, yc)  # (J, B, r)
    hat = 1.0 / n + np.einsum("bnr,bar->ban", u**2, shrink)  # (B, A, n)
    fit = np.matmul(u[None, :, None], (shrink[None] * uy[:, :, None, :])[..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.mean(((yc[:, :, None, :] - fit) / (1.0 - hat)[None]) ** 2, axis=3)
    loo = np.where(np.isfinite(loo), loo, np.inf)
    pick = np.argmin(loo, axis=2)  # (J, B): the first smallest, as RidgeCV
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(
            s2[:, None, :] > 0, s[:, None, :] / (s2[:, None, :] + a[None, :, None]), 0.0
        )
    g = np.take_along_axis(gain[None], pick[:, :, None, None], axis=2)[:, :, 0]  # (J, B, r)
    w = np.einsum("jbr,brd->jbd", g * uy, vt)
    excess = ((w - delta) ** 2 * lam).sum(axis=2)  # (J, B)
    return excess.mean(axis=1), excess.std(axis=1, ddof=1) / math.sqrt(draws)


def _entropy(seed: int | np.random.SeedSequence) -> list[int]:
    if isinstance(seed, np.random.SeedSequence):
        ent = seed.entropy
        return [int(ent)] if isinstance(ent, int) else [int(e) for e in ent]
    return [int(seed)]


@dataclass
class RiskEngine:
    """Everything the predicted risks are computed from (starts: the sources, then zero).

    Attributes
    ----------
    eigvals : ndarray, shape (d,)
        Estimated covariance spectrum (descending).
    energy : ndarray, shape (S + 1, d)
        ``E <Delta_j, v_k>^2``; the last row is training from scratch (``theta = 0``).
    noise_var : float
    resid_var : ndarray, shape (S + 2,)
        ``Var(r_j)`` of each start's residual (unbiased sample variance); the entry ``S`` is
        ``Var(y)`` (scratch), the entry ``S + 1`` is the mean's: ``Var(y)`` again, or with two
        or more sources the pooled value that scratch's energies add up to.
    as_is_mse : ndarray, shape (S,)
        Mean squared residual of each source with its own intercept.
    se_as_is, se_resid : ndarray
        Standard errors of ``log`` of the two observables above (gamma model, see
        :func:`tail_shape`).
    n_labelled : int
    shape_as_is, shape_resid : ndarray
        Gamma shapes ``k`` of the two observables' sampling distributions (see
        :func:`tail_shape`); the intervals of the observed strategies are their quantiles.
    """

    eigvals: np.ndarray
    energy: np.ndarray
    noise_var: float
    resid_var: np.ndarray
    as_is_mse: np.ndarray
    se_as_is: np.ndarray
    se_resid: np.ndarray
    n_labelled: int
    shape_as_is: np.ndarray | None = None
    shape_resid: np.ndarray | None = None
    excess_factor: float = 1.0
    #: True: ``finetune_ridge`` and ``scratch`` at the leave-one-out ridge; False: the best one
    user_ridge: bool = True

    @property
    def n_sources(self) -> int:
        return int(self.as_is_mse.size)

    # ------------------------------------------------------------------ excess risks
    def _interp_excess(self, m: np.ndarray) -> np.ndarray:
        """``E L`` of interpolation from each start after ``m`` centred rows, shape (S+1, G)."""
        eq = deterministic_equivalent(Covariance(self.eigvals), np.maximum(m, 1))
        bias = self.energy @ eq.bias_weights.T
        with np.errstate(invalid="ignore"):
            noise = self.noise_var * eq.noise_factor if self.noise_var > 0 else 0.0 * m
        return self.excess_factor * (bias + noise[None, :])

    def _ridge_excess(self, m: np.ndarray) -> np.ndarray:
        """Excess risk of ridge from each start after ``m`` centred rows, shape (S+1, G).

        With ``user_ridge`` (the default) the leave-one-out choice by parametric bootstrap
        (:meth:`loo_excess`, cached at its knots); otherwise the ``min over ridge`` of the
        ridge deterministic equivalent, kept per ``m`` (the engine's inputs do not change
        after construction).
        """
        mm = np.maximum(np.asarray(m, dtype=np.int64), 1)
        if self.user_ridge:
            # the ridge a user's leave-one-out picks from n rows is worse than the best one,
            # and can be worse than keeping the start: its risk by parametric bootstrap (the
            # best-ridge equivalent below is then not needed, and not computed)
            return self.excess_factor * self.loo_excess(mm + 1)
        cache = self.__dict__.setdefault("_ridge_cache", {})
        todo = np.array(sorted({int(v) for v in mm} - set(cache)), dtype=np.int64)
        if todo.size:
            fresh = self._ridge_excess_uncached(todo)
            for j, v in enumerate(todo):
                cache[int(v)] = fresh[:, j]
        best = np.stack([cache[int(v)] for v in mm], axis=1)
        keep = (self.energy * self.eigvals[None, :]).sum(axis=1)
        # the calibration factor applies to what learning adds; keeping the start (the
        # observed refit_intercept risk, the infinite ridge) needs none
        return np.minimum(self.excess_factor * best, keep[:, None])

    def _knots(self) -> np.ndarray:
        d = self.eigvals.size
        top = max(8 * d, 4 * self.n_labelled, 40)
        grid = np.round(np.geomspace(2, top, BOOT_KNOTS)).astype(np.int64)
        return np.unique(np.append(grid, max(self.n_labelled, 2)))

    def loo_excess(self, ns: np.ndarray) -> np.ndarray:
        """Excess risk of ridge at the leave-one-out choice from ``n`` rows, (S+1, G).

        :func:`loo_ridge_excess` at fixed knots (the labelled n and :data:`BOOT_KNOTS` sample
        sizes from 2 to ``max(20 d, 4 n, 50)``, so that every ``n`` asked gets the same
        curve), linear in ``log n`` between them and decaying as ``1 / n`` beyond the last.
        """
        if "_loo" not in self.__dict__:
            knots = self._knots()
            scale = max(float(np.mean(self.eigvals)), 1e-300)
            boot = np.stack(
                [
                    loo_ridge_excess(
                        self.eigvals, self.energy, self.noise_var, int(k), scale * USER_ALPHAS
                    )[0]
                    for k in knots
                ],
                axis=1,
            )
            self.__dict__["_loo"] = (knots, boot)
        knots, boot = self.__dict__["_loo"]
        nf = np.maximum(np.asarray(ns, dtype=np.float64), 2.0)
        x = np.log(nf)
        lk = np.log(knots.astype(np.float64))
        out = np.stack([np.interp(x, lk, row) for row in boot])
        top = float(knots[-1])
        return np.where(nf[None, :] > top, boot[:, -1:] * top / nf[None, :], out)

    def _ridge_excess_uncached(self, m: np.ndarray) -> np.ndarray:
        scale = max(float(np.mean(self.eigvals)), 1e-300)
        ridges = scale * _RIDGES
        mm = np.maximum(m, 1)
        req = ridge_equivalent(
            Covariance(self.eigvals), np.repeat(mm, ridges.size), np.tile(ridges, mm.size)
        )
        bias = (self.energy @ req.bias_weights.T).reshape(self.energy.shape[0], mm.size, -1)
        noise = (self.noise_var * req.noise_factor).reshape(mm.size, -1)
        risk = bias + noise[None]
        # the infinite ridge keeps the start: E L = ||Delta||_Sigma^2
        return risk.min(axis=2)

    # -------------------------------------------------------------------- test MSE
    def mse(self, strategy: str, ns: np.ndarray) -> np.ndarray:
        """Predicted test MSE of a strategy at each ``n``: shape (S, G), or (1, G) for
        ``"scratch"`` and ``"mean"``."""
        ns = np.asarray(ns, dtype=np.int64)
        nf = ns.astype(np.float64)
        grow = 1.0 + 1.0 / np.maximum(nf, 1.0)
        s = self.n_sources
        if strategy == "as_is":
            return np.repeat(self.as_is_mse[:, None], ns.size, axis=1)
        if strategy == "refit_intercept":
            out = self.resid_var[:s, None] * grow[None, :]
        elif strategy == "mean":
            out = self.resid_var[s + 1, None, None] * grow[None, :]
        elif strategy in ("finetune", "finetune_ridge", "scratch"):
            m = ns - 1
            excess = self._interp_excess(m) if strategy == "finetune" else self._ridge_excess(m)
            rows = slice(s, s + 1) if strategy == "scratch" else slice(0, s)
            with np.errstate(invalid="ignore", over="ignore"):
                out = (excess[rows] + self.noise_var) * grow[None, :]
        else:  # pragma: no cover - callers check the name
            raise ValueError(strategy)
        return np.where(ns[None, :] >= 2, out, np.inf)

    def log_se(self, strategy: str, ns: np.ndarray, model_se: float) -> np.ndarray:
        """Standard error of ``log`` of the predicted MSE, shape as :meth:`mse`.

        The observable strategies carry the sampling error of the observed residual moments;
        the learned ones add a model error ``model_se`` that grows with the distance
        ``|log(n / n_labelled)|`` to the labelled size, and interpolating fine-tuning adds the
        share of the label noise in its risk (its test MSE varies most from draw to draw where
        the noise term diverges, near ``n = d``).
        """
        ns = np.asarray(ns, dtype=np.int64)
        s = self.n_sources
        far = np.abs(np.log(np.maximum(ns, 1) / self.n_labelled))
        if strategy == "as_is":
            return np.repeat(self.se_as_is[:, None], ns.size, axis=1)
        if strategy == "refit_intercept":
            return np.repeat(self.se_resid[:s, None], ns.size, axis=1)
        if strategy == "mean":
            return np.full((1, ns.size), self.se_resid[s + 1])
        base = self.se_resid[s : s + 1] if strategy == "scratch" else self.se_resid[:s]
        model = model_se * (1.0 + 0.5 * far)[None, :]
        out = np.sqrt(base[:, None] ** 2 + model**2)
        if strategy == "finetune":
            with np.errstate(invalid="ignore", divide="ignore"):
                total = self.mse("finetune", ns)
                share = np.where(np.isfinite(total), self.noise_var * (1 + 1 / ns) / total, 1.0)
            out = out + np.clip(share, 0.0, 1.0) * 0.5
        return out


def gamma_interval(
    point: np.ndarray, shape: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of an observed mean square whose sampling law is ``truth * Gamma(k) / k``.

    ``point`` is the median-unbiased estimate ``raw * k / median(Gamma(k))``; the interval is
    ``raw * k / q`` for the upper and lower quantiles ``q`` of ``Gamma(k)``.
    """
    from scipy.stats import gamma

    k = np.asarray(shape, dtype=np.float64)
    a = (1.0 - confidence) / 2.0
    med = gamma.ppf(0.5, k)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lo = point * med / gamma.ppf(1.0 - a, k)
        hi = point * med / gamma.ppf(a, k)
    return lo, hi


def tail_shape(values: np.ndarray, dof: float) -> float:
    """Gamma shape ``k`` of the sampling law of ``sum(values^2) / dof``.

    A mean of squares behaves like ``E[v^2] Gamma(k) / k`` with ``k = dof / c`` and
    ``c = Var(v^2) / E[v^2]^2`` (2 for Gaussian values, larger for heavy tails). ``c`` is the
    sample value shrunk towards the prior :data:`TAIL_PRIOR` with the weight of
    :data:`TAIL_PRIOR_ROWS` rows: a few rows cannot show a heavy tail, and real residuals often
    have one (the real tables of the benchmark range from 1.8 to 20).
    """
    v2 = np.asarray(values, dtype=np.float64) ** 2
    n = v2.size
    mean = float(v2.mean()) if n else 0.0
    sample = float(v2.var(ddof=1)) / mean**2 if n >= 2 and mean > 0 else TAIL_PRIOR
    c = (TAIL_PRIOR_ROWS * TAIL_PRIOR + n * sample) / (TAIL_PRIOR_ROWS + n)
    return max(dof, 0.5) / max(c, 2.0)


def median_factor(shape: np.ndarray) -> np.ndarray:
    """``k / median(Gamma(k))``: turns a mean of squares into a median-unbiased estimate."""
    from scipy.stats import gamma

    k = np.asarray(shape, dtype=np.float64)
    return k / gamma.ppf(0.5, k)


#: prior ``Var(r^2) / E[r^2]^2`` of residuals (2: Gaussian): the mean over the seven
#: development tables of ``benchmarks/validate_advisor.py`` of each table's median population
#: value, the residuals of every other group's source on a whole target group (20.1, 4.5, 2.5,
#: 2.5, 1.9, 2.0, 1.8: mean 5.0; ``validate_advisor.py --tails``). It was 6 until 2026-12-02.
TAIL_PRIOR = 5.0
#: weight of that prior, in rows
TAIL_PRIOR_ROWS = 10.0


def log_normal_interval(
    point: np.ndarray, log_se: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``point * exp(-+ z log_se)`` with ``z`` the normal quantile of the two-sided level."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    with np.errstate(over="ignore", invalid="ignore"):
        lo = np.where(np.isfinite(point), point * np.exp(-z * log_se), np.inf)
        hi = np.where(np.isfinite(point), point * np.exp(z * log_se), np.inf)
    return lo, hi


def log_se_of_mean_square(values: np.ndarray) -> float:
    """Delta-method standard error of ``log mean(values^2)`` from ``n`` rows.

    ``sd(v^2) / (sqrt(n) mean(v^2))``; at least the Gaussian value ``sqrt(2 / n)`` would give
    with the same ``n`` (a sample of two cannot show its own spread).
    """
    v2 = np.asarray(values, dtype=np.float64) ** 2
    n = v2.size
    mean = float(v2.mean())
    if n < 2 or mean <= 0:
        return math.inf
    emp = float(v2.std(ddof=1)) / (math.sqrt(n) * mean)
    return max(emp, math.sqrt(2.0 / n))
