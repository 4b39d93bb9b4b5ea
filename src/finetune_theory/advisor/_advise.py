"""Will fine-tuning pay off? Predicted learning curves and source rankings from target data.

A practitioner has one or more pretrained linear source models and a little labelled target
data. :func:`advise` answers with the theory of fine-tuning in linear regression (section 1 of
the theory notes): the expected risk of fine-tuning on ``n`` samples is

    E L(n) = sum_k w_k(n) <theta_S - theta_T, v_k>^2 + sigma^2 noise_factor(n),

with the weights ``w_k(n)`` of the deterministic equivalent of the target covariance. The
advisor estimates each ingredient from the data:

* the covariance spectrum from every target input given, labelled or not (Ledoit-Wolf
  shrinkage, which fades away when there are many samples);
* the energy of the source-target difference on each eigen-direction and the noise level by
  empirical Bayes (:mod:`finetune_theory.advisor._fit`): a two-parameter profile
  ``E <Delta, v_k>^2 = s k^t`` fitted by maximum marginal likelihood to the source's
  residuals on the labelled data, then refined direction by direction by the posterior;
* uncertainty by the bootstrap (labelled and unlabelled rows resampled, everything refitted).

It returns an :class:`Advice`: the learning curves of fine-tuning and of training from
scratch with intervals, the crossover sample size, the sample size needed for a requested
risk, the ranking of the sources, a hold-out check of the curve on the labelled data itself,
and the assumptions, stated plainly. ``docs/advisor.md`` describes the method and its
measured accuracy.
The ``finetune-theory advise`` command (:mod:`finetune_theory.cli.advise`) reads CSV and JSON
files and calls :func:`advise`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import linear
from .._random import SeedLike, as_generator
from .._validation import check_positive, check_positive_int
from ..asymptotics import deterministic_equivalent, numerical_rank
from ..covariance import Covariance, from_data
from ._fit import fit_profiles, helmert
from ._io import (
    as_inputs,
    as_labels,
    check_not_constant,
    load_sources,
)

__all__ = ["Advice", "SourceAdvice", "advise"]

SCRATCH = "scratch"
_DENSE_LIMIT = 4000  # beyond this many sample sizes, scan a log-spaced subset


# ============================================================================ results
@dataclass
class SourceAdvice:
    """What the advisor predicts for one source (or for training from scratch).

    Attributes
    ----------
    name : str
    intercept : float
        The source model's intercept (used only for ``source_mse``).
    source_mse : float
        Mean squared error of the source model, as is, on the labelled data.
    similarity : float
        The covariance-aware similarity at the labelled ``n``: the predicted
        ``sum_k w_k(n) <Delta, v_k>^2``, the noise-free part of the expected excess risk.
    similarity_interval : tuple of float
    tilt, scale, noise_var : float
        The fitted profile ``E <Delta, v_k>^2 = scale * k^tilt`` and label-noise variance.
    excess : list of float
        Predicted expected excess risk ``E L(n)`` of fine-tuning at each ``n`` of the grid.
    risk, risk_low, risk_high : list of float
        Predicted expected test MSE (refitted intercept included) at each ``n`` of the grid,
        with its bootstrap interval.
    n_for_eps : int or None
        Smallest ``n`` whose predicted test MSE is at most ``eps`` (None: not reached up to
        ``n_max``, or no ``eps`` asked).
    n_for_eps_interval : tuple
        Bootstrap interval of ``n_for_eps`` (None for "not reached").
    crossover_n : int or None
        Smallest ``n`` at which training from scratch is predicted to beat this source (None:
        never below the rank of the covariance). Not set for the scratch entry itself.
    holdout_measured, holdout_predicted : float or None
        Check on the labelled data: mean test MSE of fine-tuning on random halves, measured on
        the other halves, against the predicted test MSE at that size.
    """

    name: str
    intercept: float
    source_mse: float
    similarity: float
    similarity_interval: tuple[float, float]
    tilt: float
    scale: float
    noise_var: float
    excess: list[float]
    risk: list[float]
    risk_low: list[float]
    risk_high: list[float]
    n_for_eps: int | None = None
    n_for_eps_interval: tuple[int | None, int | None] = (None, None)
    crossover_n: int | None = None
    holdout_measured: float | None = None
    holdout_predicted: float | None = None

    def risk_at(self, n_grid: Sequence[int], n: int) -> float:
        """The predicted test MSE at a sample size of the grid."""
        return self.risk[list(n_grid).index(int(n))]


@dataclass
class Advice:
    """The advisor's answer (see :func:`advise`).

    Attributes
    ----------
    n_labelled, n_unlabelled, n_features : int
    feature_names : list of str or None
    eigvals : list of float
        Estimated covariance spectrum of the target inputs (descending).
    shrinkage : float
        Ledoit-Wolf shrinkage intensity used for it (0: the sample covariance).
    n_grid : list of int
        Sample sizes of the predicted curves (include ``n``, ``2n`` and ``5n``).
    sources : list of SourceAdvice
        One per source, in the order given.
    scratch : SourceAdvice
        Training from scratch (``theta_S = 0``).
    ranking : list of str
        Source names by increasing predicted test MSE at ``n_rank``.
    n_rank : int
    rank_stability : float or None
        Fraction of bootstrap replicates in which the top-ranked source stays on top.
    eps : float or None
    confidence : float
    n_boot : int
    holdout_n : int or None
        Training size of the hold-out check.
    assumptions : list of str
    """

    n_labelled: int
    n_unlabelled: int
    n_features: int
    feature_names: list[str] | None
    eigvals: list[float]
    shrinkage: float
    n_grid: list[int]
    sources: list[SourceAdvice]
    scratch: SourceAdvice
    ranking: list[str]
    n_rank: int
    rank_stability: float | None
    eps: float | None
    confidence: float
    n_boot: int
    holdout_n: int | None
    assumptions: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ access
    @property
    def best(self) -> SourceAdvice | None:
        """The top-ranked source (None when no source was given)."""
        if not self.ranking:
            return None
        return self.source(self.ranking[0])

    def source(self, name: str) -> SourceAdvice:
        """The entry of a source by name (``"scratch"`` for training from scratch)."""
        if name == SCRATCH:
            return self.scratch
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None)."""
        return _jsonable(asdict(self))

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """The advice as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def table(self) -> Any:
        """A ``rich.table.Table`` summarising every source and training from scratch."""
        from rich.table import Table

        n = self.n_labelled
        cols = [n, 2 * n, 5 * n]
        pct = int(round(100 * self.confidence))
        t = Table(
            title=(
                f"Fine-tuning advice: n = {n} labelled, {self.n_unlabelled} unlabelled, "
                f"d = {self.n_features}"
            ),
            caption=f"risk = expected test MSE; [{pct}% bootstrap interval, {self.n_boot} draws]",
        )
        t.add_column("rank", justify="right")
        t.add_column("model")
        t.add_column("source MSE", justify="right")
        for c in cols:
            t.add_column(f"risk @ n={c}", justify="right")
        t.add_column("similarity D_n", justify="right")
        if self.eps is not None:
            t.add_column(f"n for risk {self.eps:.3g}", justify="right")
        t.add_column("scratch wins at n", justify="right")
        order = [self.source(nm) for nm in self.ranking] + [self.scratch]
        for i, s in enumerate(order):
            row = [str(i + 1) if s.name != SCRATCH else "-", s.name, _fmt(s.source_mse)]
            for c in cols:
                j = self.n_grid.index(c)
                row.append(f"{_fmt(s.risk[j])} [{_fmt(s.risk_low[j])}, {_fmt(s.risk_high[j])}]")
            lo, hi = s.similarity_interval
            row.append(f"{_fmt(s.similarity)} [{_fmt(lo)}, {_fmt(hi)}]")
            if self.eps is not None:
                row.append(_fmt_n(s.n_for_eps))
            row.append("-" if s.name == SCRATCH else _fmt_n(s.crossover_n, none="never"))
            t.add_row(*row)
        return t

    def summary(self) -> str:
        """The table and the assumptions as plain text."""
        from rich.console import Console

        console = Console(width=160, record=True, file=_NullFile())
        console.print(self.table())
        for line in self.assumptions:
            console.print(f"- {line}")
        return console.export_text()

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path: str | Path) -> Path:
        """Spectrum, predicted curves with intervals and the source ranking, in one figure.

        The format follows the file suffix (``.png``, ``.svg``, ``.pdf``).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(path)
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
        lam = np.asarray(self.eigvals)
        axes[0].loglog(np.arange(1, lam.size + 1), np.maximum(lam, 1e-300), ".-", ms=3)
        axes[0].set(
            xlabel="eigen-index k",
            ylabel="eigenvalue",
            title=f"estimated spectrum (shrinkage {self.shrinkage:.2f})",
        )
        ns = np.asarray(self.n_grid, dtype=float)
        for s in [*self.sources, self.scratch]:
            r = np.asarray(s.risk, dtype=float)
            style = "--" if s.name == SCRATCH else "-"
            (line,) = axes[1].plot(ns, r, style, label=s.name)
            axes[1].fill_between(
                ns,
                np.asarray(s.risk_low, float),
                np.asarray(s.risk_high, float),
                color=line.get_color(),
                alpha=0.15,
            )
        axes[1].axvline(self.n_labelled, color="grey", lw=0.8, ls=":")
        if self.eps is not None:
            axes[1].axhline(self.eps, color="black", lw=0.8, ls=":")
        axes[1].set(
            xscale="log",
            yscale="log",
            xlabel="target samples n",
            ylabel="predicted test MSE",
            title="learning curves",
        )
        axes[1].legend(fontsize=8)
        entries = [self.source(nm) for nm in self.ranking] + [self.scratch]
        y = np.arange(len(entries))
        val = np.array([e.risk_at(self.n_grid, self.n_rank) for e in entries])
        j = self.n_grid.index(self.n_rank)
        lo = np.array([e.risk_low[j] for e in entries])
        hi = np.array([e.risk_high[j] for e in entries])
        axes[2].barh(y, val, xerr=[np.maximum(val - lo, 0), np.maximum(hi - val, 0)], alpha=0.7)
        axes[2].set_yticks(y, [e.name for e in entries])
        axes[2].invert_yaxis()
        axes[2].set(xlabel=f"predicted test MSE at n = {self.n_rank}", title="ranking")
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        return out


class _NullFile:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:.3g}"


def _fmt_n(n: int | None, none: str = "not reached") -> str:
    return none if n is None else str(n)


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
@dataclass
class _Fit:
    """One pass of the analysis (point estimate or one bootstrap replicate)."""

    eigvals: np.ndarray
    shrinkage: float
    rank: int
    tilt: np.ndarray  # (S,)
    scale: np.ndarray
    noise_var: np.ndarray
    model: _Model
    excess: np.ndarray  # (S, G)
    risk: np.ndarray  # (S, G)
    similarity: np.ndarray  # (S,)
    n_for_eps: np.ndarray  # (S,) float, inf when not reached
    crossover: np.ndarray  # (S,) float, inf when never


@dataclass
class _Model:
    """What the curves of every source are computed from.

    ``energy[i, k]`` is the posterior ``E <Delta_i, v_k>^2`` of source ``i``. With anchoring,
    ``Delta_i = Delta_ref + (a_i - a_ref)`` with ``a`` the known source coordinates, so source
    ``i``'s bias is the posterior expectation ``sum_k w_k [E c_rk^2 + 2 (a_ik - a_rk) E c_rk +
    (a_ik - a_rk)^2]`` under the reference's fitted profile: ``ref_mean`` is the posterior mean
    ``E[c_rk | r_ref]``, which shrinks the raw moment estimate ``-V^T X^T r_ref / m`` (divided by
    ``lambda_k``) towards zero where the data cannot resolve a direction.
    """

    eigvals: np.ndarray
    energy: np.ndarray  # (S, d)
    noise_var: np.ndarray  # (S,)
    ref: int | None = None
    diff: np.ndarray | None = None  # (S, d): a_i - a_ref
    ref_mean: np.ndarray | None = None  # (d,): posterior mean of the reference's c_k

    def bias(self, eq: Any) -> np.ndarray:
        """``sum_k w_k(n) E <Delta_i, v_k>^2`` for each source (rows) and ``n`` (columns)."""
        w = eq.bias_weights  # (G, d)
        if self.ref is None or self.diff is None or self.ref_mean is None:
            return self.energy @ w.T
        base = self.energy[self.ref] @ w.T  # (G,)
        corr = (self.diff * (self.diff + 2.0 * self.ref_mean[None, :])) @ w.T
        return np.maximum(base[None, :] + corr, 0.0)

    def excess(self, eq: Any) -> np.ndarray:
        """Bias plus the noise part ``sigma^2 noise_factor(n)``."""
        nf = eq.noise_factor[None, :]
        nv = self.noise_var[:, None]
        with np.errstate(invalid="ignore"):
            noise = np.where(nv > 0, nv * nf, 0.0)
        return self.bias(eq) + noise


def _risk_curve(model: _Model, ns: Any) -> tuple[np.ndarray, np.ndarray]:
    """Excess risk at ``n`` and test MSE of the intercept-refitting fine-tune at ``n``.

    Refitting the intercept spends one sample (the centred data hold ``n - 1`` independent
    rows) and adds the error of the mean, ``(excess + sigma^2) / n``:
    ``MSE(n) = (E L(n - 1) + sigma^2) (1 + 1/n)`` (``n >= 2``; infinite at ``n = 1``).
    """
    cov = Covariance(model.eigvals)
    ns = np.asarray(ns, dtype=np.int64)
    excess = model.excess(deterministic_equivalent(cov, ns))
    ex_prev = model.excess(deterministic_equivalent(cov, np.maximum(ns - 1, 1)))
    with np.errstate(invalid="ignore", over="ignore"):
        risk = (ex_prev + model.noise_var[:, None]) * (1.0 + 1.0 / ns[None, :])
    risk = np.where(ns[None, :] >= 2, risk, np.inf)
    return excess, risk


def _dense_ns(top: int) -> np.ndarray:
    if top <= _DENSE_LIMIT:
        return np.arange(2, top + 1)
    return np.unique(np.round(np.geomspace(2, top, _DENSE_LIMIT)).astype(np.int64))


