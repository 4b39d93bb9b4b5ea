"""A scikit-learn regressor that fine-tunes a linear (or deep linear) source model.

:class:`FineTunedRegressor` starts from pretrained weights ``source_coef`` and trains on the
target data to zero training loss, as the theory describes: for ``depth = 1`` gradient descent
from the source converges to the interpolant (or least-squares fit) closest to the source,
``theta_S + X^+ (y - X theta_S)`` (:func:`finetune_theory.linear.finetune`); for ``depth > 1``
the end-to-end vector of a deep linear network started from balanced rank-one weights that
realise the source (:mod:`finetune_theory.deep_linear`).

The intercept
-------------
The theory has no intercept: inputs are centred and the model is ``theta^T x``. The estimator
offers two readings of a practitioner's source model ``x -> source_coef^T x + source_intercept``:

* ``fit_intercept=True`` (default): the slope is fine-tuned on centred data and the intercept
  is free. ``X`` and ``y`` are centred by their training means, ``coef_`` is fine-tuned from
  ``source_coef`` on the centred data, and ``intercept_ = mean(y) - mean(X) @ coef_``. This is
  gradient descent in which the intercept carries no implicit penalty; ``source_intercept`` is
  then not used (the training means determine the intercept).
* ``fit_intercept=False``: the intercept is frozen at ``source_intercept``. ``coef_`` is
  fine-tuned on ``(X, y - source_intercept)`` without centring, and
  ``intercept_ = source_intercept``. With ``source_intercept = 0`` this is exactly the theory's
  setting.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import linear

__all__ = ["FineTunedRegressor"]

_SOLVERS = ("closed_form", "gd")


def _deep_linear() -> Any:
    """The deep-linear module, or a clear error while it is not available."""
    try:
        return importlib.import_module("finetune_theory.deep_linear")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValueError(f"depth > 1 needs finetune_theory.deep_linear ({exc})") from None


class FineTunedRegressor(RegressorMixin, BaseEstimator):
    """Fine-tune a linear source model on target data (scikit-learn estimator).

    Parameters
    ----------
    source_coef : array of shape (n_features,), or None
        The pretrained weights ``theta_S``. ``None`` trains from scratch (``theta_S = 0``,
        the minimum-norm interpolant), for any number of features.
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
        Stopping tolerance of ``"gd"`` (see :mod:`finetune_theory._training`).
    width : int or None
        Hidden width of the deep linear network (``depth > 1`` with ``"gd"``); default
        ``n_features``.

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

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> y = np.array([2.0, 1.0])
    >>> model = FineTunedRegressor(source_coef=[0.0, 0.0, 3.0], fit_intercept=False).fit(X, y)
    >>> model.coef_
    array([2., 1., 3.])
    """

    def __init__(
        self,
        source_coef: Any = None,
        source_intercept: float = 0.0,
        *,
        fit_intercept: bool = True,
        depth: int = 1,
        solver: str = "closed_form",
        lr: float | None = None,
        max_steps: int = 100_000,
        tol: float = 1e-11,
        width: int | None = None,
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

    # ------------------------------------------------------------------ checks
    def _check_params(self, d: int) -> tuple[np.ndarray, float, int]:
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        from ._validation import as_vector, check_depth, check_finite_scalar

        depth = check_depth(self.depth)
        if depth == math.inf:
            raise ValueError("depth must be a finite integer >= 1, got inf")
        if not isinstance(self.fit_intercept, bool | np.bool_):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        b0 = check_finite_scalar(self.source_intercept, "source_intercept")
        if self.source_coef is None:
            return np.zeros(d), b0, int(depth)
        ts = as_vector(self.source_coef, "source_coef")
        if ts.size != d:
            raise ValueError(
                f"source_coef has {ts.size} entries but X has {d} features; the source model "
                "must have one coefficient per input column"
            )
        return ts, b0, int(depth)

    # --------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any) -> FineTunedRegressor:
        """Fine-tune on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        ts, b0, depth = self._check_params(X.shape[1])
        if self.fit_intercept:
            x_mean = X.mean(axis=0)
            y_mean = float(y.mean())
            xc, yc = X - x_mean, y - y_mean
        else:
            xc, yc = X, y - b0
        coef, weights = self._solve(xc, yc, ts, depth)
        self.coef_ = coef
        self.intercept_ = float(y_mean - x_mean @ coef) if self.fit_intercept else b0
        if weights is not None:
            self.weights_ = weights
        return self

    def _solve(
        self, x: np.ndarray, y: np.ndarray, ts: np.ndarray, depth: int
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        if depth == 1:
            if self.solver == "closed_form":
                return linear.finetune(x, y, ts), None
            res = linear.train(x, y, ts, lr=self.lr, max_steps=self.max_steps, tol=self.tol)
            return res.theta, None
        if not np.any(ts):
            # from scratch the balanced weights vanish: a stationary point of the loss that
            # gradient descent cannot leave; the limit of a small random start is X^+ y
            return linear.finetune(x, y, ts), None
        dl = _deep_linear()
        if self.solver == "closed_form":
            return np.asarray(dl.finetune(x, y, ts, depth), dtype=np.float64), None
        width = x.shape[1] if self.width is None else self.width
        weights = dl.balanced_init(ts, depth, width)
        out = dl.train(x, y, weights, lr=self.lr, max_steps=self.max_steps, tol=self.tol)
        return np.asarray(out.theta, dtype=np.float64), [np.asarray(w) for w in out.weights]

    # ----------------------------------------------------------------- predict
    def predict(self, X: Any) -> np.ndarray:
        """Predict ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_
