"""The advisor's result types: :class:`Recommendation` and :class:`Advice`.

Private to :mod:`finetune_theory.advisor`. :class:`Advice` holds the fitted engine and the
strategies it was built with, answers ``predict_risk`` / ``predict_interval`` at any ``n``, and
exports itself (dict, JSON, CSV, a tidy DataFrame); the text, HTML and figure renderings live
in :mod:`._render`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _render
from ._constants import TIE_SE
from ._engine import Engine
from ._strategies import Strategy

__all__ = ["Recommendation", "Advice", "label"]


def label(source: str | None, strategy: str) -> str:
    """How a (source, strategy) pair is named in sentences.

    Examples
    --------
    >>> label("gas", "finetune_ridge"), label(None, "scratch")
    ('finetune_ridge from gas', 'scratch')
    """
    return strategy if source is None else f"{strategy} from {source}"


@dataclass(frozen=True)
class Recommendation:
    """The advised (source, strategy) pair at the labelled ``n``.

    Parameters
    ----------
    source : str or None
        Source name (None for strategies that use no source).
    strategy : str
        Name of the advised strategy.
    n : int
        The labelled ``n`` the recommendation is for.
    risk : float
        Predicted test MSE.
    interval : tuple of float
        Its interval at the advice's confidence.
    best_source, best_strategy : str or None
        The pair of lowest predicted risk; differs from ``source, strategy`` only when the
        simpler pair's prediction is within the tie tolerance of it (``tie`` is then True).
    best_risk : float
        Predicted test MSE of the pair of lowest predicted risk.
    tie : bool
        True when the advised pair is a simpler one whose prediction cannot be told apart
        from the lowest.
    runner_up : tuple or None, default None
        ``(source, strategy, risk)`` of the next best pair.
    within_noise : bool, default False
        True when the runner-up's prediction lies inside the recommendation's interval: the
        rows cannot tell the two apart.
    tie_se : float, default 0.0
        With ``tie``: the standard error (log scale) of the difference between the two
        predictions that the simpler pair lies within (``TIE_SE`` of them).

    Examples
    --------
    >>> rec = Recommendation("gas", "refit_intercept", 40, 0.1, (0.08, 0.13), "gas",
    ...                      "refit_intercept", 0.1, False, ("gas", "as_is", 0.11), True)
    >>> print(rec.sentence())  # doctest: +NORMALIZE_WHITESPACE
    Recommended: refit_intercept from gas (predicted test MSE 0.1, interval [0.08, 0.13],
    n = 40). The next best, as_is from gas at 0.11, is within noise of it: either will do.
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
    runner_up: tuple[str | None, str, float] | None = None
    within_noise: bool = False
    tie_se: float = 0.0

    def sentence(self) -> str:
        """One sentence stating the advice (parsed by the tests: keep its shape)."""
        lo, hi = self.interval
        text = (
            f"Recommended: {label(self.source, self.strategy)} "
            f"(predicted test MSE {_render.fmt(self.risk)}, interval [{_render.fmt(lo)}, "
            f"{_render.fmt(hi)}], n = {self.n})."
        )
        if self.tie:
            text += (
                f" The lowest prediction, {label(self.best_source, self.best_strategy)} at "
                f"{_render.fmt(self.best_risk)}, cannot be told apart from it (the gap is "
                f"within {TIE_SE:g} standard error of the difference, {self.tie_se:.3g} on the "
                "log scale), "
                "so the simpler strategy is advised."
            )
        elif self.runner_up is not None:
            src, strat, risk = self.runner_up
            if self.within_noise:
                text += (
                    f" The next best, {label(src, strat)} at {_render.fmt(risk)}, is within "
                    "noise of it: either will do."
                )
            else:
                text += (
                    f" It is expected to beat the next best, {label(src, strat)} at "
                    f"{_render.fmt(risk)}, by more than the noise."
                )
        return text


