"""The feature map that turns a table into a design matrix ``X`` of dimension ``d``.

Columns of the output, in order:

1. an intercept column of ones (``intercept=True``): the theory has no bias term, so the
   constant is one more input direction;
2. the numeric columns, standardised with the mean and standard deviation seen by ``fit``
   (a constant column gets scale one, so it becomes zero);
3. one indicator per level of each categorical column (levels sorted as text; a level not seen
   by ``fit`` gives a row of zeros);
4. ``random_features`` random ReLU features ``max(0, w_j^T z)`` of the block ``z`` made of
   2 and 3, with ``w_j ~ N(0, I / p)`` (``p`` the width of ``z``): they make ``d`` larger than
   the number of target samples and add non-linear directions. There is no offset on purpose:
   with an offset many units are active on every row of a group, hence linear in ``z``, and the
   design loses rank.

Bad input fails early with a ``ValueError`` that names the column: a column that is missing,
a numeric column that holds text or missing values, a categorical column with missing values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._random import SeedLike, as_generator
from .._validation import check_positive_int

__all__ = ["FeatureMap", "check_frame"]


def _names(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of column names, got {value!r}")
    out = tuple(value)
    for v in out:
        if not isinstance(v, str):
            raise ValueError(f"{name} must hold column names (str), got {v!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a column twice: {list(out)}")
    return out


def check_frame(frame: Any, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """Validate that ``frame`` holds the named columns in a usable form.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to check.
    numeric : sequence of str
        Columns that must be real-valued, finite and complete.
    categorical : sequence of str
        Columns that must be complete (any values, compared as text).

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself.

    Raises
    ------
    ValueError
        Naming the first offending column and what is wrong with it.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, None], "kind": ["a", "b"]})
    >>> check_frame(frame, ["size"], ["kind"])
    Traceback (most recent call last):
    ...
    ValueError: column 'size' has 1 missing value(s) (NaN); fill or drop them before the feature map
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValueError("frame has no rows")
    for col in (*numeric, *categorical):
        if col not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:12]))
            raise ValueError(f"column {col!r} is not in the data (columns: {shown}, ...)")
    for col in numeric:
        s = frame[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            example = s.dropna().iloc[0] if s.notna().any() else None
            raise ValueError(
                f"column {col!r} is listed as numeric but holds {s.dtype} values "
                f"(e.g. {example!r}); convert it or list it as categorical"
            )
        missing = int(s.isna().sum())
        if missing:
            raise ValueError(
                f"column {col!r} has {missing} missing value(s) (NaN); fill or drop them "
                "before the feature map"
            )
        values = s.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise ValueError(f"column {col!r} has {bad} infinite value(s)")
    for col in categorical:
        missing = int(frame[col].isna().sum())
        if missing:
            raise ValueError(
                f"column {col!r} has {missing} missing value(s); give them a level of their own "
                "(e.g. 'none') or drop the rows before the feature map"
            )
    return frame


class FeatureMap(TransformerMixin, BaseEstimator):
    """Standardised numerics, one-hot categoricals, an intercept and random ReLU features.

    A scikit-learn transformer of data frames: it clones, takes part in pipelines and
    ``ColumnTransformer``, names its output columns (:meth:`get_feature_names_out`) and gives a
    data frame when asked (``set_output(transform="pandas")``). The parameters are checked by
    :meth:`fit`, as scikit-learn does.

    Parameters
    ----------
    numeric : sequence of str
        Real-valued columns, standardised.
    categorical : sequence of str
        Columns turned into one indicator per level.
    random_features : int
        Number of random ReLU features appended (``0`` for none).
    intercept : bool
        Prepend a column of ones.
    seed : int, SeedSequence or Generator
        Seed of the random features (the same seed gives the same map).

    Attributes
    ----------
    mean_ : ndarray of shape (len(numeric),)
        Mean of each numeric column in the frame given to :meth:`fit`.
    scale_ : ndarray of shape (len(numeric),)
        Its standard deviation (one for a constant column).
    levels_ : dict of str to tuple of str
        The levels of each categorical column, sorted as text.
    weights_ : ndarray of shape (p, random_features)
        The random features' weights, ``p`` the number of standardised and one-hot columns.
    feature_names_ : list of str
        The names of the output columns (also :meth:`get_feature_names_out`).
    n_features_ : int
        The output dimension ``d``.
    n_features_in_ : int
        The number of input columns used (numeric and categorical).
    feature_names_in_ : ndarray of str
        Those input columns.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "kind": ["a", "b", "a"]})
    >>> fmap = FeatureMap(["size"], ["kind"]).fit(frame)
    >>> fmap.transform(frame).shape
    (3, 4)
    >>> fmap.get_feature_names_out().tolist()
    ['intercept', 'size', 'kind=a', 'kind=b']
    >>> fmap.set_output(transform="pandas").transform(frame).columns.tolist()
    ['intercept', 'size', 'kind=a', 'kind=b']
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        *,
        random_features: int = 0,
        intercept: bool = True,
        seed: SeedLike = 0,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.random_features = random_features
        self.intercept = intercept
        self.seed = seed

    def _columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The checked column lists (scikit-learn checks parameters at fit, not in __init__)."""
        numeric = _names(self.numeric, "numeric")
        categorical = _names(self.categorical, "categorical")
        both = set(numeric) & set(categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        if not numeric and not categorical:
            raise ValueError("give at least one numeric or categorical column")
        if self.random_features != 0:
            check_positive_int(self.random_features, "random_features")
        if not isinstance(self.intercept, bool | np.bool_):
            raise ValueError(f"intercept must be True or False, got {self.intercept!r}")
        return numeric, categorical

    # ------------------------------------------------------------------ fit
    def fit(self, X: pd.DataFrame, y: ArrayLike | None = None) -> FeatureMap:
        """Learn the standardisation and the levels, and draw the random features.

        Parameters
        ----------
        X : pandas.DataFrame
            A frame holding the ``numeric`` and ``categorical`` columns (others are ignored).
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        FeatureMap
            The fitted map itself.

        Examples
        --------
        >>> import pandas as pd
        >>> fmap = FeatureMap(["x"]).fit(pd.DataFrame({"x": [1.0, 3.0]}))
        >>> fmap.mean_, fmap.scale_, fmap.n_features_
        (array([2.]), array([1.]), 2)
        """
        numeric, categorical = self._columns()
        check_frame(X, numeric, categorical)
        num = X[list(numeric)].to_numpy(dtype=np.float64)
        self.mean_ = num.mean(axis=0) if num.size else np.zeros(0)
        std = num.std(axis=0) if num.size else np.zeros(0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.levels_ = {c: tuple(sorted(X[c].astype(str).unique())) for c in categorical}
        p = len(numeric) + sum(len(v) for v in self.levels_.values())
        n_random = int(self.random_features)
        rng = as_generator(self.seed)
        self.weights_ = rng.standard_normal((p, n_random)) / np.sqrt(max(p, 1))
        names = ["intercept"] if self.intercept else []
        names += list(numeric)
        names += [f"{c}={lv}" for c in categorical for lv in self.levels_[c]]
        names += [f"relu_{j}" for j in range(n_random)]
        self.feature_names_ = names
        self.n_features_ = len(names)
        self.feature_names_in_ = np.asarray([*numeric, *categorical], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The design matrix of a frame.

        Parameters
        ----------
        X : pandas.DataFrame
            A frame with the columns seen by :meth:`fit`.

        Returns
        -------
        ndarray of shape (len(X), d)
            float64; a data frame with the columns of :meth:`get_feature_names_out` after
            ``set_output(transform="pandas")``.

        Examples
        --------
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [1.0, 3.0], "g": ["u", "v"]})
        >>> FeatureMap(["x"], ["g"], intercept=False).fit(frame).transform(frame)
        array([[-1.,  1.,  0.],
               [ 1.,  0.,  1.]])
        """
        check_is_fitted(self, "n_features_")
        numeric, categorical = self._columns()
        check_frame(X, numeric, categorical)
        num = (X[list(numeric)].to_numpy(dtype=np.float64) - self.mean_) / self.scale_
        blocks = [num]
        for c in categorical:
            values = X[c].astype(str).to_numpy()
            blocks.append((values[:, None] == np.asarray(self.levels_[c])[None, :]).astype(float))
        z = np.concatenate(blocks, axis=1)
        parts = [np.ones((len(X), 1))] if self.intercept else []
        parts.append(z)
        if self.random_features:
            parts.append(np.maximum(z @ self.weights_, 0.0))
        return np.concatenate(parts, axis=1)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """The names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None
            Ignored unless given, in which case it must equal the input columns seen by
            :meth:`fit` (scikit-learn's convention).

        Returns
        -------
        ndarray of str objects, shape (d,)
            ``"intercept"``, the numeric columns, ``"column=level"`` for each indicator and
            ``"relu_j"`` for each random feature.

        Examples
        --------
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [1.0, 3.0]})
        >>> FeatureMap(["x"], random_features=2).fit(frame).get_feature_names_out().tolist()
        ['intercept', 'x', 'relu_0', 'relu_1']
        """
        check_is_fitted(self, "n_features_")
        if input_features is not None:
            given = [str(c) for c in np.asarray(input_features, dtype=object).ravel()]
            if given != [str(c) for c in self.feature_names_in_]:
                raise ValueError(
                    f"input_features {given} differ from the columns seen by fit "
                    f"{list(self.feature_names_in_)}"
                )
        return np.asarray(self.feature_names_, dtype=object)
