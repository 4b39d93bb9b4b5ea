"""``risk``: the predicted learning curve of a described setting."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ._common import (
    PLOT_SUFFIXES,
    check_output,
    depth,
    finite_float,
    flatten,
    formatter,
    int_at_least,
    list_of,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)

# ------------------------------------------------------------------ risk
_RISK_EPILOG = """\
The teachers are theta_T = alpha * theta_S + p * xi (p: --perturbation, theta_S and xi unit
vectors). Depth 1 is linear regression; a larger depth (or inf) is a deep linear network
fine-tuned from pretrained weights. The excess risk is E ||theta - theta_T||^2_Sigma, in the
squared units of the label; the ratio column is from scratch / fine-tuned (above 1: the
source helps), "-" where both risks are 0. --eps is a requested excess risk, as in every
command: the output then also gives the smallest n that reaches it, over all n.

Lists take their values separated by spaces (--n 5 10 20); commas work too (--n 5,10,20).

examples:
  finetune-theory risk                                   power-law spectrum, d=200
  finetune-theory risk --spectrum isotropic --d 100 --n 5 10 20 40
  finetune-theory risk --depth 5 --alpha 2 --perturbation 0.1 --plot curve.png
  finetune-theory risk --eps 0.05                        n needed for excess risk 0.05
  finetune-theory risk --spectrum spiked --spikes 50 20 --noise 0.1 --depth inf
  finetune-theory risk --format json --out curve.json    machine-readable
"""

#: the file formats ``risk --out`` writes, by suffix
_OUT_SUFFIXES = (".csv", ".json")


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
    p.add_argument(
        "--d", type=int_at_least(2), default=200, help="input dimension, >= 2 (default: 200)"
    )
    p.add_argument(
        "--a",
        type=finite_float,
        default=None,
        help="power-law exponent, --spectrum power-law only (default: 1)",
    )
    p.add_argument(
        "--spikes",
        type=list_of(positive_float),
        nargs="+",
        default=None,
        metavar="VALUE",
        help="spiked eigenvalues on a unit spectrum, --spectrum spiked only (default: 10)",
    )
    p.add_argument(
        "--depth", type=depth, default=1, help="network depth, an integer or inf (default: 1)"
    )
    p.add_argument("--alpha", type=finite_float, default=1.0, help="target scale (default: 1)")
    p.add_argument(
        "--perturbation",
        type=nonnegative_float,
        default=0.1,
        metavar="P",
        help="size p >= 0 of the random target perturbation in theta_T = alpha theta_S + p xi "
        "(default: 0.1)",
    )
    p.add_argument(
        "--eps",
        type=positive_float,
        default=None,
        help="requested excess risk: also give the smallest n reaching it",
    )
    p.add_argument(
        "--noise", type=nonnegative_float, default=0.0, help="label noise std (default: 0)"
    )
    p.add_argument(
        "--n",
        type=list_of(positive_int),
        nargs="+",
        default=None,
        metavar="N",
        help="sample sizes (default: 8 sizes from about d/50 to d/2)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="teacher seed (default: 0)")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="what to print: a table (default), CSV rows or JSON",
    )
    p.add_argument(
        "--out", default=None, metavar="FILE", help="also write the curve to FILE (.csv or .json)"
    )
    p.add_argument(
        "--plot", default=None, metavar="FILE", help="also draw the curve to FILE (.png/.svg/.pdf)"
    )
    p.set_defaults(handler=_cmd_risk)


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse options that the chosen setting would ignore, and unwritable outputs, up front."""
    if args.spikes is not None and args.spectrum != "spiked":
        raise ValueError(f"--spikes applies to --spectrum spiked only, not {args.spectrum}")
    if args.a is not None and args.spectrum != "power-law":
        raise ValueError(f"--a applies to --spectrum power-law only, not {args.spectrum}")
    if args.plot:
        check_output(args.plot, "--plot", PLOT_SUFFIXES)
    if args.out:
        check_output(args.out, "--out", _OUT_SUFFIXES)


