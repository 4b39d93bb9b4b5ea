"""E9 `pretrained`: CHGNet's readout as a source, EMT labels, the optional-experiment plumbing.

The CHGNet tests need the optional packages (``chgnet``, ``ase``) and torch and skip cleanly
without them; the plumbing tests (left out of ``make run`` with one line when missing, the
verdicts can fail) run everywhere.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from finetune_theory import experiments
from finetune_theory.experiments import pretrained as E9

# ------------------------------------------------------------------ plumbing (no chgnet needed)


def _hide(monkeypatch, *names):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name in names else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_missing_chgnet_leaves_the_experiment_out_with_one_line(monkeypatch, capsys):
    from finetune_theory.runner import reproduction

    _hide(monkeypatch, "chgnet")
    assert "pretrained" not in experiments.available()
    assert experiments.skipped() == {"pretrained": E9.INSTALL}
    assert E9.INSTALL == 'pip install "finetune-theory[pretrained]"'  # the extra of pyproject
    assert E9.missing() == E9.INSTALL
    wanted = reproduction._wanted(None)
    assert "pretrained" not in wanted and "measure" in wanted
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "pretrained" in lines[0] and E9.INSTALL in lines[0]
    assert reproduction._wanted(["measure"]) == ["measure"]  # named runs say nothing
    assert capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="chgnet") as info:
        E9.run_unit(E9.SIZES["quick"], 0)
    assert info.value.name == "chgnet"


def test_with_the_packages_the_experiment_is_listed(monkeypatch):
    _hide(monkeypatch)
    present = all(importlib.util.find_spec(m) is not None for m in E9.REQUIRES)
    assert ("pretrained" in experiments.available()) == present
    assert ("pretrained" in experiments.skipped()) == (not present)


@pytest.mark.parametrize(
    "bad",
    [
        {"sources": ("9.9.9",)},
        {"ns": (1, 8)},
        {"n_pool": 4},
        {"n_unlabelled": 10},
        {"steps": 0},
    ],
)
def test_bad_configs_are_refused(bad):
    from dataclasses import replace

    with pytest.raises(ValueError):
        E9.units(replace(E9.SIZES["quick"], **bad))


def _records(pred_scale: float, lin: float = 1.0, drift: float = 0.1) -> pd.DataFrame:
    rows = []
    for k, source in enumerate(E9.SOURCES):
        for n in (8, 16):
            measured = 0.05 / n * (k + 1)
            rows.append({"source": source, "n": n, "measured_full": measured,
                         "predicted_full": measured * pred_scale,
                         "measured_last": 2 * measured, "predicted_last": 2 * measured,
                         "measured_linearised": measured * lin, "drift": drift})
    rec = pd.DataFrame(rows)
    rec["ratio_full"] = rec["predicted_full"] / rec["measured_full"]
    rec["ratio_linearised"] = rec["measured_linearised"] / rec["measured_full"]
    return rec


def test_verdicts_fail_when_the_numbers_are_off():
    good = E9.claims(_records(1.2))
    assert [v.holds for v in good] == [True, True, True]
    off = E9.claims(_records(E9.FACTOR * 1.1, lin=E9.LINEARISED_FACTOR * 1.1))
    assert [v.holds for v in off[:2]] == [False, False]
    assert not E9.claims(_records(1.0 / (E9.FACTOR * 1.1)))[0].holds  # a factor either way
    assert not E9.claims(_records(1.0, drift=0.9))[0].holds  # no lazy cell: no claim
    flipped = _records(1.0)
    flipped["predicted_full"] = flipped["predicted_full"].to_numpy()[::-1]
    flipped["predicted_last"] = flipped["predicted_last"].to_numpy()[::-1]
    assert not E9.claims(flipped)[2].holds


# ------------------------------------------------------------------ CHGNet and EMT

@pytest.fixture(scope="module")
def source():
    pytest.importorskip("torch")
    pytest.importorskip("ase")
    pytest.importorskip("chgnet")
    atoms = E9.cells(5, np.random.default_rng(3))
    return atoms, E9.chgnet_source("0.3.0", atoms)


def test_emt_formation_is_invariant_and_matches_a_hand_computation():
    pytest.importorskip("ase")
    from ase.build import bulk
    from ase.calculators.emt import EMT

    atoms = E9.cells(3, np.random.default_rng(1))
    form = E9.emt_formation(atoms)
    # by hand for the first cell
    a = atoms[0].copy()
    a.calc = EMT()
    e = a.get_potential_energy() / len(a)
    refs = 0.0
    for s in a.get_chemical_symbols():
        p = bulk(s, "fcc", a=E9.LATTICE[s], cubic=True)
        p.calc = EMT()
        refs += p.get_potential_energy() / len(p) / len(a)
    assert form[0] == pytest.approx(e - refs, abs=1e-12)
    # relabelling the atoms and translating the cell leave it unchanged
    moved = []
    for cell in atoms:
        c = cell[np.random.default_rng(2).permutation(len(cell))]
        c.positions += np.array([0.3, -0.2, 0.1])
        moved.append(c)
    np.testing.assert_allclose(E9.emt_formation(moved), form, atol=1e-10)
    assert np.all(np.abs(form) < 1.0)  # eV/atom: a sane scale for these alloys


def test_the_wrapped_readout_is_chgnets_own_energy(source):
    from finetune_theory import networks as nw

    atoms, src = source
    out = nw.penultimate_features(src["module"], src["features"]).outputs()
    np.testing.assert_allclose(out + src["offset"] + src["reference"], src["energy"],
                               atol=2e-5)  # CHGNet computes in float32
    # and the module's own forward agrees with its head on the mean of the hidden units
    import torch

    with torch.no_grad():
        direct = src["module"](torch.as_tensor(src["features"]))[:, 0].numpy()
    np.testing.assert_allclose(direct, out, atol=1e-12)


@pytest.mark.parametrize("name", ["0.2.0", "r2scan"])
def test_every_shipped_checkpoint_wraps_exactly(name):
    pytest.importorskip("torch")
    pytest.importorskip("ase")
    pytest.importorskip("chgnet")
    from finetune_theory import networks as nw

    atoms = E9.cells(2, np.random.default_rng(4))
    src = E9.chgnet_source(name, atoms)
    out = nw.penultimate_features(src["module"], src["features"]).outputs()
    np.testing.assert_allclose(out + src["offset"] + src["reference"], src["energy"], atol=2e-5)


def test_the_head_kernel_is_the_penultimate_gram(source):
    from finetune_theory import networks as nw

    _, src = source
    design = nw.penultimate_features(src["module"], src["features"]).design()
    k = nw.empirical_ntk(src["module"], src["features"], parameters="last")
    np.testing.assert_allclose(k, design @ design.T, rtol=1e-10, atol=1e-12)
    full = nw.empirical_ntk(src["module"], src["features"])
    assert np.all(np.linalg.eigvalsh(full - k) > -1e-8)  # the head's kernel is a part of it


@pytest.mark.slow
def test_a_tiny_run_tracks_its_linearisation():
    pytest.importorskip("torch")
    pytest.importorskip("ase")
    pytest.importorskip("chgnet")
    from dataclasses import replace

    config = replace(E9.SIZES["quick"], sources=("0.3.0",), ns=(6,), repeats=2, n_test=20,
                     n_unlabelled=12, n_pilot=10, n_pool=12, steps=20)
    rec = pd.DataFrame(E9.run(config, 0))
    assert list(rec["n"]) == [6]
    row = rec.iloc[0]
    assert row["wrap_gap"] < 2e-5
    assert 0 < row["movement"] < 0.05
    assert row["measured_full"] < row["source_mse"]  # fine-tuning helps
    assert abs(row["ratio_linearised"] - 1) < 0.1  # 20 small steps: nearly linear
    assert row["predicted_full"] > 0 and row["predicted_last"] > 0
