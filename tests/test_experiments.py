"""``finetune_theory.experiments``: the registry of experiments, found by name."""

from __future__ import annotations

import importlib.util

import pytest

from finetune_theory import experiments
from finetune_theory.experiments import base


def test_every_registered_module_is_installed_and_exposes_its_experiment():
    missing = experiments.skipped()
    assert set(missing) <= set(experiments.OPTIONAL)  # only optional experiments may be absent
    # report order kept
    assert experiments.available() == [n for n in experiments.REGISTRY if n not in missing]
    for name, module in experiments.REGISTRY.items():
        assert module == f"finetune_theory.experiments.{name}"
        assert importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", ["measure", "reduction"])
def test_get_returns_the_modules_experiment(name):
    exp = experiments.get(name)
    assert isinstance(exp, base.Experiment)
    assert exp is importlib.import_module(experiments.REGISTRY[name]).EXPERIMENT
    assert set(exp.sizes) >= {"quick", "default", "paper"}


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'; choose from measure, depth"):
        experiments.get("nope")


def test_a_module_missing_from_the_install_is_not_available(monkeypatch):
    monkeypatch.setitem(experiments.REGISTRY, "ghost", "finetune_theory.experiments.ghost")
    assert "ghost" not in experiments.available()
    with pytest.raises(ValueError, match="unknown experiment 'ghost'"):
        experiments.get("ghost")


def test_an_optional_experiment_without_its_packages_is_skipped_with_its_install_line(
    monkeypatch,
):
    name = next(iter(experiments.OPTIONAL))
    modules, install = experiments.OPTIONAL[name]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda m, *a: None if m == modules[0] else real(m, *a)
    )
    assert experiments.skipped()[name] == install
    assert name not in experiments.available()


def test_the_lazy_names_are_the_base_classes():
    assert experiments.Experiment is base.Experiment and experiments.Verdict is base.Verdict
    with pytest.raises(AttributeError, match="no_such_name"):
        experiments.no_such_name  # noqa: B018
