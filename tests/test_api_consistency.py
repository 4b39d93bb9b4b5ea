"""One API across the three architectures, enforced: signatures, result types and errors.

``linear``, ``deep_linear`` and ``relu`` offer the same verbs where the theory has them. These
tests read the signatures with ``inspect.signature`` and fail when a shared verb drifts (a
renamed parameter, a positional option, a different default), and they feed the same bad
input to each architecture and require the same exception class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from finetune_theory import _training, covariance, deep_linear, exceptions, linear, relu, teachers

P = inspect.Parameter
ARCHS: dict[str, ModuleType] = {"linear": linear, "deep_linear": deep_linear, "relu": relu}
#: options an architecture may add to a shared verb (keyword-only), beyond the shared ones
EXTRA = {
    "train": {"deep_linear": {"frozen"}},
    "default_lr": {"deep_linear": {"frozen"}},
}
#: the verbs each architecture offers; relu states its theory as a bound, not an expectation
VERBS = {
    "linear": {
        "finetune",
        "train",
        "default_lr",
        "expected_risk",
        "simulate_risk",
        "sample_complexity",
    },
    "deep_linear": {
        "finetune",
        "train",
        "default_lr",
        "pretrain",
        "expected_risk",
        "simulate_risk",
        "sample_complexity",
    },
    "relu": {"finetune", "train", "default_lr", "pretrain", "risk_bound", "sample_complexity"},
}


def _sig(func: Callable[..., Any]) -> dict[str, P]:
    return dict(inspect.signature(func).parameters)


def _describe(params: dict[str, P], names: tuple[str, ...]) -> list[tuple[str, Any, Any]]:
    return [(n, params[n].kind, params[n].default) for n in names]


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_offers_its_verbs(arch):
    missing = {v for v in VERBS[arch] if not callable(getattr(ARCHS[arch], v, None))}
    assert not missing, f"{arch} lacks {sorted(missing)}"
    assert VERBS[arch] <= set(ARCHS[arch].__all__)


def test_train_signatures_agree():
    shared = ("X", "y", "start", "lr", "max_steps", "tol", "strict")
    expected = [
        ("X", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("y", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("start", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("lr", P.KEYWORD_ONLY, None),
        ("max_steps", P.KEYWORD_ONLY, _training.DEFAULT_MAX_STEPS),
        ("tol", P.KEYWORD_ONLY, _training.DEFAULT_TOL),
        ("strict", P.KEYWORD_ONLY, True),
    ]
    for arch, mod in ARCHS.items():
        params = _sig(mod.train)
        assert list(params)[:3] == ["X", "y", "start"], arch
        assert _describe(params, shared) == expected, arch
        extra = set(params) - set(shared)
        assert extra == EXTRA["train"].get(arch, set()), arch
        assert all(params[e].kind is P.KEYWORD_ONLY for e in extra), arch


def test_default_lr_signatures_agree():
    # default_lr takes what train takes (X, y, start) and a keyword-only fraction of the
    # inverse curvature; each architecture documents its default fraction
    for arch, mod in ARCHS.items():
        params = _sig(mod.default_lr)
        assert _describe(params, ("X", "y", "start")) == [
            ("X", P.POSITIONAL_OR_KEYWORD, P.empty),
            ("y", P.POSITIONAL_OR_KEYWORD, None),
            ("start", P.POSITIONAL_OR_KEYWORD, None),
        ], arch
        frac = params["fraction"]
        assert frac.kind is P.KEYWORD_ONLY and 0 < frac.default < 2, arch
        assert frac.default == getattr(mod, "DEFAULT_LR_FRACTION", 1.0), arch
        extra = set(params) - {"X", "y", "start", "fraction"}
        assert extra == EXTRA["default_lr"].get(arch, set()), arch


def test_pretrain_shares_its_options_and_its_result_type():
    for arch in ("deep_linear", "relu"):
        params = _sig(ARCHS[arch].pretrain)
        first = next(iter(params.values()))
        assert first.name == "theta_source" and first.kind is P.POSITIONAL_OR_KEYWORD, arch
        for name in ("n_source", "width", "seed", "max_steps", "tol"):
            assert params[name].kind is P.KEYWORD_ONLY, (arch, name)
        assert params["seed"].default == 0, arch
        assert ARCHS[arch].PretrainResult is _training.PretrainResult
    ts = np.array([1.0, 0.0, 0.0])
    pre_relu = relu.pretrain(ts, width=20, n_source=6, seed=0)
    pre_deep = deep_linear.pretrain(ts, np.eye(3), n_source=6, depth=2, width=3, seed=0)
    for pre in (pre_relu, pre_deep):
        assert type(pre) is _training.PretrainResult
        assert type(pre.training) is _training.TrainResult
    # the pretrained weights are the start of train in each
    assert relu.train(relu.sample_sphere(3, 3, seed=1), np.zeros(3), pre_relu.weights).converged
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert deep_linear.train(x, x[:, 0], pre_deep.weights).converged


def test_finetune_and_risk_verbs_share_their_leading_arguments():
    for arch, mod in ARCHS.items():
        assert list(_sig(mod.finetune))[:2] == ["X", "y"], arch
    risk_head = ["cov", "theta_source", "theta_target", "n"]
    for mod in (linear, deep_linear):
        for verb in ("expected_risk", "simulate_risk"):
            params = _sig(getattr(mod, verb))
            assert list(params)[:4] == risk_head, (mod.__name__, verb)
            assert _describe(params, ("noise",)) == [("noise", P.KEYWORD_ONLY, 0.0)]
        sim = _sig(mod.simulate_risk)
        assert _describe(sim, ("repeats", "seed")) == _describe(
            _sig(linear.simulate_risk), ("repeats", "seed")
        )
        sc = _sig(mod.sample_complexity)
        assert list(sc)[:4] == ["cov", "theta_source", "theta_target", "eps"]
        assert _describe(sc, ("noise", "n_max")) == [
            ("noise", P.KEYWORD_ONLY, 0.0),
            ("n_max", P.KEYWORD_ONLY, None),
        ]
    # the ReLU risk statement takes the teachers the same way, without a covariance
    assert list(_sig(relu.risk_bound))[:3] == ["theta_source", "theta_target", "n"]
    assert list(_sig(relu.sample_complexity))[:3] == ["theta_source", "theta_target", "eps"]


def _public_callables():
    for mod in (linear, deep_linear, relu, covariance, teachers):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if inspect.isfunction(meth) and not meth_name.startswith("_"):
                        yield f"{mod.__name__}.{name}.{meth_name}", meth
            elif callable(obj):
                yield f"{mod.__name__}.{name}", obj


def test_seeds_are_keyword_only_everywhere():
    found = 0
    for label, func in _public_callables():
        params = _sig(func)
        if "seed" in params:
            found += 1
            assert params["seed"].kind is P.KEYWORD_ONLY, label
    assert found >= 10  # the test saw the seeded functions


@pytest.mark.parametrize(
    ("arch", "old"), [("linear", "theta_source"), ("deep_linear", "weights"), ("relu", "network")]
)
def test_the_former_name_of_start_still_works_with_a_warning(arch, old):
    x, y, start = _problem(arch)
    new = ARCHS[arch].train(x, y, start, max_steps=3, strict=False)
    with pytest.warns(DeprecationWarning, match="now start"):
        former = ARCHS[arch].train(x, y, **{old: start}, max_steps=3, strict=False)
    np.testing.assert_array_equal(former.loss, new.loss)


def test_a_seed_by_position_still_works_with_a_warning():
    with pytest.warns(DeprecationWarning, match="seed by keyword"):
        old = relu.sample_sphere(4, 3, 7)
    np.testing.assert_array_equal(old, relu.sample_sphere(4, 3, seed=7))
    with pytest.warns(DeprecationWarning, match="seed by keyword"):
        old = covariance.isotropic(3).sample(2, 5)
    np.testing.assert_array_equal(old, covariance.isotropic(3).sample(2, seed=5))


# ------------------------------------------------------------------ errors
def _problem(arch: str):
    """A small problem each architecture can train on, with its own start."""
    x = relu.sample_sphere(4, 3, seed=0)
    y = x[:, 0]
    start = {
        "linear": np.zeros(3),
        "deep_linear": deep_linear.balanced_init(np.ones(3), 2, 3),
        "relu": relu.init_network(40, 3, seed=1),
    }[arch]
    return x, y, start


BAD_TRAIN = {
    "start of the wrong type": (lambda x, y, s: ("start", "a string"), TypeError),
    "start None": (lambda x, y, s: ("start", None), TypeError),
    "lr of the wrong type": (lambda x, y, s: ("lr", "fast"), TypeError),
    "negative lr": (lambda x, y, s: ("lr", -1.0), ValueError),
    "zero max_steps": (lambda x, y, s: ("max_steps", 0), ValueError),
    "max_steps of the wrong type": (lambda x, y, s: ("max_steps", "many"), TypeError),
    "zero tol": (lambda x, y, s: ("tol", 0.0), ValueError),
    "labels of another length": (lambda x, y, s: ("y", y[:2]), ValueError),
    "text labels": (lambda x, y, s: ("y", "labels"), TypeError),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", BAD_TRAIN)
def test_the_same_bad_input_raises_the_same_error_class(arch, case):
    x, y, start = _problem(arch)
    make, error = BAD_TRAIN[case]
    key, value = make(x, y, start)
    args = {"X": x, "y": y, "start": start}
    kwargs: dict[str, Any] = {}
    if key in args:
        args[key] = value
    else:
        kwargs[key] = value
    with pytest.raises(error, match=key):
        ARCHS[arch].train(args["X"], args["y"], args["start"], **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_failures_are_the_shared_classes(arch):
    x, y, start = _problem(arch)
    with pytest.raises(exceptions.ConvergenceError):
        ARCHS[arch].train(x, y, start, max_steps=2)
    with pytest.raises(exceptions.DivergenceError):
        ARCHS[arch].train(x, y, start, lr=1e6)
    assert ARCHS[arch].ConvergenceError is exceptions.ConvergenceError


def test_an_unreachable_risk_is_the_same_error_in_every_architecture():
    cov, ts, tt = covariance.isotropic(10), np.full(10, 0.1), np.ones(10)
    calls = {
        "linear": lambda: linear.sample_complexity(cov, ts, tt, 1.0, n_max=3),
        "deep_linear": lambda: deep_linear.sample_complexity(cov, ts, tt, 1.0, 2, n_max=3),
        "relu": lambda: relu.sample_complexity(ts, tt, 1e-9),
    }
    for arch, call in calls.items():
        with pytest.raises(exceptions.UnreachableRiskError):
            call()
        assert issubclass(exceptions.UnreachableRiskError, ValueError), arch


def test_wrong_types_are_type_errors_that_stay_value_errors():
    err = exceptions.InputTypeError
    assert issubclass(err, TypeError) and issubclass(err, ValueError)
    for call in (
        lambda: linear.simulate_risk(np.eye(2), np.ones(2), np.ones(2), 2, seed="x"),
        lambda: deep_linear.simulate_risk(np.eye(2), np.ones(2), np.ones(2), 2, 2, seed=1.5),
        lambda: relu.pretrain(np.ones(2), width=4, n_source=3, seed="x"),
        lambda: relu.finetune(np.eye(2), np.ones(2), np.eye(2), start="net"),
        lambda: deep_linear.end_to_end(np.ones((1, 2))),
    ):
        with pytest.raises(TypeError):
            call()


# ------------------------------------------------------------------ annotations
#: public modules whose signatures are checked for ``Any``
TYPED = ("linear", "deep_linear", "relu", "covariance", "teachers", "asymptotics", "estimator",
         "curves", "data", "exceptions", "advisor", "networks")
#: public signatures still annotated ``Any`` (a shrinking list), each with its reason
ANY_ALLOWED: dict[str, str] = {
    "TrainResult": "weights/start are each architecture's own parameters; the scalar-or-array "
    "fields follow the batch (typing them needs Monitor's fields typed first)",
    "PretrainResult": "as TrainResult",
    "advisor.Advice": "pandas and matplotlib objects (pandas ships no types)",
    "advisor.advise": "sources: vectors, fitted models, mappings or file paths",
    "networks": "torch objects (models, devices, parameter dicts): torch is an optional import",
}


def _annotated_any() -> set[str]:
    import importlib

    found = set()
    for modname in TYPED:
        mod = importlib.import_module(f"finetune_theory.{modname}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            funcs = []
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if isinstance(value, property):
                        value = value.fget
                    if inspect.isfunction(value) and (attr == "__init__" or attr[0] != "_"):
                        funcs.append((f"{name}.{attr}", value))
            elif inspect.isfunction(obj):
                funcs.append((name, obj))
            for label, func in funcs:
                if any("Any" in str(a) for a in func.__annotations__.values()):
                    found.add(f"{modname}.{label}")
    return found


def _allowed(label: str) -> str | None:
    parts = label.split(".")
    for k in range(len(parts), 0, -1):
        for key in (".".join(parts[:k]), ".".join(parts[1:k])):
            if key in ANY_ALLOWED:
                return key
    return None


def test_public_signatures_take_array_like_rather_than_any():
    found = _annotated_any()
    assert any(label.startswith("linear.TrainResult") for label in found)  # the scan works
    bad = sorted(label for label in found if _allowed(label) is None)
    assert not bad, f"public signatures annotated Any (use numpy.typing.ArrayLike): {bad}"
    stale = set(ANY_ALLOWED) - {_allowed(label) for label in found}
    assert not stale, f"remove these from ANY_ALLOWED: {sorted(stale)}"
