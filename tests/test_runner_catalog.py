"""``finetune_theory.runner.catalog``: what ``finetune-theory list`` shows."""

from __future__ import annotations

from finetune_theory import experiments
from finetune_theory.runner import catalog


def test_every_registered_experiment_is_listed_with_its_unit_counts():
    entries = catalog.catalog()
    assert [e.name for e in entries] == list(experiments.REGISTRY)
    skipped = experiments.skipped()
    for entry in entries:
        if entry.name in skipped:  # an optional experiment without its packages
            assert entry.problem == "not installed" and entry.units is None
            continue
        assert entry.problem == "" and entry.title
        exp = experiments.get(entry.name)
        assert entry.units == {size: len(exp.units(cfg)) for size, cfg in exp.sizes.items()}
        assert all(count >= 1 for count in entry.units.values())


def test_missing_and_broken_experiments_are_listed_not_fatal(monkeypatch):
    monkeypatch.setitem(experiments.REGISTRY, "ghost", "finetune_theory.experiments.ghost")

    real_get = experiments.get

    def get(name):
        if name == "measure":
            raise ImportError("no module named 'somelib'")
        return real_get(name)

    monkeypatch.setattr(experiments, "get", get)
    by_name = {e.name: e for e in catalog.catalog()}
    assert by_name["ghost"].problem == "not installed" and by_name["ghost"].units is None
    assert by_name["measure"].problem == "cannot load: no module named 'somelib'"
    assert by_name["depth"].units is not None
