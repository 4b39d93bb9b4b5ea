"""finetune-theory: fine-tuning with linear teachers, as working and tested software.

Architectures side by side: :mod:`finetune_theory.linear`, :mod:`finetune_theory.deep_linear`,
:mod:`finetune_theory.relu`. Shared pieces: :mod:`~finetune_theory.covariance`,
:mod:`~finetune_theory.teachers`, :mod:`~finetune_theory.asymptotics`. For practitioners:
:class:`FineTunedRegressor` and :func:`advise`. Submodules load on first use.

The architectures speak one vocabulary, enforced by ``tests/test_api_consistency.py``:
``finetune`` is the limit of fine-tuning (a closed form; for the lazy ReLU network the kernel
predictor), ``train(X, y, start, *, lr=None, max_steps, tol, strict)`` a real gradient-descent
run returning the shared :class:`TrainResult` with the same defaults everywhere (see
``finetune_theory._training``), ``default_lr(X, y, start, *, fraction)`` its default step,
``pretrain`` a :class:`PretrainResult`; risks take ``(cov, theta_source, theta_target, n, ...)``
(``expected_risk``, ``simulate_risk``, ``sample_complexity``; for ReLU ``risk_bound`` and
``sample_complexity``, the theory being a bound), a scalar ``n`` giving a scalar and an array
an array. Batches are leading axes, seeds keyword-only, and failures raise the classes of
:mod:`~finetune_theory.exceptions`.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "linear",
    "deep_linear",
    "relu",
    "covariance",
    "teachers",
    "asymptotics",
    "data",
    "estimator",
    "advisor",
    "exceptions",
    "curves",
    "networks",
}
_NAMES = {
    "FineTunedRegressor": "estimator",
    "advise": "advisor",
    "TrainResult": "_training",
    "PretrainResult": "_training",
}

#: the lab wing (experiments, their runner and the command line) is built on the library and
#: not offered by it: import it by name (``from finetune_theory import experiments``)
_LAB = {"experiments"}

__all__ = sorted(_SUBMODULES | set(_NAMES) | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAB:
        # ``from finetune_theory import experiments`` asks through the import system's
        # _handle_fromlist, which then imports the subpackage: only plain attribute access of a
        # package that did not import it is deprecated
        if sys._getframe(1).f_code.co_name != "_handle_fromlist":
            warnings.warn(
                f"finetune_theory.{name} as a lazy attribute is deprecated: the lab wing is not "
                f"part of the library; import it (from finetune_theory import {name})",
                DeprecationWarning,
                stacklevel=2,
            )
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'finetune_theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
