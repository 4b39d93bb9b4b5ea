"""``advise``: will fine-tuning pay off on the user's data, and which source is best."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..advisor._io import read_csv
from ._common import finite_float, formatter, nonnegative_int, positive_int

_ADVISE_EPILOG = """\
examples:
  finetune-theory advise --data target.csv --target price --source pretrained.json
  finetune-theory advise --data target.csv --target y --source a.json --source b.csv \\
      --unlabelled more_inputs.csv --eps 0.1 --json advice.json --plot advice.png
"""


def add_advise(sub: Any) -> None:
    p = sub.add_parser(
        "advise",
        help="predict whether fine-tuning pays off, and rank source models",
        description=(
            "From labelled target data (CSV) and one or more source models, predict the risk "
            "of fine-tuning against training from scratch at every n, the n needed for a "
            "requested risk, and the ranking of the sources."
        ),
        epilog=_ADVISE_EPILOG,
        formatter_class=formatter,
    )
    _add_arguments(p)
    p.set_defaults(handler=_cmd_advise)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``advise`` options."""
    parser.add_argument("--data", required=True, help="CSV of labelled target data")
    parser.add_argument("--target", required=True, help="name of the label column in --data")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="FILE",
        help="source model coefficients (.json or .csv); repeat for several sources",
    )
    parser.add_argument("--unlabelled", help="CSV of extra target inputs without labels")
    parser.add_argument(
        "--features", help="comma-separated feature columns (default: every other column)"
    )
    parser.add_argument("--eps", type=finite_float, help="requested test MSE")
    parser.add_argument("--n-max", type=positive_int, help="largest sample size considered")
    parser.add_argument(
        "--boot", type=positive_int, default=50, help="bootstrap replicates (default 50)"
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", help="write the full advice as JSON to this file")
    parser.add_argument("--plot", help="write a figure (PNG/SVG) to this file")


def _read_cli_data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    table = read_csv(args.data, "--data")
    if args.target not in table.columns:
        raise ValueError(
            f"--target column {args.target!r} is not in {Path(args.data).name!r} "
            f"(columns: {', '.join(map(str, table.columns[:10]))})"
        )
    if args.features:
        feats = [f.strip() for f in args.features.split(",") if f.strip()]
        missing = [f for f in feats if f not in table.columns]
        if missing:
            raise ValueError(f"--features columns not in --data: {', '.join(missing)}")
    else:
        feats = [c for c in table.columns if c != args.target]
    if not feats:
        raise ValueError("--data has no feature columns besides the target")
    y = table[args.target]
    if y.dtype.kind not in "biuf":
        raise ValueError(f"--target column {args.target!r} is not numeric (dtype {y.dtype})")
    if y.isna().any():
        raise ValueError(
            f"--target column {args.target!r} has {int(y.isna().sum())} missing values"
        )
    unl = None
    if args.unlabelled:
        utab = read_csv(args.unlabelled, "--unlabelled")
        missing = [f for f in feats if f not in utab.columns]
        if missing:
            raise ValueError(f"--unlabelled lacks the feature columns {', '.join(missing)}")
        unl = utab[feats]
    return table[feats], y, unl


def _cmd_advise(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..advisor import advise

    X, y, unl = _read_cli_data(args)
    advice = advise(
        X,
        y,
        list(args.source) or None,
        X_unlabelled=unl,
        eps=args.eps,
        n_max=args.n_max,
        n_boot=args.boot,
        seed=args.seed,
    )
    console = Console()
    console.print(advice.table())
    if advice.best is not None:
        b = advice.best
        verdict = (
            "fine-tuning beats training from scratch"
            if b.risk_at(advice.n_grid, advice.n_labelled)
            < advice.scratch.risk_at(advice.n_grid, advice.n_labelled)
            else "training from scratch is predicted to do at least as well"
        )
        console.print(f"Best source: [bold]{b.name}[/bold]; at n = {advice.n_labelled} {verdict}.")
    for line in advice.assumptions:
        console.print(f"- {line}", highlight=False)
    if args.json:
        advice.to_json(args.json)
    if args.plot:
        advice.plot(args.plot)
    return 0
