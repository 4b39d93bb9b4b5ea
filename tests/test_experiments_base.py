"""The experiment contract: ``run_unit`` under its name, ``run`` as a deprecated alias."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from finetune_theory.experiments.base import Experiment


def _unit(unit: int, seed: int) -> list[dict[str, int]]:
    return [{"unit": unit, "seed": seed}]


def _toy(**run: object) -> Experiment:
    return Experiment(
        name="toy",
        title="Toy",
        description="one record per unit",
        config_cls=int,
        sizes={"quick": 3},
        claims=lambda records: [],
        plot=lambda records, outdir: [],
        table=lambda records: pd.DataFrame(),
        units=lambda config: list(range(config)),
        **run,
    )


def test_run_all_runs_every_unit_through_run_unit():
    toy = _toy(run_unit=_unit)
    records = toy.run_all(toy.config("quick"), seed=0)
    assert records["unit"].tolist() == [0, 1, 2]
    assert records["seed"].nunique() == 3  # each unit its own seed


def test_run_is_a_deprecated_alias_of_run_unit():
    with pytest.warns(DeprecationWarning, match="run_unit"):
        toy = _toy(run=_unit)
    assert toy.run_unit is _unit
    with pytest.warns(DeprecationWarning, match="run_unit"):
        assert toy.run is _unit
    other = dataclasses.replace(toy, run_unit=print)  # replacing keeps the new function
    assert other.run_unit is print
    with pytest.warns(DeprecationWarning):
        assert dataclasses.replace(other, run=_unit).run_unit is _unit


def test_an_experiment_without_run_unit_is_a_type_error():
    with pytest.raises(TypeError, match="run_unit"):
        _toy()
