"""A tiny experiment for the runner's tests (it follows the contract of experiments.base).

Each unit draws a few Gaussian numbers from its seed and returns records that hold awkward
values (``-0.0``, NaN, infinities, a subnormal, NumPy scalars) so that the store's round trip
is exercised. With the environment variable ``TOY_MARKER`` set, each unit appends
``"<index> <TOY_RUN>"`` to that file when it starts: the tests count computations with it;
with ``TOY_PIDS`` set, it appends the PID of the process that runs it to that file.
``TOY_SLEEP`` (seconds) slows every unit down so that a run can be killed mid-sweep.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finetune_theory._random import as_generator
from finetune_theory.experiments.base import Experiment, Verdict

AWKWARD = [-0.0, float("nan"), float("inf"), -float("inf"), 5e-324, 0.1 + 0.2, 1e308]


@dataclass(frozen=True)
class ToyConfig:
    """``n_units`` units of ``draws`` Gaussian draws; ``fail_unit`` raises in that unit."""

    n_units: int = 4
    draws: int = 5
    index: int = -1
    fail_unit: int = -1
    title: str = "toy"


def units(config: ToyConfig) -> list[ToyConfig]:
    return [dataclasses.replace(config, index=i) for i in range(config.n_units)]


def run(config: ToyConfig, seed: int) -> list[dict[str, Any]]:
    marker = os.environ.get("TOY_MARKER")
    if marker:
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(f"{config.index} {os.environ.get('TOY_RUN', '')}\n")
            fh.flush()
            os.fsync(fh.fileno())
    pids = os.environ.get("TOY_PIDS")
    if pids:
        with open(pids, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
    if config.index == config.fail_unit:
        raise ValueError(f"toy unit {config.index} fails on purpose")
    rng = as_generator(seed)
    values = rng.standard_normal(config.draws)
    a = rng.standard_normal((40, 40))
    gram = a @ a.T + np.eye(40)  # BLAS work, so executor comparisons cover it
    solved = np.linalg.solve(gram, a[:, : config.draws])
    return [
        {
            "unit": np.int64(config.index),
            "draw": j,
            "value": values[j],  # a np.float64
            "small": np.float32(values[j]),
            "positive": np.bool_(values[j] > 0),
            "awkward": AWKWARD[j % len(AWKWARD)],
            "label": f"u{config.index}-é",
            "seed": seed,
            "blas": float(a[:, j] @ solved[:, j]),
        }
        for j in range(config.draws)
    ]


def claims(records: pd.DataFrame) -> list[Verdict]:
    mean = float(records["value"].mean())
    se = float(records["value"].std(ddof=1) / np.sqrt(len(records)))
    return [
        Verdict("the draws have mean zero", abs(mean) < 5 * se, f"mean {mean:.3f}, s.e. {se:.3f}"),
        Verdict(
            "the draws are all above ten", bool((records["value"] > 10).all()), f"mean {mean:.3f}"
        ),
    ]


def table(records: pd.DataFrame) -> pd.DataFrame:
    return records.groupby("unit")["value"].agg(["mean", "count"])


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.errorbar(records["draw"], records["value"], yerr=0.1, fmt="o")
    paths = [Path(outdir) / "toy_values.png", Path(outdir) / "toy_values.svg"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


SIZES = {
    "quick": ToyConfig(n_units=4, draws=5),
    "default": ToyConfig(n_units=6, draws=7),
    "paper": ToyConfig(n_units=8, draws=7),
}

EXPERIMENT = Experiment(
    name="toy",
    title="Toy <experiment> for tests",
    description="Gaussian draws per unit & awkward floats.",
    config_cls=ToyConfig,
    sizes=SIZES,
    run=run,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)

BROKEN = dataclasses.replace(
    EXPERIMENT,
    name="broken",
    title="Broken toy",
    sizes={size: dataclasses.replace(cfg, fail_unit=1) for size, cfg in SIZES.items()},
)


def register(monkeypatch: Any, slow: float = 0.0) -> None:
    """Make ``toy`` (and ``broken``) known to the experiment registry for one test."""
    from finetune_theory import experiments

    monkeypatch.setitem(experiments.REGISTRY, "toy", "toy_experiment")
    monkeypatch.setitem(experiments.REGISTRY, "broken", "toy_broken")
    if slow:
        monkeypatch.setenv("TOY_SLEEP", str(slow))


def assert_same_bits(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, dtypes and values; float columns compared as raw bits."""
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes) == list(b.dtypes)
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), col
        else:
            assert list(x) == list(y), col


def live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (Linux /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive
