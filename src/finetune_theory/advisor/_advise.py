"""Will fine-tuning pay off? :func:`advise` compares every registered strategy on the user's rows.

Private to :mod:`finetune_theory.advisor`. The steps: read and check the inputs
(:mod:`._io`; columns constant on the labelled rows are dropped, their effect folded into each
source's intercept), fit the engine once (:mod:`._engine`), ask every registered strategy
(:mod:`._strategies`) for its prediction, pick the recommendation (:func:`recommend`) and scan
``n`` for the requested risk and the crossover of scratch and ridge towards each source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import TINY
from .._validation import check_positive, check_positive_int
from ._constants import NOISE_FLOOR, TIE_SE
from ._engine import Engine, build_engine
from ._io import Source, as_inputs, as_labels, load_sources
from ._result import Advice, Recommendation, key, pairs_of
from ._strategies import Strategy, with_call_strategies

#: ``(source, strategy, risk, low, high, se)`` at the labelled n (:func:`candidates`)
Candidate = tuple[str | None, str, float, float, float, float]

__all__ = ["advise", "recommend", "candidates", "first_n", "from_n_on"]


def first_n(ns: np.ndarray, condition: np.ndarray) -> int | None:
    """The first ``n`` of the scan where ``condition`` holds (None: nowhere).

    Examples
    --------
    >>> first_n(np.array([2, 3, 4, 5]), np.array([1.0, 2, 3, 4]) > 2.5)
    4
    """
    hit = np.flatnonzero(condition)
    return int(ns[hit[0]]) if hit.size else None


def from_n_on(ns: np.ndarray, condition: np.ndarray) -> int | None:
    """The first ``n`` of the scan from which ``condition`` holds to the end (None: it does
    not hold at the end).

    Examples
    --------
    >>> from_n_on(np.array([2, 3, 4, 5]), np.array([True, False, True, True]))
    4
    """
    cond = np.asarray(condition, dtype=bool)
    if cond.size == 0 or not cond[-1]:
        return None
    off = np.flatnonzero(~cond)
    return int(ns[0 if off.size == 0 else off[-1] + 1])


def _scan_ns(n_max: int) -> np.ndarray:
    """Every integer up to 400, then log-spaced up to ``n_max``."""
    dense = np.arange(2, min(n_max, 400) + 1)
    if n_max <= 400:
        return dense
    tail = np.unique(np.round(np.geomspace(401, n_max, 200)).astype(np.int64))
    return np.concatenate([dense, tail])


def recommend(
    cands: Sequence[Candidate],
    simplicity: dict[str, float],
    n: int,
    tie_se: float = TIE_SE,
    losses: dict[tuple[str | None, str], np.ndarray] | None = None,
) -> Recommendation:
    """The recommendation among ``(source, strategy, risk, low, high, se)`` candidates.

    The pair of lowest predicted risk, unless a simpler strategy's prediction is within
    ``tie_se`` standard errors of the difference between the two (log scale): then the simpler
    one, and ``tie`` says so (its sentence states that standard error). The standard error of
    the difference is what the rows' sampling puts on it: when ``losses`` holds both pairs'
    held-out squared errors on each labelled row, that of ``log(mean b / mean a)`` over the
    paired rows (delta method; the two share the rows, so much of their sampling error
    cancels), otherwise the best pair's own sampling error ``se`` (without the model error).
    This is the "one standard error" rule of cross-validation with ``tie_se = 1``. The
    runner-up is ``within_noise`` when its prediction lies inside the recommendation's
    interval.

    Examples
    --------
    >>> simp = {"as_is": 0, "scratch": 4}
    >>> rec = recommend([("a", "as_is", 1.2, 1.0, 1.5, 0.1),
    ...                  (None, "scratch", 1.0, 0.8, 1.3, 0.1)], simp, 10)
    >>> rec.strategy, rec.within_noise
    ('scratch', True)
    >>> recommend([("a", "as_is", 1.05, 1.0, 1.5, 0.2),
    ...            (None, "scratch", 1.0, 0.5, 2.0, 0.2)], simp, 10).tie
    True
    """
    finite = [c for c in cands if math.isfinite(c[2])]
    if not finite:
        raise ValueError("no strategy has a finite predicted risk at the labelled n")
    order = sorted(finite, key=lambda c: (c[2], simplicity[c[1]]))
    best = order[0]
    chosen = best
    diff_se = 0.0
    for c in sorted(finite, key=lambda c: (simplicity[c[1]], c[2])):
        if simplicity[c[1]] >= simplicity[best[1]]:
            break
        se = _paired_log_se(losses, best, c)
        if c[2] <= best[2] * math.exp(tie_se * se):
            chosen, diff_se = c, se
            break
    rest = [c for c in order if c is not chosen]
    runner = rest[0] if rest else None
    return Recommendation(
        source=chosen[0],
        strategy=chosen[1],
        n=n,
        risk=chosen[2],
        interval=(chosen[3], chosen[4]),
        best_source=best[0],
        best_strategy=best[1],
        best_risk=best[2],
        tie=chosen is not best,
        tie_se=diff_se,
        runner_up=None if runner is None else (runner[0], runner[1], runner[2]),
        within_noise=runner is not None and runner[2] <= chosen[4],
    )


def candidates(
    advice: Advice,
) -> tuple[list[Candidate], dict[tuple[str | None, str], np.ndarray]]:
    """What :func:`recommend` weighs, for every pair of ``advice`` at the labelled n:
    ``(source, strategy, risk, low, high, se)`` (``se`` the rows' sampling error of the
    prediction, log scale) and the pairs' held-out squared errors on the labelled rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((12, 3)); y = x @ np.ones(3) + rng.standard_normal(12)
    >>> from finetune_theory.advisor import advise
    >>> cands, losses = candidates(advise(x, y, {"s": np.ones(3)}))
    >>> [c[1] for c in cands if c[0] == "s"], sorted(k[1] for k in losses)[:2]
    (['as_is', 'refit_intercept', 'finetune_ridge', 'finetune'], ['as_is', 'finetune_ridge'])
    """
    assert advice.engine is not None
    n = advice.n_labelled
    cands = []
    losses: dict[tuple[str | None, str], np.ndarray] = {}
    for src, strat in advice.pairs():
        risk, lo, hi = advice.curve(src, strat, [n])
        st = advice.strategies[strat]
        se = float(st.sampling_log_se(advice.engine, src, n))
        cands.append((src, strat, float(risk[0]), float(lo[0]), float(hi[0]), se))
        loss = st.row_losses(advice.engine, src)
        if loss is not None:
            losses[(src, strat)] = np.asarray(loss, dtype=np.float64)
    return cands, losses


def _paired_log_se(
    losses: dict[tuple[str | None, str], np.ndarray] | None,
    best: Candidate,
    other: Candidate,
) -> float:
    """Standard error (log scale) of the difference between two candidates' risks: from the
    paired held-out losses on the labelled rows when both have them, else the best's own."""
    a = None if losses is None else losses.get((best[0], best[1]))
    b = None if losses is None else losses.get((other[0], other[1]))
    if a is not None and b is not None and a.size == b.size >= 3:
        ma, mb = float(np.mean(a)), float(np.mean(b))
        if ma > 0 and mb > 0 and np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
            # delta method for log(mean b / mean a) over the shared rows
            return float(np.std(b / mb - a / ma, ddof=1) / math.sqrt(a.size))
    return best[5] if math.isfinite(best[5]) else 0.0


