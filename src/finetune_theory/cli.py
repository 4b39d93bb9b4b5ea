"""The ``finetune-theory`` command: argument parsing only; the work is in the library.

Each subcommand is two small functions: ``_add_<name>(subparsers)`` declares its arguments and
sets ``handler``; ``_cmd_<name>(args) -> int`` calls library code and prints. To add a command,
write both and append the ``_add_`` function to :data:`COMMANDS`.

Errors a user can cause (unknown experiment, unwritable folder, unreachable scheduler, a file
that is not a results store, ...) end with one line on standard error and a non-zero exit
status; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "COMMANDS"]

PROG = "finetune-theory"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# ------------------------------------------------------------------ argument types
def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _depth(text: str) -> float:
    if text.strip().lower() in {"inf", "infinity", "∞"}:
        return math.inf
    return _positive_int(text)


# ------------------------------------------------------------------ reproduce
_REPRODUCE_EPILOG = """\
experiments: measure (E1), depth (E2), scaling (E3), freezing (E4), relu (E5),
realistic (E6); 'finetune-theory list' shows which are installed.

examples:
  finetune-theory reproduce                          all experiments, default size, into results/
  finetune-theory reproduce measure depth --size quick --out /tmp/quick
  finetune-theory reproduce --workers 1              everything in this process
  finetune-theory reproduce --scheduler local:4      on a Dask LocalCluster with 4 workers
  finetune-theory reproduce --scheduler tcp://scheduler-host:8786
  finetune-theory reproduce relu --fresh             recompute E5, ignoring stored units

An interrupted run resumes where it stopped when started again with the same arguments:
finished units are read back from DIR/store.sqlite, not recomputed.
"""


def _add_reproduce(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run experiments; write figures, CSV records and report.html",
        description="Run the named experiments (all installed ones by default) and write one\n"
        "figure per result, the records as CSV and a self-contained report.html.",
        epilog=_REPRODUCE_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="experiment names")
    p.add_argument(
        "--size",
        choices=("quick", "default", "paper"),
        default="default",
        help="quick (seconds), default (minutes), paper (the paper's sizes); default: default",
    )
    p.add_argument(
        "--out", default="results", metavar="DIR", help="output folder (default: results)"
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local worker processes (default: one per core; 1 runs in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on Dask: tcp://HOST:PORT of a scheduler, or local:N for a LocalCluster",
    )
    p.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long to try reaching a Dask scheduler (default: 10)",
    )
    p.add_argument("--fresh", action="store_true", help="forget stored units of these experiments")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    p.add_argument(
        "--seed", type=_nonnegative_int, default=0, metavar="S", help="root seed (default: 0)"
    )
    p.add_argument(
        "--store", default=None, metavar="FILE", help="results store (default: DIR/store.sqlite)"
    )
    p.set_defaults(
        handler=_cmd_reproduce,
        interrupted="finished units are stored, run the same command to resume",
    )


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .runner.progress import progress_enabled
    from .runner.reproduction import command_line, reproduce

    result = reproduce(
        args.experiments,
        size=args.size,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        fresh=args.fresh,
        seed=args.seed,
        store=args.store,
        show_progress=progress_enabled(args.quiet),
        connect_timeout=args.connect_timeout,
        command=command_line(),
    )
    if not args.quiet:
        _print_outcomes(result)
    if result.failed:
        names = ", ".join(o.name for o in result.failed)
        print(f"{PROG}: error: experiment(s) failed: {names}; see {result.report}", file=sys.stderr)
        return 1
    return 0


def _print_outcomes(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"finetune-theory reproduce --size {result.info.size}", title_justify="left"
    )
    for column in ("experiment", "verdict", "claims", "units (new/stored)", "wall time"):
        table.add_column(column)
    colors = {"holds": "green", "does not hold": "red", "failed": "red", "no claims": "yellow"}
    for o in result.outcomes:
        units = f"{o.sweep.units_computed}/{o.sweep.units_reused}" if o.sweep else "-"
        claims = f"{o.claims_held}/{len(o.verdicts)}" if o.verdicts else "-"
        table.add_row(
            o.name, f"[{colors[o.status]}]{o.status}[/]", claims, units, f"{o.wall_seconds:.1f} s"
        )
    console = Console()
    console.print(table)
    print(f"report: {result.report}  ({result.info.wall_seconds:.1f} s in all)")


# ------------------------------------------------------------------ list
def _add_list(sub: Any) -> None:
    p = sub.add_parser(
        "list",
        help="list the experiments and their sizes",
        description="List every experiment, whether it is installed, and the number of units\n"
        "of work at each size.",
        epilog="example:\n  finetune-theory list",
        formatter_class=_formatter,
    )
    p.set_defaults(handler=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .runner.catalog import catalog

    table = Table(title="experiments (units of work per size)", title_justify="left")
    for column in ("name", "title", "quick", "default", "paper"):
        table.add_column(column)
    for entry in catalog():
        if entry.units is None:
            table.add_row(entry.name, f"[dim]{entry.problem}[/]", "-", "-", "-")
            continue
        counts = [str(entry.units.get(s, "-")) for s in ("quick", "default", "paper")]
        table.add_row(entry.name, entry.title, *counts)
    Console().print(table)
    return 0


# ------------------------------------------------------------------ risk
_RISK_EPILOG = """\
The teachers are theta_T = alpha * theta_S + eps * xi. Depth 1 is linear regression;
a larger depth (or inf) is a deep linear network fine-tuned from pretrained weights.

