"""``reproduce``: run experiments, write their records, figures and the HTML report.

For each experiment, in report order: run the sweep (stored unit by unit, resumable), write
``<out>/<name>.csv``, draw the figures into ``<out>/figures/<name>/``, compute the verdicts and
the summary table. An experiment that raises is recorded as failed (message and traceback in
the report) and the others still run. ``<out>/report.html`` is written at the end.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..experiments import available, get
from ..experiments.base import Experiment, config_to_dict
from .executors import Executor, make_executor, parse_scheduler
from .progress import Progress
from .report import write_report
from .results import ExperimentOutcome, RunInfo, RunResult
from .store import ResultStore
from .sweep import describe_failure, run_sweep

__all__ = ["SIZES", "reproduce", "resolve_experiments", "prepare_output"]

SIZES = ("quick", "default", "paper")


def resolve_experiments(names: Sequence[str] | None, size: str) -> list[tuple[Experiment, Any]]:
    """The experiments (all available ones when ``names`` is empty) and their configs.

    Raises
    ------
    ValueError
        For an unknown experiment or size, or when no experiment is available.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    wanted = list(dict.fromkeys(names or available()))
    if not wanted:
        raise ValueError("no experiment module is installed")
    chosen = []
    for name in wanted:
        experiment = get(name)
        chosen.append((experiment, experiment.config(size)))
    return chosen


def prepare_output(out: str | Path) -> Path:
    """Create ``out`` and check that files can be written into it.

    Raises
    ------
    OSError
        With a message that names the folder.
    """
    path = Path(out).expanduser().absolute()  # figure paths stay valid whatever they return
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"cannot write to the output folder {path}: {reason}") from None
    return path


def _run_one(
    experiment: Experiment,
    config: Any,
    *,
    seed: int,
    out: Path,
    store: ResultStore,
    executor: Executor,
    fresh: bool,
    progress: Progress,
) -> ExperimentOutcome:
    start = time.perf_counter()
    outcome = ExperimentOutcome(
        name=experiment.name,
        title=experiment.title,
        description=experiment.description,
        config=config_to_dict(config),
    )
    step = "run"
    bar = progress.task(experiment.name)
    try:
        sweep = run_sweep(
            experiment,
            config,
            seed=seed,
            store=store,
            executor=executor,
            version=__version__,
            fresh=fresh,
            progress=bar,
        )
        outcome.sweep = sweep
        records = sweep.records
        bar.stage("verdicts, figures")
        step = "csv"
        outcome.csv = out / f"{experiment.name}.csv"
        records.to_csv(outcome.csv, index=False)
        step = "claims"
        outcome.verdicts = list(experiment.claims(records))
        step = "table"
        outcome.table = experiment.table(records)
        step = "plot"
        figdir = out / "figures" / experiment.name
        figdir.mkdir(parents=True, exist_ok=True)
        outcome.figures = [
            p if p.is_absolute() else figdir / p
            for p in map(Path, experiment.plot(records, figdir))
        ]
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one experiment's failure must not lose the others
        message, details = describe_failure(exc)
        outcome.error = f"{step} step: {message}"
        outcome.error_details = details
    outcome.wall_seconds = time.perf_counter() - start
    bar.stage(f"{outcome.status}, {outcome.wall_seconds:.1f} s")
    return outcome


def reproduce(
    names: Sequence[str] | None = None,
    *,
    size: str = "default",
    out: str | Path = "results",
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    seed: int = 0,
    store: str | Path | None = None,
    show_progress: bool = False,
    connect_timeout: float = 10.0,
    executor: Executor | None = None,
    command: str | None = None,
) -> RunResult:
    """Run experiments and write records (CSV), figures and ``report.html`` into ``out``.

    Parameters
    ----------
    names
        Experiment names; all available ones when empty.
    size
        ``quick``, ``default`` or ``paper``.
    out
        Output folder (created).
    workers, scheduler, connect_timeout
        Where units run; see :func:`~finetune_theory.runner.executors.make_executor`.
    fresh
        Forget the stored units of these experiments first.
    seed
        Root seed; unit ``i`` gets the ``i``-th child of ``SeedSequence(seed)``.
    store
        The SQLite results store (default ``out/store.sqlite``).
    show_progress
        Draw live progress bars (rich) on standard error.
    executor
        An executor to use instead of building one (it is not closed here).
    command
        The command line, for the report's metadata.

    Returns
    -------
    RunResult
        Outcomes per experiment (records, verdicts, figures, timings) and the report path.
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    chosen = resolve_experiments(names, size)
    if scheduler is not None and executor is None:
        parse_scheduler(scheduler)  # a malformed address fails before anything is written
    out_path = prepare_output(out)
    store_path = Path(store).expanduser() if store is not None else out_path / "store.sqlite"
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    with ResultStore(store_path) as results_store:
        own = executor is None
        runner = (
            make_executor(workers, scheduler, connect_timeout=connect_timeout) if own else executor
        )
        assert runner is not None
        try:
            info = RunInfo(
                version=__version__,
                size=size,
                seed=seed,
                started=started,
                executor=runner.description,
                out=out_path,
                store=store_path,
                command=command or "finetune_theory.runner.reproduce(...)",
                python=platform.python_version(),
                numpy=np.__version__,
                platform=f"{platform.system()} {platform.machine()}",
            )
            outcomes = []
            with Progress(show_progress) as progress:
                for experiment, config in chosen:
                    outcomes.append(
                        _run_one(
                            experiment,
                            config,
                            seed=seed,
                            out=out_path,
                            store=results_store,
                            executor=runner,
                            fresh=fresh,
                            progress=progress,
                        )
                    )
        finally:
            if own:
                runner.close()
    info.wall_seconds = time.perf_counter() - t0
    result = RunResult(info=info, outcomes=outcomes)
    result.report = write_report(result, out_path / "report.html")
    return result


def command_line() -> str:
    """This process's command line, for the report."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
