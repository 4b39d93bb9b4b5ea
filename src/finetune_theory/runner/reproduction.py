"""``reproduce``: run experiments, write their records, figures and the HTML report.

For each experiment, in report order: run the sweep (stored unit by unit, resumable), write
``<out>/<name>.csv``, draw the figures into ``<out>/figures/<name>/``, compute the verdicts and
the summary table. An experiment that raises is recorded as failed (message and traceback in
the report) and the others still run. ``<out>/report.html`` is written at the end.

What ends the whole run instead, with one line that says what was kept (a
:class:`~finetune_theory.runner.errors.RunEnded`): the disk is full, the output folder or the
store was removed, the store cannot be used (locked by another process, read-only, damaged
beyond use), a local worker died, the Dask workers or scheduler went away or hung, a source
file of the package changed during the run, or a unit came from other code than the run's.
The run's code is fingerprinted once, before any experiment module is imported
(:class:`~finetune_theory.runner.fingerprint.CodeSnapshot`). Every file is
written with :func:`~finetune_theory.runner.files.atomic_write`, so a kill leaves each output
either as it was or complete. The output folder is locked for the run
(:class:`~finetune_theory.runner.files.FolderLock`); a store outside it is locked too (its
folder is created for that when missing).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..experiments import REGISTRY, available, get, skipped
from ..experiments.base import Experiment, config_hash, config_to_dict
from .errors import OutputError, RunEnded, RunnerError, is_disk_full, missing_extra
from .executors import Executor, make_executor, parse_scheduler
from .files import LOCK_NAME, FolderLock, atomic_write, remove_partials
from .fingerprint import CodeSnapshot, CodeSpec, code_spec
from .progress import Progress
from .report import write_report
from .results import ExperimentOutcome, RunInfo, RunResult
from .store import ResultStore
from .sweep import describe_failure, run_sweep

__all__ = ["SIZES", "reproduce", "resolve_experiments", "prepare_output"]

#: sizes run in this process unless ``workers`` or a scheduler is given: at ``quick`` the units
#: total about 20 CPU-seconds (none above 4) and figures and the report (drawn here) take as
#: long again, so a pool only adds its start-up (every worker imports the package) and CPU
#: time; measured on the 2-core machine: 2 workers 41.5 CPU-s and the same wall time as one
#: worker (36.5 CPU-s) when loaded, slower than one worker when quiet
ONE_WORKER_SIZES = ("quick",)

#: the sizes every experiment runs at, smallest first (``reproduce --size``)
SIZES = ("quick", "default", "paper")


def resolve_experiments(names: Sequence[str] | None, size: str) -> list[tuple[Experiment, Any]]:
    """The experiments (all available ones when ``names`` is empty) and their configs.

    Raises
    ------
    ValueError
        For an unknown experiment or size, or when no experiment is available.
    RunnerError
        An experiment module cannot be imported (the message names the missing package and
        the extra that installs it).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    wanted = _wanted(names)
    chosen = []
    for name in wanted:
        try:
            experiment = get(name)
        except ImportError as exc:
            install = missing_extra(getattr(exc, "name", None))
            raise RunnerError(
                f"experiment {name} cannot be loaded: {exc}"
                + (
                    f"; install it with: {install}"
                    if install and "pip install" not in str(exc)
                    else ""
                )
            ) from None
        chosen.append((experiment, experiment.config(size)))
    return chosen


def _wanted(names: Sequence[str] | None) -> list[str]:
    if not names:  # all experiments: say which optional ones are left out, one line each
        for name, install in skipped().items():
            print(f"finetune-theory: optional experiment {name} skipped; install it with: "
                  f"{install}", file=sys.stderr)
    wanted = list(dict.fromkeys(names or available()))
    if not wanted:
        raise ValueError("no experiment module is installed")
    return wanted


def _outside_modules(names: Sequence[str]) -> list[str]:
    """The registered modules of ``names`` that live outside the package."""
    return [
        REGISTRY[n]
        for n in names
        if n in REGISTRY and not REGISTRY[n].startswith("finetune_theory.")
    ]


