"""The package's error classes: one hierarchy in ``finetune_theory.exceptions``.

Every error class that a library module offers is defined there (or derives from one defined
there), the lab's runner errors derive from its ``RunnerError``, and the classes keep their
``hint`` across processes (a worker's error is pickled to the parent).
"""

from __future__ import annotations

import importlib
import inspect
import pickle

import pytest

from finetune_theory import exceptions

#: the library's public modules (the lab wing, experiments/runner/cli, has its own errors)
LIBRARY = [
    "finetune_theory.linear",
    "finetune_theory.deep_linear",
    "finetune_theory.relu",
    "finetune_theory.covariance",
    "finetune_theory.teachers",
    "finetune_theory.asymptotics",
    "finetune_theory.curves",
    "finetune_theory.estimator",
    "finetune_theory.advisor",
    "finetune_theory.data",
]


def test_the_hierarchy():
    e = exceptions
    assert issubclass(e.DivergenceError, e.TrainingError)
    assert issubclass(e.ConvergenceError, e.TrainingError)
    assert issubclass(e.TrainingError, RuntimeError)
    assert not issubclass(e.DivergenceError, e.ConvergenceError)
    assert issubclass(e.UnreachableRiskError, ValueError)
    assert issubclass(e.InputTypeError, TypeError) and issubclass(e.InputTypeError, ValueError)
    assert issubclass(e.MissingExtraError, ImportError)
    assert issubclass(e.RunnerError, RuntimeError)


def test_all_lists_exactly_the_classes_defined_here():
    defined = {
        name
        for name, obj in vars(exceptions).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == exceptions.__name__
    }
    assert set(exceptions.__all__) == defined


@pytest.mark.parametrize("module", LIBRARY)
def test_library_modules_offer_only_the_shared_error_classes(module):
    mod = importlib.import_module(module)
    found = 0
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            found += 1
            assert obj.__module__ == exceptions.__name__, f"{module}.{name} defined elsewhere"
    if module.rsplit(".", 1)[1] in ("linear", "deep_linear", "relu"):
        assert found >= 2  # the architectures re-export the training errors


def test_the_runner_and_data_names_are_the_same_classes():
    from finetune_theory import runner
    from finetune_theory.data import _optional
    from finetune_theory.runner import errors

    assert runner.RunnerError is errors.RunnerError is exceptions.RunnerError
    assert _optional.MissingExtraError is exceptions.MissingExtraError
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj) and name != "UnitFailed":
            assert issubclass(obj, exceptions.RunnerError), name


@pytest.mark.parametrize("hint", [None, "scheduler"])
def test_a_runner_error_keeps_its_message_and_hint_through_pickle(hint):
    from finetune_theory.runner.errors import StoreError

    for cls in (exceptions.RunnerError, StoreError):
        back = pickle.loads(pickle.dumps(cls("the store is locked", hint=hint)))
        assert type(back) is cls and str(back) == "the store is locked" and back.hint == hint


def test_input_type_errors_are_caught_by_either_handler():
    from finetune_theory import linear

    for handler in (TypeError, ValueError):
        with pytest.raises(handler, match="X"):
            linear.default_lr("rows")
