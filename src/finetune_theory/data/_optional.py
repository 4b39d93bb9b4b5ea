"""Import of optional dependencies: the data loaders' name for :mod:`finetune_theory._optional`.

>>> require("numpy").__name__
'numpy'
"""

from __future__ import annotations

from .._optional import MissingExtraError, require

__all__ = ["MissingExtraError", "require"]
