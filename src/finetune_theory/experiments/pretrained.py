"""E9 - a third-party pretrained network: CHGNet's readout fine-tuned to another level of theory.

An optional experiment (``pip install "chgnet>=0.4,<0.5" "ase>=3.23"``): it needs ``chgnet``,
whose wheel carries its pretrained checkpoints, and ASE, whose EMT calculator gives the target
labels. Nothing is downloaded: the checkpoints are read from the installed package.

The task. Random eight-atom face-centred cubic cells of two of the metals EMT knows (Al, Ni,
Cu, Pd, Ag, Pt, Au), strained by up to 4% and rattled. The target is EMT's formation energy
per atom, the energy per atom less the composition-weighted energies of the pure metals (each
at its own lattice constant). A source is a pretrained CHGNet (``0.3.0``, ``0.2.0``, both
trained on PBE energies, and ``r2scan``, transfer-learned to r2SCAN energies), predicting the
same quantity with its own pure-metal references: the formation energies of two levels of
theory differ by what fine-tuning has to learn.

The network fine-tuned is CHGNet's readout (the atom-wise MLP whose mean over the atoms is the
energy per atom), on top of its frozen message-passing layers, as CHGNet's own fine-tuning
examples do. Its inputs are the atom features after the last message-passing layer (one row
per cell: eight atoms x 64 features); the head (the readout's last ``nn.Linear``) commutes with
the mean over atoms, so the wrapped module ends in that head on the mean of the atom-wise
hidden units and computes CHGNet's energy exactly (checked against CHGNet's own prediction).
The composition model (CHGNet's fixed per-element ``AtomRef``) and the pure-metal references
are fixed functions of the composition and move into the labels.

For every source, ``n`` and repeat (one batched run through ``torch.func.vmap``), as E8 does
for the networks the package pretrains: full fine-tuning of the readout (every readout weight)
and of its head alone by gradient descent, the exact linearised network, the predicted test
MSE of both routes from unlabelled cells (the spectrum) and a few labelled pilot cells (the
residual's profile), and the relative weight movement and kernel drift
``||K_end - K_S||_F / ||K_S||_F`` on the training cells.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._random import seed_sequence
from ..networks import torch_module
from . import OPTIONAL, skipped
from ._plotting import finish, legend_outside, open_figures
from .base import Experiment, Verdict, run_units
from .networks import _fold, _head_gd, _top_eig, ranking_pairs

if TYPE_CHECKING:
    from pathlib import Path

#: the modules it needs beyond torch, and the ``pip`` line that installs them
REQUIRES, INSTALL = OPTIONAL["pretrained"]
#: pretrained CHGNet checkpoints shipped inside the chgnet wheel
SOURCES = ("0.3.0", "0.2.0", "r2scan")
#: metals of ASE's EMT calculator, with their fcc lattice constants (Angstrom)
LATTICE = {"Al": 4.05, "Ni": 3.52, "Cu": 3.61, "Pd": 3.89, "Ag": 4.09, "Pt": 3.92, "Au": 4.08}
#: atoms per cell (a cubic fcc cell repeated twice along x)
ATOMS = 8
#: mean kernel drift below which a cell counts as lazy (E8's threshold, kept for comparison)
DRIFT_MAX = 0.25
#: largest ratio (either way) between predicted and measured full fine-tuning risk in lazy
#: cells: measured at the default size on seeds 1 and 2 (1.65 and 1.50), the largest rounded
#: up to a quarter; the reported run uses seed 0, which did not size it (docs/pretrained.md)
FACTOR = 1.75
#: the exact linearised readout against the real one in lazy cells (seeds 1 and 2: 1.119 and
#: 1.206, the largest rounded up to 5%)
LINEARISED_FACTOR = 1.25
#: share of source pairs whose predicted order is the measured one (seeds 1 and 2: 100% and
#: 79%, the smaller rounded down to 5%)
RANKING_SHARE = 0.75


def missing() -> str | None:
    """The ``pip`` line to run when a module this experiment needs is absent, else ``None``.

    Examples
    --------
    >>> missing() in (None, INSTALL)
    True
    """
    return skipped().get("pretrained")


def _require() -> None:
    if missing() is not None:
        exc = ImportError(f"experiment pretrained needs chgnet and ase: {INSTALL}")
        exc.name = next(m for m in REQUIRES if importlib.util.find_spec(m) is None)
        raise exc


@dataclass(frozen=True)
class Config:
    """Settings of E9.

    Attributes
    ----------
    sources : tuple of str
        CHGNet checkpoints taken from :data:`SOURCES`.
    ns : tuple of int
        Target training-set sizes (cells).
    repeats : int
        Training sets per size (and per source).
    n_test, n_unlabelled, n_pilot, n_pool : int
        Cells held out for the test error, unlabelled cells for the spectrum, labelled pilot
        cells, and the pool the training sets are drawn from.
    steps : int
        Gradient-descent steps of fine-tuning (both routes).
    lr_fraction : float
        Step of each run as a fraction of ``1 / lambda_max(K / n)`` at the source weights.
    strain, rattle : float
        Largest relative change of the lattice constant; standard deviation of the atomic
        displacements (Angstrom).
    """

    sources: tuple[str, ...] = SOURCES
    ns: tuple[int, ...] = (8, 16, 32, 64)
    repeats: int = 3
    n_test: int = 150
    n_unlabelled: int = 150
    n_pilot: int = 40
    n_pool: int = 120
    steps: int = 100
    lr_fraction: float = 0.5
    strain: float = 0.04
    rattle: float = 0.05


SIZES = {
    "quick": Config(sources=("0.3.0", "r2scan"), ns=(8, 16), repeats=2, n_test=40,
                    n_unlabelled=40, n_pilot=20, n_pool=30, steps=40),
    "default": Config(),
    "paper": Config(ns=(8, 16, 32, 64, 128), repeats=4, n_test=200, n_unlabelled=300,
                    n_pilot=60, n_pool=250, steps=150),
}


def _check(config: Config) -> None:
    if not config.sources or any(s not in SOURCES for s in config.sources):
        raise ValueError(f"sources must be taken from {SOURCES}, got {config.sources}")
    if not config.ns or min(config.ns) < 2:
        raise ValueError(f"ns must be integers >= 2, got {config.ns}")
    if min(config.repeats, config.n_test, config.n_pilot, config.steps) < 1:
        raise ValueError("repeats, n_test, n_pilot and steps must be >= 1")
    if config.n_pool < max(config.ns):
        raise ValueError(f"n_pool ({config.n_pool}) must be at least max(ns) = {max(config.ns)}")
    if config.n_unlabelled < 2 * max(config.ns):
        raise ValueError("n_unlabelled must be at least twice the largest n (the spectrum "
                         "has at most n_unlabelled directions)")


# ---------------------------------------------------------------------------- data
def cells(count: int, rng: np.random.Generator, *, strain: float = 0.04,
          rattle: float = 0.05) -> list[Any]:
    """Random strained and rattled eight-atom fcc cells of two EMT metals (ASE ``Atoms``).

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("ase")
    >>> atoms = cells(2, np.random.default_rng(0))
    >>> [len(a) for a in atoms], len(set(atoms[0].get_chemical_symbols())) <= 2
    ([8, 8], True)
    """
    from ase.build import bulk

    metals = list(LATTICE)
    out = []
    for _ in range(count):
        pair = rng.choice(len(metals), 2, replace=False)
        symbols = [metals[pair[i]] for i in rng.integers(0, 2, ATOMS)]
        a = float(np.mean([LATTICE[s] for s in symbols])) * (1 + rng.uniform(-strain, strain))
        atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat((ATOMS // 4, 1, 1))
        atoms.set_chemical_symbols(symbols)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        out.append(atoms)
    return out


def _fractions(atoms: list[Any]) -> np.ndarray:
    """Composition fractions over :data:`LATTICE`'s metals, shape (cells, metals)."""
    metals = list(LATTICE)
    out = np.zeros((len(atoms), len(metals)))
    for i, a in enumerate(atoms):
        for s in a.get_chemical_symbols():
            out[i, metals.index(s)] += 1.0 / len(a)
    return out


