"""E4 - freezing layers of a deep linear network during fine-tuning.

The pretrained network is the balanced rank-one network realising ``theta_S``. Its first layer
``W_1 = c u_1 theta_S^T / ||theta_S||`` has row space ``span(theta_S)``: with ``W_1`` frozen
(and any layers after it), every function the network can express is ``a theta_S^T x``, so the
risk can never go below the floor ``min_a ||a theta_S - theta_T||^2_Sigma``
(:func:`deep_linear.frozen_risk_floor`). When ``theta_T`` is ``Sigma``-orthogonal to
``theta_S`` that floor is ``||theta_T||^2_Sigma``, the risk of predicting zero: fine-tuning fails
completely, whatever the number of samples. Training only ``W_1`` (all later layers frozen)
is linear regression from ``theta_S`` with a rescaled step, whose limit is the depth-1
solution :func:`linear.finetune`.

For each sample size ``n``, target kind and freezing pattern (none; the first ``k`` layers for
``k = 1 .. N-1``; all layers but the first), a batch of networks is trained by gradient
descent and compared with the limit it should reach: the depth-``N`` closed form (nothing
frozen), the best multiple of ``theta_S`` on the training data (first layers frozen), the
depth-1 solution (only the first layer trained).

Records: one per (target, n, freeze, repeat) with the columns

``target, n, d, depth, width, freeze, frozen_count, repeat, zero_risk, floor, risk_trained,
risk_expected, risk_unfrozen, risk_depth1, rel_trained, rel_floor, gap, steps,
interpolated, converged``

``target`` is ``scaled`` (``theta_T = alpha theta_S + eps xi``) or ``orthogonal`` (a unit
vector ``Sigma``-orthogonal to ``theta_S``); ``freeze`` is ``none``, ``first k`` or ``all but
first``; ``risk_expected`` is the risk of the limit the training should reach (see
:func:`frozen_limit` for a frozen first layer), ``gap`` the distance of the trained end-to-end
vector to it relative to ``||theta_S||``; ``rel_*`` divide by ``zero_risk``
``= ||theta_T||^2_Sigma``; ``converged`` says whether training stopped within ``max_steps``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import covariance as covmod
from .. import deep_linear as dl
from .. import linear
from .._numerics import TINY
from .._random import as_generator
from ..teachers import random_units
from ._deep import mean_se, risks, train_and_compare
from ._plotting import finish, legend_outside, log_axes, open_figures
from .base import Experiment, Verdict, run_units

TARGETS = ("scaled", "orthogonal")


@dataclass(frozen=True)
class Config:
    """Settings of E4.

    Parameters
    ----------
    d : int, default 60
        Dimension.
    ns : tuple of int, default (5, 10, 20, 40)
        Target sample sizes (one unit each).
    depth : int, default 4
        Number of layers ``N`` of the network.
    width : int, default 16
        Width of its hidden layers.
    alpha : float, default 0.5
        Scale of the ``scaled`` target ``alpha theta_S + eps xi``.
    eps : float, default 0.3
        Size of the perturbation of the ``scaled`` target (``xi`` a random unit vector).
    targets : tuple of str, default ("scaled", "orthogonal")
        Target kinds: ``scaled`` and/or ``orthogonal`` (a unit vector ``Sigma``-orthogonal to
        ``theta_S``).
    repeats : int, default 8
        Independent repeats (source, design, targets) per sample size, trained as one batch.
    lr_fraction : float, default 0.2
        Step as a fraction of the inverse curvature bound.
    max_steps : int, default 20000
        Step budget; runs that have not stopped by then are kept and marked (``converged``).
        Only a frozen first layer with a product of several trainable layers heading for zero
        converges sublinearly (like ``1/t``) and may use it all.
    spectrum : str, default "spiked"
        ``spiked`` (leading eigenvalues ``spikes``, the rest 1), ``power_law``
        (``lambda_i = i^-a``) or ``isotropic``.
    a : float, default 1.0
        Exponent of ``power_law``.
    spikes : tuple of float, default (8.0, 4.0, 2.0)
        Leading eigenvalues of the ``spiked`` spectrum.
    """

    d: int = 60
    ns: tuple[int, ...] = (5, 10, 20, 40)
    depth: int = 4
    width: int = 16
    alpha: float = 0.5
    eps: float = 0.3
    targets: tuple[str, ...] = TARGETS
    repeats: int = 8
    lr_fraction: float = 0.2
    max_steps: int = 20_000
    spectrum: str = "spiked"
    a: float = 1.0
    spikes: tuple[float, ...] = (8.0, 4.0, 2.0)


SIZES = {
    "quick": Config(d=30, ns=(4, 8), depth=3, repeats=4, max_steps=20_000),
    "default": Config(),
    "paper": Config(d=100, ns=(5, 10, 20, 40), depth=5, repeats=20, max_steps=50_000),
}


def covariance(config: Config) -> covmod.Covariance:
    """The target covariance of the config (:func:`finetune_theory.covariance.family`)."""
    return covmod.family(config.spectrum, config.d, a=config.a, spikes=config.spikes)


def freeze_patterns(depth: int) -> dict[str, tuple[int, ...]]:
    """Named freezing patterns: none, the first k layers, all layers but the first."""
    out: dict[str, tuple[int, ...]] = {"none": ()}
    for k in range(1, depth):
        out[f"first {k}"] = tuple(range(k))
    if depth > 1:
        out["all but first"] = tuple(range(1, depth))
    return out


def units(config: Config) -> list[Config]:
    """One unit per sample size.

    Parameters
    ----------
    config : Config
        The sweep to split.

    Returns
    -------
    list of Config
        The units, in order; splitting a unit again gives that unit alone.
    """
    return [dataclasses.replace(config, ns=(n,)) for n in config.ns]


def _targets(
    kind: str, source: np.ndarray, cov: covmod.Covariance, config: Config, rng: np.random.Generator
) -> np.ndarray:
    b, d = source.shape
    if kind == "scaled":
        return config.alpha * source + config.eps * random_units(b, d, seed=rng)
    if kind == "orthogonal":
        z = random_units(b, d, seed=rng)
        sig_s = cov.from_coords(cov.eigvals * cov.coords(source))  # Sigma theta_S
        z = z - (np.sum(z * sig_s, 1) / np.sum(source * sig_s, 1))[:, None] * source
        return z / np.linalg.norm(z, axis=1, keepdims=True)
    raise ValueError(f"targets must hold 'scaled' or 'orthogonal', got {kind!r}")


def frozen_limit(x: np.ndarray, y: np.ndarray, source: np.ndarray, trainable: int) -> np.ndarray:
    """Where GD goes with the first layer frozen: ``a theta_S`` for the reachable best ``a``.

    The network computes ``a theta_S^T x`` with ``a`` the product of the trainable layers
    (times the frozen ones); the data's best multiple is the least-squares fit
    ``a* = <X theta_S, y> / ||X theta_S||^2``. One trainable layer reaches any ``a``. With two or
    more, ``a`` is a product of balanced factors whose squares stay equal under gradient flow:
    it cannot change sign (it would have to pass through the saddle where all factors vanish),
    so from the pretrained ``a = 1`` the limit is ``max(a*, 0)``.
    """
    u = np.matmul(x, source[:, :, None])[:, :, 0]
    a = np.sum(u * y, 1) / np.maximum(np.sum(u * u, 1), TINY)
    if trainable >= 2:
        a = np.maximum(a, 0.0)
    return a[:, None] * source


def _unit(config: Config, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    cov = covariance(config)
    b, d, depth = config.repeats, config.d, config.depth
    source = random_units(b, d, seed=rng)
    x = cov.sample(n, seed=rng, batch=b)
    weights = dl.balanced_init(source, depth, config.width, seed=rng)
    patterns = freeze_patterns(depth)
    # every (target, freezing pattern) pair trains in one batch: its repeats stop on their own
    cases = []
    for kind in config.targets:
        target = _targets(kind, source, cov, config, rng)
        y = np.matmul(x, target[:, :, None])[:, :, 0]
        zero = np.asarray(cov.quad(target))
        floor = np.array(
            [dl.frozen_risk_floor(cov, s, t) for s, t in zip(source, target, strict=True)]
        )
        unfrozen = risks(cov, dl.finetune(x, y, source, depth), target)
        depth1 = linear.finetune(x, y, source)
        r_depth1 = risks(cov, depth1, target)
        for label, frozen in patterns.items():
            if not frozen:
                expected = dl.finetune(x, y, source, depth)
            elif 0 in frozen:
                expected = frozen_limit(x, y, source, depth - len(frozen))
            else:
                expected = depth1
            cases.append(
                (kind, label, frozen, target, y, zero, floor, unfrozen, r_depth1, expected)
            )
    k = len(cases)
    fit = train_and_compare(
        [np.concatenate([w] * k) for w in weights],
        np.concatenate([x] * k),
        np.concatenate([c[4] for c in cases]),
        depth,
        lr_fraction=config.lr_fraction,
        frozen=[c[2] for c in cases for _ in range(b)],
        closed=np.concatenate([c[9] for c in cases]),
        strict=False,
        max_steps=config.max_steps,
    )
    records: list[dict[str, Any]] = []
    for c, (kind, label, frozen, target, _, zero, floor, unfrozen, r_depth1, expected) in enumerate(
        cases
    ):
        rows = slice(c * b, (c + 1) * b)
        theta = fit["theta"][rows]
        gap = np.linalg.norm(theta - expected, axis=1) / np.linalg.norm(source, axis=1)
        r_tr = risks(cov, theta, target)
        r_exp = risks(cov, expected, target)
        for i in range(b):
            records.append(
                {
                    "target": kind,
                    "n": n,
                    "d": d,
                    "depth": depth,
                    "width": config.width,
                    "freeze": label,
                    "frozen_count": len(frozen),
                    "repeat": i,
                    "zero_risk": float(zero[i]),
                    "floor": float(floor[i]),
                    "risk_trained": float(r_tr[i]),
                    "risk_expected": float(r_exp[i]),
                    "risk_unfrozen": float(unfrozen[i]),
                    "risk_depth1": float(r_depth1[i]),
                    "rel_trained": float(r_tr[i] / zero[i]),
                    "rel_floor": float(floor[i] / zero[i]),
                    "gap": float(gap[i]),
                    "steps": int(fit["steps"][rows][i]),
                    "interpolated": bool(fit["interpolated"][rows][i]),
                    "converged": bool(fit["converged"][rows][i]),
                }
            )
    return records


def run_unit(config: Config, seed: int) -> list[dict[str, Any]]:
    """Compute one unit of E4 (one sample size) from its own seed."""
    rng = as_generator(seed)
    records: list[dict[str, Any]] = []
    for unit in units(config):
        records.extend(_unit(unit, unit.ns[0], rng))
    return records


def run(config: Config, seed: int) -> list[dict[str, Any]]:
    """Every unit of ``config``, each with its own seed (:func:`~.base.run_units`).

    Exactly the records of ``EXPERIMENT.run_all(config, seed)`` and of the runner's sweep.

    Parameters
    ----------
    config : Config
        The sweep to run.
    seed : int
        The root seed; unit ``i`` runs with ``unit_seeds(seed, len(units(config)))[i]``.

    Returns
    -------
    list of dict
        The tidy records of every unit, in unit order.
    """
    return run_units(units, run_unit, config, seed)


# ------------------------------------------------------------------ analysis
def table(records: pd.DataFrame) -> pd.DataFrame:
    """Mean risk relative to predicting zero, per (target, freeze) and n; the floor as a row.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).

    Returns
    -------
    pandas.DataFrame
        Rows (target, frozen layers), one column per ``n``; its caption in ``attrs``.
    """
    s = records.groupby(["target", "freeze", "n"])["rel_trained"].mean().unstack("n")
    fl = records.groupby(["target", "n"])["rel_floor"].mean().unstack("n")
    fl.index = pd.MultiIndex.from_tuples([(t, "(floor)") for t in fl.index])
    out = pd.concat([s, fl]).sort_index().round(4)
    out.index.names = ["target", "frozen layers"]
    out.columns = [f"n = {n}" for n in out.columns]
    out.attrs["caption"] = (
        "Excess risk relative to predicting zero (no unit; 1 = no better than zero), mean over "
        "trained networks, per target and frozen layers (rows) and number of target samples n "
        "(columns). '(floor)' rows: the lowest relative risk any network with frozen layers "
        "can reach, min_a ||a theta_S - theta_T||^2_Sigma over ||theta_T||^2_Sigma."
    )
    return out


def claims(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts on the floor, the complete failure and the depth-1 equivalence.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).

    Returns
    -------
    list of Verdict
        Only the verdicts whose cases the records hold.
    """
    verdicts: list[Verdict] = []
    first = records[records["freeze"].str.startswith("first")]
    if not first.empty:
        margin = (first["risk_trained"] / first["floor"] - 1).min()
        verdicts.append(
            Verdict(
                "With the first layer(s) frozen the risk never goes below the floor "
                "min_a ||a theta_S - theta_T||^2_Sigma",
                bool(margin >= -1e-9),
                f"smallest risk / floor - 1 over {len(first)} networks: {margin:.2e}",
            )
        )
        done = first[first["converged"]]
        slow = first[~first["converged"]]
        worst = done["gap"].max() if not done.empty else 0.0
        verdicts.append(
            Verdict(
                "With the first layer(s) frozen, training goes to the best multiple a* theta_S on "
                "the data, or to zero when a* < 0 and two or more layers train (the product cannot "
                "change sign)",
                bool(worst < 1e-3 and (slow.empty or slow["gap"].max() < 0.05)),
                f"largest distance (relative to ||theta_S||) {worst:.1e} over {len(done)} "
                "converged networks"
                + (
                    f"; {len(slow)} still creeping towards zero at the step budget, largest "
                    f"distance {slow['gap'].max():.1e}"
                    if not slow.empty
                    else ""
                ),
            )
        )
    orth = records[records["target"] == "orthogonal"]
    orth_first = orth[orth["freeze"].str.startswith("first")]
    if not orth_first.empty:
        worst = orth_first.groupby("n")["rel_trained"].min()
        free = orth[orth["freeze"] == "none"].groupby("n")["rel_trained"].mean()
        verdicts.append(
            Verdict(
                "A target Sigma-orthogonal to the source defeats a frozen first layer completely, "
                "at every n (no better than predicting zero)",
                bool((worst >= 1 - 1e-9).all()),
                "lowest risk / zero-predictor risk with the first layer frozen: "
                + ", ".join(f"n={k}: {v:.3f}" for k, v in worst.items())
                + "; nothing frozen: "
                + ", ".join(f"n={k}: {v:.3f}" for k, v in free.items()),
            )
        )
    last = records[records["freeze"] == "all but first"]
    if not last.empty:
        rel = ((last["risk_trained"] - last["risk_depth1"]).abs() / last["risk_depth1"]).max()
        verdicts.append(
            Verdict(
                "Training only the first layer gives the depth-1 solution",
                bool(last["gap"].max() < 1e-3),
                f"relative distance to linear.finetune: largest {last['gap'].max():.1e}; largest "
                f"relative risk difference {rel:.1e}",
            )
        )
    free = records[records["freeze"] == "none"]
    if not free.empty:
        verdicts.append(
            Verdict(
                "With nothing frozen, trained networks match the depth-N closed form",
                bool(free["gap"].max() < 0.01),
                f"relative distance: median {free['gap'].median():.1e}, "
                f"largest {free['gap'].max():.1e}",
            )
        )
    return verdicts


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Risk relative to predicting zero against n, per target kind and freezing pattern.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).
    outdir : pathlib.Path
        Folder the figures are written to (created if missing).

    Returns
    -------
    list of pathlib.Path
        The files written: SVG, and PNG where
        :func:`finetune_theory.experiments.figure_options` sets a resolution.
    """
    plt, outdir = open_figures(outdir)
    kinds = [t for t in TARGETS if t in set(records["target"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.4 * len(kinds), 4.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        g = records[records["target"] == kind]
        for k, (label, h) in enumerate(g.groupby("freeze", sort=False)):
            s = mean_se(h, ["n"], "rel_trained")
            e = h.groupby("n")["risk_expected"].mean() / h.groupby("n")["zero_risk"].mean()
            ax.plot(e.index, e.to_numpy(), "-", color=f"C{k}", alpha=0.5)
            ax.errorbar(
                s["n"],
                s["mean"],
                yerr=s["se"],
                fmt="o",
                ms=4,
                capsize=2,
                color=f"C{k}",
                label=f"{label} frozen (trained; line: its limit)",
            )
        fl = mean_se(g, ["n"], "rel_floor")
        ax.plot(fl["n"], fl["mean"], "k--", label="floor min_a ||a theta_S - theta_T||^2")
        ax.axhline(1.0, color="grey", ls=":", label="predicting zero")
        log_axes(ax, sorted(g["n"].unique()), str)
        ax.set_xlabel("number of target samples n")
        ax.set_ylabel("excess risk / ||theta_T||^2_Sigma")
        ax.set_title(
            f"target: {kind}"
            + (
                " (Sigma-orthogonal to the source)"
                if kind == "orthogonal"
                else " (alpha theta_S + eps xi)"
            ),
        )
    legend_outside(fig, axes, ncol=2)
    first = records.iloc[0]
    fig.suptitle(
        f"E4: freezing layers of a depth-{first['depth']} network "
        f"(d = {first['d']}; error bars: 1 s.e.)"
    )
    return finish(
        fig,
        outdir / "freezing_risk",
        layout="constrained",
        caption="Relative excess risk against the number of target samples n with some "
        "layers frozen (points: trained networks, lines: their limits): no frozen network "
        "goes below the floor (dashed), and for a target Sigma-orthogonal to the source that "
        "floor is the risk of predicting zero (dotted), so freezing there leaves nothing to "
        "gain from the source.",
    )


EXPERIMENT = Experiment(
    name="freezing",
    title="E4 - deep linear networks: freezing layers during fine-tuning",
    description=(
        "Fine-tuning a balanced deep linear network with the first k layers, or all but the "
        "first, frozen: the floor min_a ||a theta_S - theta_T||^2_Sigma, the complete failure on "
        "a Sigma-orthogonal target, and the depth-1 solution when only W_1 trains."
    ),
    config_cls=Config,
    sizes=SIZES,
    run_unit=run_unit,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)
