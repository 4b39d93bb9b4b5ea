r"""A scikit-learn regressor that fine-tunes a linear (or deep linear) source model.

:class:`FineTunedRegressor` starts from pretrained weights ``source_coef`` and trains on the
target data to zero training loss, as the theory describes: for ``depth = 1`` gradient descent
from the source converges to the interpolant (or least-squares fit) closest to the source,
:math:`\theta_S + X^+ (y - X \theta_S)` (:func:`finetune_theory.linear.finetune`); for
``depth > 1`` the end-to-end vector of a deep linear network started from balanced rank-one
weights that realise the source (:mod:`finetune_theory.deep_linear`).

The intercept
-------------
The theory has no intercept: inputs are centred and the model is :math:`\theta^\top x`. The
estimator offers two readings of a practitioner's source model :math:`x \mapsto w_S^\top x + b_S`
(``source_coef``, ``source_intercept``):

* ``fit_intercept=True`` (default): the slope is fine-tuned on centred data and the intercept
  is free. ``X`` and ``y`` are centred by their training means, ``coef_`` is fine-tuned from
  ``source_coef`` on the centred data, and ``intercept_ = mean(y) - mean(X) @ coef_``. This is
  gradient descent in which the intercept carries no implicit penalty; ``source_intercept`` is
  then not used (the training means determine the intercept).
* ``fit_intercept=False``: the intercept is frozen at ``source_intercept``. ``coef_`` is
  fine-tuned on ``(X, y - source_intercept)`` without centring, and
  ``intercept_ = source_intercept``. With ``source_intercept = 0`` this is exactly the theory's
  setting.

Ridge towards the source
------------------------
``alpha > 0`` (depth 1, closed form) minimises :math:`\|y - X w\|^2 + \alpha \|w - w_S\|^2`
(on the centred data when ``fit_intercept``): scikit-learn's ``Ridge`` penalty, measured from
the source instead of from zero, so ``alpha`` has ``Ridge``'s meaning and scale and
:math:`\alpha \to \infty` keeps the source. It is :func:`finetune_theory.linear.finetune` with
``ridge = alpha / n_samples``. ``alpha="loo"`` chooses it from ``alphas`` by the closed-form
leave-one-out error (as ``RidgeCV`` does); the choice is ``alpha_``.

A source inside a scaling Pipeline
----------------------------------
``source_coef`` lives in the coordinates the estimator sees. Inside
``make_pipeline(StandardScaler(), FineTunedRegressor(...))`` those are the *scaled* features,
so the source must be a model fitted on features scaled the same way (for instance the
``coef_`` of ``Ridge`` fitted after the same, already fitted, scaler); the raw-feature
coefficients of a source are wrong there. Keep the source's scaler (fitted on source data) and
freeze it in the pipeline, or convert: raw coefficients ``w`` become ``w * scale_`` on
standardised features. Example (the two agree):

>>> import numpy as np
>>> from sklearn.linear_model import Ridge
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> rng = np.random.default_rng(0)
>>> Xs = rng.normal(5.0, [1.0, 10.0, 0.1], size=(200, 3))
>>> ys = Xs @ [1.0, 0.1, 10.0] + 0.1 * rng.standard_normal(200)
>>> scaler = StandardScaler().fit(Xs)  # fitted on the source data, then kept fixed
>>> source = Ridge(alpha=1e-6).fit(scaler.transform(Xs), ys)
>>> Xt = rng.normal(5.0, [1.0, 10.0, 0.1], size=(20, 3))
>>> yt = Xt @ [1.1, 0.1, 10.0]
>>> scaled = FineTunedRegressor(source.coef_).fit(scaler.transform(Xt), yt)
>>> raw = FineTunedRegressor(source.coef_ / scaler.scale_).fit(Xt, yt)  # same model, raw units
>>> bool(np.allclose(scaled.predict(scaler.transform(Xt)), raw.predict(Xt)))
True
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import linear
from ._numerics import TINY
from ._ridge_loo import gram_basis, loo_residuals

__all__ = ["FineTunedRegressor"]

_SOLVERS = ("closed_form", "gd")
_FITTED = ("coef_", "intercept_", "weights_", "n_iter_", "alpha_", "loo_mse_")


def _deep_linear() -> Any:
    """The deep-linear module, or a clear error while it is not available."""
    try:
        return importlib.import_module("finetune_theory.deep_linear")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValueError(f"depth > 1 needs finetune_theory.deep_linear ({exc})") from None


def _one_target(y: np.ndarray) -> np.ndarray:
    """``y`` as a vector; several columns are one readable error, one column is raveled."""
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"FineTunedRegressor fits one target, but y has shape {y.shape}: fit one model per "
            "column, each with the source coefficients of that target (or wrap it in "
            "sklearn.multioutput.MultiOutputRegressor when one source serves every column)"
        )
    if y.ndim == 2:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is raveled",
            DataConversionWarning,
            stacklevel=3,
        )
    return y.ravel()


class FineTunedRegressor(RegressorMixin, BaseEstimator):
    """Fine-tune a linear source model on target data (scikit-learn estimator).

    Parameters
    ----------
    source_coef : array of shape (n_features,), pandas Series, dict, or None
        The pretrained weights ``theta_S``. A Series or a dict is aligned by feature name with
        the columns of the ``X`` given to ``fit`` (a DataFrame); a mismatch is a
        ``ValueError`` naming the missing and the unknown names. ``None`` trains from scratch
        (``theta_S = 0``, the minimum-norm interpolant), for any number of features.
    source_intercept : float
        The source model's intercept; used only when ``fit_intercept=False`` (see the module
        docstring).
    fit_intercept : bool
        ``True``: centre ``X`` and ``y`` by their training means and fit a free intercept;
        ``False``: keep the intercept at ``source_intercept``.
    depth : int
        ``1``: linear regression. ``> 1``: a deep linear network ``W_N ... W_1 x`` started from
        balanced rank-one weights whose end-to-end vector is ``source_coef``.
    solver : {"closed_form", "gd"}
        ``"closed_form"``: the limit of gradient descent (exact for ``depth = 1``, the
        balanced-network limit for ``depth > 1``); ``"gd"``: run full-batch gradient descent.
    lr : float or None
        Step size of ``"gd"`` (``None``: the solver's default).
    max_steps : int
        Step budget of ``"gd"``.
    tol : float
        Stopping tolerance of ``"gd"``: training stops when the loss is at most ``tol`` times
        the zero predictor's loss, or when one step changes it by at most that fraction
        (as ``tol`` of :func:`finetune_theory.linear.train`).
    width : int or None
        Hidden width of the deep linear network (``depth > 1`` with ``"gd"``); default
        ``n_features``.
    alpha : float or "loo"
        Ridge towards the source, in scikit-learn's ``Ridge`` units (see the module
        docstring); ``0`` (default) fine-tunes to zero training loss. ``"loo"``: chosen from
        ``alphas`` by leave-one-out error. Needs ``depth = 1`` and ``solver="closed_form"``.
    alphas : array-like or None
        Candidates for ``alpha="loo"`` (default ``numpy.logspace(-4, 4, 41)`` times the mean
        squared singular value of the centred ``X``, ``trace(X^T X) / n_features``).

    Notes
    -----
    The default, ``alpha=0``, is fine-tuning as the theory describes it: gradient descent from
    the source run to zero training loss. With noisy labels its test error is not monotone in
    the number of samples: it peaks where ``n_samples`` approaches the number of directions
    in which the inputs vary (the rank of ``X``, or fewer when the spectrum decays fast), where
    the interpolant must fit the noise through nearly flat directions (the "double descent" of
    minimum-norm least squares). Ridge towards the source removes the peak: ``alpha="loo"``
    chooses the ridge by leave-one-out error at no extra cost and is the safer choice on noisy
    data (see the gallery example on the diamonds table).

    ``sample_weight`` in :meth:`fit` weighs each row's squared error, as in scikit-learn's
    ``Ridge``: a weight of 2 is the same as the row given twice (for ``alpha="loo"`` the
    leave-one-out error is weighted the same way, leaving out one row at a time). The
    estimator fits one target; a two-dimensional ``y`` with several columns is refused.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The fine-tuned end-to-end vector.
    intercept_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    weights_ : list of ndarray
        The trained layer weights (``depth > 1`` with ``solver="gd"`` only).
    n_iter_ : int
        Gradient-descent steps taken (``solver="gd"`` only). When the step budget ran out
        first, ``fit`` issues a ``sklearn.exceptions.ConvergenceWarning``.
    alpha_ : float
        The ridge used (``alpha`` itself, or the leave-one-out choice).
    loo_mse_ : ndarray
        Leave-one-out mean squared error of each candidate in ``alphas`` (``alpha="loo"``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> y = np.array([2.0, 1.0])
    >>> model = FineTunedRegressor(source_coef=[0.0, 0.0, 3.0], fit_intercept=False).fit(X, y)
    >>> model.coef_
    array([2., 1., 3.])
    """

    #: the accepted values of each parameter, checked by ``fit`` (scikit-learn's convention)
    _parameter_constraints: dict = {  # noqa: RUF012
        "source_coef": ["array-like", Mapping, None],
        "source_intercept": [Interval(Real, None, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions(set(_SOLVERS))],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"loo"})],
        "alphas": ["array-like", None],
    }

    def __init__(
        self,
        source_coef: ArrayLike | Mapping[str, float] | None = None,
        source_intercept: float = 0.0,
        *,
        fit_intercept: bool = True,
        depth: int = 1,
        solver: str = "closed_form",
        lr: float | None = None,
        max_steps: int = 100_000,
        tol: float = 1e-11,
        width: int | None = None,
        alpha: float | str = 0.0,
        alphas: ArrayLike | None = None,
    ) -> None:
        self.source_coef = source_coef
        self.source_intercept = source_intercept
        self.fit_intercept = fit_intercept
        self.depth = depth
        self.solver = solver
        self.lr = lr
        self.max_steps = max_steps
        self.tol = tol
        self.width = width
        self.alpha = alpha
        self.alphas = alphas

    # ------------------------------------------------------------------ checks
    def _check_params(self, d: int) -> tuple[np.ndarray, float, int]:
        """What the ranges of ``_parameter_constraints`` cannot say; the source as a vector."""
        from ._validation import as_vector, check_finite_scalar

        depth = int(self.depth)
        b0 = check_finite_scalar(self.source_intercept, "source_intercept")
        if (self.alpha == "loo" or float(self.alpha) > 0) and (
            depth != 1 or self.solver != "closed_form"
        ):
            raise ValueError("alpha > 0 or 'loo' needs depth=1 and solver='closed_form'")
        if self.source_coef is None:
            return np.zeros(d), b0, int(depth)
        if isinstance(self.source_coef, Mapping) or hasattr(self.source_coef, "keys"):
            return self._aligned_source(d), b0, int(depth)
        ts = as_vector(self.source_coef, "source_coef")
        if ts.size != d:
            raise ValueError(
                f"source_coef has {ts.size} entries but X has {d} features; the source model "
                "must have one coefficient per input column"
            )
        return ts, b0, int(depth)

    def _aligned_source(self, d: int) -> np.ndarray:
        """A Series or dict ``source_coef`` aligned with the fitted feature names."""
        from ._validation import check_finite_scalar

        src: Any = self.source_coef  # a Mapping or a pandas Series (pandas ships no types)
        mapping = dict(src.items()) if hasattr(src, "items") else dict(src)
        mapping = {str(k): v for k, v in mapping.items()}
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            raise ValueError(
                "source_coef gives coefficients by feature name, but X has no column names; "
                "fit on a DataFrame or give source_coef as an array"
            )
        names = [str(c) for c in names]
        missing = [c for c in names if c not in mapping]
        unknown = [k for k in mapping if k not in set(names)]
        if missing or unknown:
            raise ValueError(
                f"source_coef does not match the columns of X: missing {missing[:5]}, "
                f"unknown {unknown[:5]}"
            )
        return np.array(
            [check_finite_scalar(mapping[c], f"source_coef[{c!r}]") for c in names],
            dtype=np.float64,
        )

    def _ridge(
        self, x: np.ndarray, y: np.ndarray, ts: np.ndarray, sw: np.ndarray | None
    ) -> np.ndarray:
        """Ridge towards ``ts`` in sklearn units; ``alpha="loo"`` by leave-one-out.

        ``x`` and ``y`` are already centred and multiplied by the square roots of the weights
        ``sw`` (None: unweighted).
        """
        n, d = x.shape
        if self.alpha != "loo":
            self.alpha_ = float(self.alpha)
            return linear.finetune(x, y, ts, ridge=self.alpha_ / n)
        u, s2 = gram_basis(x[None])
        if self.alphas is None:
            grid = np.logspace(-4, 4, 41) * max(float(s2.sum()) / d, TINY)
        else:
            grid = np.asarray(self.alphas, dtype=np.float64).ravel()
            if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
                raise ValueError(f"alphas must be positive finite numbers, got {self.alphas!r}")
        z = y - x @ ts
        # the centred intercept's leverage: 1/n, or w_i / sum(w) with weights (the rows are
        # scaled by sqrt(w))
        lev: float | np.ndarray = 0.0
        if self.fit_intercept:
            lev = np.full(n, 1.0 / n) if sw is None else sw / sw.sum()
        res = loo_residuals(u, s2, z[None, None], grid, lev)[0][0, 0]  # (A, n)
        # the scaled residuals carry the weights: their sum over sum(w) is the weighted mean
        total = n if sw is None else float(sw.sum())
        with np.errstate(invalid="ignore", over="ignore"):
            loo_mse = np.sum(res**2, axis=1) / total
        loo_mse = np.where(np.isfinite(loo_mse), loo_mse, np.inf)
        self.loo_mse_ = loo_mse
        self.alpha_ = float(grid[int(np.argmin(loo_mse))])
        return linear.finetune(x, y, ts, ridge=self.alpha_ / n)

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> FineTunedRegressor:
        """Fine-tune on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target inputs (a DataFrame's column names are kept in ``feature_names_in_``).
        y : array-like of shape (n_samples,)
            Target labels (one target: several columns are refused).
        sample_weight : array-like of shape (n_samples,) or None
            Non-negative weight of each row's squared error (``None``: all ones). A weight of
            2 counts the row twice; a weight of 0 leaves it out.

        Returns
        -------
        FineTunedRegressor
            The fitted estimator itself.

        Raises
        ------
        ValueError
            For a parameter outside its range (scikit-learn's ``InvalidParameterError``), a
            source of the wrong length, a ``y`` with several columns or negative weights.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> y = np.array([1.0, 2.0, 4.0])
        >>> twice = FineTunedRegressor(fit_intercept=False).fit(X[[0, 1, 2, 2]], y[[0, 1, 2, 2]])
        >>> weighted = FineTunedRegressor(fit_intercept=False).fit(X, y, sample_weight=[1, 1, 2])
        >>> bool(np.allclose(twice.coef_, weighted.coef_))
        True
        """
        for attr in _FITTED:  # a refit starts from a clean slate
            self.__dict__.pop(attr, None)
        xs: np.ndarray
        xs, ys = validate_data(self, X, y, dtype=np.float64, y_numeric=True, multi_output=True)
        ys = _one_target(ys)
        ts, b0, depth = self._check_params(xs.shape[1])
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, xs, dtype=np.float64, ensure_non_negative=True)
        if self.fit_intercept:
            x_mean = np.average(xs, axis=0, weights=sw)
            y_mean = float(np.average(ys, weights=sw))
            xc, yc = xs - x_mean, ys - y_mean
        else:
            xc, yc = xs, ys - b0
        if sw is not None:  # weighted squared error = plain squared error of scaled rows
            root = np.sqrt(sw)
            xc, yc = xc * root[:, None], yc * root
        coef, weights = self._solve(xc, yc, ts, depth, sw)
        self.coef_ = coef
        self.intercept_ = float(y_mean - x_mean @ coef) if self.fit_intercept else b0
        if weights is not None:
            self.weights_ = weights
        return self

    def _solve(
        self, x: np.ndarray, y: np.ndarray, ts: np.ndarray, depth: int, sw: np.ndarray | None
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        if depth == 1:
            if self.solver == "closed_form":
                if self.alpha == "loo" or float(self.alpha) > 0:
                    return self._ridge(x, y, ts, sw), None
                self.alpha_ = 0.0
                return linear.finetune(x, y, ts), None
            res = linear.train(
                x, y, ts, lr=self.lr, max_steps=self.max_steps, tol=self.tol, strict=False
            )
            self._record_steps(res)
            return np.asarray(res.theta, dtype=np.float64), None
        if not np.any(ts):
            # from scratch the balanced weights vanish: a stationary point of the loss that
            # gradient descent cannot leave; the limit of a small random start is X^+ y
            return linear.finetune(x, y, ts), None
        dl = _deep_linear()
        if self.solver == "closed_form":
            return np.asarray(dl.finetune(x, y, ts, depth), dtype=np.float64), None
        width = x.shape[1] if self.width is None else self.width
        weights = dl.balanced_init(ts, depth, width)
        out = dl.train(
            x, y, weights, lr=self.lr, max_steps=self.max_steps, tol=self.tol, strict=False
        )
        self._record_steps(out)
        return np.asarray(out.theta, dtype=np.float64), [np.asarray(w) for w in out.weights]

    def _record_steps(self, result: Any) -> None:
        """``n_iter_`` from a training result; a ``ConvergenceWarning`` when it ran out."""
        self.n_iter_ = int(np.max(result.steps))
        if not bool(np.all(result.converged)):
            warnings.warn(
                f"gradient descent did not converge within max_steps={self.max_steps} "
                f"(tol={self.tol}); increase max_steps or lr, or use solver='closed_form'",
                ConvergenceWarning,
                stacklevel=4,
            )

    # ----------------------------------------------------------------- predict
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs with the features seen by :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            The predictions.

        Examples
        --------
        >>> import numpy as np
        >>> model = FineTunedRegressor([1.0, 0.0], fit_intercept=False)
        >>> model.fit(np.array([[0.0, 1.0]]), np.array([3.0])).predict(np.array([[1.0, 1.0]]))
        array([4.])
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_