def _pure() -> list[Any]:
    from ase.build import bulk

    return [bulk(m, "fcc", a=a, cubic=True) for m, a in LATTICE.items()]


def emt_formation(atoms: list[Any]) -> np.ndarray:
    """EMT formation energy per atom (eV) against the pure fcc metals at their lattice constant.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("ase")
    >>> from ase.build import bulk
    >>> float(abs(emt_formation([bulk("Cu", "fcc", a=3.61, cubic=True)])[0])) < 1e-12
    True
    """
    from ase.calculators.emt import EMT

    def per_atom(batch: list[Any]) -> np.ndarray:
        out = []
        for a in batch:
            a = a.copy()
            a.calc = EMT()
            out.append(a.get_potential_energy() / len(a))
        return np.array(out)

    return per_atom(atoms) - _fractions(atoms) @ per_atom(_pure())


class _Readout:
    """Builds the wrapped readout module (a class so that torch is imported lazily)."""

    @staticmethod
    def build(mlp: Any) -> Any:
        torch = torch_module()
        import copy

        class Readout(torch.nn.Module):  # type: ignore[name-defined]  # torch: a lazy variable
            """CHGNet's atom-wise readout, its head moved after the mean over the atoms."""

            def __init__(self) -> None:
                super().__init__()
                layers = list(copy.deepcopy(mlp).layers)
                self.body = torch.nn.Sequential(*layers[:-1])
                self.head = layers[-1]

            def forward(self, x: Any) -> Any:
                h = x.reshape(*x.shape[:-1], ATOMS, x.shape[-1] // ATOMS)
                return self.head(self.body(h).mean(dim=-2))

        return Readout().double().eval()


def chgnet_source(name: str, atoms: list[Any]) -> dict[str, Any]:
    """A pretrained CHGNet as a source on ``atoms``: features, readout module and offsets.

    Returns a dict with ``features`` (cells, 8 * 64), the atom features after the last
    message-passing layer; ``module``, the readout (float64, ``torch.nn.Module``), whose output
    on ``features`` plus ``offset`` is CHGNet's formation energy per atom; ``offset``, CHGNet's
    composition model less its pure-metal references; ``energy``, CHGNet's own energy per atom
    (float32 as CHGNet computes it), the oracle of the wrapping; ``reference``, its
    composition-weighted pure-metal energies (so that ``module(features) + offset +
    reference`` is ``energy``).

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("chgnet")
    >>> src = chgnet_source("0.3.0", cells(2, np.random.default_rng(0)))
    >>> src["features"].shape
    (2, 512)
    """
    _require()
    torch = torch_module()
    from chgnet.model import CHGNet
    from pymatgen.io.ase import AseAtomsAdaptor

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
        model = CHGNet.load(model_name=name, verbose=False, use_device="cpu").eval()
    seen: list[Any] = []
    hook = model.mlp.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].detach()))

    def run(batch: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(a)) for a in batch]
        energy, comp = [], []
        for lo in range(0, len(graphs), 64):
            part = graphs[lo:lo + 64]
            with torch.no_grad():
                energy.append(model(part, task="e")["e"].double().numpy())
                comp.append(model.composition_model(part).double().numpy())
        return np.concatenate(energy), np.concatenate(comp)

    try:
        energy, comp = run(atoms)
        feats = torch.cat(seen).double().numpy().reshape(len(atoms), -1)
        seen.clear()
        pure, _ = run(_pure())
    finally:
        hook.remove()
    reference = _fractions(atoms) @ pure
    return {"features": feats, "module": _Readout.build(model.mlp),
            "offset": comp - reference, "reference": reference, "energy": energy}


