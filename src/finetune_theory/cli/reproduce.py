"""``reproduce`` and ``list``: run experiments into a folder; show the catalogue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..runner import MAX_WORKERS  # from the light runner._base: the command starts fast
from ._common import (
    PROG,
    formatter,
    int_at_least,
    nonnegative_int,
    positive_float,
)


def int_in_range(low: int, high: int) -> Any:
    """An argparse type: a whole number from ``low`` to ``high``."""
    at_least = int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected a number from {low} to {high}, got {value}")
        return value

    return parse


# ------------------------------------------------------------------ reproduce
_REPRODUCE_EPILOG = """\
examples:
  finetune-theory reproduce                          every experiment, default size
  finetune-theory reproduce measure depth --size quick --out /tmp/quick
  finetune-theory reproduce --workers 1              everything in this process
  finetune-theory reproduce --scheduler local:4      on a Dask LocalCluster with 4 workers
  finetune-theory reproduce --scheduler tcp://scheduler-host:8786
  finetune-theory reproduce relu --fresh             recompute E5, ignoring stored units

An interrupted run resumes where it stopped when started again with the same arguments:
finished units are read back from the store (DIR/store.sqlite with its -wal and -shm files),
not recomputed, as long as the code that computed them is unchanged. One run at a time per
output folder: a second one is refused and names the PID of the first.
"""

#: the remedy each library error hint points to, in this command's words
_HINTS = {
    "other-store": "pass another --out or --store",
    "other-out": "or choose another --out",
    "timeout": "see --timeout",
    "connect-timeout": "see --connect-timeout",
    "scheduler": "(needed by --scheduler)",
}


def _experiments_epilog() -> str:
    """The experiment list of the help, generated from the registry (report order, E1...)."""
    import textwrap

    from ..experiments import REGISTRY

    names = ", ".join(f"{name} (E{i})" for i, name in enumerate(REGISTRY, 1))
    text = f"experiments: {names}; 'finetune-theory list' shows which are installed."
    return textwrap.fill(text, width=92) + "\n\n"


def add_reproduce(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run experiments; write figures, CSV records and report.html",
        description="Run the named experiments (all installed ones by default) and write one\n"
        "figure per result, the records as CSV and a self-contained report.html.",
        epilog=_experiments_epilog() + _REPRODUCE_EPILOG,
        formatter_class=formatter,
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
        type=int_in_range(1, MAX_WORKERS),
        default=None,
        metavar="N",
        help=f"local worker processes, 1 to {MAX_WORKERS} (default: one per core, "
        "but 1 at --size quick; 1 runs in this process)",
    )
    p.add_argument(
        "--scheduler",
        type=_scheduler,
        default=None,
        metavar="ADDRESS",
        help="run on Dask: tcp://HOST:PORT of a scheduler, or local:N for a LocalCluster",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long to try reaching a Dask scheduler (default: 10)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="end a Dask run that has no worker or no scheduler for this long (default: 60)",
    )
    p.add_argument(
        "--dpi",
        type=int_at_least(10),
        default=None,
        help="also write each figure as PNG at this resolution (default: SVG only)",
    )
    p.add_argument("--fresh", action="store_true", help="forget stored units of these experiments")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, metavar="S", help="root seed (default: 0)"
    )
    p.add_argument(
        "--store", default=None, metavar="FILE", help="results store (default: DIR/store.sqlite)"
    )
    p.set_defaults(
        handler=_cmd_reproduce,
        interrupted="finished units are stored, run the same command to resume",
    )


def _scheduler(text: str) -> str:
    """An argparse type: a scheduler address :func:`parse_scheduler` accepts."""
    from ..runner.executors import parse_scheduler

    try:
        kind, target = parse_scheduler(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if kind == "local" and target > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"local:N takes at most {MAX_WORKERS} workers, got {target}"
        )
    return text


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from ..runner.errors import RunnerError
    from ..runner.executors import silence_dask_logs
    from ..runner.progress import progress_mode
    from ..runner.reproduction import command_line, reproduce

    if args.scheduler is not None:
        silence_dask_logs()  # for the whole process: faults are reported in one line
    try:
        result = reproduce(
            args.experiments,
            size=args.size,
            out=args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            fresh=args.fresh,
            seed=args.seed,
            store=args.store,
            show_progress=progress_mode(args.quiet),
            connect_timeout=args.connect_timeout,
            timeout=args.timeout,
            command=command_line(),
            dpi=args.dpi,
        )
    except RunnerError as exc:
        remedy = _HINTS.get(exc.hint or "")
        if remedy:
            exc.args = (f"{exc}; {remedy}",)
        raise
    if not args.quiet:
        _print_outcomes(result)
    if result.failed:
        causes = "; ".join(
            f"{o.name} ({o.error}{'; install it with: ' + o.install if o.install else ''})"
            for o in result.failed
        )
        print(
            f"{PROG}: error: experiment(s) failed: {causes}; see {result.report}", file=sys.stderr
        )
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
    colors = {
        "holds": "green",
        "does not hold": "red",
        "failed": "red",
        "no claims": "yellow",
        "not judged": "yellow",
    }
    for o in result.outcomes:
        units = f"{o.sweep.units_computed}/{o.sweep.units_reused}" if o.sweep else "-"
        claims = f"{o.claims_held}/{len(o.verdicts)}" if o.verdicts else "-"
        table.add_row(
            o.name, f"[{colors[o.status]}]{o.status}[/]", claims, units, f"{o.wall_seconds:.1f} s"
        )
    console = Console()
    console.print(table)
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {result.report}  ({result.info.wall_seconds:.1f} s in all)")


# ------------------------------------------------------------------ list
def add_list(sub: Any) -> None:
    p = sub.add_parser(
        "list",
        help="list the experiments and their sizes",
        description="List every experiment, whether it is installed, and the number of units\n"
        "of work at each size.",
        epilog="example:\n  finetune-theory list",
        formatter_class=formatter,
    )
    p.set_defaults(handler=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..runner.catalog import catalog

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
