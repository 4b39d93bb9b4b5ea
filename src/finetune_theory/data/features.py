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


class FeatureMap:
    """Standardised numerics, one-hot categoricals, an intercept and random ReLU features.

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
    seed : int or SeedSequence
        Seed of the random features (the same seed gives the same map).

    Attributes (after :meth:`fit`)
    ------------------------------
    mean_, scale_ : ndarray, shape (len(numeric),)
    levels_ : dict of str -> tuple of str
    weights_ : ndarray, shape (p, random_features)
    feature_names_ : list of str
    n_features_ : int
        The output dimension ``d``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "kind": ["a", "b", "a"]})
    >>> FeatureMap(["size"], ["kind"]).fit(frame).transform(frame).shape
    (3, 4)
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
        self.numeric = _names(numeric, "numeric")
        self.categorical = _names(categorical, "categorical")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        if not self.numeric and not self.categorical:
            raise ValueError("give at least one numeric or categorical column")
        self.random_features = (
            0 if random_features == 0 else check_positive_int(random_features, "random_features")
        )
        self.intercept = bool(intercept)
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"FeatureMap(numeric={list(self.numeric)}, categorical={list(self.categorical)}, "
            f"random_features={self.random_features}, intercept={self.intercept})"
        )

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame) -> FeatureMap:
        """Learn the standardisation, the levels and draw the random features."""
        check_frame(frame, self.numeric, self.categorical)
        num = frame[list(self.numeric)].to_numpy(dtype=np.float64)
        self.mean_ = num.mean(axis=0) if num.size else np.zeros(0)
        std = num.std(axis=0) if num.size else np.zeros(0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.levels_ = {c: tuple(sorted(frame[c].astype(str).unique())) for c in self.categorical}
        p = len(self.numeric) + sum(len(v) for v in self.levels_.values())
        rng = as_generator(self.seed)
        self.weights_ = rng.standard_normal((p, self.random_features)) / np.sqrt(max(p, 1))
        names = ["intercept"] if self.intercept else []
        names += list(self.numeric)
        names += [f"{c}={lv}" for c in self.categorical for lv in self.levels_[c]]
        names += [f"relu_{j}" for j in range(self.random_features)]
        self.feature_names_ = names
        self.n_features_ = len(names)
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix, shape ``(len(frame), n_features_)``, float64."""
        if not hasattr(self, "n_features_"):
            raise ValueError("this FeatureMap is not fitted yet; call fit(frame) first")
        check_frame(frame, self.numeric, self.categorical)
        num = (frame[list(self.numeric)].to_numpy(dtype=np.float64) - self.mean_) / self.scale_
        blocks = [num]
        for c in self.categorical:
            values = frame[c].astype(str).to_numpy()
            blocks.append((values[:, None] == np.asarray(self.levels_[c])[None, :]).astype(float))
        z = np.concatenate(blocks, axis=1)
        parts = [np.ones((len(frame), 1))] if self.intercept else []
        parts.append(z)
        if self.random_features:
            parts.append(np.maximum(z @ self.weights_, 0.0))
        return np.concatenate(parts, axis=1)

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same frame."""
        return self.fit(frame).transform(frame)