# ---------------------------------------------------------------------------- one unit
def run_unit(config: Config, seed: int) -> list[dict[str, Any]]:
    """Fine-tune every source's readout over ``ns`` x repeats and predict the curves."""
    _check(config)
    _require()
    torch = torch_module()
    from .. import networks as nw

    torch.set_num_threads(1)
    ss_data, ss_sets = seed_sequence(seed).spawn(2)
    rng = np.random.default_rng(ss_data)
    sizes = [config.n_test, config.n_unlabelled, config.n_pilot, config.n_pool]
    atoms = cells(sum(sizes), rng, strain=config.strain, rattle=config.rattle)
    target = emt_formation(atoms)
    test, unl, pilot, pool = np.split(np.arange(len(atoms)), np.cumsum(sizes)[:-1])
    set_rng = np.random.default_rng(ss_sets)
    copies = [(n, r) for n in config.ns for r in range(config.repeats)]
    subsets = [np.sort(set_rng.choice(len(pool), n, replace=False)) for n, _ in copies]
    nmax = max(config.ns)
    records: list[dict[str, Any]] = []
    for source in config.sources:
        src = chgnet_source(source, atoms)
        net, feats = src["module"], src["features"]
        y_all = target - src["offset"]  # the label of the readout
        x_of = {k: feats[v] for k, v in
                {"test": test, "unl": unl, "pilot": pilot, "pool": pool}.items()}
        y_pool, y_test, y_pilot = y_all[pool], y_all[test], y_all[pilot]
        jac = {k: nw.jacobian(net, v) for k, v in x_of.items()}
        pen = {k: nw.penultimate_features(net, v) for k, v in x_of.items()}
        f_s = {k: p.outputs() for k, p in pen.items()}
        design = {k: p.design() for k, p in pen.items()}
        spec_full = nw.kernel_spectrum(jac["unl"] @ jac["unl"].T)
        spec_last = nw.feature_spectrum(design["unl"])
        resid = y_pilot - f_s["pilot"]
        prof_full = nw.fit_residual_profile(
            spec_full, spec_full.coords(jac["pilot"] @ jac["unl"].T), resid)
        prof_last = nw.fit_residual_profile(spec_last, spec_last.coords(design["pilot"]), resid)
        c = len(copies)
        xb, yb = np.zeros((c, nmax, feats.shape[1])), np.zeros((c, nmax))
        rows = np.array([n for n, _ in copies])
        lr_full, lr_last = np.empty(c), np.empty(c)
        for i, idx in enumerate(subsets):
            n = idx.size
            xb[i, :n], yb[i, :n] = x_of["pool"][idx], y_pool[idx]
            j = jac["pool"][idx]
            lr_full[i] = config.lr_fraction / _top_eig(j @ j.T / n)
            a = design["pool"][idx]
            lr_last[i] = config.lr_fraction / _top_eig(a.T @ a / n)
        res = nw.train(net, xb, yb, lr=lr_full, max_steps=config.steps, rows=rows)
        out = res.outputs(net, x_of["test"])
        cellrec: dict[int, dict[str, list[float]]] = {n: {} for n in config.ns}
        for i, ((n, _rep), idx) in enumerate(zip(copies, subsets, strict=True)):
            j0 = jac["pool"][idx]
            k0 = j0 @ j0.T
            j1 = nw.jacobian(net, x_of["pool"][idx], params=res.replica(i))
            drift = float(np.linalg.norm(j1 @ j1.T - k0) / np.linalg.norm(k0))
            lin = nw.kernel_finetune(k0, jac["test"] @ j0.T, y_pool[idx], f_s["pool"][idx],
                                     f_s["test"], time=float(res.time[i]))
            a = design["pool"][idx]
            theta = _head_gd(a, y_pool[idx], pen["pool"].theta, lr_last[i], config.steps)
            for key, val in (
                ("full", np.mean((out[i] - y_test) ** 2)),
                ("linearised", np.mean((lin.predictions - y_test) ** 2)),
                ("last", np.mean((design["test"] @ theta - y_test) ** 2)),
                ("drift", drift),
                ("movement", float(res.movement[i])),
                ("time_full", float(res.time[i])),
                ("time_last", lr_last[i] * config.steps),
            ):
                cellrec[n].setdefault(key, []).append(float(val))
        source_mse = float(np.mean((f_s["test"] - y_test) ** 2))
        # the wrapped readout against CHGNet's own energy (float32 there)
        wrap_gap = float(np.max(np.abs(pen["test"].outputs() + src["offset"][test]
                                       + src["reference"][test] - src["energy"][test])))
        for n in config.ns:
            cell = cellrec[n]
            t_full, t_last = float(np.mean(cell["time_full"])), float(np.mean(cell["time_last"]))
            p_full = nw.predict_from_profile(prof_full, n, time=t_full)
            p_last = nw.predict_from_profile(prof_last, n, time=t_last)
            rec: dict[str, Any] = {
                "source": source, "n": int(n), "repeats": config.repeats,
                "params": int(sum(p.numel() for p in net.parameters())),
                "source_mse": source_mse, "predicted_source_mse": prof_full.source_mse,
                "predicted_full": float(p_full.mse[0]), "predicted_last": float(p_last.mse[0]),
                "time_full": t_full, "time_last": t_last, "wrap_gap": wrap_gap,
            }
            for key in ("full", "linearised", "last"):
                vals = np.array(cell[key])
                rec[f"measured_{key}"] = float(vals.mean())
                rec[f"measured_{key}_se"] = (float(vals.std(ddof=1) / math.sqrt(vals.size))
                                             if vals.size > 1 else 0.0)
            rec["drift"] = float(np.mean(cell["drift"]))
            rec["drift_max"] = float(np.max(cell["drift"]))
            rec["movement"] = float(np.mean(cell["movement"]))
            rec["ratio_full"] = rec["predicted_full"] / rec["measured_full"]
            rec["ratio_last"] = rec["predicted_last"] / rec["measured_last"]
            rec["ratio_linearised"] = rec["measured_linearised"] / rec["measured_full"]
            records.append(rec)
    return records