def _setting(args: argparse.Namespace) -> dict[str, Any]:
    """The described setting: keyword arguments of :func:`finetune_theory.curves.learning_curve`."""
    return {
        "spectrum": args.spectrum,
        "d": args.d,
        "a": 1.0 if args.a is None else args.a,
        "spikes": flatten(args.spikes) or [10.0],
        "depth": args.depth,
        "alpha": args.alpha,
        "perturbation": args.perturbation,
        "noise": args.noise,
        "seed": args.seed,
    }


def _ratio(scratch: float, tuned: float) -> float:
    """from scratch / fine-tuned: ``inf`` when only fine-tuning is exact, NaN when both are."""
    if tuned > 0:
        return scratch / tuned
    return math.inf if scratch > 0 else math.nan


def _curve(args: argparse.Namespace, setting: dict[str, Any]) -> Any:
    """The learning curve with a ``ratio`` column; an overflowing setting is refused."""
    import numpy as np

    from ..curves import learning_curve

    with np.errstate(all="ignore"):  # an overflow is reported below, in one line
        curve = learning_curve(**setting, n_values=flatten(args.n))
    risks = curve[["fine_tuned", "from_scratch"]].to_numpy()
    # with label noise the risk is inf where the noise term diverges (n near the rank)
    bad = np.isnan(risks) | (np.isinf(risks) if args.noise == 0 else False)
    if bad.any():
        raise ValueError(
            f"the risks overflow double precision with --alpha {args.alpha:g} and "
            f"--perturbation {args.perturbation:g} (they grow with the square of the teachers' "
            "norms): use values below about 1e150"
        )
    curve["ratio"] = [
        _ratio(s, t) for s, t in zip(curve["from_scratch"], curve["fine_tuned"], strict=True)
    ]
    return curve.drop(columns=["gain"], errors="ignore")


def _samples_needed(setting: dict[str, Any], eps: float) -> dict[str, int | None]:
    """The smallest n (over all n) whose expected excess risk is at most ``eps``.

    Linear regression (and learning from scratch) take the exact count of
    :func:`finetune_theory.linear.sample_complexity`. A deeper network scans every n up to the
    rank; above the rank only the label noise remains, the same for every start, so its count
    is the scratch count there.
    """
    import numpy as np

    from .. import linear
    from ..asymptotics import numerical_rank
    from ..curves import make_covariance
    from ..teachers import scaled_pair

    cov = make_covariance(setting["spectrum"], setting["d"], setting["a"], setting["spikes"])
    pair = scaled_pair(
        setting["d"], alpha=setting["alpha"], eps=setting["perturbation"], seed=setting["seed"]
    )
    source = np.asarray(pair.theta_source, dtype=np.float64)
    target = np.asarray(pair.theta_target, dtype=np.float64)
    noise = setting["noise"]
    scratch = linear.sample_complexity(cov, np.zeros_like(target), target, eps, noise=noise)
    if setting["depth"] == 1:
        tuned: int | None = linear.sample_complexity(cov, source, target, eps, noise=noise)
    else:
        from .. import deep_linear

        if float(cov.quad(source - target)) <= eps:
            tuned = 0
        else:
            rank = numerical_rank(cov.eigvals)
            ns = np.arange(1, rank + 1)
            with np.errstate(all="ignore"):
                risk = np.atleast_1d(
                    deep_linear.expected_risk(
                        cov, source, target, ns, setting["depth"], noise=noise
                    )
                )
            hits = np.flatnonzero(risk <= eps)
            tuned = int(ns[hits[0]]) if hits.size else (scratch if scratch > rank else None)
    return {"fine_tuned": tuned, "from_scratch": int(scratch)}