def _drop_constant(
    x: np.ndarray, x_unl: np.ndarray | None, names: list[str] | None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, np.ndarray, dict[str, float]]:
    """Columns constant on the labelled rows: the kept mask and ``{name: value}`` dropped."""
    spread = np.ptp(x, axis=0)
    const = spread <= 1e-12 * np.maximum(np.abs(x).max(axis=0), TINY)
    dropped = {}
    for j in np.flatnonzero(const):
        dropped[names[j] if names is not None else f"column {j}"] = float(x[0, j])
    keep = ~const
    if not keep.any():
        raise ValueError(
            "every feature column of X is constant on the labelled rows: there is nothing to "
            "learn from them; label rows that differ in some feature"
        )
    x = x[:, keep]
    x_unl = None if x_unl is None else x_unl[:, keep]
    names = None if names is None else [c for c, k in zip(names, keep, strict=True) if k]
    return x, x_unl, names, keep, dropped


def advise(
    X: ArrayLike,
    y: ArrayLike,
    sources: Any = None,
    *,
    X_unlabelled: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    eps: float | None = None,
    n_max: int | None = None,
    confidence: float = 0.8,
    misspecification: bool = True,
    pool_sources: bool = True,
    excess_factor: float | None = None,
    strategies: Sequence[Strategy] = (),
) -> Advice:
    """Predict the test MSE of every strategy, for each source, and recommend one.

    Parameters
    ----------
    X : array-like or DataFrame, shape (n, d)
        Labelled target inputs (``n >= 2``). The features as the models will see them (the
        advisor does not rescale them: ridge and fine-tuning are not scale-invariant). A
        column constant on these rows is dropped, each source's coefficient on it folded into
        its intercept (a note in :attr:`Advice.assumptions` says so).
    y : array-like, shape (n,)
        Target labels.
    sources : optional
        One source or a list (or a dict name -> source) of them. A source is a coefficient
        vector of length ``d``, a fitted linear scikit-learn model (``coef_``, ``intercept_``),
        a ``{"coef": ..., "intercept": ...}`` mapping (``coef`` a list or a mapping feature name
        -> coefficient), a mapping feature name -> coefficient, or the path of a ``.json`` /
        ``.csv`` file holding one of those. None: only the strategies without a source.
    X_unlabelled : array-like or DataFrame, shape (m, d), optional
        More target inputs without labels; they sharpen the covariance estimate (strongly
        advised when ``n`` is below ``d``).
    names : list of str, optional
        Names of the sources (default: dict keys, file stems, or ``source_1, ...``).
    eps : float, optional
        A requested test MSE: the advisor reports the ``n`` each strategy needs to reach it.
    n_max : int, optional
        Largest sample size considered (default ``max(10 n, 2 d)``; at least the labelled n).
    confidence : float
        Level of the intervals, in (0, 1) (default 0.8).
    misspecification : bool
        Measure how far the Gaussian-linear theory misses on these rows (the leave-one-out
        error of the user's ridge against its prediction) and scale the learned strategies'
        excess risk by it (default). False: the theory as is, right for Gaussian inputs with
        linear labels.
    pool_sources : bool
        With two or more sources, pool the residual variance that scales training from
        scratch (and the mean) with what the sources' spread implies (the target coefficient
        treated as exchangeable with the sources').
    excess_factor : float, optional
        Deprecated: a fixed allowance for every start instead of the measured one (implies
        ``misspecification=False`` otherwise); use ``misspecification``.
    strategies : sequence of Strategy, optional
        Strategies for this call only, beside the registered ones (a name already registered
        is an error); :func:`finetune_theory.networks.advise` passes its network strategies
        this way, leaving the registry as it is.

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
    if float(np.ptp(yy)) == 0.0:
        raise ValueError("y is constant on the labelled rows; there is nothing to predict")
    srcs = load_sources(sources, d, feature_names, names)
    pool = with_call_strategies(strategies)
    if eps is not None:
        eps = check_positive(eps, "eps")
    if n_max is None:
        n_max = max(10 * n, 2 * d)
    else:
        n_max = check_positive_int(n_max, "n_max", minimum=2)
        if n_max < n:
            raise ValueError(
                f"n_max = {n_max} is below the {n} labelled rows; give at least {n} (the "
                "advice is for the labelled n and beyond)"
            )
    confidence = check_positive(confidence, "confidence")
    if confidence >= 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")

    fixed = None
    if excess_factor is not None:
        import warnings

        warnings.warn(
            "advise(excess_factor=...) is deprecated: the allowance is now measured on the "
            "labelled rows (misspecification=True), or 1 with misspecification=False",
            DeprecationWarning,
            stacklevel=2,
        )
        fixed = check_positive(excess_factor, "excess_factor")
        misspecification = False
    x, x_unl, _kept, keep, dropped = _drop_constant(x, x_unl, feature_names)
    if dropped:
        values = np.array(list(dropped.values()))
        srcs = [
            Source(s.name, s.coef[keep], s.intercept + float(s.coef[~keep] @ values)) for s in srcs
        ]
    engine = build_engine(
        x, yy, x_unl, srcs, pool_sources=pool_sources, misspecification=misspecification
    )
    if fixed is not None:
        engine.fixed_allowance = fixed
    names_ = engine.source_names
    grid = sorted({g for g in (n, 2 * n, 5 * n) if g <= n_max} | {n})
    advice = Advice(
        n_labelled=n,
        n_unlabelled=0 if x_unl is None else int(x_unl.shape[0]),
        n_features=d,
        feature_names=feature_names,
        source_names=names_,
        eigvals=[float(v) for v in engine.eigvals],
        noise_var=engine.noise_var,
        noise_floor=engine.noise_floor,
        noise_estimated=engine.noise_estimated,
        n_grid=grid,
        n_max=n_max,
        eps=eps,
        confidence=confidence,
        recommendation=None,  # type: ignore[arg-type]  # set below
        ranking=[],
        dropped=dropped,
    )
    advice.engine = engine
    advice.strategies = pool
    cands, losses = candidates(advice)
    simplicity = {k: s.simplicity for k, s in pool.items()}
    advice.recommendation = recommend(cands, simplicity, n, losses=losses)
    per_source: dict[str, float] = {}
    for src, _, pred, *_ in cands:
        if src is not None and math.isfinite(pred):
            per_source[src] = min(pred, per_source.get(src, math.inf))
    advice.ranking = sorted(per_source, key=lambda s: per_source[s])
    scan = _scan_ns(n_max)
    if eps is not None:
        for src, strat in pairs_of(names_, pool):
            risk = advice.curve(src, strat, scan)[0]
            advice.n_for_eps[key(src, strat)] = first_n(scan, risk <= eps)
    if srcs and "scratch" in pool and "finetune_ridge" in pool:
        scratch = advice.curve(None, "scratch", scan)[0]
        for src in names_:
            ridge = advice.curve(src, "finetune_ridge", scan)[0]
            advice.crossover_n[src] = from_n_on(scan, scratch < ridge)
    if misspecification:
        advice.allowance = {
            ("scratch" if k is None else k): engine.allowance(k) for k in engine.starts
        }
    advice.assumptions = _assumptions(n, d, advice.n_unlabelled, engine, misspecification)
    if pool_sources and len(srcs) >= 2:
        advice.assumptions.append(
            "Training from scratch and the mean are scaled by Var(y) pooled with the distance "
            f"from zero to the {len(srcs)} sources, measured by their spread (the target's "
            "coefficient treated as one more draw like the sources')."
        )
    if dropped:
        cols = ", ".join(f"{k!r} (= {v:.4g})" for k, v in dropped.items())
        varies = ""
        if x_unl is not None:
            varies = (
                " (they vary among the unlabelled rows: predictions hold for rows that share "
                "the labelled value)"
            )
        advice.assumptions.append(
            f"Constant on the labelled rows, dropped: {cols}; each source's coefficient on "
            f"them is folded into its intercept{varies}."
        )
    return advice


def _assumptions(n: int, d: int, m: int, engine: Engine, misspecification: bool) -> list[str]:
    lines = [
        "Risk is the expected squared error on new target rows. 'finetune' is gradient descent "
        "from the source to zero training loss; 'finetune_ridge' and 'scratch' are ridge "
        "regression towards the source and towards zero with the ridge chosen by leave-one-out "
        "(as scikit-learn's RidgeCV, alphas = mean input variance x logspace(-3, 4, 36)); "
        "every learned strategy refits the intercept.",
        f"The target inputs are treated as Gaussian with a Ledoit-Wolf covariance from {n + m} "
        f"inputs in {d} dimensions, the labels as linear plus homoscedastic noise"
        + (
            "; how far that misses on these rows is measured by the leave-one-out error of the "
            "user's ridge and scales the learned strategies' excess risk."
            if misspecification
            else "."
        ),
    ]
    if engine.noise_estimated:
        lines.append(
            f"Noise variance {engine.noise_var:.3g}, estimated by least squares on the labelled "
            f"rows ({n - 1 - d} residual degrees of freedom)."
        )
    else:
        lines.append(
            f"The noise variance cannot be estimated from {n} labelled rows in {d} dimensions "
            f"(least squares needs n > d + 1); the value used, {engine.noise_var:.3g}, is the "
            f"marginal-likelihood estimate held above the floor {engine.noise_floor:.3g} "
            f"({NOISE_FLOOR:g} x the smallest residual variance of any start)."
        )
    if n + m < 2 * d:
        lines.append(
            f"Only {n + m} inputs for a {d}-dimensional covariance: predictions for n beyond "
            "the labelled size are rough; unlabelled target inputs would sharpen them."
        )
    return lines
