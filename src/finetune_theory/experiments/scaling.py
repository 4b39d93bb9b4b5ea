"""E3 - scaling the source or the target in a 7-layer model (paper Fig. 2b).

Start from a pair ``theta_T = theta_S + eps xi`` and multiply either the source or the target by a
factor ``c``:

* ``mode = "source"``: the pretrained network realises ``c theta_S`` (a balanced network whose
  layers are all multiplied by ``c^(1/N)``; we scale the end-to-end vector, so that one ``c``
  means one source at every depth);
* ``mode = "target"``: the target teacher is ``c theta_T``.

For each ``c`` the depth-7 and the depth-1 network are fine-tuned on the same ``n`` samples
(trained by gradient descent, beside the closed form and the asymptotic prediction), and the
infinite-depth closed form is added. Depth 1 pays the full scale mismatch
(``||P_perp (c theta_S - theta_T)||^2_Sigma``); depth lets the network rescale the source in the
unseen directions.

The closed form is jointly homogeneous: scaling the source and the labels by the same factor
scales the solution, so scaling the source by ``c`` and scaling the target by ``1/c`` give the same
*relative* risk. The default step of :func:`deep_linear.default_lr` scales the same way, so the
trained networks share it too. Units pair each ``c`` with ``1/c`` on the same draws to check it.

Records: one per (mode, factor, depth, repeat) with the columns

``mode, factor, group, depth, repeat, d, n, eps, width, target_sq, risk_trained, risk_closed,
risk_asymptotic, rel_trained, rel_closed, rel_asymptotic, scale_closed, gap, steps, lr``

(``group`` is ``|log2 c|``: rows of one group share their draws; ``depth = inf`` rows have NaN
trained columns; ``rel_*`` divide by ``||theta_T||^2_Sigma`` of that row's target).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import covariance as covmod
from .. import deep_linear as dl
from .._random import as_generator
from ..teachers import scaled_pairs
from ._deep import mean_se_columns, risks, train_and_compare
from ._plotting import finish, legend_outside, log_axes, open_figures
from .base import Experiment, Verdict, run_units

MODES = ("source", "target")


@dataclass(frozen=True)
class Config:
    """Settings of E3.

    Parameters
    ----------
    d : int, default 200
        Dimension.
    n : int, default 20
        Number of target samples.
    eps : float, default 0.1
        Perturbation of the base pair ``theta_T = theta_S + eps xi``.
    factors : tuple of float, default ``2^(k/2)`` for ``k = -4 .. 4`` (1/4 to 4)
        Values of ``c``; a factor and its inverse go in one unit (same draws).
    modes : tuple of str, default ('source', 'target')
        ``source`` and/or ``target``.
    depths : tuple of int, default (1, 7)
        Trained depths (the paper's comparison: 1 against 7).
    infinite : bool, default True
        Add the infinite-depth closed form.
    repeats : int, default 8
        Independent draws per unit, as in E2.
    width : int, default 16
        Hidden width of the trained networks, as in E2.
    lr_fraction : float, default 0.1
        Step size as a fraction of the inverse curvature bound, as in E2.
    spectrum : str, default "isotropic"
        ``isotropic`` or ``power_law`` (exponent ``a``).
    a : float, default 1.0
        Exponent of ``power_law``.
    """

    d: int = 200
    n: int = 20
    eps: float = 0.1
    factors: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(-4, 5))
    modes: tuple[str, ...] = MODES
    depths: tuple[int, ...] = (1, 7)
    infinite: bool = True
    repeats: int = 8
    width: int = 16
    lr_fraction: float = 0.1
    spectrum: str = "isotropic"
    a: float = 1.0


SIZES = {
    "quick": Config(d=60, n=6, factors=(0.5, 1.0, 2.0), repeats=4, lr_fraction=0.2),
    "default": Config(),
    "paper": Config(d=200, n=20, repeats=20),
}


def covariance(config: Config) -> covmod.Covariance:
    """The target covariance of the config (:func:`finetune_theory.covariance.family`)."""
    return covmod.family(config.spectrum, config.d, a=config.a)


def units(config: Config) -> list[Config]:
    """One unit per group ``{c, 1/c}`` of factors (so both sides share their draws).

    Parameters
    ----------
    config : Config
        The sweep to split.

    Returns
    -------
    list of Config
        The units, in order; splitting a unit again gives that unit alone.
    """
    groups: dict[float, list[float]] = {}
    for c in config.factors:
        if c <= 0:
            raise ValueError(f"factors must be > 0, got {c}")
        groups.setdefault(round(abs(math.log2(c)), 3), []).append(c)
    return [dataclasses.replace(config, factors=tuple(g)) for _, g in sorted(groups.items())]


def _unit(config: Config, rng: np.random.Generator) -> list[dict[str, Any]]:
    cov = covariance(config)
    b, n = config.repeats, config.n
    source, target = scaled_pairs(config.d, 1.0, config.eps, b, seed=rng)
    x = cov.sample(n, seed=rng, batch=b)
    y0 = np.matmul(x, target[:, :, None])[:, :, 0]
    inits = {
        depth: dl.balanced_init(source, depth, config.width, seed=rng) for depth in config.depths
    }
    group = round(abs(math.log2(config.factors[0])), 3)
    depths: list[float] = [*config.depths] + ([math.inf] if config.infinite else [])
    cases = []  # (mode, c, source, target, labels) in record order
    for mode in config.modes:
        if mode not in MODES:
            raise ValueError(f"modes must hold 'source' or 'target', got {mode!r}")
        for c in config.factors:
            src = c * source if mode == "source" else source
            tgt = c * target if mode == "target" else target
            cases.append((mode, c, src, tgt, c * y0 if mode == "target" else y0))
    closed = {
        (k, depth): (
            dl.finetune(x, case[4], case[2], depth),
            dl.finetune_scale(x, case[4], case[2], depth),
        )
        for k, case in enumerate(cases)
        for depth in depths
    }
    # every case of one depth trains in one batch (each repeat stops on its own)
    fits: dict[tuple[int, float], dict[str, np.ndarray]] = {}
    depth: float
    for depth in config.depths:
        layer = [c ** (1.0 / depth) if mode == "source" else 1.0 for mode, c, *_ in cases]
        batch = train_and_compare(
            [np.concatenate([f * w for f in layer]) for w in inits[int(depth)]],
            np.concatenate([x] * len(cases)),
            np.concatenate([case[4] for case in cases]),
            int(depth),
            lr_fraction=config.lr_fraction,
            closed=np.concatenate([closed[k, depth][0] for k in range(len(cases))]),
        )
        for k in range(len(cases)):
            fits[k, depth] = {key: v[k * b : (k + 1) * b] for key, v in batch.items()}
    records: list[dict[str, Any]] = []
    for k, (mode, c, src, tgt, _) in enumerate(cases):
        target_sq = np.asarray(cov.quad(tgt))
        for depth in depths:
            theta_closed, scale = closed[k, depth]
            fit = fits.get((k, depth))
            r_closed = risks(cov, theta_closed, tgt)
            r_tr = risks(cov, fit["theta"], tgt) if fit else np.full(b, np.nan)
            r_as = np.array(
                [
                    float(dl.expected_risk(cov, s, t, n, depth))
                    for s, t in zip(src, tgt, strict=True)
                ]
            )
            for i in range(b):
                rec: dict[str, Any] = {
                    "mode": mode,
                    "factor": float(c),
                    "group": group,
                    "depth": float(depth),
                    "repeat": i,
                    "d": config.d,
                    "n": n,
                    "eps": config.eps,
                    "width": config.width,
                    "target_sq": float(target_sq[i]),
                    "risk_trained": float(r_tr[i]),
                    "risk_closed": float(r_closed[i]),
                    "risk_asymptotic": float(r_as[i]),
                    "scale_closed": float(np.atleast_1d(scale)[i]),
                    "gap": float(fit["gap"][i]) if fit else math.nan,
                    "steps": int(fit["steps"][i]) if fit else -1,
                    "lr": float(fit["lr"][i]) if fit else math.nan,
                }
                for key in ("trained", "closed", "asymptotic"):
                    rec[f"rel_{key}"] = rec[f"risk_{key}"] / rec["target_sq"]
                records.append(rec)
    return records


def run_unit(config: Config, seed: int) -> list[dict[str, Any]]:
    """Compute one unit of E3 (one group ``{c, 1/c}`` of factors) from its own seed."""
    rng = as_generator(seed)
    records: list[dict[str, Any]] = []
    for unit in units(config):
        records.extend(_unit(unit, rng))
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
def summary(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error of the relative risks per (mode, factor, depth)."""
    return mean_se_columns(records, ["mode", "factor", "depth"])


def table(records: pd.DataFrame) -> pd.DataFrame:
    """Mean relative risk of the trained networks (closed form at infinite depth).

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).

    Returns
    -------
    pandas.DataFrame
    """
    s = summary(records)
    s["value"] = np.where(np.isfinite(s["rel_trained"]), s["rel_trained"], s["rel_closed"])
    s["column"] = [
        f"{m} x c, depth {'inf' if math.isinf(dd) else int(dd)}"
        for m, dd in zip(s["mode"], s["depth"], strict=True)
    ]
    out = s.pivot(index="factor", columns="column", values="value").round(4)
    out.index.name = "scale factor c"
    out.attrs["caption"] = (
        "Excess risk relative to ||theta_T||^2 (no unit), mean over trained networks (the "
        "closed form at infinite depth), per scale factor c (rows); columns: which teacher is "
        "multiplied by c (source: c theta_S towards theta_T; target: theta_S towards "
        "c theta_T) and the network depth."
    )
    return out


def claims(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts on depth 7 against depth 1, the scaling symmetry and the closed form.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).

    Returns
    -------
    list of Verdict
    """
    verdicts: list[Verdict] = []
    s = summary(records)
    finite = s[np.isfinite(s["depth"])]
    depths = sorted(finite["depth"].unique())
    if len(depths) >= 2:
        lo, hi = depths[0], depths[-1]
        piv = finite.pivot_table(index=["mode", "factor"], columns="depth", values="rel_trained")
        off = piv[np.abs(np.log(piv.index.get_level_values("factor"))) > 0.1]
        if not off.empty:
            ratio = off[hi] / off[lo]
            verdicts.append(
                Verdict(
                    f"Depth {hi:g} has a lower risk than depth {lo:g} whenever the scales differ "
                    "(c != 1), scaling either the source or the target",
                    bool((ratio < 1).all()),
                    f"risk ratio depth {hi:g} / depth {lo:g}: between {ratio.min():.2f} and "
                    f"{ratio.max():.2f} over {len(ratio)} (mode, c) settings",
                )
            )
        at_one = piv[np.isclose(piv.index.get_level_values("factor"), 1.0)]
        if not at_one.empty:
            r = (at_one[hi] / at_one[lo]).to_numpy()
            verdicts.append(
                Verdict(
                    "With matched scales (c = 1) depth makes little difference",
                    bool(np.all(np.abs(r - 1) < 0.15)),
                    f"risk ratio depth {hi:g} / depth {lo:g} at c = 1: "
                    + ", ".join(f"{v:.3f}" for v in r),
                )
            )
    both = records[records["mode"].isin(MODES)]
    src = both[both["mode"] == "source"].set_index(["factor", "depth", "repeat"])
    tgt = both[both["mode"] == "target"].copy()
    tgt["factor"] = (1.0 / tgt["factor"]).round(3)
    tgt = tgt.set_index(["factor", "depth", "repeat"])
    src = src.rename(index=lambda v: round(v, 3) if isinstance(v, float) else v, level=0)
    common = src.index.intersection(tgt.index)
    if len(common):
        a, b = src.loc[common], tgt.loc[common]
        rel_c = float(((a["rel_closed"] - b["rel_closed"]).abs() / b["rel_closed"]).max())
        fin = np.isfinite(a["rel_trained"])
        rel_t = (
            float(((a["rel_trained"] - b["rel_trained"]).abs()[fin] / b["rel_trained"][fin]).max())
            if fin.any()
            else 0.0
        )
        verdicts.append(
            Verdict(
                "Scaling the source by c is the same as scaling the target by 1/c (relative risk)",
                bool(rel_c < 1e-8 and rel_t < 1e-4),
                f"largest relative difference over {len(common)} matched rows: closed form "
                f"{rel_c:.1e}, trained {rel_t:.1e}",
            )
        )
    inf = records[(records["mode"] == "source") & np.isinf(records["depth"])]
    if not inf.empty and inf["factor"].nunique() > 1:
        spread = (
            inf.groupby(["group", "repeat"])["risk_closed"]
            .agg(lambda v: v.max() / v.min() - 1)
            .max()
        )
        verdicts.append(
            Verdict(
                "At infinite depth the scale of the source does not matter (only its direction)",
                bool(spread < 1e-8),
                f"largest relative change of the risk between c and 1/c on the same draws: "
                f"{spread:.1e}",
            )
        )
    fin = records[np.isfinite(records["depth"])]
    if not fin.empty:
        verdicts.append(
            Verdict(
                "Trained networks match the closed form",
                bool(fin["gap"].max() < 0.01),
                f"relative distance to the closed form: median {fin['gap'].median():.1e}, largest "
                f"{fin['gap'].max():.1e} ({len(fin)} networks)",
            )
        )
    return verdicts


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Relative risk against the factor c, one panel per mode, depths side by side.

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
    s = summary(records)
    modes = [m for m in MODES if m in set(s["mode"])]
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 5.0), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        g = s[s["mode"] == mode]
        for k, depth in enumerate(sorted(g["depth"].unique())):
            h = g[g["depth"] == depth].sort_values("factor")
            color = f"C{k}"
            if math.isinf(depth):
                ax.plot(
                    h["factor"],
                    h["rel_closed"],
                    ":",
                    color="k",
                    label="infinite depth: closed form",
                )
                continue
            ax.plot(
                h["factor"],
                h["rel_closed"],
                "-",
                color=color,
                label=f"depth {depth:g}: closed form",
            )
            ax.plot(
                h["factor"],
                h["rel_asymptotic"],
                "--",
                color=color,
                alpha=0.6,
                label=f"depth {depth:g}: asymptotic prediction",
            )
            ax.errorbar(
                h["factor"],
                h["rel_trained"],
                yerr=h["rel_trained_se"],
                fmt="o",
                color=color,
                ms=4,
                capsize=2,
                label=f"depth {depth:g}: trained (+- s.e.)",
            )
        log_axes(ax, sorted(g["factor"].unique()), lambda v: f"{v:.3g}")
        ax.set_xlabel(f"factor c multiplying the {mode}")
        ax.set_ylabel("excess risk / ||theta_T||^2\n(of the scaled target)")
        ax.set_title(f"scaling the {mode}")
    legend_outside(fig, axes, ncol=3)
    first = records.iloc[0]
    fig.suptitle(
        f"E3: risk against a scale mismatch, theta_T = theta_S + {first['eps']:g} xi "
        f"(d = {first['d']}, n = {first['n']})"
    )
    return finish(
        fig,
        outdir / "scaling_risk",
        layout="constrained",
        caption="Relative excess risk against the factor c that scales the source (left) or "
        "the target (right): away from c = 1 the deep network (depth 7) stays below linear "
        "regression (depth 1), trained networks (points) follow the closed form, and the two "
        "panels mirror each other (scaling the source by c is scaling the target by 1/c).",
    )


EXPERIMENT = Experiment(
    name="scaling",
    title="E3 - deep linear networks: scaling the source or the target (paper Fig. 2b)",
    description=(
        "A 7-layer and a 1-layer network fine-tuned from c theta_S towards theta_T, or from "
        "theta_S towards c theta_T, over a range of c: trained networks beside the closed form, "
        "the asymptotic prediction and the infinite-depth limit."
    ),
    config_cls=Config,
    sizes=SIZES,
    run_unit=run_unit,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)