def prepare_output(out: str | Path) -> Path:
    """Create ``out`` and check that files can be written into it.

    Raises
    ------
    OSError
        With a message that names the folder.
    """
    path = Path(out).expanduser().absolute()  # figure paths stay valid whatever they return
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(20, "not a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"cannot write to the output folder {path}: {reason}") from None
    return path


class _Folder:
    """The output folder as it was when the run began; :meth:`check` fails once it is gone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = os.stat(path)
        self._id = (st.st_dev, st.st_ino)

    def check(self) -> None:
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._id
        except OSError:
            same = False
        if not same:
            raise OutputError(f"the output folder {self.path} was removed during the run")


def _draw_figures(experiment: Experiment, records: Any, figdir: Path) -> list[Path]:
    """Plot into a private folder beside ``figdir``, then move each file in atomically."""
    figdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=figdir.parent, prefix=f".{figdir.name}.", suffix=".ftpart"))
    try:
        drawn = [
            p if p.is_absolute() else staging / p
            for p in map(Path, experiment.plot(records, staging))
        ]
        final = []
        for path in drawn:
            try:
                rel = path.resolve().relative_to(staging.resolve())
            except ValueError:  # drawn elsewhere on purpose: leave it there
                final.append(path)
                continue
            target = figdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, path.read_bytes())
            final.append(target)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    folder: _Folder | None = None,
    code: CodeSnapshot | None = None,
    spec: CodeSpec | None = None,
) -> ExperimentOutcome:
    start = time.perf_counter()
    outcome = ExperimentOutcome(
        name=experiment.name,
        title=experiment.title,
        description=experiment.description,
        config=config_to_dict(config),
    )
    check = folder.check if folder is not None else (lambda: None)
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
            fingerprint=code.fingerprint(spec) if code is not None and spec is not None else "",
            spec=spec,
            code=code,
        )
        outcome.sweep = sweep
        for note in sweep.notes:
            if "damaged" in note:
                progress.warn(note)
        records = sweep.records
        bar.stage("verdicts, figures")
        step = "csv"
        check()
        csv = out / f"{experiment.name}.csv"
        atomic_write(csv, records.to_csv(index=False))
        outcome.csv = csv
        step = "claims"
        outcome.verdicts = list(experiment.claims(records))
        step = "table"
        outcome.table = experiment.table(records)
        step = "plot"
        check()
        outcome.figures = _draw_figures(experiment, records, out / "figures" / experiment.name)
    except (KeyboardInterrupt, SystemExit, RunEnded):
        raise
    except Exception as exc:  # one experiment's failure must not lose the others
        if is_disk_full(exc):
            where = getattr(exc, "filename", None) or out
            raise OutputError(f"the disk is full: could not write {where}") from None
        check()  # a step that failed because the folder went away ends the run
        message, details, missing = describe_failure(exc)
        outcome.error = f"{step} step: {message}"
        outcome.error_details = details
        outcome.install = missing_extra(missing) if "pip install" not in message else None
    outcome.wall_seconds = time.perf_counter() - start
    bar.stage(f"{outcome.status}, {outcome.wall_seconds:.1f} s")
    return outcome


def _kept(
    store: ResultStore | None,
    chosen: Sequence[tuple[Experiment, Any]],
    seed: int,
    fingerprints: dict[str, str],
) -> str:
    """What a run that ends early leaves behind (its own sweeps' units), in one clause."""
    if store is None:
        return "nothing was stored"
    if not store.still_there():
        return f"the results store {store.path} is gone, so nothing was kept"
    try:
        counts = {
            experiment.name: len(
                store.load(
                    experiment.name,
                    config_hash(config),
                    seed,
                    __version__,
                    fingerprints.get(experiment.name),
                )
            )
            for experiment, config in chosen
        }
    except Exception:  # the store cannot be read: say no more than we know
        return f"finished units, if any, are in {store.path}"
    total = sum(counts.values())
    detail = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    return (
        f"kept: {total} finished unit(s) in {store.path}"
        + (f" ({detail})" if detail else "")
        + "; output files already written are unchanged; run the same command to resume"
    )


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
    show_progress: bool | str = False,
    connect_timeout: float = 10.0,
    executor: Executor | None = None,
    command: str | None = None,
    timeout: float = 60.0,
    dpi: int | None = None,
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
    workers, scheduler, connect_timeout, timeout
        Where units run; see :func:`~finetune_theory.runner.executors.make_executor`. With
        neither ``workers`` nor ``scheduler``, a size of :data:`ONE_WORKER_SIZES` (``quick``)
        runs in this process, the others on one worker per core.
    fresh
        Forget the stored units of these experiments first.
    seed
        Root seed; unit ``i`` gets the ``i``-th child of ``SeedSequence(seed)``.
    store
        The SQLite results store (default ``out/store.sqlite``).
    show_progress
        ``"bars"`` (or ``True``): live progress bars (rich) on standard error; ``"lines"``: a
        plain line on standard error as units finish (for logs and pipes); ``False``: nothing.
    executor
        An executor to use instead of building one (it is not closed here).
    command
        The command line, for the report's metadata.
    dpi
        Also write each figure as PNG at this resolution, in dots per inch (by default the
        figures are written as SVG only).

    Returns
    -------
    RunResult
        Outcomes per experiment (records, verdicts, figures, timings) and the report path.

    Raises
    ------
    RunnerError
        The run cannot start or go on (another run holds the folder, the store is locked,
        read-only or not a store, the disk is full, the folder was removed, a worker died,
        the Dask cluster went away, a source file changed, stale bytecode); the message ends
        with what was kept.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "results"
    >>> result = reproduce(["scaling"], size="quick", out=out, workers=1)
    >>> [o.name for o in result.outcomes], result.report.name, (out / "scaling.csv").exists()
    (['scaling'], 'report.html', True)
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    wanted = _wanted(names)
    code = CodeSnapshot(_outside_modules(wanted))  # before any experiment module is imported
    chosen = resolve_experiments(wanted, size)
    specs = {e.name: code_spec(e, REGISTRY.get(e.name)) for e, _ in chosen}
    fingerprints = {name: code.fingerprint(spec) for name, spec in specs.items()}
    if scheduler is not None and executor is None:
        parse_scheduler(scheduler)  # a malformed address fails before anything is written
    existed = Path(out).expanduser().absolute().exists()
    out_path = prepare_output(out)
    store_path = Path(store).expanduser() if store is not None else out_path / "store.sqlite"
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    with ExitStack() as stack:
        from ..experiments import figure_options

        stack.enter_context(figure_options(dpi=dpi))
        stack.enter_context(FolderLock(out_path))
        store_folder = store_path.absolute().parent
        if store_folder != out_path:
            stack.enter_context(_store_folder_lock(store_folder))
        remove_partials(out_path)
        folder = _Folder(out_path)
        results_store = stack.enter_context(ResultStore(store_path))
        own = executor is None
        if workers is None and scheduler is None and size in ONE_WORKER_SIZES:
            workers = 1  # too little work for a pool to pay off (see ONE_WORKER_SIZES)
        try:
            runner = (
                make_executor(workers, scheduler, connect_timeout=connect_timeout, timeout=timeout)
                if own
                else executor
            )
        except BaseException:  # leave no empty store (or folder) behind a failed start
            if results_store.created and results_store.count() == 0:
                results_store.remove()
                if not existed:
                    stack.close()
                    _remove_if_only_lock(out_path)
            raise
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
                            folder=folder,
                            code=code,
                            spec=specs[experiment.name],
                        )
                    )
                    folder.check()
                    code.check()
            info.wall_seconds = time.perf_counter() - t0
            result = RunResult(info=info, outcomes=outcomes)
            folder.check()
            result.report = write_report(result, out_path / "report.html")
            folder.check()
            if not results_store.still_there():
                raise OutputError(f"the results store {store_path} was removed during the run")
            missing = [o.csv for o in outcomes if o.csv is not None and not o.csv.exists()]
            if missing:
                raise OutputError(f"{missing[0]} was removed during the run")
            result.store_notes = _store_notes(results_store)
        except RunnerError as exc:
            exc.args = (f"{exc}; {_kept(results_store, chosen, seed, fingerprints)}",)
            raise
        finally:
            if own:
                runner.close()
    return result