examples:
  finetune-theory risk                                   power-law spectrum, d=200
  finetune-theory risk --spectrum isotropic --d 100 --n 5 10 20 40
  finetune-theory risk --depth 5 --alpha 2 --eps 0.1 --plot curve.png
  finetune-theory risk --spectrum spiked --spikes 50 20 --noise 0.1 --depth inf
"""


def _add_risk(sub: Any) -> None:
    p = sub.add_parser(
        "risk",
        help="predicted learning curve of a described setting",
        description="Expected excess risk of fine-tuning (and of learning from scratch)\n"
        "against the number of target samples n, for a described setting.",
        epilog=_RISK_EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument(
        "--spectrum",
        choices=("isotropic", "power-law", "spiked"),
        default="power-law",
        help="target covariance family (default: power-law)",
    )
    p.add_argument("--d", type=_positive_int, default=200, help="input dimension (default: 200)")
    p.add_argument("--a", type=_finite_float, default=1.0, help="power-law exponent (default: 1)")
    p.add_argument(
        "--spikes",
        type=_positive_float,
        nargs="+",
        default=[10.0],
        metavar="VALUE",
        help="spiked eigenvalues on a unit spectrum (default: 10)",
    )
    p.add_argument(
        "--depth", type=_depth, default=1, help="network depth, an integer or inf (default: 1)"
    )
    p.add_argument("--alpha", type=_finite_float, default=1.0, help="target scale (default: 1)")
    p.add_argument(
        "--eps", type=_finite_float, default=0.1, help="target perturbation (default: 0.1)"
    )
    p.add_argument("--noise", type=_finite_float, default=0.0, help="label noise std (default: 0)")
    p.add_argument(
        "--n", type=_positive_int, nargs="+", default=None, metavar="N", help="sample sizes"
    )
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="teacher seed (default: 0)")
    p.add_argument("--plot", default=None, metavar="FILE", help="also draw the curve to FILE")
    p.set_defaults(handler=_cmd_risk)


def _cmd_risk(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .runner.risk import learning_curve, plot_curve

    curve = learning_curve(
        spectrum=args.spectrum,
        d=args.d,
        a=args.a,
        spikes=args.spikes,
        depth=args.depth,
        alpha=args.alpha,
        eps=args.eps,
        noise=args.noise,
        n_values=args.n,
        seed=args.seed,
    )
    setting = (
        f"{args.spectrum}{f' a={args.a:g}' if args.spectrum == 'power-law' else ''}, d={args.d}, "
        f"depth={args.depth}, alpha={args.alpha:g}, eps={args.eps:g}, noise={args.noise:g}"
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
    if args.plot:
        path = plot_curve(curve, args.plot, title=setting)
        print(f"plot: {path}")  # plain print: a long path must not be wrapped
    return 0


# ------------------------------------------------------------------ main
#: functions that each add one subcommand (append to extend the CLI)
_ADVISE_EPILOG = """\
examples:
  finetune-theory advise --data target.csv --target price --source pretrained.json
  finetune-theory advise --data target.csv --target y --source a.json --source b.csv \\
      --unlabelled more_inputs.csv --eps 0.1 --json advice.json --plot advice.png
"""


def _add_advise(sub: Any) -> None:
    from .advisor import add_advise_arguments

    p = sub.add_parser(
        "advise",
        help="predict whether fine-tuning pays off, and rank source models",
        description=(
            "From labelled target data (CSV) and one or more source models, predict the risk "
            "of fine-tuning against training from scratch at every n, the n needed for a "
            "requested risk, and the ranking of the sources."
        ),
        epilog=_ADVISE_EPILOG,
        formatter_class=_formatter,
    )
    add_advise_arguments(p)
    p.set_defaults(handler=_cmd_advise)


def _cmd_advise(args: argparse.Namespace) -> int:
    from .advisor import run_advise

    return run_advise(args)


COMMANDS: list[Callable[[Any], None]] = [_add_reproduce, _add_list, _add_risk, _add_advise]

_MAIN_EPILOG = """\
examples:
  finetune-theory list
  finetune-theory reproduce --size quick
  finetune-theory risk --depth inf --alpha 2
  finetune-theory advise --data target.csv --target y --source coef.json
  finetune-theory reproduce --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`COMMANDS`."""
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Fine-tuning with linear teachers: reproduce the experiments, predict risks.",
        epilog=_MAIN_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from .runner.errors import RunnerError
    from .runner.store import StoreError

    return (ValueError, OSError, RunnerError, StoreError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (0 success, 1 failure, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: already printed
        return exc.code if isinstance(exc.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    previous = _interrupt_on_sigterm()
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        hint = getattr(args, "interrupted", "")
        print(f"{PROG}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> Any:
    """Treat SIGTERM like Ctrl-C (clean stop, workers ended); the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
