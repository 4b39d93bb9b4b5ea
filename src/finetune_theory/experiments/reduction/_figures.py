"""E7's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._plotting import finish, open_figures
from ._verdicts import BIG_REDUCTION, _kind, _true

_MARK = {"top": "o", "random": "s", "tail": "^"}


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Reduction against the normalised measure; depth; ReLU; simulated against predicted."""
    plt, outdir = open_figures(outdir)
    paths: list[Path] = []
    th = _kind(records, "theory")
    if not th.empty:
        spectra = list(dict.fromkeys(th["spectrum"]))
        fig, axes = plt.subplots(
            1, len(spectra), figsize=(3.4 * len(spectra), 3.6), squeeze=False, sharey=True
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
            ax.text(
                0.03,
                0.03,
                f"source suffices: {len(suff)} of {len(g)}\n(not shown)",
                transform=ax.transAxes,
                fontsize=7,
            )
            ax.axhline(1.0, color="k", lw=0.8)
            ax.axhline(BIG_REDUCTION, color="k", lw=0.6, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("fine-tune / scratch risk at n_eps(fine-tune)")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_title(s.replace("_", " ").replace(":", " a = "), fontsize=9)
        axes[0, 0].set_ylabel("n_eps(scratch) / n_eps(fine-tune)")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(
            "E7: sample-complexity reduction against the covariance-aware measure "
            "(below the solid line fine-tuning needs more samples)",
            fontsize=10,
        )
        paths += finish(fig, outdir / "reduction_measure")

        fig, axes = plt.subplots(
            1, len(spectra), figsize=(3.4 * len(spectra), 3.4), squeeze=False, sharey=True
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
            ax.set_title(f"{s} (d = {int(d)}, eps/R0 = {f:g})", fontsize=8)
        axes[0, 0].set_ylabel("reduction (grey at 0.5: source suffices)")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("E7: the same Euclidean distance, reductions far apart", fontsize=10)
        paths += finish(fig, outdir / "reduction_distance")

    sim = _kind(records, "simulated")
    dp = _kind(records, "depth")
    rl = _kind(records, "relu")
    if not (sim.empty and dp.empty and rl.empty):
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), squeeze=False)
        ax = axes[0, 0]
        if not sim.empty:
            for i, (s, g) in enumerate(sim.groupby("spectrum", sort=False)):
                ax.scatter(g["reduction"], g["reduction_sim"], color=f"C{i}", s=16, label=s)
            lim = [0.5, max(2.0, float(np.nanmax(sim[["reduction", "reduction_sim"]].to_numpy())))]
            ax.plot(lim, lim, "k-", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=6)
        ax.set_xlabel("predicted reduction")
        ax.set_ylabel("simulated reduction")
        ax.set_title("simulated (real fine-tuning) vs theory", fontsize=9)
        ax = axes[0, 1]
        if not dp.empty:
            f = dp["eps_fraction"].max()
            g = _true(dp[dp["eps_fraction"] == f])
            pos = np.where(
                np.isfinite(g["depth"]), g["depth"], 2 * g["depth"][np.isfinite(g["depth"])].max()
            )
            for i, ((s, a), h) in enumerate(g.assign(pos=pos).groupby(["spectrum", "alpha"])):
                h = h.sort_values("pos")
                ax.plot(
                    h["pos"], h["reduction"], "o-", ms=3, color=f"C{i}", label=f"{s}, alpha {a:g}"
                )
            ax.set_yscale("log")
            ax.legend(fontsize=6)
            ax.set_title(f"deep linear, eps/R0 = {f:g} (rightmost: infinite depth)", fontsize=9)
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
            ax.legend(fontsize=7)
        ax.set_xlabel("teacher distance ||theta_T - theta_S|| (||theta_T|| = 1)")
        ax.set_ylabel("predicted n_eps (dotted: scratch)")
        ax.set_title("two-layer ReLU, NTK bound", fontsize=9)
        fig.suptitle("E7: simulation, depth and ReLU", fontsize=10)
        paths += finish(fig, outdir / "reduction_depth_relu")
    return paths
