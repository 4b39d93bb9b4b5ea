"""finetune-theory: fine-tuning with linear teachers, as working and tested software.

Architectures side by side: :mod:`finetune_theory.linear`, :mod:`finetune_theory.deep_linear`,
:mod:`finetune_theory.relu`. Shared pieces: :mod:`~finetune_theory.covariance`,
:mod:`~finetune_theory.teachers`, :mod:`~finetune_theory.asymptotics`. For practitioners:
:class:`FineTunedRegressor` and :func:`advise`. Submodules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "linear",
    "deep_linear",
    "relu",
    "covariance",
    "teachers",
    "asymptotics",
    "experiments",
    "data",
    "estimator",
    "advisor",
}
_NAMES = {"FineTunedRegressor": "estimator", "advise": "advisor"}

__all__ = sorted(_SUBMODULES | set(_NAMES) | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'finetune_theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