def _describe(setting: dict[str, Any]) -> str:
    spectrum = setting["spectrum"]
    if spectrum == "power-law":
        spectrum += f" a={setting['a']:g}"
    elif spectrum == "spiked":
        spectrum += " spikes=" + ",".join(f"{s:g}" for s in setting["spikes"])
    return (
        f"{spectrum}, d={setting['d']}, depth={setting['depth']}, alpha={setting['alpha']:g}, "
        f"perturbation={setting['perturbation']:g}, noise={setting['noise']:g}"
    )


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _as_json(setting: dict[str, Any], curve: Any, needed: dict[str, Any] | None, eps: Any) -> str:
    import json

    rows = [
        {
            "n": int(row.n),
            "fine_tuned": _finite_or_none(row.fine_tuned),
            "from_scratch": _finite_or_none(row.from_scratch),
            "ratio": _finite_or_none(row.ratio),
        }
        for row in curve.itertuples(index=False)
    ]
    payload: dict[str, Any] = {
        "setting": {**setting, "depth": _finite_or_none(setting["depth"]) or "inf"},
        "quantity": "expected excess risk E||theta - theta_T||^2_Sigma; ratio = from scratch / "
        "fine-tuned (null where fine-tuned is 0)",
        "curve": rows,
    }
    if needed is not None:
        payload["samples_needed"] = {"eps": eps, **needed}
    return json.dumps(payload, indent=2, allow_nan=False)


def _as_csv(curve: Any) -> str:
    lines = ["n,fine_tuned,from_scratch,ratio"]
    for row in curve.itertuples(index=False):
        ratio = "" if math.isnan(row.ratio) else repr(float(row.ratio))
        lines.append(f"{int(row.n)},{float(row.fine_tuned)!r},{float(row.from_scratch)!r},{ratio}")
    return "\n".join(lines) + "\n"


def _ratio_cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


def _needed_lines(needed: dict[str, Any], eps: float) -> list[str]:
    lines = []
    # with no sample, fine-tuning predicts with the source and learning from scratch with zero
    starts = {"fine_tuned": "the source alone", "from_scratch": "the zero predictor"}
    for key, label in (("fine_tuned", "fine-tuned"), ("from_scratch", "from scratch")):
        n = needed[key]
        if n is None:
            where = "no n up to the rank"
        elif n == 0:
            where = f"n = 0 ({starts[key]} is within it)"
        else:
            where = f"n = {n}"
        lines.append(f"{label}: excess risk {eps:g} first reached at {where}")
    return lines


def _cmd_risk(args: argparse.Namespace) -> int:
    _check_arguments(args)
    setting = _setting(args)
    curve = _curve(args, setting)
    needed = _samples_needed(setting, args.eps) if args.eps is not None else None
    described = _describe(setting)
    if args.format == "json":
        sys.stdout.write(_as_json(setting, curve, needed, args.eps) + "\n")
    elif args.format == "csv":
        sys.stdout.write(_as_csv(curve))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"expected excess risk: {described}",
            caption="excess risk E||theta - theta_T||^2_Sigma, in squared label units; "
            "ratio: from scratch / fine-tuned ('-': both 0)",
            title_justify="left",
            caption_justify="left",
        )
        for column in ("n", "fine-tuned", "from scratch", "ratio scratch / fine-tuned"):
            table.add_column(column, justify="right")
        for row in curve.itertuples(index=False):
            table.add_row(
                f"{row.n}",
                f"{row.fine_tuned:.4g}",
                f"{row.from_scratch:.4g}",
                _ratio_cell(row.ratio),
            )
        Console().print(table)
        if needed is not None:
            for line in _needed_lines(needed, args.eps):
                print(line)
    if args.out:
        from ..runner.files import atomic_write

        text = (
            _as_json(setting, curve, needed, args.eps) + "\n"
            if args.out.lower().endswith(".json")
            else _as_csv(curve)
        )
        atomic_write(check_output(args.out, "--out"), text)
        print(f"written: {args.out}", file=sys.stdout if args.format == "table" else sys.stderr)
    if args.plot:
        from ..curves import plot_curve

        path = plot_curve(curve, check_output(args.plot, "--plot"), title=described)
        # plain print (a long path must not be wrapped); on stderr when stdout is data
        print(f"plot: {path}", file=sys.stdout if args.format == "table" else sys.stderr)
    return 0
