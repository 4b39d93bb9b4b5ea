"""Running experiments reproducibly: sweeps, executors, the results store and the report.

- :mod:`~finetune_theory.runner.store`: the SQLite store of finished units (resume, fresh);
- :mod:`~finetune_theory.runner.executors`: in-process, local processes, Dask;
- :mod:`~finetune_theory.runner.sweep`: one experiment's units through an executor, with seeds
  derived from the root seed by unit index;
- :mod:`~finetune_theory.runner.fingerprint`: which code computed a unit;
- :mod:`~finetune_theory.runner.reproduction`: records, figures and verdicts of many experiments;
- :mod:`~finetune_theory.runner.report`: the self-contained HTML report;
- :mod:`~finetune_theory.runner.catalog`: the experiment list for the ``list`` command.

The command line (:mod:`finetune_theory.cli`) only parses arguments and calls these. The names
below load their module on first use, so importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "SIZES": "reproduction",
    "reproduce": "reproduction",
    "ResultStore": "store",
    "StoreError": "errors",
    "RunnerError": "errors",
    "UnitFailed": "errors",
    "make_executor": "executors",
    "MAX_WORKERS": "_base",
    "run_sweep": "sweep",
    "unit_seed": "sweep",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
