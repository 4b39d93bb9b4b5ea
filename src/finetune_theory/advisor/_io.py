"""Input handling of the advisor: data tables, labels and source models, with clear errors.

Private to :mod:`finetune_theory.advisor`. Every problem with the user's input becomes one
``ValueError`` naming the argument, the column or the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Source",
    "as_inputs",
    "as_labels",
    "load_sources",
]

#: values above this overflow float64 when squared and summed: refused by column
_HUGE = 1e150
_INTERCEPT_KEYS = ("intercept", "(intercept)", "_intercept", "bias", "const")


@dataclass(frozen=True)
class Source:
    """A source model: a name, one coefficient per feature, and an intercept."""

    name: str
    coef: np.ndarray
    intercept: float


# ----------------------------------------------------------------------------- inputs
def as_inputs(
    X: Any, name: str, feature_names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """A finite float64 ``(n, d)`` array and the column names (when ``X`` has them).

    A pandas DataFrame is checked column by column, so that a non-numeric column or a missing
    value is reported by its column name.
    """
    names: list[str] | None = None
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        names = [str(c) for c in X.columns]
        for col, dtype in zip(names, X.dtypes, strict=True):
            if dtype.kind not in "biuf":
                raise ValueError(
                    f"{name} column {col!r} is not numeric (dtype {dtype}); encode or drop it"
                )
        arr = X.to_numpy(dtype=np.float64)
    else:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table (samples x features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    label = names if names is not None else feature_names
    bad = ~np.isfinite(arr)
    if np.any(bad):
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        col = repr(label[j]) if label is not None else str(j)
        raise ValueError(
            f"{name} column {col} has {int(bad[:, j].sum())} missing or non-finite value(s)"
        )
    huge = np.abs(arr) > _HUGE
    if np.any(huge):
        j = int(np.flatnonzero(huge.any(axis=0))[0])
        col = repr(label[j]) if label is not None else str(j)
        raise ValueError(
            f"{name} column {col} holds a value of magnitude {float(np.abs(arr[:, j]).max()):.3g}"
            ": too large to square in float64; rescale the column or check it for an entry error"
        )
    if feature_names is not None and names is not None and list(feature_names) != names:
        raise ValueError(
            f"{name} has columns {names} but the labelled inputs have {list(feature_names)}"
        )
    return arr, names


def as_labels(y: Any, n: int, name: str = "y") -> np.ndarray:
    """A finite float64 vector of length ``n``."""
    if hasattr(y, "to_numpy"):
        if getattr(y, "dtype", None) is not None and y.dtype.kind not in "biuf":
            raise ValueError(f"{name} is not numeric (dtype {y.dtype})")
        y = y.to_numpy()
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric ({exc})") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a vector of labels, got shape {arr.shape}")
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} labels but X has {n} rows")
    bad = ~np.isfinite(arr)
    if np.any(bad):
        raise ValueError(f"{name} has {int(bad.sum())} missing or non-finite value(s)")
    if np.any(np.abs(arr) > _HUGE):
        raise ValueError(
            f"{name} holds a value of magnitude {float(np.abs(arr).max()):.3g}: too large to "
            "square in float64; rescale the labels or check them for an entry error"
        )
    return arr


# ---------------------------------------------------------------------------- sources
def _finite(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {out}")
    return out


def _vector(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric ({exc})") from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a vector of coefficients, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has missing or non-finite coefficients")
    return arr


def _from_mapping(
    mapping: Mapping[str, Any], what: str, feature_names: Sequence[str] | None
) -> tuple[np.ndarray, float]:
    """Coefficients given by feature name (plus an optional intercept entry)."""
    values = {str(k): v for k, v in mapping.items()}
    intercept = 0.0
    for key in list(values):
        if key.lower() in _INTERCEPT_KEYS:
            intercept = _finite(values.pop(key), f"{what} intercept")
    if feature_names is None:
        raise ValueError(
            f"{what} gives coefficients by name ({sorted(values)[:3]}...) but the inputs have no "
            "column names; pass X as a DataFrame or give the coefficients as a list"
        )
    missing = [f for f in feature_names if f not in values]
    extra = [k for k in values if k not in set(feature_names)]
    if missing or extra:
        raise ValueError(
            f"{what} does not match the input columns: missing {missing[:5]}, unknown {extra[:5]}"
        )
    return np.array([_finite(values[f], f"{what} coefficient {f!r}") for f in feature_names]), (
        intercept
    )


def _from_json(path: Path, feature_names: Sequence[str] | None) -> tuple[np.ndarray, float]:
    what = f"source file {path.name!r}"
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if isinstance(payload, list):
        raise ValueError(
            f'{what} holds a bare list of coefficients; write it as {{"coef": [...], '
            '"intercept": value}} (0 if the model has no intercept)'
        )
    if not isinstance(payload, dict):
        raise ValueError(
            f"{what} must hold an object with the keys 'coef' (a list, or a mapping feature "
            "name -> coefficient) and 'intercept' (a number), or a list of coefficients"
        )
    if "coef" not in payload and feature_names is not None:
        if not any(str(k) in set(feature_names) for k in payload):
            raise ValueError(
                f"{what} has the keys {sorted(map(str, payload))[:5]}; expected the keys "
                "'coef' (a list, or a mapping feature name -> coefficient) and 'intercept'"
            )
    keys = {str(k).lower() for k in payload}
    if not keys & set(_INTERCEPT_KEYS):
        raise ValueError(
            f"{what} has no 'intercept'; add \"intercept\": value (0 if the model has none): "
            "a missing intercept would silently be taken as 0"
        )
    if "coef" in payload:
        intercept = _finite(payload.get("intercept", 0.0), f"{what} intercept")
        coef = payload["coef"]
        if isinstance(coef, dict):
            vec, _ = _from_mapping(coef, what, feature_names)
            return vec, intercept
        return _vector(coef, what), intercept
    return _from_mapping(payload, what, feature_names)


def _from_csv(path: Path, feature_names: Sequence[str] | None) -> tuple[np.ndarray, float]:
    import pandas as pd

    what = f"source file {path.name!r}"
    try:
        table = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{what} could not be read as CSV ({exc})") from None
    if table.shape[1] == 2 and table.shape[0] >= 1 and table.iloc[:, 0].dtype.kind == "O":
        # two columns: feature name, coefficient
        mapping = dict(zip(table.iloc[:, 0].astype(str), table.iloc[:, 1], strict=True))
        return _from_mapping(mapping, what, feature_names)
    if table.shape[0] == 1:
        row = table.iloc[0]
        try:
            [float(c) for c in table.columns]
            numeric_header = True
        except ValueError:
            numeric_header = False
        if numeric_header:  # no header: the coefficients themselves were read as one
            values = [float(c) for c in table.columns] + list(row)
            return _vector(values, what), 0.0
        return _from_mapping(dict(row), what, feature_names)
    if table.shape[1] == 1:
        col = str(table.columns[0])
        try:
            head = [float(col)]
        except ValueError:
            head = []
        return _vector(head + list(table.iloc[:, 0]), what), 0.0
    raise ValueError(
        f"{what}: expected one row with a header of feature names, one column of coefficients, "
        f"or two columns (feature, coefficient); got shape {table.shape}"
    )


def _one_source(
    obj: Any, index: int, name: str | None, feature_names: Sequence[str] | None
) -> Source:
    if isinstance(obj, Source):
        return Source(name or obj.name, obj.coef, obj.intercept)
    if isinstance(obj, str | Path):
        path = Path(obj)
        if path.is_dir():
            raise ValueError(f"source file {str(path)!r} is a directory; give a .json or .csv file")
        if not path.is_file():
            raise ValueError(f"source file {str(path)!r} does not exist")
        suffix = path.suffix.lower()
        if suffix == ".json":
            coef, intercept = _from_json(path, feature_names)
        elif suffix in (".csv", ".txt"):
            coef, intercept = _from_csv(path, feature_names)
        else:
            raise ValueError(f"source file {path.name!r}: use a .json or .csv file")
        return Source(name or path.stem, coef, intercept)
    if hasattr(obj, "coef_"):
        what = f"source {name or index} ({type(obj).__name__})"
        coef = _vector(np.asarray(obj.coef_), f"{what} coef_")
        icpts = np.ravel(np.asarray(getattr(obj, "intercept_", 0.0), dtype=np.float64))
        if icpts.size != 1:
            raise ValueError(f"{what} must have a single output (intercept_ has {icpts.size})")
        return Source(name or f"{type(obj).__name__}_{index + 1}", coef, float(icpts[0]))
    if isinstance(obj, Mapping):
        what = f"source {name or index + 1}"
        if "coef" in obj:
            coef = obj["coef"]
            intercept = _finite(obj.get("intercept", 0.0), f"{what} intercept")
            if isinstance(coef, Mapping):
                vec, _ = _from_mapping(coef, what, feature_names)
            else:
                vec = _vector(coef, what)
            return Source(name or str(obj.get("name", f"source_{index + 1}")), vec, intercept)
        vec, intercept = _from_mapping(obj, what, feature_names)
        return Source(name or f"source_{index + 1}", vec, intercept)
    label = name or f"source_{index + 1}"
    return Source(label, _vector(obj, f"source {label!r}"), 0.0)


def _is_single(sources: Any) -> bool:
    if isinstance(sources, str | Path | Source) or hasattr(sources, "coef_"):
        return True
    if isinstance(sources, Mapping):
        return "coef" in sources
    try:
        arr = np.asarray(sources, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 1


def load_sources(
    sources: Any, d: int, feature_names: Sequence[str] | None, names: Sequence[str] | None = None
) -> list[Source]:
    """Normalise the ``sources`` argument of :func:`~finetune_theory.advisor.advise`.

    Accepts one source or a list/tuple (or a dict name -> source) of them; a source is a
    coefficient vector, a fitted linear scikit-learn model (``coef_``, ``intercept_``), a
    ``{"coef": ..., "intercept": ...}`` mapping, a mapping feature name -> coefficient, or the
    path of a JSON or CSV file holding one of those.
    """
    if sources is None:
        return []
    given: list[str | None]
    if isinstance(sources, Mapping) and not _is_single(sources):
        keys = list(sources)
        items = [sources[k] for k in keys]
        given = [str(k) for k in keys]
    elif _is_single(sources):
        items, given = [sources], [None]
    elif isinstance(sources, np.ndarray) and sources.ndim == 2:
        items, given = list(sources), [None] * sources.shape[0]
    else:
        try:
            items = list(sources)
        except TypeError:
            raise ValueError(
                f"sources must be a coefficient vector, a fitted linear model, a file path or a "
                f"list of those; got {type(sources).__name__}"
            ) from None
        given = [None] * len(items)
    if names is not None:
        if len(names) != len(items):
            raise ValueError(f"names has {len(names)} entries but there are {len(items)} sources")
        given = [str(n) for n in names]
    out = []
    for i, (obj, nm) in enumerate(zip(items, given, strict=True)):
        src = _one_source(obj, i, nm, feature_names)
        if src.coef.size != d:
            raise ValueError(
                f"source {src.name!r} has {src.coef.size} coefficients but the data has {d} "
                "feature columns"
            )
        out.append(src)
    seen: set[str] = set()
    for src in out:
        if src.name in seen:
            raise ValueError(f"two sources are named {src.name!r}; give distinct names")
        seen.add(src.name)
    if "scratch" in seen:
        raise ValueError("the name 'scratch' is reserved for training from scratch")
    return out