@dataclass
class Advice:
    """The advisor's answer (see :func:`~finetune_theory.advisor.advise`).

    Parameters
    ----------
    n_labelled : int
        Number of labelled target rows.
    n_unlabelled : int
        Number of unlabelled target rows (0 when none were given).
    n_features : int
        Number of feature columns ``d`` of the inputs (constant columns included).
    feature_names : list of str or None
        Names of the features (None when the inputs had none).
    source_names : list of str
        Names of the sources, in the order given.
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
        Largest sample size considered.
    eps : float or None
        The requested test MSE (None when none was requested).
    confidence : float
        Level of the intervals, in (0, 1).
    recommendation : Recommendation
        The advised pair at the labelled ``n``.
    ranking : list of str
        Sources by increasing best predicted risk (over their strategies) at the labelled n.
    n_for_eps : dict, default {}
        ``"source/strategy" -> n`` (None: not reached up to ``n_max``), when ``eps`` is given.
    crossover_n : dict, default {}
        ``source -> n``: the ``n`` from which on (up to ``n_max``) training from scratch is
        predicted to beat ridge towards that source (None: not at ``n_max``).
    allowance : dict, default {}
        ``source -> f`` (``"scratch"`` for zero): the misspecification allowance measured on
        the labelled rows (1: the Gaussian-linear theory as is).
    assumptions : list of str, default []
        The assumptions the predictions rest on, and notes on how the rows were read, one
        sentence each.
    dropped : dict, default {}
        Columns constant on the labelled rows, dropped, with their value (their effect is in
        every source's intercept).

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory.advisor import advise
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((30, 4)); y = x @ np.ones(4) + rng.standard_normal(30)
    >>> advice = advise(x, y, {"s": np.ones(4)})
    >>> sorted(advice.to_frame().columns)
    ['high', 'low', 'n', 'risk', 'source', 'strategy']
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
    allowance: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    dropped: dict[str, float] = field(default_factory=dict)
    engine: Engine | None = field(default=None, init=False, repr=False, compare=False)
    strategies: dict[str, Strategy] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ------------------------------------------------------------------ access
    def pairs(self) -> list[tuple[str | None, str]]:
        """Every (source, strategy) pair of the advice, sources first."""
        return pairs_of(self.source_names, self.strategies)

    def _check(self, source: str | None, strategy: str) -> Strategy:
        if strategy not in self.strategies:
            raise ValueError(
                f"unknown strategy {strategy!r}; valid strategies: {', '.join(self.strategies)}"
            )
        strat = self.strategies[strategy]
        if not strat.uses_source:
            if source is not None and source not in self.source_names:
                raise ValueError(
                    f"unknown source {source!r}; valid sources: "
                    f"{', '.join(self.source_names) or '(none)'} (or None)"
                )
        elif source not in self.source_names:
            raise ValueError(
                f"unknown source {source!r} for strategy {strategy!r}; valid sources: "
                f"{', '.join(self.source_names) or '(none given)'}"
            )
        return strat

    def curve(
        self, source: str | None, strategy: str, ns: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(risk, low, high)`` of a pair at each ``n`` of ``ns``.

        Parameters
        ----------
        source : str or None
            Source name (ignored, may be None, for strategies that use no source).
        strategy : str
            Strategy name.
        ns : array-like of int
            Labelled sample sizes (whole numbers, at least 1).

        Returns
        -------
        risk, low, high : numpy.ndarray
            Predicted test MSE at each ``n`` and its interval at the advice's confidence.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(1)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> risk, lo, hi = advise(x, y).curve(None, "scratch", [10, 100])
        >>> bool(risk[1] < risk[0] and np.all(lo <= risk) and np.all(risk <= hi))
        True
        """
        strat = self._check(source, strategy)
        if self.engine is None:
            raise ValueError("this Advice was loaded without its model; predictions need advise()")
        arr = np.atleast_1d(np.asarray(ns))
        if arr.dtype.kind not in "iu" and not np.all(arr == np.round(arr)):
            raise ValueError(f"n must be whole numbers, got {ns!r}")
        arr = arr.astype(np.int64)
        if np.any(arr < 1):
            raise ValueError(f"n must be at least 1, got {ns!r}")
        src = source if strat.uses_source else None
        return strat.predict(self.engine, src, arr, self.confidence)

    def predict_risk(self, source: str | None, strategy: str, n: int) -> float:
        """Predicted test MSE of ``strategy`` (from ``source``) trained on ``n`` labelled rows.

        ``source`` is ignored (may be None) for strategies that use no source; ``"as_is"``
        does not depend on ``n``. An unknown source or strategy is a ``ValueError`` listing
        the valid names.

        Parameters
        ----------
        source : str or None
            Source name.
        strategy : str
            Strategy name.
        n : int
            Number of labelled rows.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(2)
        >>> x = rng.standard_normal((15, 3)); y = x.sum(axis=1) + rng.standard_normal(15)
        >>> adv = advise(x, y, {"s": np.ones(3)})
        >>> adv.predict_risk("s", "as_is", 5) == adv.predict_risk("s", "as_is", 500)
        True
        """
        return float(self.curve(source, strategy, [n])[0][0])

    def predict_interval(self, source: str | None, strategy: str, n: int) -> tuple[float, float]:
        """The interval of :meth:`predict_risk` at the advice's confidence.

        Parameters
        ----------
        source : str or None
            Source name (ignored, may be None, for strategies that use no source).
        strategy : str
            Strategy name.
        n : int
            Number of labelled rows.

        Returns
        -------
        low, high : float
            The interval's ends.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(2)
        >>> x = rng.standard_normal((15, 3)); y = x.sum(axis=1) + rng.standard_normal(15)
        >>> lo, hi = advise(x, y).predict_interval(None, "mean", 15)
        >>> bool(0 < lo < hi)
        True
        """
        _, lo, hi = self.curve(source, strategy, [n])
        return float(lo[0]), float(hi[0])

    def rows(self) -> list[dict[str, Any]]:
        """Every (source, strategy) pair with its predictions on :attr:`n_grid`."""
        out = []
        for src, strat in self.pairs():
            risk, lo, hi = self.curve(src, strat, self.n_grid)
            row: dict[str, Any] = {"source": src, "strategy": strat}
            for j, n in enumerate(self.n_grid):
                row[f"risk@{n}"] = float(risk[j])
                row[f"low@{n}"] = float(lo[j])
                row[f"high@{n}"] = float(hi[j])
            if self.eps is not None:
                row["n_for_eps"] = self.n_for_eps.get(key(src, strat))
            out.append(row)
        return out

    @property
    def best(self) -> str | None:
        """The top-ranked source (None when no source was given)."""
        return self.ranking[0] if self.ranking else None

    # ------------------------------------------------------------------ export
    def to_frame(self) -> Any:
        """A tidy pandas DataFrame: one row per (source, strategy, n) with risk, low, high.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(3)
        >>> x = rng.standard_normal((12, 3)); y = x.sum(axis=1) + rng.standard_normal(12)
        >>> advise(x, y).to_frame().shape[1]
        6
        """
        import pandas as pd

        recs = []
        for row in self.rows():
            for n in self.n_grid:
                recs.append(
                    {
                        "source": row["source"],
                        "strategy": row["strategy"],
                        "n": n,
                        "risk": row[f"risk@{n}"],
                        "low": row[f"low@{n}"],
                        "high": row[f"high@{n}"],
                    }
                )
        return pd.DataFrame.from_records(
            recs, columns=["source", "strategy", "n", "risk", "low", "high"]
        )

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
                "tie_se": rec.tie_se,
                "within_noise": rec.within_noise,
                "best_source": rec.best_source,
                "best_strategy": rec.best_strategy,
                "best_risk": rec.best_risk,
                "sentence": rec.sentence(),
            },
            "ranking": self.ranking,
            "rows": self.rows(),
            "n_for_eps": self.n_for_eps,
            "crossover_n": self.crossover_n,
            "allowance": self.allowance,
            "dropped_columns": self.dropped,
            "assumptions": self.assumptions,
        }
        return _jsonable(out)

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """The advice as JSON; also written to ``path`` when given.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            File to write the JSON to (with a final newline).
        indent : int, default 2
            Indentation of the JSON text.

        Returns
        -------
        str
            The JSON text of :meth:`to_dict`.

        Examples
        --------
        >>> import json
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(4)
        >>> x = rng.standard_normal((12, 3)); y = x.sum(axis=1) + rng.standard_normal(12)
        >>> json.loads(advise(x, y).to_json())["n_labelled"]
        12
        """
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_csv(self) -> str:
        """One row per (source, strategy, n): ``source,strategy,n,risk,low,high``."""
        return _render.csv(self)

    # --------------------------------------------------------------- rendering
    def table(self, width: int | None = None) -> Any:
        """A ``rich.table.Table`` of every pair (abbreviated to fit ``width`` columns when
        given; see :meth:`legend`).

        Parameters
        ----------
        width : int, optional
            Width of the display in characters; below the full layout's width the table
            abbreviates its source labels. None: the full layout.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(5)
        >>> x = rng.standard_normal((12, 3)); y = x.sum(axis=1) + rng.standard_normal(12)
        >>> type(advise(x, y).table()).__name__
        'Table'
        """
        return _render.table(self, width)

    def legend(self) -> list[str]:
        """The lines that explain the table's abbreviations."""
        return _render.legend(self)

    def lines(self) -> list[str]:
        """The text lines printed under the table: the recommendation, then the notes."""
        return _render.lines(self)

    def summary(self, width: int = 400) -> str:
        """The table, the recommendation and the assumptions as plain text.

        Parameters
        ----------
        width : int, default 400
            Width of the text in characters (a narrow width abbreviates the table and adds
            its legend).

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(5)
        >>> x = rng.standard_normal((12, 3)); y = x.sum(axis=1) + rng.standard_normal(12)
        >>> "Recommended:" in advise(x, y).summary(width=80)
        True
        """
        return _render.summary(self, width)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _render.html(self)

    def plot(self, ax: Any = None, path: str | Path | None = None) -> Any:
        """Predicted test MSE against ``n`` for every pair, on ``ax`` (a new figure when None).

        Returns the Axes; with ``path`` the figure is also saved there. A path given as the
        first argument is accepted too (it is saved, and the Axes returned).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (a new figure when None).
        path : str or pathlib.Path, optional
            File to save the figure to.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(6)
        >>> x = rng.standard_normal((12, 3)); y = x.sum(axis=1) + rng.standard_normal(12)
        >>> ax = advise(x, y).plot()
        >>> ax.get_xlabel()
        'labelled target rows n'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        if isinstance(ax, str | Path):
            ax, path = None, ax
        return _render.plot(self, ax, path)


def key(source: str | None, strategy: str) -> str:
    """``"source/strategy"``, or the strategy alone when it uses no source."""
    return strategy if source is None else f"{source}/{strategy}"


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


def pairs_of(source_names: Sequence[str], strategies: dict[str, Strategy]) -> list:
    """The (source, strategy) pairs of ``strategies`` for ``source_names``, sources first."""
    out: list[tuple[str | None, str]] = []
    for src in source_names:
        out += [(src, k) for k, s in strategies.items() if s.uses_source]
    return out + [(None, k) for k, s in strategies.items() if not s.uses_source]
