"""Every error and warning class of the package, in one hierarchy.

* :class:`TrainingError` -- a gradient-descent run that did not reach its goal, with two cases
  shared by the three architectures: :class:`DivergenceError` (the loss blew up: the step is
  too large) and :class:`ConvergenceError` (the step budget ran out first).
* :class:`UnreachableRiskError` -- a requested risk that no sample size within the limit
  reaches (a :class:`ValueError`: the request itself is impossible).
* Bad arguments are plain :class:`ValueError` (and :class:`TypeError`) naming the argument.

>>> from finetune_theory.exceptions import ConvergenceError, TrainingError
>>> issubclass(ConvergenceError, TrainingError) and issubclass(TrainingError, RuntimeError)
True
"""

from __future__ import annotations

__all__ = ["TrainingError", "DivergenceError", "ConvergenceError", "UnreachableRiskError"]


class TrainingError(RuntimeError):
    """A gradient-descent run that did not reach its goal."""


class DivergenceError(TrainingError):
    """The training loss became non-finite or grew without bound: lower the step ``lr``."""


class ConvergenceError(TrainingError):
    """The run stopped at ``max_steps`` before meeting ``tol``: raise it or the step."""


class UnreachableRiskError(ValueError):
    """The requested risk cannot be reached within the allowed sample sizes."""
