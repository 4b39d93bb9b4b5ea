"""The strategies the advisor compares, as a registry: one object per strategy.

Private to :mod:`finetune_theory.advisor` (the public names are re-exported there). A strategy
declares what it fits, how simple it is, and how its test MSE is predicted from the
:class:`~finetune_theory.advisor._engine.Engine`: the prediction (:meth:`Strategy.median`, a
median-unbiased estimate of the expected test MSE), its standard error on the log scale
(:meth:`Strategy.log_se`) and its interval (:meth:`Strategy.interval`). :func:`register` adds
one; the advice table, the recommendation, the exports and the plot take every registered
strategy from here. ``docs/advisor.md`` shows the whole diff a new strategy needs.

The six built in:

``as_is`` / ``refit_intercept`` / ``mean``
    fit at most one number, and are observed almost directly on the labelled rows: the mean
    squared residual of the source, ``Var(r) (1 + 1/n)``, ``Var(y) (1 + 1/n)`` (``Var(y)``
    pooled with the sources' spread when there are two or more); intervals from the gamma
    law of a mean square (:func:`._stats.gamma_interval`).
``finetune``
    gradient descent from the source to zero training loss (the interpolant closest to the
    source, least squares once ``n > d``), intercept refitted: the deterministic equivalent of
    interpolation (:meth:`Engine.interp_excess`).
``finetune_ridge`` / ``scratch``
    ridge towards the source / towards zero, the ridge chosen by leave-one-out as
    scikit-learn's ``RidgeCV``: the bootstrap of that choice (:meth:`Engine.ridge_excess`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from ._constants import MODEL_SE
from ._engine import Engine
from ._stats import gamma_interval, gamma_log_se, log_normal_interval

__all__ = [
    "Strategy",
    "register",
    "unregister",
    "get",
    "registered",
    "STRATEGIES",
    "SOURCE_STRATEGIES",
    "TARGET_STRATEGIES",
]


class Strategy:
    """A way to use (or not use) a source on the target rows, and its predicted test MSE.

    Subclass it, set the class attributes and :meth:`median` (and, if the default log-normal
    interval around it does not fit, :meth:`log_se` or :meth:`interval`), then
    :func:`register` an instance.

    Attributes
    ----------
    name : str
        The name in the advice, the exports and ``Advice.predict_risk``.
    abbrev : str
        At most 5 characters, for the 80-column table (a legend explains it).
    uses_source : bool
        True: one row per source; False: one row for the target rows alone.
    simplicity : float
        Lower is simpler; a tie goes to the simpler strategy.
    fits : str
        What is fitted on the labelled rows, in a few words (the legend and the docs).

    Examples
    --------
    >>> get("refit_intercept").fits
    'the intercept'
    """

    name: ClassVar[str] = ""
    abbrev: ClassVar[str] = ""
    uses_source: ClassVar[bool] = True
    simplicity: ClassVar[float] = 10.0
    fits: ClassVar[str] = ""

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        """Predicted test MSE (median-unbiased) after ``n`` labelled rows, for each ``n``.

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).
        ns : numpy.ndarray of int
            Labelled sample sizes.

        Returns
        -------
        numpy.ndarray
            The prediction at each ``n`` of ``ns``.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> engine = advise(x, y).engine
        >>> risk = get("scratch").median(engine, None, np.array([20, 200]))
        >>> bool(risk[1] < risk[0])  # more rows, lower predicted risk
        True
        """
        raise NotImplementedError

    def log_se(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        """Standard error of ``log`` of the prediction: by default the sampling error of what
        the learned strategies are scaled to, and :data:`MODEL_SE` growing with the distance
        ``|log(n / n_labelled)|`` to the labelled size.

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).
        ns : numpy.ndarray of int
            Labelled sample sizes.

        Returns
        -------
        numpy.ndarray
            The standard error at each ``n`` of ``ns``.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> engine = advise(x, y).engine
        >>> se = get("scratch").log_se(engine, None, np.array([20, 2000]))
        >>> bool(se[1] > se[0])  # farther from the labelled n, less certain
        True
        """
        ns = np.asarray(ns, dtype=np.float64)
        far = np.abs(np.log(np.maximum(ns, 1.0) / engine.n_labelled))
        base = engine.observed_log_se(source)
        return np.sqrt(base**2 + (MODEL_SE * (1.0 + 0.5 * far)) ** 2)

    def sampling_log_se(self, engine: Engine, source: str | None, n: int) -> float:
        """The part of :meth:`log_se` at the labelled ``n`` that comes from the rows' own
        sampling error (no model error): what the tie rule compares differences with when
        :meth:`row_losses` is not available.

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).
        n : int
            The labelled sample size.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> engine = advise(x, y).engine
        >>> get("scratch").sampling_log_se(engine, None, 20) > 0
        True
        """
        return engine.observed_log_se(source)

    def row_losses(self, engine: Engine, source: str | None) -> np.ndarray | None:
        """Squared error of the strategy on each labelled row, that row held out (None: not
        available). The tie rule compares two strategies by the paired differences of these
        (:func:`~finetune_theory.advisor._advise.recommend`).

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).

        Returns
        -------
        numpy.ndarray, shape (n,), or None

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> engine = advise(x, y).engine
        >>> get("scratch").row_losses(engine, None).shape
        (20,)
        """
        return None

    def interval(
        self, engine: Engine, source: str | None, ns: np.ndarray, confidence: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``confidence`` interval of the expected test MSE (log-normal by default).

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).
        ns : numpy.ndarray of int
            Labelled sample sizes.
        confidence : float
            Level of the interval, in (0, 1).

        Returns
        -------
        low, high : numpy.ndarray
            The interval's ends at each ``n`` of ``ns``.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> engine = advise(x, y).engine
        >>> lo, hi = get("scratch").interval(engine, None, np.array([20]), 0.8)
        >>> bool(0 < lo[0] < hi[0])
        True
        """
        return log_normal_interval(
            self.median(engine, source, ns), self.log_se(engine, source, ns), confidence
        )

    def predict(
        self, engine: Engine, source: str | None, ns: np.ndarray, confidence: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(risk, low, high)`` at each ``n`` (infinite below ``n = 2``).

        Parameters
        ----------
        engine : Engine
            The advisor's model of the target rows (covariance, noise and the sources'
            starts).
        source : str or None
            Source name (None for strategies that use no source).
        ns : numpy.ndarray of int
            Labelled sample sizes.
        confidence : float
            Level of the interval, in (0, 1).

        Returns
        -------
        risk, low, high : numpy.ndarray
            :meth:`median` and :meth:`interval` at each ``n`` of ``ns``.

        Examples
        --------
        >>> import numpy as np
        >>> from finetune_theory.advisor import advise
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20, 3)); y = x.sum(axis=1) + rng.standard_normal(20)
        >>> adv = advise(x, y)
        >>> risk, lo, hi = get("scratch").predict(adv.engine, None, np.array([1, 20]), 0.8)
        >>> bool(np.isinf(risk[0]) and lo[1] < risk[1] < hi[1])
        True
        """
        ns = np.asarray(ns, dtype=np.int64)
        risk = np.asarray(self.median(engine, source, ns), dtype=np.float64)
        lo, hi = self.interval(engine, source, ns, confidence)
        risk = np.where(ns >= 2, risk, np.inf)
        return risk, np.where(ns >= 2, lo, np.inf), np.where(ns >= 2, hi, np.inf)

    def __repr__(self) -> str:
        return f"<strategy {self.name!r}: fits {self.fits}>"


class _Observed(Strategy):
    """Observed on the labelled rows: a gamma law around the median-unbiased mean square."""

    def shape(self, engine: Engine, source: str | None) -> float:
        return engine.start(source).resid_shape

    def log_se(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        return np.full(np.shape(ns), float(gamma_log_se(self.shape(engine, source))))

    def sampling_log_se(self, engine: Engine, source: str | None, n: int) -> float:
        return float(gamma_log_se(self.shape(engine, source)))

    def interval(
        self, engine: Engine, source: str | None, ns: np.ndarray, confidence: float
    ) -> tuple[np.ndarray, np.ndarray]:
        k = self.shape(engine, source)
        return gamma_interval(self.median(engine, source, ns), k, confidence)


def _grow(ns: np.ndarray) -> np.ndarray:
    return 1.0 + 1.0 / np.maximum(np.asarray(ns, dtype=np.float64), 1.0)


def _loo_mean_losses(r: np.ndarray) -> np.ndarray:
    """Squared leave-one-out errors of predicting ``r`` by the mean of the other rows."""
    n = r.size
    return ((r - r.mean()) * (n / max(n - 1, 1))) ** 2


class AsIs(_Observed):
    name = "as_is"
    abbrev = "asis"
    simplicity = 0.0
    fits = "nothing"

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        return np.full(np.shape(ns), engine.start(source).as_is_mse)

    def row_losses(self, engine: Engine, source: str | None) -> np.ndarray | None:
        st = engine.start(source)
        return (st.resid - st.intercept) ** 2  # nothing is fitted: in sample is held out


class RefitIntercept(_Observed):
    name = "refit_intercept"
    abbrev = "icpt"
    simplicity = 1.0
    fits = "the intercept"

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        return engine.start(source).resid_var * _grow(ns)

    def row_losses(self, engine: Engine, source: str | None) -> np.ndarray | None:
        return _loo_mean_losses(engine.start(source).resid)


class Mean(_Observed):
    name = "mean"
    abbrev = "mean"
    uses_source = False
    simplicity = 2.0
    fits = "the mean label"

    def shape(self, engine: Engine, source: str | None) -> float:
        return engine.start(None).resid_shape

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        return engine.start(None).total_var * _grow(ns)

    def row_losses(self, engine: Engine, source: str | None) -> np.ndarray | None:
        return _loo_mean_losses(engine.start(None).resid)


class _UserRidge(Strategy):
    """The user's leave-one-out ridge (``RidgeCV``) from a start: the bootstrap's curve."""

    def start_of(self, source: str | None) -> str | None:
        return source if self.uses_source else None

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        return engine.learned_mse(engine.ridge_excess(self.start_of(source), ns), ns)

    def row_losses(self, engine: Engine, source: str | None) -> np.ndarray | None:
        return engine.start(self.start_of(source)).loo_resid ** 2


class FinetuneRidge(_UserRidge):
    name = "finetune_ridge"
    abbrev = "ridge"
    simplicity = 3.0
    fits = "every slope, ridge towards the source (alpha by leave-one-out)"


class Scratch(_UserRidge):
    name = "scratch"
    abbrev = "scr"
    uses_source = False
    simplicity = 4.0
    fits = "every slope, ridge towards zero (alpha by leave-one-out)"


class Finetune(Strategy):
    name = "finetune"
    abbrev = "ft"
    simplicity = 5.0
    fits = "every slope, gradient descent from the source to zero training loss"

    def median(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        """The expected test MSE; where it is infinite (next to ``n = d``, where the noise
        term of a Gaussian design's interpolant has no mean), the median of one design's test
        MSE, which is finite (the bootstrap's)."""
        mse = engine.learned_mse(engine.interp_excess(source, ns), ns)
        if np.all(np.isfinite(mse)):
            return mse
        med = engine.learned_mse(engine.interp_median_excess(source, ns), ns)
        return np.where(np.isfinite(mse), mse, med)

    def log_se(self, engine: Engine, source: str | None, ns: np.ndarray) -> np.ndarray:
        """The default and, in quadrature, how far one interpolant's test MSE strays from its
        expectation from design to design (the bootstrap's spread of ``log`` test MSE): near
        ``n = d`` it varies by orders of magnitude, and the user fits one design."""
        out = super().log_se(engine, source, ns)
        return np.hypot(out, engine.interp_log_sd(source, ns))


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Add ``strategy`` to the strategies every later :func:`advise` compares.

    Parameters
    ----------
    strategy : Strategy
        An instance of a :class:`Strategy` subclass with a unique ``name``.
    replace : bool
        Allow replacing a registered strategy of the same name.

    Returns
    -------
    Strategy
        The same object (so that ``register`` can decorate an instance's creation).

    Examples
    --------
    >>> class Half(Strategy):
    ...     name, abbrev, simplicity, fits = "half", "half", 1.5, "nothing (toy)"
    ...     def median(self, engine, source, ns):
    ...         return 0.5 * get("as_is").median(engine, source, ns)
    >>> _ = register(Half())
    >>> "half" in registered()
    True
    >>> unregister("half")
    """
    _check_strategy(strategy)
    if strategy.name in _REGISTRY and not replace:
        raise ValueError(f"a strategy named {strategy.name!r} is registered (pass replace=True)")
    _REGISTRY[strategy.name] = strategy
    return strategy


def _check_strategy(strategy: Strategy) -> None:
    """What the advice table needs of a strategy: its type, an identifier name, an abbrev."""
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
    if not strategy.name or not strategy.name.isidentifier():
        raise ValueError(f"a strategy needs a name that is an identifier, got {strategy.name!r}")
    if not 0 < len(strategy.abbrev) <= 5:
        raise ValueError(f"strategy {strategy.name!r}: abbrev must have 1 to 5 characters")


def with_call_strategies(extra: Sequence[Strategy]) -> dict[str, Strategy]:
    """The registered strategies plus ``extra`` for one call, simplest first.

    Each of ``extra`` passes the checks of :func:`register`; a name that is registered or
    given twice is an error. The registry itself is left as it is.
    """
    extra = list(extra)
    for strategy in extra:
        _check_strategy(strategy)
    names = [s.name for s in extra]
    taken = sorted({n for n in names if n in _REGISTRY or names.count(n) > 1})
    if taken:
        raise ValueError(f"strategies named {taken} are registered or given twice; pass other "
                         "names or unregister them")
    return simplest_first({**_REGISTRY, **{s.name: s for s in extra}})


def unregister(name: str) -> None:
    """Remove the strategy ``name`` (a ``ValueError`` listing the names when unknown).

    Parameters
    ----------
    name : str
        Name of a registered strategy.

    Examples
    --------
    >>> unregister("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown strategy 'nope'; registered: as_is, refit_intercept, mean, finetune_ridge, scratch, finetune
    """  # noqa: E501
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; registered: {', '.join(registered())}")
    del _REGISTRY[name]


def get(name: str) -> Strategy:
    """The registered strategy ``name``.

    Parameters
    ----------
    name : str
        Name of a registered strategy (a ``ValueError`` listing the names when unknown).

    Returns
    -------
    Strategy

    Examples
    --------
    >>> get("scratch").uses_source
    False
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(registered())}")
    return _REGISTRY[name]


def registered() -> tuple[str, ...]:
    """Names of the registered strategies, simplest first.

    Examples
    --------
    >>> registered()[:2]
    ('as_is', 'refit_intercept')
    """
    return tuple(simplest_first(_REGISTRY))


def simplest_first(pool: Mapping[str, Strategy]) -> dict[str, Strategy]:
    """``pool`` ordered as the advice lists strategies: by simplicity, then by name."""
    return {k: pool[k] for k in sorted(pool, key=lambda k: (pool[k].simplicity, k))}


for _cls in (AsIs, RefitIntercept, Mean, FinetuneRidge, Scratch, Finetune):
    register(_cls())

#: the built-in strategies (``registered()`` lists those added since)
STRATEGIES = ("as_is", "refit_intercept", "finetune", "finetune_ridge", "scratch", "mean")
#: built-in strategies that use a source model
SOURCE_STRATEGIES = ("as_is", "refit_intercept", "finetune_ridge", "finetune")
#: built-in strategies that use only the target rows
TARGET_STRATEGIES = ("scratch", "mean")
