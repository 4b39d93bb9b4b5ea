"""Test-only helpers (the BLAS, Matplotlib and NumPy setup shared with the docstring
examples lives in the repository's top-level ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (README.md, examples/, docs/)."""
    return ROOT


@pytest.fixture(scope="session")
def quick_records(request, tmp_path_factory) -> Callable[[str], pd.DataFrame]:
    """``quick_records(name)``: the records of an experiment at quick size with seed 0.

    Computed once per test run: the first process that asks writes them to the session's
    temporary folder (shared by the pytest-xdist workers, under a file lock) and every test
    gets its own copy, so that the experiment test files and the claim-mutation tests do not
    each recompute the same records.
    """
    from filelock import FileLock

    from finetune_theory import experiments

    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker: the run's folder is shared
        root = root.parent
    cache: dict[str, pd.DataFrame] = {}

    def get(name: str) -> pd.DataFrame:
        if name not in cache:
            path = root / f"quick-records-{name}.pkl"
            with FileLock(str(path) + ".lock"):
                if path.is_file():
                    cache[name] = pd.read_pickle(path)
                else:
                    exp = experiments.get(name)
                    cache[name] = exp.run_all(exp.config("quick"), seed=0)
                    cache[name].to_pickle(path)
        return cache[name].copy()

    return get


# Tests left out by `make test-fast` (`-m "not slow"`), by file: whole experiments, the command
# line end to end, worker processes, Dask clusters, torch imports. Listed here rather than
# decorated so that one place shows what the fast run skips; `@pytest.mark.slow` on a test
# works as well. A test is slow when its name is listed or when it uses a listed fixture (the
# expensive module-scoped runs). Measured with `pytest -n 2 --durations=0`: each listed test
# took 2.5 s or more on the shared 2-core development machine (about half that on a quiet one).
SLOW: dict[str, dict[str, set[str]]] = {
    "test_advisor.py": {
        "tests": {
            "test_noise_estimate_never_below_its_floor_when_n_is_well_below_d",
            "test_crossover_is_the_first_n_where_scratch_wins",
            "test_outputs_json_csv_table_and_plot",
        },
    },
    "test_asymptotics.py": {
        "tests": {"test_pinv_trace_matches_monte_carlo_on_both_sides_of_the_rank"},
    },
    "test_cli.py": {
        "tests": {
            "test_every_experiment_runs_at_quick_size_with_records_figures_and_verdicts",
            "test_a_killed_run_resumes_without_recomputing_and_gives_the_same_records",
            "test_a_refused_scheduler_port_fails_at_once_with_one_line_and_leaves_nothing",
            "test_a_failing_experiment_exits_non_zero_with_one_line",
            "test_a_relative_output_folder_embeds_every_figure",
        },
    },
    "test_cli_advise.py": {"tests": {"test_advise_console_script_error_is_one_line"}},
    "test_deep_linear.py": {
        "fixtures": {"drift_runs"},
        "tests": {"test_gradients_match_torch_autograd", "test_asymptotic_bias_shrinks_with_n"},
    },
    "test_experiments_measure.py": {"tests": {"test_plot_writes_svg"}},
    "test_experiments_realistic.py": {
        "tests": {
            "test_quick_size_runs_offline",
            "test_run_gives_the_records_of_run_all_and_of_the_sweep",
        },
    },
    "test_experiments_relu.py": {
        "fixtures": {"quick"},
        "tests": {
            "test_run_gives_the_records_of_run_all_and_of_the_sweep",
            "test_units_split_widths_and_bound_memory",
            "test_same_seed_same_records",
        },
    },
    "test_experiments_deep.py": {
        "fixtures": {"quick", "quick_records"},
        "tests": {
            "test_claims_can_fail",
            "test_same_seed_same_records",
            "test_run_gives_the_records_of_run_all_and_of_the_sweep",
        },
    },
    "test_linear_ridge.py": {
        "tests": {"test_ridge_deterministic_equivalent_against_monte_carlo"},
    },
    "test_experiments_reduction.py": {
        "tests": {
            "test_run_gives_the_records_of_run_all_and_of_the_sweep",
            "test_depth_verdict_holds_and_flips_when_depth_is_ignored",
        },
    },
    "test_relu.py": {"tests": {"test_hand_gradient_matches_torch_autograd"}},
    "test_runner_faults.py": {
        "tests": {
            "test_1_a_kill_while_an_output_is_written_leaves_the_old_file",
            "test_1_a_kill_at_the_first_write_leaves_no_file_at_all",
            "test_2_changed_code_is_recomputed_and_never_mixed",
            "test_3_all_dask_workers_lost_ends_the_run_within_the_timeout",
            "test_3_a_dask_scheduler_that_dies_ends_the_run_within_the_timeout",
            "test_10_a_second_run_into_a_busy_folder_is_refused_with_the_pid",
            "test_11_ctrl_c_gives_one_line_and_130_however_often",
            "test_4_a_port_without_a_dask_scheduler_fails_within_the_timeout",
        },
    },
    "test_runner_store.py": {"tests": {"test_json_round_trip_is_bit_identical"}},
    "test_runner_sweep.py": {
        "fixtures": {"process_records"},
        "tests": {"test_a_failing_unit_in_a_worker_process_names_itself"},
    },
}


def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`SLOW`; warn about listed names that no longer exist."""
    seen: dict[str, set[str]] = {}
    for item in items:
        path = getattr(item, "path", None)
        if path is None or path.parent != Path(__file__).parent or path.name not in SLOW:
            continue
        entry = SLOW[path.name]
        name = getattr(item, "originalname", None) or item.name.split("[")[0]
        hits = {name} & entry.get("tests", set())
        hits |= set(getattr(item, "fixturenames", ())) & entry.get("fixtures", set())
        if hits:
            item.add_marker(pytest.mark.slow)
        seen.setdefault(path.name, set()).update(hits)
    for file, hits in seen.items():
        missing = (SLOW[file].get("tests", set()) | SLOW[file].get("fixtures", set())) - hits
        if missing and not config.option.keyword and not config.option.markexpr:
            config.issue_config_time_warning(
                pytest.PytestWarning(
                    f"tests/conftest.py SLOW lists names not found in {file}: {sorted(missing)}"
                ),
                stacklevel=2,
            )