def _first_n_above_rank(noise_var: float, r: int, eps: float, n_max: int) -> float:
    """Smallest ``n > r + 1`` with ``(sigma^2 (1 + r / (n - r - 2))) (1 + 1/n) <= eps``."""

    def mse(n: int) -> float:
        m = n - 1  # least squares on the centred rows: noise r / (m - r - 1)
        return noise_var * (1.0 + r / (m - r - 1)) * (1.0 + 1.0 / n)

    lo = r + 3
    if noise_var <= 0:  # the centred rows see every direction from n = r + 1 on
        return float(r + 1) if r + 1 <= n_max else math.inf
    if noise_var * (1.0 + 1.0 / n_max) >= eps or lo > n_max or mse(n_max) > eps:
        return math.inf
    if mse(lo) <= eps:
        return float(lo)
    hi = n_max
    while hi - lo > 1:  # mse is decreasing above the rank: bisect
        mid = (lo + hi) // 2
        if mse(mid) <= eps:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _scan(model: _Model, eps: float | None, n_max: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` needed for test MSE ``eps`` and the crossover with scratch (the last row)."""
    noise_var = model.noise_var
    n_src = noise_var.size
    top = min(rank, n_max)
    ns = _dense_ns(top) if top >= 2 else np.array([2])
    _, risk = _risk_curve(model, ns)
    n_eps = np.full(n_src, math.inf)
    if eps is not None:
        for i in range(n_src):
            hit = np.flatnonzero(risk[i] <= eps)
            if hit.size:
                n_eps[i] = float(ns[hit[0]])
            else:
                n_eps[i] = _first_n_above_rank(float(noise_var[i]), rank, eps, n_max)
    crossover = np.full(n_src, math.inf)
    below = ns < rank
    scratch = risk[-1]
    for i in range(n_src - 1):
        wins = np.flatnonzero(below & (scratch < risk[i] * (1.0 - 1e-9)))
        if wins.size:
            crossover[i] = float(ns[wins[0]])
    return n_eps, crossover


def _covariance(x_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.covariance import ledoit_wolf_shrinkage

    cov = from_data(x_all, shrinkage="ledoit-wolf")
    shrink = float(ledoit_wolf_shrinkage(x_all - x_all.mean(axis=0), assume_centered=True))
    return cov.eigvals, cov.basis, shrink


def _analyse(
    x_lab: np.ndarray,
    y: np.ndarray,
    x_unl: np.ndarray | None,
    coefs: np.ndarray,
    ns: np.ndarray,
    n_lab: int,
    eps: float | None,
    n_max: int,
    shared_noise: bool = True,
    anchor: bool = True,
) -> _Fit:
    x_all = x_lab if x_unl is None else np.vstack([x_lab, x_unl])
    lam, basis, shrink = _covariance(x_all)
    xh = helmert(x_lab)  # (n - 1, d): centred, independent rows
    yh = helmert(y)
    p = xh @ basis
    res = yh[None, :] - coefs @ xh.T  # (S, n - 1)
    fit = fit_profiles(p, res)
    noise = fit.noise_var
    # the reference is the prior centre theta_T ~ N(theta_ref, s k^t) with the largest
    # marginal likelihood: empirical Bayes picks it like the other hyperparameters (the
    # smallest residual ignores how the residual spreads over the spectrum; a zero "scratch"
    # centre chosen that way made the posterior shrink the target towards zero)
    ref = int(np.argmax(fit.loglik))
    if shared_noise and coefs.shape[0] > 1:
        # the noise belongs to the target, not to the source: take the estimate of the
        # reference, the source whose model explains the labels best
        fit = fit_profiles(p, res, noise_var=float(fit.noise_var[ref]))
        noise = fit.noise_var
    model = _Model(lam, fit.energy, noise)
    if anchor and coefs.shape[0] > 1:
        coords = coefs @ basis
        model = _Model(
            lam,
            fit.energy,
            np.full(coefs.shape[0], noise[ref]),
            ref=ref,
            diff=coords - coords[ref],
            ref_mean=fit.mean[ref],
        )
    excess, risk = _risk_curve(model, ns)
    similarity = model.bias(deterministic_equivalent(Covariance(lam), n_lab))[:, 0]
    rank = numerical_rank(lam)
    n_eps, crossover = _scan(model, eps, n_max, rank)
    return _Fit(
        eigvals=lam,
        shrinkage=shrink,
        rank=rank,
        tilt=fit.tilt,
        scale=fit.scale,
        noise_var=model.noise_var,
        model=model,
        excess=excess,
        risk=risk,
        similarity=similarity,
        n_for_eps=n_eps,
        crossover=crossover,
    )


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0 by order statistics (infinite values allowed)."""
    b = samples.shape[0]
    srt = np.sort(samples, axis=0)
    alpha = (1.0 - confidence) / 2.0
    lo = srt[int(math.floor(alpha * (b - 1)))]
    hi = srt[int(math.ceil((1.0 - alpha) * (b - 1)))]
    return lo, hi


def _holdout(
    x: np.ndarray, y: np.ndarray, coefs: np.ndarray, splits: int, rng: np.random.Generator
) -> tuple[int, np.ndarray] | None:
    """Mean test MSE of intercept-refitting fine-tuning on random halves of the labelled data."""
    n = x.shape[0]
    if n < 8 or splits < 1:
        return None
    n_tr = n // 2
    perms = np.argsort(rng.random((splits, n)), axis=1)
    tr, te = perms[:, :n_tr], perms[:, n_tr:]
    xtr, ytr = x[tr], y[tr]  # (R, n_tr, d), (R, n_tr)
    xm, ym = xtr.mean(axis=1), ytr.mean(axis=1)
    xc = (xtr - xm[:, None, :])[:, None]  # (R, 1, n_tr, d)
    yc = (ytr - ym[:, None])[:, None]
    theta = linear.finetune(xc, yc, coefs[None])  # (R, S, d)
    intercept = ym[:, None] - np.einsum("rd,rsd->rs", xm, theta)
    pred = np.einsum("rnd,rsd->rsn", x[te], theta) + intercept[:, :, None]
    err = (pred - y[te][:, None, :]) ** 2
    return n_tr, err.mean(axis=(0, 2))


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
    n_rank: int | None = None,
    n_boot: int = 50,
    confidence: float = 0.9,
    holdout_splits: int = 20,
    anchor: bool = True,
    seed: SeedLike = 0,
) -> Advice:
    """Predict fine-tuning's learning curve for each source model, and rank the sources.

    Parameters
    ----------
    X : array-like or DataFrame, shape (n, d)
        Labelled target inputs (``n >= 2``). The features as the fine-tuning will see them
        (the advisor does not rescale them: fine-tuning is not scale-invariant).
    y : array-like, shape (n,)
        Target labels.
    sources : optional
        One source or a list (or a dict name -> source) of them. A source is a coefficient
        vector of length ``d``, a fitted linear scikit-learn model (``coef_``, ``intercept_``),
        a ``{"coef": ..., "intercept": ...}`` mapping, a mapping feature name -> coefficient,
        or the path of a ``.json`` / ``.csv`` file holding one of those. None: only training
        from scratch is assessed.
    X_unlabelled : array-like or DataFrame, shape (m, d), optional
        More target inputs without labels; they sharpen the covariance estimate (strongly
        advised when ``n`` is below ``d``).
    names : list of str, optional
        Names of the sources (default: dict keys, file stems, or ``source_1, ...``).
    eps : float, optional
        A requested test MSE: the advisor reports the ``n`` each model needs to reach it.
    n_max : int, optional
        Largest sample size considered (default ``max(10 n, 2 d)``).
    n_rank : int, optional
        Sample size at which the sources are ranked (default the labelled ``n``).
    n_boot : int
        Bootstrap replicates for the intervals (0: none).
    confidence : float
        Coverage of the intervals, in (0, 1).
    holdout_splits : int
        Random halvings of the labelled data for the hold-out check (0: none; needs n >= 8).
    anchor : bool
        Predict every source from the posterior of one reference (the source whose profile
        model has the largest marginal likelihood) plus the exact source differences;
        consistent rankings. False: fit each source's profile on its own.
    seed : int or SeedSequence
        Bootstrap and hold-out randomness; the same seed gives the same advice.

    Returns
    -------
    Advice

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 50)); theta = rng.standard_normal(50) / 7
    >>> y = X @ theta + 0.1 * rng.standard_normal(30)
    >>> advice = advise(X, y, {"close": theta + 0.01, "far": -theta}, n_boot=0)
    >>> advice.ranking
    ['close', 'far']
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
    srcs = load_sources(sources, d, feature_names, names)
    if eps is not None:
        eps = check_positive(eps, "eps")
    n_max = max(10 * n, 2 * d) if n_max is None else check_positive_int(n_max, "n_max", minimum=2)
    n_rank = n if n_rank is None else check_positive_int(n_rank, "n_rank", minimum=2)
    n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
    holdout_splits = check_positive_int(holdout_splits, "holdout_splits", minimum=0)
    confidence = check_positive(confidence, "confidence")
    if confidence >= 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = as_generator(seed)

    coefs = np.vstack([s.coef for s in srcs] + [np.zeros(d)])
    all_names = [s.name for s in srcs] + [SCRATCH]
    rank_cov = d  # Ledoit-Wolf estimates are full rank; the grid skips n in {d, d + 1}
    ns = _grid(n, n_max, n_rank, rank_cov)
    point = _analyse(x, yy, x_unl, coefs, ns, n, eps, n_max, anchor=bool(anchor))

    boot = _bootstrap(x, yy, x_unl, coefs, ns, n, eps, n_max, n_boot, rng, bool(anchor))
    j_rank = int(np.flatnonzero(ns == n_rank)[0])
    if boot:
        risk_lo, risk_hi = _centred_interval(
            point.risk, np.stack([b.risk for b in boot]), confidence
        )
        sim_lo, sim_hi = _centred_interval(
            point.similarity, np.stack([b.similarity for b in boot]), confidence
        )
        eps_lo, eps_hi = _centred_interval(
            point.n_for_eps, np.stack([b.n_for_eps for b in boot]), confidence
        )
        eps_lo, eps_hi = np.floor(eps_lo), np.ceil(eps_hi)
        if srcs:
            tops = [int(np.argmin(b.risk[:-1, j_rank])) for b in boot]
            stability = float(np.mean(np.array(tops) == int(np.argmin(point.risk[:-1, j_rank]))))
        else:
            stability = None
    else:
        risk_lo = risk_hi = point.risk
        sim_lo = sim_hi = point.similarity
        eps_lo = eps_hi = point.n_for_eps
        stability = None

    held = _holdout(x, yy, coefs, holdout_splits, rng)
    held_pred = None
    if held is not None:
        _, held_pred = _risk_curve(point.model, [held[0]])
    src_mse = np.mean(
        (
            yy[None, :]
            - coefs @ x.T
            - np.array([s.intercept for s in srcs] + [float(yy.mean())])[:, None]
        )
        ** 2,
        axis=1,
    )

    entries = []
    for i, nm in enumerate(all_names):
        entries.append(
            SourceAdvice(
                name=nm,
                intercept=srcs[i].intercept if i < len(srcs) else float(yy.mean()),
                source_mse=float(src_mse[i]),
                similarity=float(point.similarity[i]),
                similarity_interval=(float(sim_lo[i]), float(sim_hi[i])),
                tilt=float(point.tilt[i]),
                scale=float(point.scale[i]),
                noise_var=float(point.noise_var[i]),
                excess=[float(v) for v in point.excess[i]],
                risk=[float(v) for v in point.risk[i]],
                risk_low=[float(v) for v in risk_lo[i]],
                risk_high=[float(v) for v in risk_hi[i]],
                n_for_eps=_as_n(point.n_for_eps[i]) if eps is not None else None,
                n_for_eps_interval=(
                    (_as_n(eps_lo[i]), _as_n(eps_hi[i])) if eps is not None else (None, None)
                ),
                crossover_n=_as_n(point.crossover[i]) if i < len(srcs) else None,
                holdout_measured=float(held[1][i]) if held is not None else None,
                holdout_predicted=float(held_pred[i, 0]) if held_pred is not None else None,
            )
        )
    order = np.argsort(point.risk[:-1, j_rank], kind="stable")
    return Advice(
        n_labelled=n,
        n_unlabelled=0 if x_unl is None else int(x_unl.shape[0]),
        n_features=d,
        feature_names=feature_names,
        eigvals=[float(v) for v in point.eigvals],
        shrinkage=point.shrinkage,
        n_grid=[int(v) for v in ns],
        sources=entries[:-1],
        scratch=entries[-1],
        ranking=[all_names[i] for i in order],
        n_rank=n_rank,
        rank_stability=stability,
        eps=eps,
        confidence=confidence,
        n_boot=n_boot,
        holdout_n=held[0] if held is not None else None,
        assumptions=_assumptions(n, d, 0 if x_unl is None else x_unl.shape[0], point, entries),
    )


def _as_n(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def _grid(n: int, n_max: int, n_rank: int, rank: int) -> np.ndarray:
    base = np.round(np.geomspace(2, max(n_max, 2), 48)).astype(np.int64)
    ns = np.unique(np.concatenate([base, [n, 2 * n, 5 * n, n_rank]]))
    ns = ns[(ns >= 2) & ((ns < rank) | (ns > rank + 1))]
    for must in (n, 2 * n, 5 * n, n_rank):  # keep the headline sizes even next to the rank
        if must not in ns and must >= 2:
            ns = np.sort(np.append(ns, must))
    return ns


def _bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    x_unl: np.ndarray | None,
    coefs: np.ndarray,
    ns: np.ndarray,
    n_lab: int,
    eps: float | None,
    n_max: int,
    n_boot: int,
    rng: np.random.Generator,
    anchor: bool,
) -> list[_Fit]:
    """Refit on half-samples drawn without replacement.

    Resampling with replacement would duplicate rows, and duplicated rows with identical labels
    look noiseless to the fit (the noise estimate collapses). Half of the rows drawn without
    replacement vary a mean exactly as much as a fresh sample of size ``n`` would (the finite
    population correction is 1/2), so their spread is used as is, around the point estimate
    (see :func:`_centred_interval`).
    """
    out = []
    n = x.shape[0]
    half = max(n // 2, 2)
    for _ in range(n_boot):
        idx = rng.permutation(n)[:half]
        xu = None
        if x_unl is not None:
            xu = x_unl[rng.permutation(x_unl.shape[0])[: max(x_unl.shape[0] // 2, 1)]]
        out.append(_analyse(x[idx], y[idx], xu, coefs, ns, n_lab, eps, n_max, anchor=anchor))
    return out


def _centred_interval(
    point: np.ndarray, samples: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``point * exp(q)`` with ``q`` the quantiles of ``log(sample) - median(log(sample))``.

    The half-sample fits are centred on a half-sample estimate, not on the full-sample one; the
    interval keeps their spread on the log scale and moves it to the point estimate. Zeros and
    infinities pass through (an infinite sample gives an infinite upper end).
    """
    b = samples.shape[0]
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(samples, 1e-300))  # +inf stays +inf
    lo_q, hi_q = _interval(logs, confidence)
    centre = np.sort(logs, axis=0)[(b - 1) // 2]
    with np.errstate(invalid="ignore"):
        d_lo = lo_q - centre
        d_hi = hi_q - centre
    d_lo = np.minimum(np.where(np.isnan(d_lo), 0.0, d_lo), 0.0)
    d_hi = np.maximum(np.where(np.isnan(d_hi), np.inf, d_hi), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        lo = np.where(point > 0, point * np.exp(d_lo), point)
        s_lo, s_hi = _interval(samples, confidence)
        hi = np.where(point > 0, point * np.exp(d_hi), s_hi)
    lo = np.where(s_lo <= 0, np.minimum(lo, 0.0), lo)  # some refits put it at zero
    return lo, hi


def _assumptions(n: int, d: int, m: int, point: _Fit, entries: list[SourceAdvice]) -> list[str]:
    total = n + m
    lines = [
        "Fine-tuning means gradient descent from the source weights to zero training loss "
        "(the interpolant closest to the source when n < d, least squares otherwise), with the "
        "intercept refitted from the training means; 'risk' is the expected squared error on "
        "new target data.",
        "The target inputs are treated as Gaussian with the estimated covariance "
        f"(Ledoit-Wolf shrinkage {point.shrinkage:.2f}, from {total} inputs in {d} dimensions); "
        "the curve is the theory's deterministic equivalent for that spectrum.",
        "The labels are linear in the inputs plus homoscedastic noise. The source-target "
        "difference is modelled as random with energy ~ scale * k^tilt on the k-th "
        "eigen-direction, fitted by maximum marginal likelihood and refined by the posterior.",
        "Noise and signal in eigen-directions the labelled data cannot resolve are confounded; "
        "the test-MSE curve is less sensitive to this split than the excess risk.",
        "Only linear (depth-1) fine-tuning is predicted.",
    ]
    if total < 2 * d:
        lines.append(
            f"Only {total} inputs for a {d}-dimensional covariance: the spectrum beyond the "
            "directions the data spans is the shrinkage target (flat), and predictions for n "
            "beyond the labelled size are rough; unlabelled target inputs would sharpen them."
        )
    bad = [
        e.name
        for e in entries
        if e.holdout_measured is not None
        and e.holdout_predicted is not None
        and not (0.5 <= e.holdout_measured / max(e.holdout_predicted, 1e-300) <= 2.0)
    ]
    if bad:
        lines.append(
            "Hold-out check failed (measured and predicted test MSE on half the labelled data "
            f"differ by more than 2x) for: {', '.join(bad)}; treat their curves with caution."
        )
    return lines