def units(config: Config) -> list[Config]:
    """One unit: the sources share the cells (so the ranking is fair)."""
    _check(config)
    return [replace(config)]


def run(config: Config, seed: int) -> list[dict[str, Any]]:
    """Every unit of ``config`` with its own seed (:func:`base.run_units`)."""
    return run_units(units, run_unit, config, seed)


# -------------------------------------------------------------------------- verdicts
def claims(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts of E9 computed from the records."""
    verdicts = []
    lazy = records[records["drift"] < DRIFT_MAX]
    if len(lazy):
        worst = _fold(lazy["ratio_full"])
        at = lazy.loc[worst.idxmax()]
        evidence = (
            f"{len(lazy)} of {len(records)} cells have kernel drift < {DRIFT_MAX:.0%}; largest "
            f"factor {worst.max():.2f} (source {at['source']}, n={at['n']}: predicted "
            f"{at['predicted_full']:.4g}, measured {at['measured_full']:.4g}); median "
            f"{worst.median():.2f}")
        holds = bool(worst.max() <= FACTOR)
        lin = _fold(lazy["ratio_linearised"])
        lin_holds = bool(lin.max() <= LINEARISED_FACTOR)
        lin_evidence = (f"exact linearised / real readout test MSE in the lazy cells: largest "
                        f"factor {lin.max():.3f}, median {lin.median():.3f}")
    else:
        evidence, holds = f"no cell has kernel drift < {DRIFT_MAX:.0%}", False
        lin_evidence, lin_holds = "no lazy cell", False
    verdicts.append(Verdict(
        f"The linearised prediction of fine-tuning CHGNet's readout is within a factor "
        f"{FACTOR:g} of the real fine-tuned risk where the kernel moves little", holds, evidence))
    verdicts.append(Verdict(
        f"Where the kernel moves little CHGNet's readout fine-tunes as its linearisation "
        f"(within a factor {LINEARISED_FACTOR:g})", lin_holds, lin_evidence))
    pairs = ranking_pairs(records, by=("n",))
    if len(pairs):
        share = float(pairs["right"].mean())
        verdicts.append(Verdict(
            f"The predicted curves rank the CHGNet checkpoints as real fine-tuning does in at "
            f"least {RANKING_SHARE:.0%} of source pairs", share >= RANKING_SHARE,
            f"{int(pairs['right'].sum())} of {len(pairs)} pairs right ({share:.0%})"))
    return verdicts


def table(records: pd.DataFrame) -> pd.DataFrame:
    """Measured and predicted test MSE per source and n, with drift and weight movement."""
    cols = ["source", "n", "measured_full", "predicted_full", "measured_linearised",
            "measured_last", "predicted_last", "source_mse", "drift", "movement"]
    out = records[cols].copy()
    out[cols[2:]] = out[cols[2:]].astype(float).map(lambda v: float(f"{v:.4g}"))
    out = out.reset_index(drop=True)
    out.attrs["caption"] = (
        "Test mean squared error of the formation energy ((eV/atom)^2, means over repeats) per "
        "CHGNet checkpoint and number of target cells n: measured and predicted for fine-tuning "
        "the whole readout (full) and its head alone (last), measured for the linearised "
        "readout, the source's own error, the kernel drift and the relative weight movement."
    )
    return out


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Predicted against measured learning curves, per route."""
    plt, outdir = open_figures(outdir)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, route, title in ((axes[0], "full", "whole readout"), (axes[1], "last", "head")):
        for k, (src, h) in enumerate(records.groupby("source")):
            h = h.sort_values("n")
            color = f"C{k}"
            ax.errorbar(h["n"], h[f"measured_{route}"], yerr=2 * h[f"measured_{route}_se"],
                        fmt="o", color=color, ms=4, capsize=2, label=f"{src} measured")
            ax.plot(h["n"], h[f"predicted_{route}"], "-", color=color, label=f"{src} predicted")
            if route == "full":
                ax.plot(h["n"], h["measured_linearised"], "x", color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of target cells n")
        ax.set_title(f"CHGNet -> EMT: {title}")
    axes[0].set_ylabel("test MSE ((eV/atom)^2)")
    legend_outside(fig, axes, ncol=3)
    return finish(
        fig, outdir / "pretrained_chgnet", layout="constrained",
        caption="CHGNet's readout fine-tuned from each pretrained checkpoint (colour) to EMT "
        "formation energies: test error against the number of target cells, for the whole "
        "readout (left, crosses: the linearised readout) and its head alone (right); lines "
        "are the predicted curves.")


EXPERIMENT = Experiment(
    name="pretrained",
    title="E9 - a third-party pretrained network (CHGNet) fine-tuned to EMT energies",
    description=(
        "CHGNet's pretrained readout (checkpoints shipped in its wheel) fine-tuned by gradient "
        "descent to EMT formation energies of random alloy cells; the learning curve predicted "
        "from the empirical NTK and a few labelled cells against the measured one; kernel "
        "drift and weight movement. Optional: needs the pretrained extra."
    ),
    config_cls=Config,
    sizes=SIZES,
    run_unit=run_unit,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)
