"""E7's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._deep import depth_axis
from .._plotting import finish, infinity_break, legend_below, legend_outside, open_figures
from ._verdicts import BIG_REDUCTION, _kind, _true

_MARK = {"top": "o", "random": "s", "tail": "^"}


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Reduction against the normalised measure; depth; ReLU; simulated against predicted.

    Parameters
    ----------
    records : pandas.DataFrame
        The records of :func:`run` (one row per record; the runner's stored records).
    outdir : pathlib.Path
        Folder the figures are written to (created if missing).

    Returns
    -------
    list of pathlib.Path
        The files written (only figures of the parts the records hold): SVG, and PNG where
        :func:`finetune_theory.experiments.figure_options` sets a resolution.
    """
    plt, outdir = open_figures(outdir)
    paths: list[Path] = []
    th = _kind(records, "theory")
    if not th.empty:
        spectra = list(dict.fromkeys(th["spectrum"]))
        fig, axes = plt.subplots(
            1, len(spectra), figsize=(3.6 * len(spectra), 4.6), squeeze=False, sharey=True
        )
        for ax, s in zip(axes[0], spectra, strict=True):
            g = th[th["spectrum"] == s]
            for i, d in enumerate(sorted(g["d"].unique())):
                for where, mark in _MARK.items():
                    h = _true(g[(g["d"] == d) & (g["placement"] == where)])
                    ax.scatter(
                        h["measure"],
                        h["reduction"],
                        marker=mark,
                        s=14,
                        color=f"C{i}",
                        alpha=0.7,
                        label=f"d = {int(d)}, {where}" if s == spectra[0] else None,
                    )
            suff = g[g["source_suffices"].astype(bool)]
            ax.axhline(1.0, color="k", lw=0.8)
            ax.axhline(BIG_REDUCTION, color="k", lw=0.6, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("fine-tune / scratch risk at n_eps(fine-tune)")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_title(
                s.replace("_", " ").replace(":", " a = ")
                + f"\n(source suffices: {len(suff)} of {len(g)}, not shown)"
            )
        axes[0, 0].set_ylabel("n_eps(scratch) / n_eps(fine-tune)")
        legend_outside(fig, axes, ncol=4)
        fig.suptitle(
            "E7: sample-complexity reduction against the covariance-aware measure\n"
            "(below the solid line fine-tuning needs more samples)"
        )
        paths += finish(
            fig,
            outdir / "reduction_measure",
            layout="constrained",
            caption="Predicted sample-complexity reduction (scratch / fine-tune) against the "
            "covariance-aware measure, per spectrum, dimension (colour) and placement of the "
            "difference (marker): the reduction should fall as the measure grows, whatever "
            "the spectrum or d, while the dotted line marks a large reduction.",
        )

        fig, axes = plt.subplots(
            1, len(spectra), figsize=(3.6 * len(spectra), 4.4), squeeze=False, sharey=True
        )
        d = th["d"].max()
        for ax, s in zip(axes[0], spectra, strict=True):
            g = th[(th["spectrum"] == s) & (th["d"] == d)]
            f = g["eps_fraction"].max()
            for where, mark in _MARK.items():
                h = g[(g["placement"] == where) & (g["eps_fraction"] == f)].sort_values("distance")
                t = _true(h)
                ax.plot(t["distance"], t["reduction"], marker=mark, label=where)
                suff = h[h["source_suffices"].astype(bool)]
                ax.plot(
                    suff["distance"],
                    np.full(len(suff), 0.5),
                    marker=mark,
                    ls="",
                    mfc="none",
                    color="grey",
                )
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("||Delta|| / ||theta_T||")
            ax.set_title(f"{s}\n(d = {int(d)}, eps/R0 = {f:g})")
        axes[0, 0].set_ylabel("reduction (grey at 0.5: source suffices)")
        legend_outside(fig, axes, ncol=2)
        fig.suptitle("E7: the same Euclidean distance, reductions far apart")
        paths += finish(
            fig,
            outdir / "reduction_distance",
            layout="constrained",
            caption="Predicted reduction against the Euclidean distance ||Delta|| / "
            "||theta_T||, for a difference placed in the top or the tail directions: at one "
            "and the same distance the two placements give reductions far apart, so the "
            "Euclidean distance alone cannot predict the reduction.",
        )

    sim = _kind(records, "simulated")
    dp = _kind(records, "depth")
    rl = _kind(records, "relu")
    if not (sim.empty and dp.empty and rl.empty):
        fig, axes = plt.subplots(1, 3, figsize=(13, 5.4), squeeze=False)
        ax = axes[0, 0]
        if not sim.empty:
            for i, (s, g) in enumerate(sim.groupby("spectrum", sort=False)):
                ax.scatter(g["reduction"], g["reduction_sim"], color=f"C{i}", s=16, label=s)
            lim = [0.5, max(2.0, float(np.nanmax(sim[["reduction", "reduction_sim"]].to_numpy())))]
            ax.plot(lim, lim, "k-", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            legend_below(ax, ncol=2)
        ax.set_xlabel("predicted reduction")
        ax.set_ylabel("simulated reduction")
        ax.set_title("simulated (real fine-tuning)\nagainst theory")
        ax = axes[0, 1]
        if not dp.empty:
            f = dp["eps_fraction"].max()
            g = _true(dp[dp["eps_fraction"] == f])
            pos, inf_at = depth_axis(g["depth"])
            for i, ((s, a), h) in enumerate(g.assign(pos=pos).groupby(["spectrum", "alpha"])):
                h = h.sort_values("pos")
                ax.plot(
                    h["pos"], h["reduction"], "o-", ms=3, color=f"C{i}", label=f"{s}, alpha {a:g}"
                )
            ax.set_yscale("log")
            legend_below(ax, ncol=1)
            ax.set_title(f"deep linear\n(eps/R0 = {f:g})")
            infinity_break(ax, pos.tolist(), inf_at)
        else:
            ax.set_xlabel("depth N")
        ax.set_ylabel("reduction")
        ax = axes[0, 2]
        if not rl.empty:
            for i, (e, h) in enumerate(rl.groupby("eps")):
                h = h.sort_values("distance")
                ax.plot(h["distance"], h["n_finetune"], "o-", color=f"C{i}", label=f"eps {e:g}")
                ax.axhline(h["n_scratch"].iloc[0], color=f"C{i}", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            legend_below(ax, ncol=2)
        ax.set_xlabel("teacher distance ||theta_T - theta_S||\n(||theta_T|| = 1)")
        ax.set_ylabel("predicted n_eps (dotted: scratch)")
        ax.set_title("two-layer ReLU\nNTK bound")
        fig.suptitle("E7: simulation, depth and ReLU")
        paths += finish(
            fig,
            outdir / "reduction_depth_relu",
            layout="constrained",
            caption="Left: reductions measured by really fine-tuning against the predicted "
            "ones (the line is equality). Middle: the predicted reduction of deep linear "
            "networks against depth, infinite depth past the axis break. Right: for the "
            "two-layer ReLU network, the samples fine-tuning needs grow with the teacher "
            "distance, below those of scratch (dotted) when the source is close.",
        )
    return paths
