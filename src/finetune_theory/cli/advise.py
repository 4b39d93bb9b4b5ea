"""``advise``: will fine-tuning pay off on the user's data, and which source is best."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    PLOT_SUFFIXES,
    check_output,
    flatten,
    formatter,
    positive_float,
    positive_int,
)

#: the file formats ``advise --out`` writes, by suffix (as ``risk --out``)
_OUT_SUFFIXES = (".csv", ".json")

_ADVISE_EPILOG = """\
examples:
  finetune-theory advise --example
  finetune-theory advise --data houses.csv --target log_price --source source_coef.json
  finetune-theory advise --data target.csv --target y --source a.json b.csv \\
      --unlabelled more_inputs.csv --eps 0.1 --out advice.json --plot advice.png
  finetune-theory advise --data target.csv --target y --source a.json --format csv
  finetune-theory advise --data target.csv --target y --source a.json --features x1 x2 x3

Lists take their values separated by spaces (--source a.json b.csv, --features x1 x2); for
--features commas work too (--features x1,x2), and repeating an option adds to its list.

A source file is JSON {"coef": {feature: value, ...} or [values], "intercept": value} (the
intercept is required: write 0 if the model has none), or a CSV (one row with a header of
feature names, or two columns feature,coefficient). A feature constant on the labelled rows is
dropped and each source's coefficient on it folded into its intercept (the advice says so).
"""


def add_advise(sub: Any) -> None:
    p = sub.add_parser(
        "advise",
        help="compare keeping, fine-tuning and replacing source models on your data",
        description=(
            "From labelled target data (CSV) and one or more source models, predict the test\n"
            "MSE of every strategy (the source as is, with its intercept refitted, fine-tuned\n"
            "to zero training loss, ridge towards it, ridge from scratch, the mean) at the\n"
            "labelled n and beyond, and recommend one."
        ),
        epilog=_ADVISE_EPILOG,
        formatter_class=formatter,
    )
    _add_arguments(p)
    p.set_defaults(handler=_cmd_advise)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``advise`` options."""
    parser.add_argument("--data", help="CSV of labelled target data (required without --example)")
    parser.add_argument("--target", help="name of the label column in --data (required too)")
    parser.add_argument(
        "--source",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="source model coefficients, one file (.json or .csv) per source",
    )
    parser.add_argument("--unlabelled", help="CSV of extra target inputs without labels")
    parser.add_argument(
        "--features",
        action="extend",
        nargs="+",
        type=_names,
        metavar="NAME",
        help="feature columns (default: every column but the target)",
    )
    parser.add_argument(
        "--eps", type=positive_float, help="requested test MSE: report the n each strategy needs"
    )
    parser.add_argument(
        "--n-max", type=positive_int, help="largest sample size considered (table and scans)"
    )
    parser.add_argument(
        "--confidence",
        type=positive_float,
        default=0.8,
        help="level of the intervals, in (0, 1) (default 0.8)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="what to print: a table with the recommendation (default), CSV rows or JSON",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="also write the advice to FILE (.csv rows or .json)"
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the full advice as JSON (as --out FILE.json)"
    )
    parser.add_argument(
        "--plot", metavar="FILE", help="also draw the advice to FILE (.png/.svg/.pdf)"
    )
    parser.add_argument(
        "--example",
        action="store_true",
        help="use the example shipped with the package (40 target houses and a source model) "
        "for --data, --target and --source",
    )


def _names(text: str) -> list[str]:
    """The column names of one ``--features`` value (commas separate names too)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _use_example(args: argparse.Namespace) -> None:
    """``--example``: the shipped files stand in for --data, --target and --source."""
    if args.example:
        if args.data or args.target or args.source:
            raise ValueError("--example replaces --data, --target and --source; give either")
        from ..data import advisor_example

        example = advisor_example()
        args.data, args.target = str(example.data), example.target
        args.source = [str(example.source)]
    elif not args.data or not args.target:
        raise ValueError("--data and --target are required (or --example for a demonstration)")


def _columns(cols: Any, limit: int = 10) -> str:
    names = [str(c) for c in cols]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", ... ({more} more)" if more > 0 else "")


def _read_cli_data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from .._userfiles import read_csv

    _use_example(args)
    table = read_csv(args.data, "--data")
    if args.target not in table.columns:
        raise ValueError(
            f"--target column {args.target!r} is not in {Path(args.data).name!r} "
            f"(columns: {_columns(table.columns)})"
        )
    if args.features is not None:
        feats = list(dict.fromkeys(flatten(args.features) or []))
        if not feats:
            raise ValueError(
                "--features is empty; give column names separated by spaces, or leave it out "
                "to use every column but the target"
            )
        missing = [f for f in feats if f not in table.columns]
        if missing:
            raise ValueError(
                f"--features columns not in --data: {', '.join(missing)} (columns: "
                f"{_columns(table.columns)})"
            )
        if args.target in feats:
            raise ValueError(f"--features lists the --target column {args.target!r}")
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
    import sys

    from rich.console import Console

    from .. import advisor

    # fail before the analysis when an output cannot be written (as every command)
    if args.out:
        check_output(args.out, "--out", _OUT_SUFFIXES)
    if args.json:
        check_output(args.json, "--json", (".json",))
    if args.plot:
        check_output(args.plot, "--plot", PLOT_SUFFIXES)
    if not 0 < args.confidence < 1:
        raise ValueError(f"--confidence must lie in (0, 1), got {args.confidence}")
    X, y, unl = _read_cli_data(args)
    if args.n_max is not None and args.n_max < len(y):
        raise ValueError(
            f"--n-max {args.n_max} is below the {len(y)} labelled rows of --data; give at least "
            f"{len(y)} (the advice is for the labelled n and beyond) or leave it out"
        )
    advice = advisor.advise(
        X,
        y,
        list(args.source) or None,
        X_unlabelled=unl,
        eps=args.eps,
        n_max=args.n_max,
        confidence=args.confidence,
    )
    if args.format == "csv":
        sys.stdout.write(advice.to_csv())
    elif args.format == "json":
        sys.stdout.write(advice.to_json() + "\n")
    else:
        terminal = sys.stdout.isatty()
        # off a terminal nothing is cut: the whole table, however wide
        console = Console(width=None if terminal else 400, soft_wrap=not terminal)
        width = console.width if terminal else None
        console.print(advice.table(width))
        narrow = width is not None and width < 120
        for line in (advice.legend() if narrow else []) + advice.lines():
            console.print(line, highlight=False, markup=False)
    # file messages on stderr when stdout is data, as risk does
    stream = sys.stdout if args.format == "table" else sys.stderr
    if args.out:
        from ..runner.files import atomic_write

        json_out = args.out.lower().endswith(".json")
        text = advice.to_json() + "\n" if json_out else advice.to_csv()
        atomic_write(check_output(args.out, "--out"), text)
        print(f"written: {args.out}", file=stream)
    if args.json:
        advice.to_json(args.json)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = advice.plot(path=args.plot)
        plt.close(ax.figure)
    return 0
