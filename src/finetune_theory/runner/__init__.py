"""Running experiments reproducibly: sweeps, executors, the results store and the report.

- :mod:`~finetune_theory.runner.store`: the SQLite store of finished units (resume, fresh);
- :mod:`~finetune_theory.runner.executors`: in-process, local processes, Dask;
- :mod:`~finetune_theory.runner.sweep`: one experiment's units through an executor, with seeds
  derived from the root seed by unit index;
- :mod:`~finetune_theory.runner.reproduction`: records, figures and verdicts of many experiments;
- :mod:`~finetune_theory.runner.report`: the self-contained HTML report;
- :mod:`~finetune_theory.runner.catalog`: the experiment list for the ``list`` command.

The command line (:mod:`finetune_theory.cli`) only parses arguments and calls these.
"""

from __future__ import annotations

from .errors import RunnerError, UnitFailed
from .executors import make_executor
from .reproduction import SIZES, reproduce
from .store import ResultStore, StoreError
from .sweep import run_sweep, unit_seed

__all__ = [
    "SIZES",
    "ResultStore",
    "RunnerError",
    "StoreError",
    "UnitFailed",
    "make_executor",
    "reproduce",
    "run_sweep",
    "unit_seed",
]
