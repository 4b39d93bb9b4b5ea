"""``risk``: the predicted learning curve of a described setting."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import (
    depth,
    finite_float,
    formatter,
    nonnegative_int,
    positive_float,
    positive_int,
)

# ------------------------------------------------------------------ risk
_RISK_EPILOG = """\
The teachers are theta_T = alpha * theta_S + p * xi (p: --perturbation). Depth 1 is linear
regression; a larger depth (or inf) is a deep linear network fine-tuned from pretrained
weights. --eps is a requested excess risk, as in every command: the table then also names
the smallest listed n that reaches it.

examples:
  finetune-theory risk                                   power-law spectrum, d=200
  finetune-theory risk --spectrum isotropic --d 100 --n 5 10 20 40
  finetune-theory risk --depth 5 --alpha 2 --perturbation 0.1 --plot curve.png
  finetune-theory risk --eps 0.05                        n needed for excess risk 0.05
  finetune-theory risk --spectrum spiked --spikes 50 20 --noise 0.1 --depth inf
"""


def add_risk(sub: Any) -> None:
    p = sub.add_parser(
        "risk",
        help="predicted learning curve of a described setting",
        description="Expected excess risk of fine-tuning (and of learning from scratch)\n"
        "against the number of target samples n, for a described setting.",
        epilog=_RISK_EPILOG,
        formatter_class=formatter,
    )
    p.add_argument(
        "--spectrum",
        choices=("isotropic", "power-law", "spiked"),
        default="power-law",
        help="target covariance family (default: power-law)",
    )
    p.add_argument("--d", type=positive_int, default=200, help="input dimension (default: 200)")
    p.add_argument("--a", type=finite_float, default=1.0, help="power-law exponent (default: 1)")
    p.add_argument(
        "--spikes",
        type=positive_float,
        nargs="+",
        default=[10.0],
        metavar="VALUE",
        help="spiked eigenvalues on a unit spectrum (default: 10)",
    )
    p.add_argument(
        "--depth", type=depth, default=1, help="network depth, an integer or inf (default: 1)"
    )
    p.add_argument("--alpha", type=finite_float, default=1.0, help="target scale (default: 1)")
    p.add_argument(
        "--perturbation",
        type=finite_float,
        default=0.1,
        metavar="P",
        help="size of the random target perturbation p in theta_T = alpha theta_S + p xi "
        "(default: 0.1)",
    )
    p.add_argument(
        "--eps",
        type=positive_float,
        default=None,
        help="requested excess risk: report the smallest listed n reaching it",
    )
    p.add_argument("--noise", type=finite_float, default=0.0, help="label noise std (default: 0)")
    p.add_argument(
        "--n", type=positive_int, nargs="+", default=None, metavar="N", help="sample sizes"
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="teacher seed (default: 0)")
    p.add_argument("--plot", default=None, metavar="FILE", help="also draw the curve to FILE")
    p.set_defaults(handler=_cmd_risk)


def _cmd_risk(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..curves import learning_curve, plot_curve

    curve = learning_curve(
        spectrum=args.spectrum,
        d=args.d,
        a=args.a,
        spikes=args.spikes,
        depth=args.depth,
        alpha=args.alpha,
        perturbation=args.perturbation,
        noise=args.noise,
        n_values=args.n,
        seed=args.seed,
    )
    setting = (
        f"{args.spectrum}{f' a={args.a:g}' if args.spectrum == 'power-law' else ''}, d={args.d}, "
        f"depth={args.depth}, alpha={args.alpha:g}, perturbation={args.perturbation:g}, "
        f"noise={args.noise:g}"
    )
    table = Table(title=f"expected excess risk: {setting}", title_justify="left")
    for column in ("n", "fine-tuned", "from scratch", "scratch / fine-tuned"):
        table.add_column(column, justify="right")
    for row in curve.itertuples(index=False):
        table.add_row(
            f"{row.n}", f"{row.fine_tuned:.4g}", f"{row.from_scratch:.4g}", f"{row.gain:.3g}"
        )
    console = Console()
    console.print(table)
    if args.eps is not None:
        for column, label in (("fine_tuned", "fine-tuned"), ("from_scratch", "from scratch")):
            hit = curve.loc[curve[column] <= args.eps, "n"]
            where = f"n = {int(hit.iloc[0])}" if len(hit) else "no listed n"
            print(f"{label}: excess risk {args.eps:g} first reached at {where}")
    if args.plot:
        path = plot_curve(curve, args.plot, title=setting)
        print(f"plot: {path}")  # plain print: a long path must not be wrapped
    return 0
