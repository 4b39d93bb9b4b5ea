"""Decision rules for the advisor's recommendation, evaluated offline (a benchmark, not a test).

Runs the splits of ``benchmarks/validate_advisor.py`` (same tables, same seeds, so the same
labelled / unlabelled / test rows), and keeps for every split each (source, strategy) pair's
predicted test MSE and interval and its squared errors on the test rows (the benchmark's own
``split_errors``). Decision rules are
then replayed on these records without rerunning the advisor, and scored by the benchmark's
column (3): per (target, n) cell, the advised MSE (mean over the splits) over the best fixed
(source, strategy) in hindsight, averaged over the cells.

Besides the advisor's rule and variants of it, it scores *noisy oracles*: picking each split's
pair by an unbiased estimate of every pair's test MSE, its mean squared error on ``k`` fresh
rows drawn from the test rows (``k = n``, ``2 n``, or half the test rows), and scoring the pick
on the remaining test rows (mean over 20 draws of the fresh rows). Picking by the squared
errors of ``n`` fresh rows is what ``n`` rows would allow if they did not also train the
strategies: how far the aim "within 5%" lies from what the data can support. The same
oracle is applied to column (4), ``finetune_ridge`` against ``scratch`` (:func:`order_scores`).

Run: ``python benchmarks/advisor_rules.py [--records FILE] [--jobs 2]`` (``--records`` keeps
the records in a pickle and reuses it when it exists).
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

import validate_advisor as bm  # noqa: E402
from finetune_theory.advisor import registered  # noqa: E402

TIE_TOLERANCE = 0.3  # the earlier tie rule's tolerance, kept for the replay

SIMPLICITY = registered()  # simplest first

OBSERVED = ("as_is", "refit_intercept", "mean")


# ---------------------------------------------------------------------------- records
def collect(i: int, splits: int, seed: int) -> list[dict]:
    """The records of table ``i``: the draws of ``bm.run_task`` (``bm.draw_splits``)."""
    task = bm.load_tasks()[i]
    out = []
    for sp in bm.draw_splits(task, splits, np.random.default_rng(seed + i)):
        g, n, others = sp.target, sp.n, sp.others
        xtr, ytr = sp.xtr, sp.ytr
        adv = bm.advise_split(sp)
        sq = bm.split_errors(sp)
        pred = {}
        for src, st in adv.pairs():
            pred[(src, st)] = (
                adv.predict_risk(src, st, n),
                *adv.predict_interval(src, st, n),
            )
        rec = adv.recommendation
        out.append(
            dict(
                table=i,
                target=g,
                n=n,
                sources=list(adv.source_names),
                coefs=others,
                xtr=xtr,
                ytr=ytr,
                pred=pred,
                rec=(rec.source, rec.strategy),
                measured={k: float(v.mean()) for k, v in sq.items()},
                sq={k: v.astype(np.float32) for k, v in sq.items()},
            )
        )
    return out


# ------------------------------------------------------------------------------ rules
def tie_rule(tol: float = TIE_TOLERANCE):
    """The advisor's rule: lowest prediction, unless a simpler strategy is inside its
    interval and at most ``tol`` above it."""

    def rule(r):
        c = [(p, v) for p, v in r["pred"].items() if math.isfinite(v[0])]
        best = min(c, key=lambda pv: (pv[1][0], SIMPLICITY.index(pv[0][1])))
        for p, v in sorted(c, key=lambda pv: (SIMPLICITY.index(pv[0][1]), pv[1][0])):
            if SIMPLICITY.index(p[1]) >= SIMPLICITY.index(best[0][1]):
                break
            if v[0] <= min(best[1][2], best[1][0] * (1 + tol)):
                return p
        return best[0]

    return rule


def _log_sd(v) -> float:
    return math.log(v[2] / v[1]) / (2.0 * norm.ppf(0.9))


def upper_rule(c: float):
    """Lowest ``risk * exp(c * sd)`` (``sd`` the log-scale spread of the 80% interval)."""
    return lambda r: min(
        r["pred"], key=lambda p: r["pred"][p][0] * math.exp(c * _log_sd(r["pred"][p]))
    )


def restrict(rule, drop: tuple[str, ...]):
    """``rule`` among the pairs whose strategy is not in ``drop``."""
    return lambda r: rule(dict(r, pred={p: v for p, v in r["pred"].items() if p[1] not in drop}))


def intercept_test(z: float, base=None):
    """Per source, ``as_is`` or ``refit_intercept`` by a t-test of the intercept shift at
    ``|t| > z`` (the other one is dropped); then ``base`` (the advisor's rule)."""
    base = base or tie_rule()

    def rule(r):
        drop = set()
        for src in r["sources"]:
            coef, icpt = r["coefs"][src]
            res = r["ytr"] - r["xtr"] @ coef
            t2 = (res.mean() - icpt) ** 2 / (res.var(ddof=1) / res.size)
            drop.add((src, "as_is") if t2 > z * z else (src, "refit_intercept"))
        return base(dict(r, pred={p: v for p, v in r["pred"].items() if p not in drop}))

    return rule


def observed_first(r):
    """The advisor's rule among the observed strategies; a learned one only when its whole
    interval lies below that choice's prediction."""
    obs = tie_rule()(dict(r, pred={p: v for p, v in r["pred"].items() if p[1] in OBSERVED}))
    ok = [p for p, v in r["pred"].items() if p[1] not in OBSERVED and v[2] < r["pred"][obs][0]]
    return min(ok, key=lambda p: r["pred"][p][0]) if ok else obs


def prob_best(r, draws: int = 400):
    """The pair most often lowest in independent draws from the predictive laws."""
    rng = np.random.default_rng(0)
    ps = [p for p in r["pred"] if p[1] != "finetune"]
    sims = np.array(
        [r["pred"][p][0] * np.exp(_log_sd(r["pred"][p]) * rng.standard_normal(draws)) for p in ps]
    )
    return ps[int(np.argmax(np.bincount(np.argmin(sims, axis=0), minlength=len(ps))))]


def fresh_rows(k_of, reps: int = 20):
    """Noisy oracle: per split, the pair of lowest mean squared error on ``k_of(r, m)`` fresh
    test rows, scored on the other test rows (mean over ``reps`` draws)."""
    rng = np.random.default_rng(1)

    def value(r) -> float:
        mat = np.array(list(r["sq"].values()), dtype=np.float64)
        m = mat.shape[1]
        k = min(max(k_of(r, m), 1), m - 1)
        vals = []
        for _ in range(reps):
            perm = rng.permutation(m)
            j = int(np.argmin(mat[:, perm[:k]].mean(axis=1)))
            vals.append(mat[j, perm[k:]].mean())
        return float(np.mean(vals))

    return value


def order_scores(recs: list[dict], k_of, reps: int = 20) -> tuple[float, float, int]:
    """Column (4) against a noisy oracle: per split and source, ``finetune_ridge`` against
    ``scratch`` ordered by their mean squared errors on ``k_of(r, m)`` fresh test rows, and by
    the advisor's predictions, both scored on the other test rows where the two differ by at
    least 20% (``reps`` draws of the fresh rows). Returns the oracle's share ordered right, the
    advisor's on the same rows, and the number of scored comparisons."""
    rng = np.random.default_rng(2)
    oracle, advisor = [], []
    for r in recs:
        sc = np.asarray(r["sq"][(None, "scratch")], dtype=np.float64)
        m = sc.size
        k = min(max(k_of(r, m), 1), m - 1)
        perms = [rng.permutation(m) for _ in range(reps)]
        for src in r["sources"]:
            fr = np.asarray(r["sq"][(src, "finetune_ridge")], dtype=np.float64)
            pred = r["pred"][(src, "finetune_ridge")][0] < r["pred"][(None, "scratch")][0]
            for perm in perms:
                a, b = perm[:k], perm[k:]
                fr_b, sc_b = fr[b].mean(), sc[b].mean()
                if not bm.apart(fr_b, sc_b):
                    continue
                oracle.append((fr[a].mean() < sc[a].mean()) == (fr_b < sc_b))
                advisor.append(pred == (fr_b < sc_b))
    return float(np.mean(oracle)), float(np.mean(advisor)), len(oracle)


# ---------------------------------------------------------------------------- scoring
def regrets(recs: list[dict], value) -> np.ndarray:
    """Column (3) per (target, n) cell; ``value(r)`` is the advised MSE of a split."""
    cells: dict[tuple, list] = {}
    for r in recs:
        cells.setdefault((r["target"], r["n"]), []).append(r)
    out = []
    for rs in cells.values():
        best = min(np.mean([r["measured"][k] for r in rs]) for k in rs[0]["measured"])
        out.append(np.mean([value(r) for r in rs]) / best)
    return np.array(out)


def calibration(recs: list[dict], rule) -> tuple[float, float]:
    """Columns (1) and (2, recommended) for the pairs ``rule`` picks."""
    ratio, cover = [], []
    for r in recs:
        p = rule(r)
        risk, lo, hi = r["pred"][p]
        m = r["measured"][p]
        ratio.append(risk / m)
        cover.append(lo <= m <= hi)
    return float(np.median(ratio)), float(np.mean(cover))


RULES = {
    "advisor (tie tolerance 0.3)": tie_rule(),
    "lowest prediction": tie_rule(0.0),
    "tie tolerance 0.1": tie_rule(0.1),
    "tie tolerance 0.5": tie_rule(0.5),
    "tie tolerance 1.0": tie_rule(1.0),
    "lowest risk x exp(0.5 sd)": upper_rule(0.5),
    "lowest upper 80% bound": upper_rule(float(norm.ppf(0.9))),
    "posterior prob. of best": prob_best,
    "observed first": observed_first,
    "intercept t-test |t| > 1.96": intercept_test(1.96),
    "intercept t-test |t| > 2.58": intercept_test(2.58),
    "without mean": restrict(tie_rule(), ("mean",)),
    "as_is / refit_intercept only": restrict(
        tie_rule(), ("mean", "finetune", "finetune_ridge", "scratch")
    ),
}
ORACLES = {
    "oracle: n fresh rows": fresh_rows(lambda r, m: r["n"]),
    "oracle: 2n fresh rows": fresh_rows(lambda r, m: 2 * r["n"]),
    "oracle: half the test rows": fresh_rows(lambda r, m: m // 2, reps=5),
}
SHORT = ["Saratoga", "Wage", "Hitters", "Auto", "Carseats", "CPS1985", "penguins"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--records", type=Path, default=None, help="pickle to keep / reuse")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.records is not None and args.records.exists():
        with open(args.records, "rb") as f:
            tables = pickle.load(f)
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as ex:
            tables = list(ex.map(collect, range(7), [args.splits] * 7, [args.seed] * 7))
        if args.records is not None:
            with open(args.records, "wb") as f:
                pickle.dump(tables, f)
    replay = np.mean([tie_rule()(r) == r["rec"] for recs in tables for r in recs])
    print(
        f"records: {sum(map(len, tables))} splits ({time.perf_counter() - t0:.0f} s); "
        f"the replayed rule agrees with the advisor on {replay:.1%}"
    )
    head = f"{'(3) advised / best fixed':32s}" + "".join(f"{s:>9s}" for s in SHORT)
    print(head + f"{'all':>7s}{'<=5%':>6s}")
    calib = {}
    for name, rule in {**RULES, **ORACLES}.items():
        value = rule if name in ORACLES else (lambda r, rule=rule: r["measured"][rule(r)])
        per = [regrets(recs, value) for recs in tables]
        allc = np.concatenate(per)
        print(
            f"{name:32s}"
            + "".join(f"{g.mean():9.3f}" for g in per)
            + f"{allc.mean():7.3f}{np.mean(allc <= 1.05):6.0%}",
            flush=True,
        )
        if name in RULES:
            calib[name] = [calibration(recs, rule) for recs in tables]
    print(f"\n{'(4) source vs scratch':32s}" + "".join(f"{s:>9s}" for s in SHORT) + "    all")
    for label, k_of in [("n", lambda r, m: r["n"]), ("2n", lambda r, m: 2 * r["n"])]:
        per = [order_scores(recs, k_of) for recs in tables]
        both = order_scores([r for recs in tables for r in recs], k_of)
        for j, name in enumerate([f"oracle: {label} fresh rows", f"advisor (same rows, {label})"]):
            print(f"{name:32s}" + "".join(f"{p[j]:9.0%}" for p in per) + f"{both[j]:7.0%}")
    print(f"\n{'(1) pred/meas | (2) cover, rec.':32s}" + "".join(f"{s:>13s}" for s in SHORT))
    for name, cs in calib.items():
        print(f"{name:32s}" + "".join(f"{a:6.2f} {b:5.0%} " for a, b in cs))


if __name__ == "__main__":
    main()