def _store_notes(store: ResultStore) -> list[str]:
    """What the user should know about the store's files after the run."""
    if not store.unfolded:
        return []
    return [
        f"another process kept the results store open, so the last {store.unfolded} unit(s) "
        f"are only in {store.wal_path.name} until it is folded into {store.path.name}: keep "
        "the two files together"
    ]


class _store_folder_lock:  # noqa: N801 - used as a context manager
    """The lock of the store's folder, created for it when missing (removed again if empty)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.created = False
        self._lock: FolderLock | None = None

    def __enter__(self) -> FolderLock:
        if not self.folder.exists():
            try:
                self.folder.mkdir(parents=True)
                self.created = True
            except FileExistsError:
                pass
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise OSError(f"cannot create the store's folder {self.folder}: {reason}") from None
        self._lock = FolderLock(self.folder, "store's folder").acquire()
        return self._lock

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
        if self.created:
            _remove_if_only_lock(self.folder)


def _remove_if_only_lock(folder: Path) -> None:
    """Remove a folder this run created when it holds nothing but the lock file."""
    try:
        entries = list(folder.iterdir())
        if all(p.name == LOCK_NAME for p in entries):
            for p in entries:
                p.unlink()
            folder.rmdir()
    except OSError:
        pass


def command_line() -> str:
    """This process's command line, for the report."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
