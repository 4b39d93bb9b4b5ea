"""Will fine-tuning pay off? Every strategy a practitioner would consider, compared.

A practitioner has one or more pretrained linear source models and a few labelled rows of
their own (target) data. :func:`advise` predicts the held-out test MSE of six strategies at
the labelled ``n`` and at any other ``n`` (:meth:`Advice.predict_risk`):

``"as_is"``
    the source unchanged (its own intercept);
``"refit_intercept"``
    the source with its intercept re-estimated on the labelled rows;
``"finetune"``
    the theory's fine-tuning: gradient descent from the source to zero training loss (the
    interpolant closest to the source, least squares once ``n > d``), intercept refitted;
``"finetune_ridge"``
    ridge towards the source (L2-SP), the ridge chosen as a user would: leave-one-out over a
    log grid, as scikit-learn's ``RidgeCV`` (its risk by a parametric bootstrap of that choice);
``"scratch"``
    ridge regression from zero, the ridge chosen the same way;
``"mean"``
    predict the mean of the labelled labels.

How (section 1 of the theory notes, the engine in :mod:`finetune_theory.advisor._strategies`):
the strategies that fit at most an intercept are observed almost directly on the labelled rows
(the source's residuals); the learned ones use the deterministic equivalents of interpolation
and of ridge regression with

* the covariance spectrum from every target input given, labelled or not (Ledoit-Wolf);
* the noise variance: least squares on the labelled rows when ``n - 1 > d``; otherwise it
  cannot be estimated from the labels alone, and the profile-likelihood value is used,
  bounded below by the stated floor :data:`NOISE_FLOOR` times the smallest residual variance of
  any start (and above by it: no linear model does better than the noise);
* the energy of each start's difference on each eigen-direction by empirical Bayes
  (:mod:`finetune_theory.advisor._fit`), scaled to the observed residual variance (for
  ``"scratch"`` with two or more sources, ``Var(y)`` pooled with the distance from zero that
  the sources' mean and spread imply: :func:`pooled_residual_variance`);
* for ``"finetune_ridge"`` and ``"scratch"``, the user's leave-one-out choice of the ridge:
  labelled sets of ``n`` rows are drawn from that fitted Gaussian model, the ridge is chosen on
  each by closed-form leave-one-out and the exact risk of the chosen fit is averaged
  (:func:`finetune_theory.advisor._strategies.loo_ridge_excess`).

The recommendation is the (source, strategy) pair of lowest predicted risk at the labelled
``n``, unless a simpler strategy cannot be told apart from it (see :class:`Recommendation`).
``docs/advisor.md`` describes the method and its calibration on real grouped data.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import polygamma

from .._validation import check_positive, check_positive_int
from ..covariance import from_data
from ._fit import fit_profiles, helmert
from ._io import as_inputs, as_labels, check_not_constant, load_sources
from ._strategies import (
    SIMPLICITY,
    SOURCE_STRATEGIES,
    STRATEGIES,
    TARGET_STRATEGIES,
    RiskEngine,
    gamma_interval,
    log_normal_interval,
    median_factor,
    tail_shape,
)

__all__ = [
    "Advice",
    "Recommendation",
    "advise",
    "STRATEGIES",
    "NOISE_FLOOR",
    "MODEL_SE",
    "EXCESS_FACTOR",
]

#: the noise variance is never taken below this fraction of the smallest residual variance of
#: any start (the sources with refitted intercepts, and the mean) when it cannot be estimated
NOISE_FLOOR = 0.25
#: the learned strategies' excess risk (what learning adds to the noise) is multiplied by this:
#: real rows are not Gaussian and their labels not exactly linear, and on the development
#: tables of ``benchmarks/validate_advisor.py`` the Gaussian-design theory is optimistic by
#: about this factor (see docs/advisor.md; 1 is the theory as is)
EXCESS_FACTOR = 2.0
#: model-error allowance (standard error of log risk) of the learned strategies' predictions
MODEL_SE = 0.2
#: largest log-scale spread used when turning a median prediction into the predictive mean
MEAN_SE_CAP = 0.8
#: a simpler strategy is chosen when its predicted risk is inside the best one's interval and
#: at most this much above it (on the development tables a user's ridge, chosen by
#: leave-one-out from a few rows, often does worse than its predicted near-best-ridge risk,
#: and picking among many close predictions from a few rows mostly picks noise)
TIE_TOLERANCE = 0.3


# ============================================================================ results
@dataclass(frozen=True)
class Recommendation:
    """The advised (source, strategy) pair at the labelled ``n``.

    Attributes
    ----------
    source : str or None
        Source name (None for ``"scratch"`` and ``"mean"``).
    strategy : str
    n : int
        The labelled ``n`` the recommendation is for.
    risk : float
        Predicted test MSE.
    interval : tuple of float
        Its interval at the advice's confidence.
    best_source, best_strategy : str or None
        The pair of lowest predicted risk; differs from ``source, strategy`` when the two
        cannot be told apart and the simpler one is advised (``tie`` is then True).
    best_risk : float
    tie : bool
    """

    source: str | None
    strategy: str
    n: int
    risk: float
    interval: tuple[float, float]
    best_source: str | None
    best_strategy: str
    best_risk: float
    tie: bool

    def sentence(self) -> str:
        """One sentence stating the advice (parsed by the tests: keep its shape)."""
        lo, hi = self.interval
        text = (
            f"Recommended: {_label(self.source, self.strategy)} "
            f"(predicted test MSE {_fmt(self.risk)}, interval [{_fmt(lo)}, {_fmt(hi)}], "
            f"n = {self.n})."
        )
        if self.tie:
            text += (
                f" The lowest prediction, {_label(self.best_source, self.best_strategy)} at "
                f"{_fmt(self.best_risk)}, cannot be told apart from it, so the simpler strategy "
                "is advised."
            )
        return text


@dataclass
class Advice:
    """The advisor's answer (see :func:`advise`).

    Attributes
    ----------
    n_labelled, n_unlabelled, n_features : int
    feature_names : list of str or None
    source_names : list of str
    eigvals : list of float
        Estimated covariance spectrum of the target inputs (descending).
    noise_var : float
        Label-noise variance used by the predictions.
    noise_floor : float
        The floor it was held above (0 when it was estimated by least squares).
    noise_estimated : bool
        True when ``n - 1 > d`` let least squares estimate it from the labels.
    n_grid : list of int
        Sample sizes of the table's columns (the labelled ``n``, ``2n``, ``5n``, at most
        ``n_max``).
    n_max : int
    eps : float or None
    confidence : float
    recommendation : Recommendation
    ranking : list of str
        Sources by increasing best predicted risk (over their strategies) at the labelled n.
    n_for_eps : dict
        ``"source/strategy" -> n`` (None: not reached up to ``n_max``), when ``eps`` is given.
    crossover_n : dict
        ``source -> n``: the smallest ``n`` up to ``n_max`` at which training from scratch is
        predicted to beat ridge towards that source (None: not up to ``n_max``).
    assumptions : list of str
    """

    n_labelled: int
    n_unlabelled: int
    n_features: int
    feature_names: list[str] | None
    source_names: list[str]
    eigvals: list[float]
    noise_var: float
    noise_floor: float
    noise_estimated: bool
    n_grid: list[int]
    n_max: int
    eps: float | None
    confidence: float
    recommendation: Recommendation
    ranking: list[str]
    n_for_eps: dict[str, int | None] = field(default_factory=dict)
    crossover_n: dict[str, int | None] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    _engine: RiskEngine | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ access
    def _check(self, source: str | None, strategy: str) -> int | None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}"
            )
        if strategy in TARGET_STRATEGIES:
            if source is not None and source not in self.source_names:
                raise ValueError(
                    f"unknown source {source!r}; valid sources: "
                    f"{', '.join(self.source_names) or '(none)'} (or None)"
                )
            return None
        if source not in self.source_names:
            raise ValueError(
                f"unknown source {source!r} for strategy {strategy!r}; valid sources: "
                f"{', '.join(self.source_names) or '(none given)'}"
            )
        return self.source_names.index(source)

    def _curve(self, source: str | None, strategy: str, ns: Any) -> tuple[np.ndarray, ...]:
        i = self._check(source, strategy)
        if self._engine is None:
            raise ValueError("this Advice was loaded without its model; predictions need advise()")
        arr = np.atleast_1d(np.asarray(ns))
        if arr.dtype.kind not in "iu" and not np.all(arr == np.round(arr)):
            raise ValueError(f"n must be whole numbers, got {ns!r}")
        arr = arr.astype(np.int64)
        if np.any(arr < 1):
            raise ValueError(f"n must be at least 1, got {ns!r}")
        eng = self._engine
        risk = eng.mse(strategy, arr)
        if strategy in ("as_is", "refit_intercept", "mean"):
            s = eng.n_sources
            shape = {
                "as_is": eng.shape_as_is,
                "refit_intercept": eng.shape_resid[:s],
                "mean": eng.shape_resid[s + 1 :],
            }[strategy]
            lo, hi = gamma_interval(risk, shape[:, None], self.confidence)
            se = np.sqrt(polygamma(1, shape))[:, None] * np.ones(arr.size)[None, :]
        else:
            se = eng.log_se(strategy, arr, MODEL_SE)
            lo, hi = log_normal_interval(risk, se, self.confidence)
            # the spread at the labelled n: the factor below then keeps the curve's shape
            se = eng.log_se(strategy, np.array([self.n_labelled]), MODEL_SE)
        # the point is the mean of the predictive law (log-normal with the capped spread): an
        # uncertain prediction is penalised as the expected test MSE penalises it
        with np.errstate(invalid="ignore", over="ignore"):
            risk = risk * np.exp(0.5 * np.minimum(se, MEAN_SE_CAP) ** 2)
        row = 0 if i is None else i
        return risk[row], lo[row], hi[row]

    def predict_risk(self, source: str | None, strategy: str, n: int) -> float:
        """Predicted test MSE of ``strategy`` (from ``source``) trained on ``n`` labelled rows.

        ``source`` is ignored (may be None) for ``"scratch"`` and ``"mean"``; ``"as_is"`` does
        not depend on ``n``. An unknown source or strategy is a ``ValueError`` listing the
        valid names.
        """
        return float(self._curve(source, strategy, [n])[0][0])

    def predict_interval(self, source: str | None, strategy: str, n: int) -> tuple[float, float]:
        """The interval of :meth:`predict_risk` at the advice's confidence."""
        _, lo, hi = self._curve(source, strategy, [n])
        return float(lo[0]), float(hi[0])

    def rows(self) -> list[dict[str, Any]]:
        """Every (source, strategy) pair with its predictions on :attr:`n_grid`."""
        out = []
        for src, strat in _pairs(self.source_names):
            risk, lo, hi = self._curve(src, strat, self.n_grid)
            row: dict[str, Any] = {"source": src, "strategy": strat}
            for j, n in enumerate(self.n_grid):
                row[f"risk@{n}"] = float(risk[j])
                row[f"low@{n}"] = float(lo[j])
                row[f"high@{n}"] = float(hi[j])
            if self.eps is not None:
                row["n_for_eps"] = self.n_for_eps.get(_key(src, strat))
            out.append(row)
        return out

    @property
    def best(self) -> str | None:
        """The top-ranked source (None when no source was given)."""
        return self.ranking[0] if self.ranking else None

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None)."""
        rec = self.recommendation
        out = {
            "n_labelled": self.n_labelled,
            "n_unlabelled": self.n_unlabelled,
            "n_features": self.n_features,
            "feature_names": self.feature_names,
            "sources": self.source_names,
            "eigvals": self.eigvals,
            "noise_var": self.noise_var,
            "noise_floor": self.noise_floor,
            "noise_estimated": self.noise_estimated,
            "n_grid": self.n_grid,
            "n_max": self.n_max,
            "eps": self.eps,
            "confidence": self.confidence,
            "recommendation": {
                "source": rec.source,
                "strategy": rec.strategy,
                "n": rec.n,
                "risk": rec.risk,
                "interval": list(rec.interval),
                "tie": rec.tie,
                "best_source": rec.best_source,
                "best_strategy": rec.best_strategy,
                "best_risk": rec.best_risk,
                "sentence": rec.sentence(),
            },
            "ranking": self.ranking,
            "rows": self.rows(),
            "n_for_eps": self.n_for_eps,
            "crossover_n": self.crossover_n,
            "assumptions": self.assumptions,
        }
        return _jsonable(out)

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """The advice as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_csv(self) -> str:
        """One row per (source, strategy, n): ``source,strategy,n,risk,low,high``."""
        buf = io.StringIO()
        buf.write("source,strategy,n,risk,low,high\n")
        for row in self.rows():
            for n in self.n_grid:
                buf.write(
                    f"{row['source'] or ''},{row['strategy']},{n},{row[f'risk@{n}']:.6g},"
                    f"{row[f'low@{n}']:.6g},{row[f'high@{n}']:.6g}\n"
                )
        return buf.getvalue()

    def table(self) -> Any:
        """A ``rich.table.Table`` of every (source, strategy) pair."""
        from rich.table import Table

        pct = int(round(100 * self.confidence))
        t = Table(
            title=(
                f"Predicted test MSE: n = {self.n_labelled} labelled, {self.n_unlabelled} "
                f"unlabelled, d = {self.n_features}"
            ),
            caption=f"[{pct}% interval]; * = recommended",
        )
        t.add_column("", no_wrap=True)
        t.add_column("source", no_wrap=True)
        t.add_column("strategy", no_wrap=True)
        for n in self.n_grid:
            t.add_column(f"n={n}", justify="right", no_wrap=True)
        if self.eps is not None:
            t.add_column(f"n for MSE {self.eps:.3g}", justify="right", no_wrap=True)
        rec = self.recommendation
        for row in self.rows():
            mark = "*" if (row["source"], row["strategy"]) == (rec.source, rec.strategy) else ""
            cells = [mark, row["source"] or "-", row["strategy"]]
            for n in self.n_grid:
                cells.append(
                    f"{_fmt(row[f'risk@{n}'])} [{_fmt(row[f'low@{n}'])}, {_fmt(row[f'high@{n}'])}]"
                )
            if self.eps is not None:
                cells.append(_fmt_n(row["n_for_eps"]))
            t.add_row(*cells)
        return t

    def lines(self) -> list[str]:
        """The text lines printed under the table: the recommendation, then the notes."""
        out = [self.recommendation.sentence()]
        for src, n in self.crossover_n.items():
            if n is not None:
                out.append(
                    f"Training from scratch is predicted to beat ridge towards {src} from "
                    f"n = {n} on."
                )
        return out + [f"- {a}" for a in self.assumptions]

    def summary(self, width: int = 400) -> str:
        """The table, the recommendation and the assumptions as plain text."""
        from rich.console import Console

        buf = io.StringIO()
        console = Console(width=width, file=buf, color_system=None, soft_wrap=True)
        console.print(self.table())
        for line in self.lines():
            console.print(line, highlight=False, markup=False)
        return buf.getvalue()

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path: str | Path) -> Path:
        """Predicted test MSE against ``n`` for every (source, strategy), one figure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(path)
        ns = np.unique(np.round(np.geomspace(2, self.n_max, 60)).astype(np.int64))
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        for src, strat in _pairs(self.source_names):
            risk, lo, hi = self._curve(src, strat, ns)
            (line,) = ax.plot(ns, risk, label=_label(src, strat))
            ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.1)
        ax.axvline(self.n_labelled, color="grey", lw=0.8, ls=":")
        if self.eps is not None:
            ax.axhline(self.eps, color="black", lw=0.8, ls=":")
        ax.set(
            xscale="log", yscale="log", xlabel="labelled target rows n", ylabel="predicted test MSE"
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        return out


def _pairs(source_names: Sequence[str]) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for src in source_names:
        out += [(src, s) for s in SOURCE_STRATEGIES]
    return out + [(None, s) for s in TARGET_STRATEGIES]


def _key(source: str | None, strategy: str) -> str:
    return strategy if source is None else f"{source}/{strategy}"


def _label(source: str | None, strategy: str) -> str:
    return strategy if source is None else f"{strategy} from {source}"


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:.3g}"


def _fmt_n(n: int | None) -> str:
    return "not reached" if n is None else str(n)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ========================================================================= analysis
def _engine(
    x: np.ndarray,
    y: np.ndarray,
    x_unl: np.ndarray | None,
    coefs: np.ndarray,
    icpts: np.ndarray,
    pool_sources: bool = True,
) -> tuple[RiskEngine, float, bool, np.ndarray]:
    """The risk engine from the data; also the noise floor, whether the noise was estimated,
    and the spectrum (``pool_sources``: see :func:`pooled_residual_variance`)."""
    n, d = x.shape
    x_all = x if x_unl is None else np.vstack([x, x_unl])
    cov = from_data(x_all, shrinkage="ledoit-wolf")
    lam, basis = cov.eigvals, cov.basis
    starts = np.vstack([coefs, np.zeros(d)])  # sources, then scratch
    resid = y[None, :] - starts @ x.T  # (S + 1, n)
    as_is = resid[:-1] - icpts[:, None]
    centred = resid - resid.mean(axis=1, keepdims=True)
    # observed mean squares, made median-unbiased under a gamma law with heavy-tail prior
    shape_resid = np.array([tail_shape(r, n - 1) for r in centred])
    shape_resid = np.append(shape_resid, shape_resid[-1])
    # as_is and refit_intercept of a source differ only by the intercept shift: both take the
    # tail shape of the centred residuals, so that the shift alone decides between them (the
    # as_is residuals, shifted, look lighter-tailed and used to favour as_is unduly)
    shape_as_is = shape_resid[: coefs.shape[0]].copy()
    as_is_mse = np.mean(as_is**2, axis=1) * median_factor(shape_as_is)
    resid_var = np.append(resid.var(axis=1, ddof=1), y.var(ddof=1)) * median_factor(shape_resid)
    se_as_is = np.sqrt(polygamma(1, shape_as_is))
    se_resid = np.sqrt(polygamma(1, shape_resid))

    xh = helmert(x)  # (n - 1, d): centred, independent rows
    p = xh @ basis
    res_h = helmert(y)[None, :] - starts @ xh.T
    m = n - 1
    smallest = float(np.min(resid_var))
    if m > d:
        # least squares on the centred rows: unbiased under the linear model
        beta, *_ = np.linalg.lstsq(xh, helmert(y), rcond=None)
        fitted = helmert(y) - xh @ beta
        rss = float(np.sum(fitted**2))
        k = tail_shape(fitted * math.sqrt(m / (m - d)), m - d)
        noise = min(rss / (m - d) * float(median_factor(k)), smallest)
        floor, estimated = 0.0, True
    else:
        fit0 = fit_profiles(p, res_h)
        ref = int(np.argmax(fit0.loglik))
        floor = NOISE_FLOOR * smallest
        noise = float(np.clip(fit0.noise_var[ref], floor, smallest))
        estimated = False
    fit = fit_profiles(p, res_h, noise_var=max(noise, 1e-300))
    energy = np.array(fit.energy, dtype=np.float64)
    # scale each start's energies to its residual variance minus the noise: the observed one,
    # pooled with what the spread of the sources implies when there are two or more of them
    total = resid_var[:-1]
    if pool_sources:
        total = pooled_residual_variance(
            total, se_resid[:-1], coefs, (basis * lam) @ basis.T, noise, d
        )
    target = np.maximum(total - noise, 0.0)
    if pool_sources and coefs.shape[0] >= 2:
        # predicting the labelled mean is scratch at infinite ridge (as refit_intercept is ridge
        # towards a source at infinite ridge): it takes the residual variance scratch is scaled
        # to, not the Var(y) of the few labelled rows alone
        resid_var = np.append(resid_var[:-1], target[-1] + noise)
    have = energy @ lam
    flat = target / max(float(lam.sum()), 1e-300)
    energy = np.where(
        (have > 0)[:, None],
        energy * (target / np.where(have > 0, have, 1.0))[:, None],
        flat[:, None],
    )
    engine = RiskEngine(
        eigvals=lam,
        energy=energy,
        noise_var=float(noise),
        resid_var=resid_var,
        as_is_mse=as_is_mse,
        se_as_is=se_as_is,
        se_resid=se_resid,
        n_labelled=n,
        shape_as_is=shape_as_is,
        shape_resid=shape_resid,
    )
    return engine, float(floor), estimated, lam


def pooled_residual_variance(
    observed: np.ndarray,
    log_se: np.ndarray,
    coefs: np.ndarray,
    cov: np.ndarray,
    noise_var: float,
    d: int,
) -> np.ndarray:
    """Residual variance of each start; that of scratch pooled with the sources' spread.

    With two or more sources, the sources and the target coefficient are treated as
    exchangeable draws around a common mean: given the ``S`` sources, the target's coefficient
    is centred at their mean ``theta_bar`` with their spread
    ``tau^2 = sum_i ||theta_i - theta_bar||_Sigma^2 / (S - 1)`` (times ``1 + 1/S`` for the
    estimated centre), so that a start ``theta_j`` (a source, or zero for scratch) has the
    expected residual variance ``p_j = ||theta_j - theta_bar||_Sigma^2 + (1 + 1/S) tau^2 +
    sigma^2``. The sources keep their observed values (so that ridge towards a source still
    tends to the observed ``refit_intercept`` risk); for scratch, the prior
    ``p_0 * exp(mean_i log(observed_i / p_i))`` (the step from the sources to zero from the
    spread, its level from the observed sources) and the observed ``Var(y)`` are averaged on
    the log scale, each with its precision: the observed one's is ``1 / log_se^2`` (its gamma
    law, :func:`tail_shape`), the prior's ``1 / (2 / (S - 1) + 2 / d + mean_i log_se_i^2 /
    S)`` (a spread estimated from ``S - 1`` degrees of freedom, one realised difference over
    ``d`` directions, and the sources' observed level). From a few rows ``Var(y)`` and the
    sources' residual variances are noisy and the spread decides how far zero is from them;
    with many rows the observed value does. With fewer than two sources nothing changes.

    Parameters
    ----------
    observed : ndarray, shape (S + 1,)
        Residual variances of the sources, then of scratch (``Var(y)``).
    log_se : ndarray, shape (S + 1,)
        Standard errors of their logs.
    coefs : ndarray, shape (S, d)
    cov : ndarray, shape (d, d)
        Target input covariance.
    noise_var : float
    d : int

    Returns
    -------
    ndarray, shape (S + 1,)
        The sources' values unchanged, then the pooled value for scratch.

    Examples
    --------
    >>> cov = np.eye(2)
    >>> coefs = np.array([[1.0, 0.0], [1.2, 0.0]])
    >>> obs = np.array([3.0, 3.0, 0.5])  # from few rows: zero looks better than the sources
    >>> out = pooled_residual_variance(obs, np.full(3, 3.0), coefs, cov, 0.1, 2)
    >>> bool(out[2] > out[0] == 3.0)  # the sources' spread says that zero is far from them
    True
    >>> bool(pooled_residual_variance(obs, np.full(3, 1e-3), coefs, cov, 0.1, 2)[2] < 0.51)
    True
    """
    obs = np.asarray(observed, dtype=np.float64)
    s = coefs.shape[0]
    if s < 2:
        return obs
    centre = coefs.mean(axis=0)
    dev = coefs - centre
    tau2 = float(np.einsum("id,de,ie->", dev, cov, dev)) / (s - 1)
    starts = np.vstack([coefs, np.zeros(coefs.shape[1])]) - centre
    prior = np.einsum("id,de,ie->i", starts, cov, starts) + (1.0 + 1.0 / s) * tau2 + noise_var
    se2 = np.asarray(log_se, dtype=np.float64) ** 2
    if not (np.all(prior > 0) and np.all(obs > 0) and np.all(np.isfinite(se2))):
        return obs
    log_obs, log_prior = np.log(obs), np.log(prior)
    # the level from the observed sources, the step from them to zero from their spread
    anchor = float(np.mean(log_obs[:s] - log_prior[:s]))
    prior_var = 2.0 / (s - 1) + 2.0 / max(d, 1) + float(np.mean(se2[:s])) / s
    w = prior_var / (prior_var + se2[s])
    out = obs.copy()
    out[s] = math.exp(w * log_obs[s] + (1.0 - w) * (log_prior[s] + anchor))
    return out


def first_n(ns: np.ndarray, condition: np.ndarray) -> int | None:
    """The first ``n`` of the scan where ``condition`` holds (None: nowhere).

    Examples
    --------
    >>> first_n(np.array([2, 3, 4, 5]), np.array([1.0, 2, 3, 4]) > 2.5)
    4
    """
    hit = np.flatnonzero(condition)
    return int(ns[hit[0]]) if hit.size else None


def _scan_ns(n_max: int) -> np.ndarray:
    """Every integer up to 400, then log-spaced up to ``n_max``."""
    dense = np.arange(2, min(n_max, 400) + 1)
    if n_max <= 400:
        return dense
    tail = np.unique(np.round(np.geomspace(401, n_max, 200)).astype(np.int64))
    return np.concatenate([dense, tail])


def _recommend(advice_curve: Any, names: Sequence[str], n: int) -> tuple[Recommendation, list[str]]:
    cands = []
    for src, strat in _pairs(names):
        risk, lo, hi = advice_curve(src, strat, [n])
        cands.append((src, strat, float(risk[0]), float(lo[0]), float(hi[0])))
    finite = [c for c in cands if math.isfinite(c[2])]
    best = min(finite, key=lambda c: (c[2], SIMPLICITY.index(c[1])))
    chosen = best
    for c in sorted(finite, key=lambda c: (SIMPLICITY.index(c[1]), c[2])):
        if SIMPLICITY.index(c[1]) >= SIMPLICITY.index(best[1]):
            break
        if c[2] <= min(best[4], best[2] * (1.0 + TIE_TOLERANCE)):
            chosen = c
            break
    rec = Recommendation(
        source=chosen[0],
        strategy=chosen[1],
        n=n,
        risk=chosen[2],
        interval=(chosen[3], chosen[4]),
        best_source=best[0],
        best_strategy=best[1],
        best_risk=best[2],
        tie=chosen is not best,
    )
    per_source = {}
    for src, _, risk, _, _ in finite:
        if src is not None:
            per_source[src] = min(risk, per_source.get(src, math.inf))
    ranking = sorted(per_source, key=lambda s: per_source[s])
    return rec, ranking


# ============================================================================== API
def advise(
    X: Any,
    y: Any,
    sources: Any = None,
    *,
    X_unlabelled: Any = None,
    names: Sequence[str] | None = None,
    eps: float | None = None,
    n_max: int | None = None,
    confidence: float = 0.8,
    excess_factor: float = EXCESS_FACTOR,
    pool_sources: bool = True,
) -> Advice:
    """Predict the test MSE of every strategy, for each source, and recommend one.

    Parameters
    ----------
    X : array-like or DataFrame, shape (n, d)
        Labelled target inputs (``n >= 2``). The features as the models will see them (the
        advisor does not rescale them: ridge and fine-tuning are not scale-invariant).
    y : array-like, shape (n,)
        Target labels.
    sources : optional
        One source or a list (or a dict name -> source) of them. A source is a coefficient
        vector of length ``d``, a fitted linear scikit-learn model (``coef_``, ``intercept_``),
        a ``{"coef": ..., "intercept": ...}`` mapping (``coef`` a list or a mapping feature name
        -> coefficient), a mapping feature name -> coefficient, or the path of a ``.json`` /
        ``.csv`` file holding one of those. None: only ``"scratch"`` and ``"mean"``.
    X_unlabelled : array-like or DataFrame, shape (m, d), optional
        More target inputs without labels; they sharpen the covariance estimate (strongly
        advised when ``n`` is below ``d``).
    names : list of str, optional
        Names of the sources (default: dict keys, file stems, or ``source_1, ...``).
    eps : float, optional
        A requested test MSE: the advisor reports the ``n`` each strategy needs to reach it.
    n_max : int, optional
        Largest sample size considered (default ``max(10 n, 2 d)``).
    confidence : float
        Level of the intervals, in (0, 1) (default 0.8).
    excess_factor : float
        Multiplies the learned strategies' excess risk (what learning adds to the noise).
        ``1`` is the Gaussian-design theory as is (right for Gaussian inputs with linear
        labels); the default :data:`EXCESS_FACTOR` is the calibration measured on real tables
        (``docs/advisor.md``).
    pool_sources : bool
        With two or more sources, pool the residual variance that scales training from
        scratch with what the sources' spread implies (the target coefficient treated as
        exchangeable with the sources'; see :func:`pooled_residual_variance`), and predict
        ``mean`` (scratch at infinite ridge) from the same pooled variance. False: the
        observed ``Var(y)`` alone for both, as before 2026-12-02.

    Returns
    -------
    Advice

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 50)); theta = rng.standard_normal(50) / 7
    >>> y = X @ theta + 0.1 * rng.standard_normal(30)
    >>> advice = advise(X, y, {"close": theta + 0.01, "far": -theta})
    >>> advice.ranking
    ['close', 'far']
    >>> advice.recommendation.source
    'close'
    >>> advice.noise_var >= advice.noise_floor > 0  # n < d: a floor, never a collapse
    True
    """
    x, feature_names = as_inputs(X, "X")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"X needs at least 2 labelled samples, got {n}")
    yy = as_labels(y, n)
    x_unl = None
    if X_unlabelled is not None:
        x_unl, _ = as_inputs(X_unlabelled, "X_unlabelled", feature_names=feature_names)
        if x_unl.shape[1] != d:
            raise ValueError(f"X_unlabelled has {x_unl.shape[1]} columns but X has {d}")
    x_all = x if x_unl is None else np.vstack([x, x_unl])
    check_not_constant(x_all, feature_names, "X")
    if float(np.ptp(yy)) == 0.0:
        raise ValueError("y is constant on the labelled rows; there is nothing to predict")
    srcs = load_sources(sources, d, feature_names, names)
    if eps is not None:
        eps = check_positive(eps, "eps")
    n_max = max(10 * n, 2 * d) if n_max is None else check_positive_int(n_max, "n_max", minimum=2)
    confidence = check_positive(confidence, "confidence")
    if confidence >= 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")

    coefs = np.array([s.coef for s in srcs]).reshape(len(srcs), d)
    icpts = np.array([s.intercept for s in srcs], dtype=np.float64)
    excess_factor = check_positive(excess_factor, "excess_factor")
    engine, floor, estimated, lam = _engine(x, yy, x_unl, coefs, icpts, pool_sources)
    engine.excess_factor = excess_factor
    names_ = [s.name for s in srcs]
    grid = sorted({g for g in (n, 2 * n, 5 * n) if g <= n_max} | ({n} if n <= n_max else set()))
    if not grid:
        grid = [n_max]
    advice = Advice(
        n_labelled=n,
        n_unlabelled=0 if x_unl is None else int(x_unl.shape[0]),
        n_features=d,
        feature_names=feature_names,
        source_names=names_,
        eigvals=[float(v) for v in lam],
        noise_var=engine.noise_var,
        noise_floor=floor,
        noise_estimated=estimated,
        n_grid=grid,
        n_max=n_max,
        eps=eps,
        confidence=confidence,
        recommendation=None,  # type: ignore[arg-type]  # set below
        ranking=[],
        _engine=engine,
    )
    advice.recommendation, advice.ranking = _recommend(advice._curve, names_, n)
    scan = _scan_ns(n_max)
    if eps is not None:
        for src, strat in _pairs(names_):
            risk = advice._curve(src, strat, scan)[0]
            advice.n_for_eps[_key(src, strat)] = first_n(scan, risk <= eps)
    if srcs:
        scratch = engine.mse("scratch", scan)[0]
        ridge = engine.mse("finetune_ridge", scan)
        for i, src in enumerate(names_):
            advice.crossover_n[src] = first_n(scan, scratch < ridge[i])
    advice.assumptions = _assumptions(n, d, advice.n_unlabelled, engine, floor, estimated)
    if pool_sources and len(srcs) >= 2:
        advice.assumptions.append(
            "Training from scratch and the mean are scaled by Var(y) pooled with the distance "
            f"from zero to the {len(srcs)} sources, measured by their spread (the target's "
            "coefficient treated as one more draw like the sources')."
        )
    return advice


def _assumptions(
    n: int, d: int, m: int, engine: RiskEngine, floor: float, estimated: bool
) -> list[str]:
    lines = [
        "Risk is the expected squared error on new target rows. 'finetune' is gradient descent "
        "from the source to zero training loss; 'finetune_ridge' and 'scratch' are ridge "
        "regression towards the source and towards zero with the ridge chosen by leave-one-out "
        "(as scikit-learn's RidgeCV, alphas = mean input variance x logspace(-3, 4, 36)); "
        "every learned strategy refits the intercept.",
        f"The target inputs are treated as Gaussian with a Ledoit-Wolf covariance from {n + m} "
        f"inputs in {d} dimensions, the labels as linear plus homoscedastic noise.",
    ]
    if estimated:
        lines.append(
            f"Noise variance {engine.noise_var:.3g}, estimated by least squares on the labelled "
            f"rows ({n - 1 - d} residual degrees of freedom)."
        )
    else:
        lines.append(
            f"The noise variance cannot be estimated from {n} labelled rows in {d} dimensions "
            f"(least squares needs n > d + 1); the value used, {engine.noise_var:.3g}, is the "
            f"marginal-likelihood estimate held above the floor {floor:.3g} "
            f"({NOISE_FLOOR:g} x the smallest residual variance of any start)."
        )
    if n + m < 2 * d:
        lines.append(
            f"Only {n + m} inputs for a {d}-dimensional covariance: predictions for n beyond "
            "the labelled size are rough; unlabelled target inputs would sharpen them."
        )
    return lines
