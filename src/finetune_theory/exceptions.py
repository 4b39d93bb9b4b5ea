"""Every error and warning class of the package, in one hierarchy.

* :class:`TrainingError` -- a gradient-descent run that did not reach its goal, with two cases
  shared by the three architectures: :class:`DivergenceError` (the loss blew up: the step is
  too large) and :class:`ConvergenceError` (the step budget ran out first).
* :class:`UnreachableRiskError` -- a requested risk that no sample size within the limit
  reaches (a :class:`ValueError`: the request itself is impossible).
* Bad arguments are a :class:`ValueError` naming the argument; an argument of the wrong type
  (text where numbers are expected, an object that is not the architecture's parameters) is
  an :class:`InputTypeError`, which is a :class:`TypeError` and, so that code catching the
  ``ValueError`` of every bad argument keeps working, also a :class:`ValueError`.
* :class:`MissingExtraError` -- an optional package (an extra such as ``torch`` or ``data``)
  is not installed; the message names the ``pip install`` line (an :class:`ImportError`).
* :class:`RunnerError` -- a run that cannot go on (a missing optional package, a broken worker
  pool, an unusable store); the runner's own faults (``finetune_theory.runner.errors``) are
  its subclasses.

>>> from finetune_theory.exceptions import ConvergenceError, TrainingError
>>> issubclass(ConvergenceError, TrainingError) and issubclass(TrainingError, RuntimeError)
True
"""

from __future__ import annotations

__all__ = [
    "TrainingError",
    "DivergenceError",
    "ConvergenceError",
    "UnreachableRiskError",
    "InputTypeError",
    "MissingExtraError",
    "RunnerError",
]


class TrainingError(RuntimeError):
    """A gradient-descent run that did not reach its goal.

    Examples
    --------
    >>> issubclass(DivergenceError, TrainingError), issubclass(ConvergenceError, TrainingError)
    (True, True)
    """


class DivergenceError(TrainingError):
    """The training loss became non-finite or grew without bound: lower the step ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import linear
    >>> try:
    ...     linear.train(np.eye(2), np.ones(2), np.zeros(2), lr=10.0)  # residual x (-4) a step
    ... except DivergenceError as err:
    ...     print(str(err).split(" (")[0])  # 16^k exceeds 1e10 at k = 9
    gradient descent diverged at step 9
    """


class ConvergenceError(TrainingError):
    """The run stopped at ``max_steps`` before meeting ``tol``: raise it or the step.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import linear
    >>> try:
    ...     linear.train(np.eye(2), np.ones(2), np.zeros(2), lr=0.01, max_steps=3)
    ... except ConvergenceError as err:
    ...     print(str(err).split(" (")[0])
    1 of 1 problem(s) did not converge in 3 steps
    """


class UnreachableRiskError(ValueError):
    """The requested risk cannot be reached within the allowed sample sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from finetune_theory import covariance, linear
    >>> try:
    ...     linear.sample_complexity(covariance.isotropic(4), np.zeros(4), np.ones(4), 0.1, n_max=2)
    ... except UnreachableRiskError as err:
    ...     print(str(err).split(":")[0])
    no n <= n_max = 2 reaches risk eps = 0.1
    """


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError`` that is also a ``ValueError``.

    Examples
    --------
    >>> from finetune_theory import linear
    >>> try:
    ...     linear.default_lr("many rows")
    ... except TypeError as err:
    ...     print(type(err).__name__, isinstance(err, ValueError))
    InputTypeError True
    """


class MissingExtraError(ImportError):
    """An optional package is missing; the message says which extra installs it.

    Examples
    --------
    >>> from finetune_theory._optional import require
    >>> try:
    ...     require("no_such_package", "data")
    ... except MissingExtraError as exc:
    ...     print(str(exc).split("; ")[1])
    install the 'data' extra: pip install 'finetune-theory[data]'
    """


class RunnerError(RuntimeError):
    """A run cannot go on (bad scheduler, missing extra, broken worker pool, ...).

    Library messages say what happened and name no command-line option; where a remedy involves
    one, the error carries a ``hint`` and the command line words it with its options.

    Parameters
    ----------
    message
        One line.
    hint
        A key of ``finetune_theory.runner.errors.HINTS``: which remedy the command line should
        add, if any.

    Examples
    --------
    >>> err = RunnerError("the Dask scheduler is gone", hint="scheduler")
    >>> str(err), err.hint, isinstance(err, RuntimeError)
    ('the Dask scheduler is gone', 'scheduler', True)
    """

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
